"""The model: model kinds, the 3D gated PixelCNN and its samplers, receptive field, checkpoints, the shipped default.

- ``kind_base``: the interface of a model kind (``ModelKind``): network, training loss, log-probability
  of a canvas, reference and fast samplers, receptive field, burn-in margin;
- ``kinds``: the registry of kinds by ``ModelConfig.kind`` (``kind_of(config)``);
- ``one_stage``: the one-stage kind, the PixelCNN over every voxel in raster order;
- ``pixelcnn``: depth, vertical and horizontal stacks with masked kernels (seed 000, Fig. 2);
- ``wavefront``, ``wavefront_sampler``: the one-stage kind's fast sampler (cached states in wavefronts);
- ``choice``: the seed streams and the per-voxel class choice every sampler draws with;
- ``receptive_field``: which earlier voxels an output sees (analytic and measured masks);
- ``checkpoint``: one atomic file per model, read with ``torch.load(weights_only=True)``;
- ``default``: where the shipped default model lives;
- ``device``: the torch device a model runs on, checked once.
"""

from map_core.model.checkpoint import check_voxel_size, load_checkpoint, load_model, save_checkpoint
from map_core.model.choice import box_uniforms, choose
from map_core.model.default import default_model_path
from map_core.model.device import resolve_device
from map_core.model.kind_base import ModelKind
from map_core.model.kinds import KINDS, kind_named, kind_of
from map_core.model.one_stage import OneStagePixelCNN
from map_core.model.pixelcnn import OUTSIDE, ModelConfig, PixelCNN3D, eval_copy, one_hot
from map_core.model.receptive_field import ReceptiveField, analytic_mask, receptive_field
from map_core.model.wavefront import Wavefront

__all__ = [
    "KINDS", "OUTSIDE", "ModelConfig", "ModelKind", "OneStagePixelCNN", "PixelCNN3D", "ReceptiveField", "Wavefront",
    "analytic_mask", "box_uniforms", "check_voxel_size", "choose", "default_model_path", "eval_copy", "kind_named",
    "kind_of", "load_checkpoint", "load_model", "one_hot", "receptive_field", "resolve_device", "save_checkpoint",
]

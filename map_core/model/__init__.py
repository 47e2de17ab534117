"""The model: the 3D gated PixelCNN, its receptive field, checkpoints and the shipped default.

- ``pixelcnn``: depth, vertical and horizontal stacks with masked kernels (seed 000, Fig. 2);
- ``receptive_field``: which earlier voxels an output sees (analytic and measured masks);
- ``checkpoint``: one atomic file per model, read with ``torch.load(weights_only=True)``;
- ``default``: where the shipped default model lives;
- ``device``: the torch device a model runs on, checked once.
"""

from map_core.model.checkpoint import check_voxel_size, load_checkpoint, load_model, save_checkpoint
from map_core.model.default import default_model_path
from map_core.model.device import resolve_device
from map_core.model.pixelcnn import OUTSIDE, ModelConfig, PixelCNN3D, eval_copy, one_hot
from map_core.model.receptive_field import ReceptiveField, analytic_mask, receptive_field

__all__ = [
    "OUTSIDE", "ModelConfig", "PixelCNN3D", "ReceptiveField", "analytic_mask", "check_voxel_size",
    "default_model_path", "eval_copy", "load_checkpoint", "load_model", "one_hot", "receptive_field",
    "resolve_device", "save_checkpoint",
]

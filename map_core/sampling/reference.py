"""The reference sampler: slow, obviously correct generation, by the model's kind.

The one-stage kind (``map_core.model.one_stage``) runs, for every voxel in raster order, the whole
network on the causal window around that voxel (the receptive field, clipped to the canvas) and
samples from the softmax at that voxel. The fast sampler must reproduce its grids exactly;
`log_prob` must reproduce its log-probabilities.
"""

from __future__ import annotations

import torch

from map_core.model.kinds import kind_of
from map_core.sampling.canvas import make_canvas


def sample_reference(model, shape, n_boxes: int = 1, temperature: float = 1.0, seed: int = 0,
                     boundary="outside", fixed=None, dtype=torch.float64, progress: bool = False, first_box: int = 0):
    """Generate `n_boxes` boxes of `shape` (Z, Y, X) voxels.

    temperature: softmax temperature (0 = argmax). boundary, fixed: see map_core.sampling.canvas.make_canvas.
    first_box: index of the first box in the seed stream (boxes k use uniforms seeded by (seed, k)).
    Returns (grids (B, Z, Y, X) uint8, log_prob (B,) float64 nats of the sampled voxels).
    """
    config = model.config
    kind = kind_of(config)
    canvas = make_canvas(shape, n_boxes, kind.receptive_field(config), config.n_classes, boundary, fixed)
    return kind.sample_reference(model, canvas, seed, first_box, temperature, dtype=dtype, progress=progress)

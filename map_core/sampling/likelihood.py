"""Exact log-probability of given grids under a MAP model (teacher forcing), by the model's kind."""

from __future__ import annotations

import numpy as np
import torch

from map_core.errors import MapSuiteError
from map_core.model.kinds import kind_of
from map_core.sampling.canvas import make_canvas


def log_prob(model, grids, temperature: float = 1.0, boundary="outside", fixed=None,
             dtype=torch.float64, per_voxel: bool = False):
    """log p(grid) in nats for each of (B, Z, Y, X) class grids, summed over the sampled voxels.

    Voxels fixed by `fixed` (values >= 0) are conditioned on and not counted; boundary as in
    map_core.sampling.canvas.make_canvas. per_voxel=True also returns the (B, Z, Y, X) log-probabilities.
    """
    if temperature <= 0:
        raise MapSuiteError("log_prob needs a positive temperature")
    grids = torch.as_tensor(np.asarray(grids), dtype=torch.int64)
    if grids.dim() == 3:
        grids = grids.unsqueeze(0)
    config = model.config
    if grids.min() < 0 or grids.max() >= config.n_classes:
        raise MapSuiteError(f"grids hold values outside the classes 0..{config.n_classes - 1}")
    kind = kind_of(config)
    canvas = make_canvas(grids.shape[1:], grids.shape[0], kind.receptive_field(config), config.n_classes, boundary, fixed)
    free = canvas.box_view(canvas.free)
    canvas.box_view(canvas.values)[free] = grids[free]
    logp = kind.log_prob(model, canvas, temperature, dtype)
    total = logp.sum(dim=(1, 2, 3))
    return (total, logp) if per_voxel else total

"""Exact log-probability of given grids under a MAP model (one network pass, teacher forcing)."""

from __future__ import annotations

import numpy as np
import torch

from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import PixelCNN3D, eval_copy, one_hot
from map_core.model.receptive_field import receptive_field
from map_core.sampling.canvas import make_canvas


@torch.no_grad()
def log_prob(model: PixelCNN3D, grids, temperature: float = 1.0, boundary="outside", fixed=None,
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
    if grids.min() < 0 or grids.max() >= model.config.n_classes:
        raise MapSuiteError(f"grids hold values outside the classes 0..{model.config.n_classes - 1}")
    model = eval_copy(model, dtype)
    canvas = make_canvas(grids.shape[1:], grids.shape[0], receptive_field(model.config), model.config.n_classes, boundary, fixed)
    free = canvas.box_view(canvas.free)
    box_values = canvas.box_view(canvas.values)
    box_values[free] = grids[free]
    logits = model(one_hot(canvas.values, model.config.n_classes, dtype))
    z0, y0, x0, nz, ny, nx = canvas.box
    logits = logits[:, :, z0 : z0 + nz, y0 : y0 + ny, x0 : x0 + nx]
    logp = torch.log_softmax(logits.double() / temperature, dim=1).gather(1, grids.unsqueeze(1)).squeeze(1)
    logp = torch.where(free, logp, torch.zeros_like(logp))
    total = logp.sum(dim=(1, 2, 3))
    return (total, logp) if per_voxel else total

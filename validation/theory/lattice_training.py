"""Training a PixelCNN3D on 2D lattice toy grids (seed 001, Sec. IV, App. A2).

Grids (N, H, W) of class ids (2 classes for occupied/empty) are boxes (1, H, W) to the model.
Each step takes random square crops, applies one of the 8 symmetries of the square (the toy
systems are isotropic), and minimises the mean cross-entropy (nats per site) with Adam.
Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D, one_hot


def dihedral(crops: np.ndarray, k: int) -> np.ndarray:
    """Symmetry k (0..7) of the square applied to (B, h, h) crops: k % 4 quarter turns, then a flip if k >= 4."""
    out = np.rot90(crops, k % 4, axes=(1, 2))
    return out[:, :, ::-1] if k >= 4 else out


def lattice_cross_entropy(model: PixelCNN3D, grids) -> torch.Tensor:
    """Mean cross-entropy (nats per site) of (B, H, W) class grids, boundary 'outside' (as in training)."""
    g = torch.as_tensor(np.ascontiguousarray(grids), dtype=torch.int64)[:, None]
    return F.cross_entropy(model(one_hot(g, model.config.n_classes)), g)


def train_lattice_model(grids, config: ModelConfig, steps: int = 500, batch: int = 16, crop: int = 16,
                        lr: float = 3e-3, seed: int = 0, augment: bool = True, progress=None) -> tuple:
    """Train a fresh PixelCNN3D(config) on (N, H, W) grids; returns (model in eval mode, losses (steps,)).

    progress: optional callable(step, loss).
    """
    grids = np.asarray(grids)
    if grids.ndim != 3 or grids.max() >= config.n_classes or grids.min() < 0:
        raise MapSuiteError(f"grids must be (N, H, W) with classes 0..{config.n_classes - 1}")
    n, h, w = grids.shape
    if crop > min(h, w) or crop < 2:
        raise MapSuiteError(f"crop {crop} does not fit grids of {h}x{w}")
    torch.manual_seed(seed)
    model = PixelCNN3D(config).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    losses = np.empty(steps)
    for step in range(steps):
        idx = rng.integers(n, size=batch)
        ys, xs = rng.integers(h - crop + 1, size=batch), rng.integers(w - crop + 1, size=batch)
        crops = np.stack([grids[i, y : y + crop, x : x + crop] for i, y, x in zip(idx, ys, xs)])
        if augment:
            crops = dihedral(crops, int(rng.integers(8)))
        loss = lattice_cross_entropy(model, crops)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses[step] = loss.item()
        if progress:
            progress(step, losses[step])
    return model.eval(), losses

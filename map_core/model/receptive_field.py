"""The receptive field of a MAP PixelCNN: which earlier voxels the output at a voxel depends on.

`receptive_field(config)` gives the analytic extents; `structural_mask(config)` measures the
dependency set of a real model of that architecture (linear activations, positive weights, so
every connection shows up in the gradient) and is what the property tests compare against.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch

from map_core.model.pixelcnn import ModelConfig, PixelCNN3D, eval_copy


@dataclass(frozen=True)
class ReceptiveField:
    """Extents in voxels relative to the target voxel at (0, 0, 0) (dz, dy, dx), and in nm.

    planes_back: previous planes seen (dz = -planes_back .. -1);
    rows_back / rows_ahead: rows seen in previous planes (dy = -rows_back .. rows_ahead);
    in the current plane rows dy = -rows_back .. -1 are seen; cols: |dx| <= cols in previous rows
    and planes; cols_back: columns seen in the current row (dx = -cols_back .. -1).
    """

    planes_back: int
    rows_back: int
    rows_ahead: int
    cols: int
    cols_back: int
    voxel_nm: float

    @property
    def voxels(self) -> int:
        """Number of voxels the output depends on."""
        prev_planes = self.planes_back * (self.rows_back + self.rows_ahead + 1) * (2 * self.cols + 1)
        return prev_planes + self.rows_back * (2 * self.cols + 1) + self.cols_back

    @property
    def reach_nm(self) -> float:
        """Shortest distance back along any axis that the field still covers, nm."""
        return min(self.planes_back, self.rows_back, self.cols_back) * self.voxel_nm

    def as_dict(self) -> dict:
        return {**asdict(self), "voxels": self.voxels, "reach_nm": self.reach_nm}


def receptive_field(config: ModelConfig) -> ReceptiveField:
    """Analytic receptive field of `config` (see map_core.model.pixelcnn for the derivation's statement)."""
    reach = config.layers * (config.kernel // 2)
    return ReceptiveField(
        planes_back=reach + 1, rows_back=reach + 1, rows_ahead=reach, cols=reach, cols_back=reach + 1,
        voxel_nm=config.voxel_nm,
    )


def analytic_mask(rf: ReceptiveField) -> np.ndarray:
    """Boolean (P+1, rows_back+rows_ahead+1, 2*cols_back+1) mask of the receptive field around
    a target at index (P, rows_back, cols_back), P = planes_back."""
    p, rb, ra, c, cb = rf.planes_back, rf.rows_back, rf.rows_ahead, rf.cols, rf.cols_back
    width = max(c, cb)
    mask = np.zeros((p + 1, rb + ra + 1, 2 * width + 1), dtype=bool)
    mask[:p, :, width - c : width + c + 1] = True
    mask[p, :rb, width - c : width + c + 1] = True
    mask[p, rb, width - cb : width] = True
    return mask


def dependency_mask(model: PixelCNN3D, shape, target, inputs: int = 1, structural: bool = False, seed: int = 0) -> np.ndarray:
    """Voxels of a (Z, Y, X) input whose value changes the logits at `target` (z, y, x).

    The union over `inputs` random continuous inputs of the non-zero entries of the gradient.
    structural=True uses linear activations and positive weights (exact connectivity).
    """
    gen = torch.Generator().manual_seed(seed)
    model = eval_copy(model, torch.float64)
    saved = None
    if structural:
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.rand(p.shape, generator=gen, dtype=p.dtype) + 0.5 if name.endswith("weight") else torch.zeros_like(p))
        model.set_structural(True)
    try:
        seen = np.zeros(shape, dtype=bool)
        for _ in range(inputs):
            x = torch.rand((1, model.config.n_classes, *shape), generator=gen, dtype=torch.float64, requires_grad=True)
            out = model(x)[0, :, target[0], target[1], target[2]]
            grad = torch.autograd.grad(out.sum() if structural else (out * torch.randn(out.shape, generator=gen, dtype=out.dtype)).sum(), x)[0]
            seen |= (grad[0].abs().sum(0) > 0).numpy()
        return seen
    finally:
        if structural:
            model.set_structural(False)
            model.load_state_dict(saved)


@functools.lru_cache(maxsize=32)
def structural_mask(config: ModelConfig) -> np.ndarray:
    """Measured dependency mask of `config`, in the layout of `analytic_mask(receptive_field(config))`."""
    rf = receptive_field(config)
    margin = 2
    p, rb, ra = rf.planes_back, rf.rows_back, rf.rows_ahead
    width = max(rf.cols, rf.cols_back)
    shape = (p + 1 + margin, rb + ra + 1 + 2 * margin, 2 * width + 1 + 2 * margin)
    target = (p + margin, rb + margin, width + margin)
    torch.manual_seed(0)
    full = dependency_mask(PixelCNN3D(config), shape, target, structural=True)
    if full[:margin].any() or full[:, :margin].any() or full[:, -margin:].any() or full[:, :, :margin].any() or full[:, :, -margin:].any():
        raise AssertionError("dependency set reaches the margin: receptive field larger than analytic")
    return full[margin:, margin:-margin, margin:-margin]

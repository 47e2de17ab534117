"""Row-wise log-probability convergence of generated 2D samples (seed 001, Sec. IVB, Fig. 11d).

For each row i of a (1, H, W) box, log p(row i | everything before) = sum over the row of the
exact per-voxel log-probabilities (map_core.sampling.likelihood.log_prob, same boundary as generation),
and for the context block R_i of L_c x W voxels the sum over rows i-L_c+1..i. Averaged over
samples, the row value rises from the boundary and saturates; the row where it stays within
noise of its plateau, divided by the receptive field's rows_back, is the convergence distance in
receptive fields (seed 001: 1-2). The same criterion on the occupation density of each row checks
the structure itself: a boundary far from the training data can give confident (high-probability)
but wrong first rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import PixelCNN3D
from map_core.model.receptive_field import receptive_field
from map_core.sampling.likelihood import log_prob


def per_row_log_prob(model: PixelCNN3D, grids, temperature: float = 1.0, boundary="empty") -> np.ndarray:
    """(B, H) log-probability (nats) of each row of (B, H, W) class grids, given all earlier voxels."""
    g = torch.as_tensor(np.asarray(grids), dtype=torch.int64)
    if g.dim() != 3:
        raise MapSuiteError(f"expected (B, H, W) grids, got shape {tuple(g.shape)}")
    _, per_voxel = log_prob(model, g[:, None], temperature=temperature, boundary=boundary, per_voxel=True)
    return per_voxel[:, 0].sum(-1).numpy()


def block_log_prob(rows: np.ndarray, context: int) -> np.ndarray:
    """(B, H) sums over the block R_i of the last `context` rows (fewer at the top) of (B, H) row values."""
    c = np.cumsum(rows, axis=1)
    shifted = np.concatenate([np.zeros((len(rows), context)), c], axis=1)[:, : rows.shape[1]]
    return c - shifted


@dataclass
class RowConvergence:
    """row_mean/row_sem, block_mean: (H,) nats; plateau: mean over rows >= plateau_start; converged_row:
    first row after which every row mean stays within tolerance of the plateau; density_*: the same for
    the fraction of occupied (class >= 1) sites per row, a structural check beside the log-probability;
    rows_back: L_c in rows."""

    row_mean: np.ndarray
    row_sem: np.ndarray
    block_mean: np.ndarray
    plateau: float
    plateau_start: int
    converged_row: int
    rows_back: int
    density_mean: np.ndarray
    density_converged_row: int

    @property
    def receptive_fields(self) -> float:
        """Log-probability convergence distance from the boundary in receptive fields (rows_back rows each)."""
        return self.converged_row / self.rows_back

    @property
    def density_receptive_fields(self) -> float:
        return self.density_converged_row / self.rows_back

    def as_dict(self) -> dict:
        return {
            "row_mean": self.row_mean.tolist(), "row_sem": self.row_sem.tolist(), "block_mean": self.block_mean.tolist(),
            "plateau": self.plateau, "plateau_start": self.plateau_start, "converged_row": self.converged_row,
            "rows_back": self.rows_back, "receptive_fields": self.receptive_fields,
            "density_mean": self.density_mean.tolist(), "density_converged_row": self.density_converged_row,
            "density_receptive_fields": self.density_receptive_fields,
        }


def converged_row(mean, sem, plateau_start: int, alpha: float = 0.01, rel_tol: float = 0.02) -> tuple:
    """(first row r after which every row mean stays within tolerance of the plateau, plateau).

    plateau: mean of rows >= plateau_start; tolerance of row r': z sqrt(sem[r']^2 + sem_plateau^2) +
    rel_tol |plateau|, with z two-sided at level alpha over all H rows together (Bonferroni), so that a
    converged profile of H noisy rows is called converged at row 0 with probability >= 1 - alpha.
    """
    mean, sem = np.asarray(mean), np.asarray(sem)
    z = NormalDist().inv_cdf(1.0 - alpha / (2 * len(mean)))
    tail = mean[plateau_start:]
    plateau = float(tail.mean())
    sem_plateau = float(np.sqrt((sem[plateau_start:] ** 2).sum()) / len(tail))
    ok = np.abs(mean - plateau) <= z * np.sqrt(sem ** 2 + sem_plateau ** 2) + rel_tol * abs(plateau)
    bad = np.flatnonzero(~ok)
    return (int(bad[-1] + 1) if len(bad) else 0), plateau


def row_convergence(model: PixelCNN3D, grids, temperature: float = 1.0, boundary="empty", plateau_start=None) -> RowConvergence:
    """Fig. 11d analysis of (B, H, W) generated grids; plateau from rows >= plateau_start (default H // 2)."""
    rows = per_row_log_prob(model, grids, temperature, boundary)
    height = rows.shape[1]
    rows_back = receptive_field(model.config).rows_back
    start = height // 2 if plateau_start is None else int(plateau_start)
    if not 0 < start < height:
        raise MapSuiteError(f"plateau_start must be inside the {height} rows")
    mean, sem = _mean_sem(rows)
    row, plateau = converged_row(mean, sem, start)
    density, density_sem = _mean_sem((np.asarray(grids) > 0).mean(-1))
    density_row, _ = converged_row(density, density_sem, start)
    return RowConvergence(mean, sem, block_log_prob(rows, rows_back).mean(0), plateau, start, row, rows_back,
                          density, density_row)


def _mean_sem(values: np.ndarray) -> tuple:
    """Mean and standard error over samples (axis 0) of (B, H) values."""
    n = len(values)
    return values.mean(0), (values.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(values.shape[1]))

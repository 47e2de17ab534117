"""Training data: voxelised frames, rotation augmentation, crops, and the train/test split.

Grids are (Z, Y, X) uint8 class arrays (see map_core.atoms.encoding). Crops are cubes of side
`crop` voxels taken inside the complete voxel layers of a frame (never across the periodic seam,
whose last layer may be partial). Classes that carry an orientation (the "water" encoding) are
turned with the grid (`rotation_matrix`, `class_permutations`).
"""

from __future__ import annotations

import numpy as np
import torch

from map_core.atoms.encoding import Encoding
from map_core.atoms.rotations import (  # noqa: F401 (the training API)
    ROTATION_SETS,
    all_rotations,
    apply_rotation,
    class_permutations,
    rotation_matrix,
    seed_rotations,
)
from map_core.atoms.voxels import check_voxel_budget, full_voxels
from map_core.errors import MapSuiteError


def voxelise(frames, coder: Encoding, path=None) -> list:
    """Encode every frame with `coder`; return the complete-layer part of each grid as (Z, Y, X) uint8 arrays."""
    grids, voxel = [], coder.voxel_nm
    check_voxel_budget(frames.box, voxel, path)  # before any grid is allocated (train, evaluate)
    for f, (pos, elem, box, mol) in enumerate(zip(frames.positions, frames.elements, frames.box, frames.molecule)):
        known = coder.whole_molecules and np.any(np.asarray(mol) >= 0)  # frames without molecule ids are grouped
        grid, report = coder.encode(pos, elem, box, periodic=True, molecule=mol if known else None)
        if report.collisions:
            raise MapSuiteError(f"frame {f}: {report.collisions} atoms share a voxel at {voxel:g} nm; use a smaller voxel", path)
        if report.dropped:
            raise MapSuiteError(f"frame {f}: {report.dropped} atoms are in no whole water molecule", path)
        nz, ny, nx = full_voxels(box, voxel)
        grids.append(np.ascontiguousarray(grid[:nz, :ny, :nx]))
    return grids


def split_frames(n_frames: int, test_fraction: float) -> tuple:
    """(train indices, test indices): the last `test_fraction` of the frames are held out (in time)."""
    if not 0.0 < test_fraction < 1.0:
        raise MapSuiteError(f"test fraction must be in (0, 1), got {test_fraction}")
    n_test = int(np.ceil(n_frames * test_fraction))
    if n_frames < 2 or n_test >= n_frames:
        raise MapSuiteError(f"need at least 2 frames for a train/test split, have {n_frames}")
    return list(range(n_frames - n_test)), list(range(n_frames - n_test, n_frames))


def check_crop(grids, crop: int, path=None) -> None:
    """Refuse crops larger than the smallest frame."""
    smallest = min(min(g.shape) for g in grids)
    if crop > smallest:
        raise MapSuiteError(f"box of {smallest} voxels per side is smaller than the crop of {crop} voxels", path)
    if crop < 2:
        raise MapSuiteError(f"crop must be at least 2 voxels, got {crop}")


def crop_specs(shapes, indices, crop: int, n: int, rng: np.random.Generator, n_rotations: int) -> np.ndarray:
    """(n, 5) int64 rows (frame, z, y, x, rotation index) of `n` random crops of side `crop` from the
    frames at `indices` with grid shapes `shapes`; the random draws are those of `sample_crops`."""
    out = np.empty((n, 5), dtype=np.int64)
    for b in range(n):
        f = indices[rng.integers(len(indices))]
        z, y, x = (rng.integers(s - crop + 1) for s in shapes[f])
        out[b] = (f, z, y, x, rng.integers(n_rotations))
    return out


def cut_crops(grids, specs, crop: int, rotations, perms=None):
    """(n, crop, crop, crop) crops at `specs` (see `crop_specs`) of numpy grids (uint8 numpy out) or
    of torch tensors on any device (uint8 tensor on that device out). perms: per rotation, the class
    map (`class_permutations`, numpy or a tensor on the grids' device) or None."""
    pieces = [apply_rotation(grids[f][z : z + crop, y : y + crop, x : x + crop], rotations[r]) for f, z, y, x, r in specs]
    if perms is not None:
        pieces = [perms[r][p.long() if isinstance(p, torch.Tensor) else p] for p, (*_, r) in zip(pieces, specs)]
    if isinstance(grids[0], np.ndarray):
        return np.stack(pieces) if pieces else np.zeros((0, crop, crop, crop), np.uint8)
    return torch.stack(pieces)


def sample_crops(grids, indices, crop: int, n: int, rng: np.random.Generator, rotations, perms=None) -> np.ndarray:
    """(n, crop, crop, crop) int64 crops from random frames among `indices`, randomly placed and rotated
    (classes mapped by `perms`, see `cut_crops`)."""
    specs = crop_specs([g.shape for g in grids], indices, crop, n, rng, len(rotations))
    return cut_crops(grids, specs, crop, rotations, perms).astype(np.int64)


def class_frequencies(grids, indices, n_classes: int) -> np.ndarray:
    """(n_classes,) fraction of voxels in each class over the frames at `indices`."""
    counts = sum(np.bincount(grids[i].ravel(), minlength=n_classes)[:n_classes] for i in indices)
    return counts / counts.sum()

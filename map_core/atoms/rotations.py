"""Rotations of voxel grids by the proper rotations of the cube, with the class maps that go with them.

Used by training (augmentation, seed 000: 90 and 180 degree rotations) and by motif-conditioned
generation (seed 000, Results 2: the box is turned between generative steps). Grids are (Z, Y, X)
arrays, vectors (x, y, z). Classes that carry an orientation (the "water" encoding) turn with the
grid (`class_permutations`); atom classes do not need to.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

from map_core.atoms.encoding import Encoding

# Rotations act on grid axes (0, 1, 2) = (z, y, x). About x: the (z, y) plane, about y: (z, x), about z: (y, x).
_PLANES = {"x": (0, 1), "y": (0, 2), "z": (1, 2)}


def seed_rotations() -> list:
    """Seed 000's augmentation: identity plus 90 and 180 degree rotations about each axis (7 in all).

    Each rotation is a tuple of (k, axes) steps for np.rot90.
    """
    rots = [()]
    for axis in "xyz":
        for k in (1, 2):
            rots.append(((k, _PLANES[axis]),))
    return rots


def all_rotations() -> list:
    """The 24 proper rotations of the cube, as tuples of np.rot90 steps."""
    probe = np.arange(24).reshape(2, 3, 4)
    found, rots = set(), []
    steps = [(k, plane) for plane in _PLANES.values() for k in (1, 2, 3)]
    for n in range(4):
        for combo in itertools.product(steps, repeat=n):
            key = apply_rotation(probe, combo).tobytes() + bytes(apply_rotation(probe, combo).shape)
            if key not in found:
                found.add(key)
                rots.append(tuple(combo))
    assert len(rots) == 24
    return rots


def apply_rotation(grid, rotation):
    """Rotate a (Z, Y, X) grid, numpy array or torch tensor (on any device), by a tuple of (k, axes)
    rot90 steps (np.rot90 and torch.rot90 turn the same way)."""
    rot90 = np.rot90 if isinstance(grid, np.ndarray) else torch.rot90
    for k, axes in rotation:
        grid = rot90(grid, k, axes)
    return grid


def rotation_matrix(rotation) -> np.ndarray:
    """(3, 3) integer matrix turning (x, y, z) vectors the way `rotation` turns a (Z, Y, X) grid."""
    probe = np.zeros((3, 3, 3), dtype=np.int64)
    for axis in range(3):  # unit steps along x, y, z from the centre voxel (1, 1, 1)
        at = [1, 1, 1]
        at[2 - axis] = 2
        probe[tuple(at)] = axis + 1
    turned = apply_rotation(probe, rotation)
    m = np.zeros((3, 3), dtype=np.int64)
    for axis in range(3):
        z, y, x = (int(v[0]) - 1 for v in np.nonzero(np.abs(turned) == axis + 1))
        m[:, axis] = (x, y, z)
    return m


def class_permutations(coder: Encoding, rotations) -> list | None:
    """Per rotation, the (n_classes,) uint8 class map that goes with it; None when classes do not turn."""
    perms = [coder.class_permutation(rotation_matrix(r)) for r in rotations]
    return None if any(p is None for p in perms) else [np.asarray(p, dtype=np.uint8) for p in perms]


ROTATION_SETS = {"none": lambda: [()], "seed": seed_rotations, "full": all_rotations}

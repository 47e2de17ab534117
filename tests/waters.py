"""Test helpers: rigid water molecules placed in a box (geometry of q-TIP4P/F at equilibrium)."""

import numpy as np

from validation.md.boxes import random_rotation

R_OH = 0.09419  # nm, q-TIP4P/F r_eq (Habershon et al. 2009)
THETA = np.deg2rad(107.4)


def water(o, rng) -> np.ndarray:
    """(3, 3) positions O, H, H of a randomly oriented water with its O at `o`."""
    local = np.array([[0, 0, 0], [R_OH, 0, 0], [R_OH * np.cos(THETA), R_OH * np.sin(THETA), 0]])
    return o + local @ random_rotation(rng).T


def water_lattice(n_side: int, spacing: float, rng, jitter: float = 0.0):
    """Waters on a cubic lattice of O sites; returns (positions (3M, 3), elements, molecule, box (3,))."""
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    sites = (grid + 0.5) * spacing + rng.uniform(-jitter, jitter, size=grid.shape)
    pos = np.concatenate([water(o, rng) for o in sites])
    elements = np.tile(["O", "H", "H"], len(sites))
    molecule = np.repeat(np.arange(len(sites)), 3)
    return pos, elements, molecule, np.full(3, n_side * spacing)

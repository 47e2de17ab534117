"""Hydrogen bonds per water molecule, by a geometric criterion.

Criterion of A. Luzar and D. Chandler (Nature 379, 55 (1996); J. Chem. Phys. 98, 8160
(1993)): molecule D donates a hydrogen bond to molecule A through its hydrogen H when the
O_D...O_A distance is below 0.35 nm and the angle between O_D->H and O_D->O_A is below 30 deg.

Only complete molecules take part (as donors and acceptors). With ``periodic=False`` a
molecule is reported only if its oxygen is at least r_oo from every face (its partners could
otherwise lie outside the box); molecules nearer the faces still count as partners.
Lengths nm, angles radians.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from map_core.atoms.neighbors import minimum_image
from validation.observables.frame_tools import as_frames, distance_to_faces, frame, water_molecules, wrap

R_OO = 0.35  # nm
ANGLE = math.radians(30.0)


def compute_hbonds(data, periodic: bool = True, r_oo: float = R_OO, angle: float = ANGLE) -> np.ndarray:
    """(sum M, 2) int hydrogen bonds (donated, accepted) of every reported complete molecule."""
    frames = as_frames(data)
    out = []
    for f in range(len(frames)):
        pos, el, mol, box = frame(frames, f)
        w, bonds = hbond_pairs(pos, el, mol, box, periodic, r_oo, angle)
        if len(w) == 0:
            continue
        donated = np.bincount(bonds[:, 0], minlength=len(w))
        accepted = np.bincount(bonds[:, 1], minlength=len(w))
        counts = np.stack([donated, accepted], axis=1).astype(np.int64)
        if not periodic:
            counts = counts[distance_to_faces(pos[w[:, 0]], box) >= r_oo]
        out.append(counts)
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def hbond_pairs(positions, elements, molecule, box, periodic: bool = True, r_oo: float = R_OO,
                angle: float = ANGLE) -> tuple[np.ndarray, np.ndarray]:
    """Hydrogen bonds of one frame: ((M, 3) O, H, H atom indices of its complete molecules,
    (B, 2) int64 (donor, acceptor) rows into them), one row per donating H (so a donor bonding one
    acceptor through both its H appears twice). Every molecule, near a face or not, takes part."""
    w = water_molecules(elements, molecule)
    if len(w) == 0:
        return w, np.zeros((0, 2), dtype=np.int64)
    oxy = wrap(positions[w[:, 0]], box) if periodic else positions[w[:, 0]]
    oh = minimum_image(positions[w[:, 1:]] - positions[w[:, :1]], box if periodic else None)  # (M, 2, 3)
    tree = cKDTree(oxy, boxsize=box if periodic else None)
    pairs = tree.query_pairs(r_oo, output_type="ndarray")  # i < j
    bonds = [np.zeros((0, 2), dtype=np.int64)]
    for d_col, a_col in ((0, 1), (1, 0)):
        d, a = pairs[:, d_col], pairs[:, a_col]
        oo = minimum_image(oxy[a] - oxy[d], box if periodic else None)
        oo_len = np.linalg.norm(oo, axis=1)
        for h in range(2):
            v = oh[d, h]
            cos = np.einsum("nd,nd->n", v, oo) / (np.linalg.norm(v, axis=1) * oo_len)
            bonded = cos > math.cos(angle)
            bonds.append(np.stack([d[bonded], a[bonded]], axis=1).astype(np.int64))
    return w, np.concatenate(bonds)

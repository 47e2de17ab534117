"""Intramolecular geometry and dipoles of water molecules.

Per-molecule outputs cover the complete molecules (one O, two H with one id >= 0) of all
frames, concatenated frame after frame; :func:`validation.observables.frame_tools.molecule_counts` gives
how many belong to each frame. With ``periodic=True`` each H is taken at the periodic image
nearest its O (molecules may be wrapped per atom); generated boxes use ``periodic=False``.
"""

from __future__ import annotations

import numpy as np

from map_core.atoms.neighbors import minimum_image
from validation.md.water_model import PARAMS
from validation.observables.frame_tools import as_frames, frame, water_molecules

E_NM_TO_DEBYE = 48.0321  # 1 e nm in Debye


def _oh_vectors(data, periodic: bool) -> np.ndarray:
    """(sum M, 2, 3) O->H1 and O->H2 vectors, nm."""
    frames = as_frames(data)
    out = []
    for f in range(len(frames)):
        pos, el, mol, box = frame(frames, f)
        w = water_molecules(el, mol)
        out.append(minimum_image(pos[w[:, 1:]] - pos[w[:, :1]], box if periodic else None))
    return np.concatenate(out) if out else np.zeros((0, 2, 3))


def compute_oh_distances(data, periodic: bool = True) -> np.ndarray:
    """(sum M, 2) O-H bond lengths, nm, of every complete molecule."""
    return np.linalg.norm(_oh_vectors(data, periodic), axis=-1)


def compute_hoh_angles(data, periodic: bool = True) -> np.ndarray:
    """(sum M,) H-O-H angles, radians, of every complete molecule."""
    v = _oh_vectors(data, periodic)
    cos = np.einsum("md,md->m", v[:, 0], v[:, 1]) / np.prod(np.linalg.norm(v, axis=-1), axis=1)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def compute_dipoles(data, periodic: bool = True, q_h: float = PARAMS.q_h, gamma: float = PARAMS.gamma) -> np.ndarray:
    """(sum M, 3) molecular dipole vectors, Debye, with the q-TIP4P/F charges on H, H and M.

    mu = sum_i q_i (r_i - r_O) over H1, H2 and the M site r_M = gamma r_O + (1-gamma)/2 (r_H1 + r_H2),
    with q_M = -2 q_H (the molecule is neutral and O carries no charge); this reduces to
    mu = gamma q_H (d1 + d2) with d = r_H - r_O. Charges e; 1 e nm = 48.0321 D.
    """
    v = _oh_vectors(data, periodic)
    q_m = -2.0 * q_h
    r_m = 0.5 * (1.0 - gamma) * (v[:, 0] + v[:, 1])  # M relative to O
    mu = q_h * v[:, 0] + q_h * v[:, 1] + q_m * r_m
    return mu * E_NM_TO_DEBYE


def compute_dipole_magnitudes(data, periodic: bool = True) -> np.ndarray:
    """(sum M,) |dipole|, Debye, of every complete molecule (q-TIP4P/F charges)."""
    return np.linalg.norm(compute_dipoles(data, periodic), axis=-1)

"""The NVT box of a run: the mean box of the second half of NPT, and molecules moved rigidly into it.

Lengths nm. Positions are (copies, 4 n, 3) or (4 n, 3): O, H1, H2, M per molecule (M massless).
"""

from __future__ import annotations

import numpy as np

from map_core.errors import MapSuiteError
from validation.md.files import read_state_log
from validation.md.water_model import MASS_H, MASS_O, PARTICLES_PER_WATER


def mean_npt_box(log_path) -> np.ndarray:
    """(3,) mean box edges, nm, over the second half (in time) of the NPT rows of a state log."""
    log = read_state_log(log_path)
    rows = np.flatnonzero(log["stage"] == "npt")
    if len(rows) == 0:
        raise MapSuiteError("no NPT rows to average the volume over", log_path)
    rows = rows[len(rows) // 2:]
    return np.array([log[f"box_{a}_nm"][rows].mean() for a in "xyz"])


def rescale_molecules(positions, old_box, new_box, n_waters: int) -> np.ndarray:
    """Move molecule centres of mass from `old_box` to `new_box` (rigid molecules, affine COMs).

    positions: (copies, 4 n, 3) or (4 n, 3) nm; boxes (3,) nm. Every copy of a molecule gets the
    same shift (from the bead-averaged centre of mass), so ring polymers keep their shape.
    """
    pos = np.asarray(positions, dtype=np.float64)
    squeeze = pos.ndim == 2
    pos = pos[None] if squeeze else pos
    xyz = pos.reshape(pos.shape[0], n_waters, PARTICLES_PER_WATER, 3)
    w = np.array([MASS_O, MASS_H, MASS_H, 0.0])
    com = np.einsum("j,knjd->knd", w, xyz).mean(axis=0) / w.sum()
    shift = com * (np.asarray(new_box) / np.asarray(old_box) - 1.0)
    out = (xyz + shift[None, :, None, :]).reshape(pos.shape)
    return out[0] if squeeze else out

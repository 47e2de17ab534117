"""Mass density of water boxes, over the whole box or an inner sub-region."""

from __future__ import annotations

import numpy as np

from map_core.errors import MapSuiteError
from validation.observables.frame_tools import MASSES, as_frames, frame, wrap

AVOGADRO = 6.02214076e23


def compute_density(data, periodic: bool = True, margin: float = 0.0) -> np.ndarray:
    """(F,) mass density, g/cm3, of the atoms inside [margin, L - margin) on every axis.

    margin: nm cut from every face (0 = the whole box); use it to leave out the burned-in edge
    of a generated box. periodic: wrap atoms into the box first (for MD frames); a
    non-periodic box counts atoms where they are. Every atom counts with its own mass
    (O 15.99943, H 1.007947 dalton), whole molecule or not; other elements raise an error.
    """
    frames = as_frames(data)
    out = np.empty(len(frames))
    for f in range(len(frames)):
        pos, el, _, box = frame(frames, f)
        inner = box - 2.0 * margin
        if np.any(inner <= 0):
            raise MapSuiteError(f"margin {margin} nm leaves nothing of a {box.tolist()} nm box")
        unknown = set(np.unique(el)) - set(MASSES)
        if unknown:
            raise MapSuiteError(f"no mass for elements {sorted(unknown)}")
        if periodic:
            pos = wrap(pos, box)
        inside = np.all((pos >= margin) & (pos < box - margin), axis=1)
        mass = sum(MASSES[e] * np.count_nonzero(el[inside] == e) for e in MASSES)  # dalton
        out[f] = mass / AVOGADRO / (np.prod(inner) * 1e-21)
    return out

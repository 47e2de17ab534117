"""Shared plumbing of the observables: inputs, whole molecules, wrapping, sub-regions.

Every ``compute_*`` function of ``validation.observables`` accepts the same inputs (see
:func:`as_frames`): a ``map_core.atoms.frames.Frames``, an ``mdtraj.Trajectory`` of O, H, H waters,
or the arrays of one frame ``(positions (N, 3) nm, elements (N,), molecule (N,), box (3,) nm)``.

A *molecule* is one 'O' and two 'H' sharing a molecule id >= 0; atoms with id -1 (orphans)
and ids with any other composition are left out of per-molecule observables.
Periodic frames use the minimum-image convention; generated boxes are not periodic, and
functions that depend on periodicity take ``periodic: bool``.
"""

from __future__ import annotations

import numpy as np

from map_core.atoms.frames import Frames
from map_core.errors import MapSuiteError
from validation.md.trajectory import trajectory_to_frames

MASSES = {"O": 15.99943, "H": 1.007947}  # dalton


def as_frames(data) -> Frames:
    """Normalise the accepted inputs to a Frames."""
    if isinstance(data, Frames):
        return data
    if hasattr(data, "xyz") and hasattr(data, "topology"):  # mdtraj.Trajectory

        return trajectory_to_frames(data, wrap=False)
    if isinstance(data, (tuple, list)) and len(data) == 4:
        positions, elements, molecule, box = data
        return Frames.from_arrays([np.asarray(positions)], [np.asarray(elements)],
                                  [np.asarray(molecule)], np.asarray(box, dtype=float).reshape(1, 3))
    raise MapSuiteError("observables take Frames, an mdtraj Trajectory or (positions, elements, molecule, box)")


def frame(frames: Frames, f: int):
    """(positions (N, 3) float64 nm, elements (N,), molecule (N,), box (3,)) of frame `f`."""
    return (np.asarray(frames.positions[f], dtype=np.float64), np.asarray(frames.elements[f]),
            np.asarray(frames.molecule[f]), np.asarray(frames.box[f], dtype=np.float64))


def water_molecules(elements, molecule) -> np.ndarray:
    """(M, 3) atom indices (O, H, H) of the complete molecules of one frame, by molecule id."""
    elements = np.asarray(elements)
    molecule = np.asarray(molecule)
    keep = molecule >= 0
    if not np.any(keep):
        return np.zeros((0, 3), dtype=np.int64)
    idx = np.flatnonzero(keep)
    order = idx[np.lexsort((elements[idx] != "O", molecule[idx]))]  # by id, O first
    ids, start, count = np.unique(molecule[order], return_index=True, return_counts=True)
    good = count == 3
    start = start[good]
    triples = order[start[:, None] + np.arange(3)[None, :]] if len(start) else np.zeros((0, 3), np.int64)
    el = elements[triples] if len(triples) else np.zeros((0, 3), str)
    ok = (el[:, 0] == "O") & (el[:, 1] == "H") & (el[:, 2] == "H") if len(triples) else np.zeros(0, bool)
    return triples[ok].astype(np.int64)


def molecule_counts(data) -> np.ndarray:
    """(F,) complete molecules per frame (how per-molecule outputs split into frames)."""
    frames = as_frames(data)
    return np.array([len(water_molecules(frames.elements[f], frames.molecule[f])) for f in range(len(frames))])


def wrap(positions, box) -> np.ndarray:
    """Positions put into [0, L) on each axis."""
    x = np.mod(positions, box)
    return np.where(x >= box, 0.0, x)


def distance_to_faces(positions, box) -> np.ndarray:
    """(N,) distance, nm, of each position to the nearest face of the box [0, L)^3."""
    positions = np.asarray(positions, dtype=np.float64)
    return np.minimum(positions, np.asarray(box) - positions).min(axis=1)


def crop_frames(data, lower, upper) -> Frames:
    """Frames holding only the atoms inside the box region [lower, upper) (nm, (3,) each).

    Positions are shifted by -lower and the box becomes upper - lower; the result is to be
    analysed with ``periodic=False``. Molecules cut by the region lose atoms and so drop out of
    per-molecule observables. Use it to exclude the burned-in edge of a generated box.
    """
    frames = as_frames(data)
    lower = np.asarray(lower, dtype=np.float64).reshape(3)
    upper = np.asarray(upper, dtype=np.float64).reshape(3)
    if np.any(upper <= lower):
        raise MapSuiteError(f"empty region: lower {lower.tolist()} nm, upper {upper.tolist()} nm")
    pos, el, mol = [], [], []
    for f in range(len(frames)):
        p, e, m, _ = frame(frames, f)
        inside = np.all((p >= lower) & (p < upper), axis=1)
        pos.append(p[inside] - lower)
        el.append(e[inside])
        mol.append(m[inside])
    return Frames.from_arrays(pos, el, mol, np.tile(upper - lower, (len(frames), 1)), dict(frames.meta))

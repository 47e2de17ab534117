"""Read a run's trajectory back, as an mdtraj Trajectory or as map_core Frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from map_core.atoms.frames import Frames
from map_core.errors import MapSuiteError

WRAPPING = "per atom into [0, L)"  # what frames files record of positions_to_frames(..., wrap=True)


def load_trajectory(workdir, stage: str = "nvt"):
    """``mdtraj.Trajectory`` of one stage ('npt' or 'nvt') of a run in `workdir` (nm, ps)."""
    import mdtraj  # local: only trajectory analysis needs mdtraj (0.2 s to import)

    workdir = Path(workdir)
    dcd, pdb = workdir / f"traj_{stage}.dcd", workdir / "topology.pdb"
    for path in (dcd, pdb):
        if not path.exists():
            raise MapSuiteError(f"no {path.name} in the run directory", workdir)
    return mdtraj.load(str(dcd), top=str(pdb))


def trajectory_to_frames(traj, meta: dict | None = None, wrap: bool = True) -> Frames:
    """Frames (fixed composition, molecule ids 0..n-1 as O, H, H) from an mdtraj water trajectory.

    traj: atoms O, H1, H2 per molecule, orthorhombic unit cell. wrap: put every atom into
    [0, L) per axis (per-atom wrapping, so molecules may straddle a face).
    """
    if traj.unitcell_lengths is None:
        raise MapSuiteError("trajectory has no unit cell")
    elements = np.array([a.element.symbol for a in traj.topology.atoms])
    if len(elements) % 3 or not np.all(elements.reshape(-1, 3) == ["O", "H", "H"]):
        raise MapSuiteError("trajectory atoms are not O, H, H per molecule")
    return positions_to_frames(traj.xyz, traj.unitcell_lengths, meta, wrap)


def positions_to_frames(xyz, box, meta: dict | None = None, wrap: bool = True) -> Frames:
    """Frames from (F, 3 n, 3) nm water positions (O, H, H per molecule) and (F, 3) nm boxes.

    Molecule ids are 0..n-1 (O, H, H share one). wrap: every atom into [0, L) per axis.
    """
    box = np.asarray(box, dtype=np.float64).reshape(-1, 3)
    xyz = np.asarray(xyz, dtype=np.float32)
    if xyz.ndim != 3 or xyz.shape[1] % 3 or xyz.shape[0] != len(box):
        raise MapSuiteError(f"positions of shape {xyz.shape} do not fit {len(box)} boxes of water")
    elements = np.tile(np.array(["O", "H", "H"]), xyz.shape[1] // 3)
    if wrap:
        edge = box[:, None, :].astype(np.float32)
        xyz = np.mod(xyz, edge)
        xyz = np.where(xyz >= edge, np.float32(0), xyz)  # float32 rounding can land on L itself
    molecule = np.repeat(np.arange(xyz.shape[1] // 3, dtype=np.int32), 3)
    return Frames.from_arrays(xyz, elements, molecule, box, meta or {})

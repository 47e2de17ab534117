"""Water boxes in the files MD engines read: PDB, DCD, XTC, GRO, extended XYZ and LAMMPS dumps.

Written through mdtraj (PDB, DCD, XTC, GRO, LAMMPS dump) and ASE (extended XYZ, which i-PI and
ASE-based codes read). Each whole water is one HOH residue with atoms O, H1, H2 and two bonds;
an orphan atom is a residue of its own (``ORP``), which no force field accepts, so boxes meant for
MD are exported with ``repair=True`` (``map_core.atoms.molecules.repair``: orphans and molecules
that clash across the periodic seam removed).

A frames file whose frames share one atom list (an MD trajectory) becomes one multi-frame
file; boxes of different atom counts (generated boxes) become one file per box, ``STEM_K.EXT``.
DCD, XTC and LAMMPS dumps hold no topology: a PDB of the first frame is written beside them
(``STEM.top.pdb``, ``STEM_K.top.pdb``) to read them back with. Lengths nm (Å in the PDB,
extended XYZ and LAMMPS files, as those formats define them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from map_core.atoms.encoding import encoding_class
from map_core.atoms.frames import Frames
from map_core.atoms.molecules import repair, water_indices
from map_core.errors import MapSuiteError
from map_core.files import atomic_path
from validation.md.boxes import make_waters_whole

FORMATS = {"pdb": ".pdb", "dcd": ".dcd", "xtc": ".xtc", "gro": ".gro", "extxyz": ".xyz", "lammps": ".lammpstrj"}
NEEDS_TOPOLOGY = ("dcd", "xtc", "lammps")


def ordered_box(positions, elements, molecule, box) -> tuple:
    """One box as (positions (N, 3) nm, elements (N,), is_water (N,) bool): whole waters first,
    O, H, H each and made whole across the periodic seam, then the orphan atoms."""
    positions = np.asarray(positions, dtype=np.float64)
    elements = np.asarray(elements)
    waters = water_indices(elements, molecule)
    atoms = waters.reshape(-1)
    rest = np.setdiff1d(np.arange(len(elements)), atoms)
    pos = np.concatenate([make_waters_whole(positions[atoms], box), positions[rest]]) if len(atoms) else positions[rest]
    is_water = np.concatenate([np.ones(len(atoms), bool), np.zeros(len(rest), bool)])
    return pos, np.concatenate([elements[atoms], elements[rest]]), is_water


def topology(elements, is_water):
    """mdtraj Topology: HOH residues (O, H1, H2, bonded) for the waters, ORP residues for the rest."""
    import mdtraj  # local: only the export and trajectory readers need mdtraj (0.2 s to import)

    top = mdtraj.Topology()
    chain = top.add_chain()
    n_waters = int(is_water.sum()) // 3
    for _ in range(n_waters):
        res = top.add_residue("HOH", chain)
        o = top.add_atom("O", mdtraj.element.oxygen, res)
        for name in ("H1", "H2"):
            top.add_bond(o, top.add_atom(name, mdtraj.element.hydrogen, res))
    for el in elements[3 * n_waters:]:
        res = top.add_residue("ORP", chain)
        top.add_atom(str(el), mdtraj.element.get_by_symbol(str(el)), res)
    return top


def _trajectory(boxes: list, box_nm: np.ndarray):
    """mdtraj Trajectory of boxes [(positions, elements, is_water)] that share one atom list."""
    import mdtraj  # local: see topology()

    xyz = np.stack([b[0] for b in boxes]).astype(np.float32)
    return mdtraj.Trajectory(xyz, topology(boxes[0][1], boxes[0][2]), unitcell_lengths=np.asarray(box_nm, np.float32),
                             unitcell_angles=np.full((len(boxes), 3), 90.0, np.float32))


def _write(traj, fmt: str, path: Path) -> list:
    written = []
    if fmt in NEEDS_TOPOLOGY:
        top = path.with_suffix(".top.pdb")
        with atomic_path(top) as tmp:
            traj[0].save_pdb(str(tmp))
        written.append(top)
    with atomic_path(path) as tmp:
        if fmt == "extxyz":
            from ase import Atoms  # local: only extended XYZ needs ASE
            from ase.io import write

            symbols = [a.element.symbol for a in traj.topology.atoms]
            images = [Atoms(symbols, positions=10.0 * traj.xyz[i], cell=10.0 * traj.unitcell_lengths[i], pbc=True)
                      for i in range(traj.n_frames)]
            write(str(tmp), images, format="extxyz")
        else:
            traj.save(str(tmp))  # mdtraj picks the writer from the suffix, which atomic_path keeps
    return written + [path]


def export_frames(frames: Frames, fmt: str, out, repair_boxes: bool = False) -> list:
    """Write `frames` in format `fmt` (a key of FORMATS) to `out`; return the paths written.

    repair_boxes: make each box periodic and MD-ready first (orphans and seam clashes removed).
    """
    if fmt not in FORMATS:
        raise MapSuiteError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    out = Path(out)
    if out.suffix != FORMATS[fmt]:
        raise MapSuiteError(f"a {fmt} file must end in {FORMATS[fmt]}", out)
    if len(frames) == 0:
        raise MapSuiteError("no frames to export")
    voxel = frames.meta.get("voxel_nm") if frames.meta.get("method") == "map" else None
    encoding = encoding_class(frames.meta.get("encoding"))  # None: frames no encoding wrote (MD)
    whole = encoding is not None and encoding.whole_molecules  # decoded whole molecules: keep them as they are
    boxes = []
    for f in range(len(frames)):
        pos, el, mol, box = frames.positions[f], frames.elements[f], frames.molecule[f], frames.box[f]
        if repair_boxes:
            pos, el, mol, _ = repair(pos, el, box, voxel=voxel, molecule=mol if whole else None)
        boxes.append(ordered_box(pos, el, mol, box))
    if not any(len(b[1]) for b in boxes):
        raise MapSuiteError("every box is empty: nothing to export")
    shared = all(np.array_equal(b[1], boxes[0][1]) and np.array_equal(b[2], boxes[0][2]) for b in boxes)
    if shared:
        return _write(_trajectory(boxes, frames.box), fmt, out)
    written = []
    for f, b in enumerate(boxes):
        written += _write(_trajectory([b], frames.box[f : f + 1]), fmt, out.with_name(f"{out.stem}_{f:03d}{out.suffix}"))
    return written

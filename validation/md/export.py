"""Water boxes in the files MD engines read: PDB, DCD, XTC, GRO, extended XYZ and LAMMPS dumps.

Each whole water is one HOH residue with atoms O, H1, H2 and two bonds; an orphan atom is a
residue of its own (``ORP``), which no force field accepts, so boxes meant for MD are exported
with ``repair=True`` (``map_core.atoms.molecules.repair``: orphans and molecules that clash across
the periodic seam or inside the box removed; the counts come back per box). The repair leaves a
box thinner than the liquid (its density is printed); ``relax_ps`` (``--relax PS``, which implies
the repair) then relaxes each repaired box with OpenMM (``validation.md.relax``: minimisation, PS
ps of NPT of q-TIP4P/F at 300 K and 1 bar, molecules moved into the mean box of the second half of
NPT) and writes the relaxed positions and box edges instead.

One file holds every box where the format allows boxes of different atom counts (generated
boxes nearly always differ):

- PDB: one model (MODEL/ENDMDL) per box, each after a CRYST1 record of its own cell, no END
  record (ASE would read it as one more, empty, box). ASE reads every model of any size
  (``ase.io.read(path, index=":")``); mdtraj and OpenMM read a multi-model PDB only when every
  model has the same atoms.
- extended XYZ (ASE; i-PI): one frame per box, of any size.
- LAMMPS dump: one snapshot per box (``ITEM: NUMBER OF ATOMS`` each), columns
  ``id mol type element xu yu zu`` (type 1 O, 2 H; mol 0 for an orphan); ASE reads any
  (format ``lammps-dump-text``), mdtraj only with equal atom counts and a topology.

DCD, XTC and GRO hold one atom count per file (GROMACS, mdtraj and ASE read no GRO of varying
frames), so boxes of different atom counts become one file per box, ``STEM_K.EXT`` (K from 000).
DCD, XTC and LAMMPS dumps hold no topology: a PDB of the (first) box is written beside them
(``STEM.top.pdb``, ``STEM_K.top.pdb``); a LAMMPS dump of boxes of different atom counts gets none
(its columns name the elements and molecules). Every output is staged beside its target and
moved into place only when all of them are written (``map_core.files.staged_outputs``): a refusal
or failure leaves nothing.

What each writer needs is checked before anything is written or relaxed (`check_export_input`),
each defect one line naming the frames file: values a frames file may hold
(``map_core.atoms.frames.check_frames``), elements the format can write (a LAMMPS dump types O
and H only; PDB, GRO, DCD and XTC topologies the elements mdtraj knows; extended XYZ those ASE
knows), every molecule id one whole water (O, H, H: each becomes an HOH residue; atoms of no
molecule have id -1), and atoms a PDB's fixed columns can place. The output paths are checked
as outputs (``map_core.files.check_output_path``) before the work too.
Lengths nm (Å in the PDB, extended XYZ and LAMMPS files, as those formats define them).
"""

from __future__ import annotations

import functools
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from openmm.app import PDBFile

from map_core.atoms.frames import Frames, check_frames
from map_core.atoms.molecules import repair, water_indices
from map_core.errors import MapSuiteError
from map_core.files import check_output_path, staged_outputs
from validation.md.boxes import make_waters_whole
from validation.md.engine import density_g_cm3, seed_for
from validation.md.imports import SUFFIXES as READ_SUFFIXES
from validation.md.relax import check_relax_ps, relax_box

FORMATS = {"pdb": ".pdb", "dcd": ".dcd", "xtc": ".xtc", "gro": ".gro", "extxyz": ".xyz", "lammps": ".lammpstrj"}
# the suffixes each format accepts: those `map-suite validate --boxes` (validation.md.imports) reads back
SUFFIXES = {fmt: tuple(s for s, f in READ_SUFFIXES.items() if f == fmt) for fmt in FORMATS}
NEEDS_TOPOLOGY = ("dcd", "xtc", "lammps")
ONE_FILE_ANY_COUNTS = ("pdb", "extxyz", "lammps")  # formats holding boxes of different atom counts in one file
LAMMPS_TYPES = {"O": 1, "H": 2}
PDB_RANGE_A = (-999.999, 9999.999)  # what the 8.3f coordinate columns of a PDB ATOM record hold, Å


@dataclass
class BoxCounts:
    """What one exported box holds, before and after repair (equal without repair).

    molecules: whole waters; orphan_atoms: atoms in no whole water; density g/cm3 of the whole
    waters in the box's volume. seam_removed / clash_removed: molecules removed by the repair for
    clashing only across the periodic seam / clashing inside the box. With a relaxation (after the
    repair): relax_ps of NPT, minimised_kj_mol the potential energy per molecule after minimisation
    (kJ/mol), box_out_nm and box_relaxed_nm the edges (nm) before and after, density_relaxed the
    density (g/cm3) in the relaxed box; all None without.
    """

    atoms_in: int
    molecules_in: int
    orphan_atoms_in: int
    density_in: float
    atoms_out: int
    molecules_out: int
    orphan_atoms_out: int
    density_out: float
    seam_removed: int = 0
    clash_removed: int = 0
    repaired: bool = False
    relax_ps: float | None = None
    minimised_kj_mol: float | None = None
    box_out_nm: list | None = None
    box_relaxed_nm: list | None = None
    density_relaxed: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self, k: int) -> str:
        """One line for people."""
        if not self.repaired:
            return (f"box {k}: {self.atoms_out} atoms, {self.molecules_out} molecules, {self.orphan_atoms_out} orphan atoms, "
                    f"{self.density_out:.3f} g/cm3")
        removed = self.molecules_in - self.molecules_out
        text = (f"box {k}: {self.molecules_in} -> {self.molecules_out} molecules ({removed} removed: {self.seam_removed} "
                f"clashing across the periodic seam, {self.clash_removed} clashing inside the box), "
                f"{self.orphan_atoms_in} orphan atoms removed, {self.density_in:.3f} -> {self.density_out:.3f} g/cm3")
        if self.relax_ps is None:
            return text
        edges = " x ".join
        return (f"{text}; relaxed ({self.relax_ps:g} ps NPT, 300 K, 1 bar; minimised {self.minimised_kj_mol:.1f} kJ/mol "
                f"per molecule): {self.density_out:.3f} -> {self.density_relaxed:.3f} g/cm3, box "
                f"{edges(f'{10 * e:.2f}' for e in self.box_out_nm)} -> {edges(f'{10 * e:.2f}' for e in self.box_relaxed_nm)} Å")


@dataclass
class Export:
    """The files written (in the order written) and each box's counts."""

    paths: list
    boxes: list


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


def _write_pdb(boxes: list, box_nm, path: Path, first: int = 0) -> None:
    """One model per box, each after the CRYST1 record of its cell; atom lines by OpenMM's writer."""
    with open(path, "w") as fh:
        fh.write("REMARK   1 CREATED WITH MAP-SUITE EXPORT: ONE MODEL PER BOX\n")
        for k, (b, edges) in enumerate(zip(boxes, box_nm)):
            a, b_, c = 10.0 * np.asarray(edges, dtype=np.float64)
            fh.write(f"CRYST1{a:9.3f}{b_:9.3f}{c:9.3f}{90.0:7.2f}{90.0:7.2f}{90.0:7.2f} P 1           1 \n")
            try:
                PDBFile.writeModel(topology(b[1], b[2]).to_openmm(), 10.0 * b[0], fh, modelIndex=k + 1)
            except ValueError as exc:  # coordinates beyond the fixed columns
                raise MapSuiteError(f"box {first + k} does not fit a PDB ({exc})") from None


def _write_lammps(boxes: list, box_nm, path: Path) -> None:
    """A LAMMPS dump (units real: Å), one snapshot per box, columns id mol type element xu yu zu."""
    with open(path, "w") as fh:
        for k, ((pos, elements, is_water), edges) in enumerate(zip(boxes, box_nm)):
            n_waters = int(is_water.sum()) // 3
            mol = np.concatenate([np.repeat(np.arange(1, n_waters + 1), 3), np.zeros(len(elements) - 3 * n_waters, int)])
            fh.write(f"ITEM: TIMESTEP\n{k}\nITEM: NUMBER OF ATOMS\n{len(elements)}\nITEM: BOX BOUNDS pp pp pp\n")
            fh.writelines(f"0.0 {10.0 * e:.6f}\n" for e in edges)
            fh.write("ITEM: ATOMS id mol type element xu yu zu\n")
            xyz = 10.0 * np.asarray(pos, dtype=np.float64)
            fh.writelines(f"{i + 1} {m} {LAMMPS_TYPES[str(el)]} {el} {x:.5f} {y:.5f} {z:.5f}\n"
                          for i, (m, el, (x, y, z)) in enumerate(zip(mol, elements, xyz)))


def _write_extxyz(boxes: list, box_nm, path: Path) -> None:
    from ase import Atoms  # local: only extended XYZ needs ASE
    from ase.io import write

    images = [Atoms([str(e) for e in b[1]], positions=10.0 * b[0], cell=10.0 * np.asarray(edges), pbc=True)
              for b, edges in zip(boxes, box_nm)]
    write(str(path), images, format="extxyz")


def _write_mdtraj(boxes: list, box_nm, fmt: str, path: Path) -> None:
    traj = _trajectory(boxes, box_nm)
    {"dcd": traj.save_dcd, "xtc": traj.save_xtc, "gro": traj.save_gro}[fmt](str(path))


def _same_atoms(boxes: list) -> bool:
    """Whether `boxes` [(positions, elements, is_water)] share one atom list (one topology)."""
    return all(np.array_equal(b[1], boxes[0][1]) and np.array_equal(b[2], boxes[0][2]) for b in boxes)


def _has_topology(fmt: str, boxes: list, indices) -> bool:
    """Whether the file of boxes `indices` gets a topology PDB (of its first box) beside it."""
    return fmt in NEEDS_TOPOLOGY and _same_atoms([boxes[k] for k in indices])


def _write(boxes: list, box_nm, fmt: str, path: Path, stage, first: int = 0) -> list:
    """Write `boxes` (one file) through `stage` (path -> temporary path); return the target paths."""
    written = []
    if _has_topology(fmt, boxes, range(len(boxes))):
        top = path.with_suffix(".top.pdb")
        _write_pdb(boxes[:1], box_nm[:1], stage(top), first)
        written.append(top)
    tmp = stage(path)
    if fmt == "pdb":
        _write_pdb(boxes, box_nm, tmp, first)
    elif fmt == "extxyz":
        _write_extxyz(boxes, box_nm, tmp)
    elif fmt == "lammps":
        _write_lammps(boxes, box_nm, tmp)
    else:
        _write_mdtraj(boxes, box_nm, fmt, tmp)
    return written + [path]


def _counts(atoms_in: int, molecules_in: int, molecules_out: int, atoms_out: int, volume: float, report=None) -> BoxCounts:
    return BoxCounts(
        atoms_in=atoms_in, molecules_in=molecules_in, orphan_atoms_in=atoms_in - 3 * molecules_in,
        density_in=density_g_cm3(molecules_in, volume), atoms_out=atoms_out, molecules_out=molecules_out,
        orphan_atoms_out=atoms_out - 3 * molecules_out, density_out=density_g_cm3(molecules_out, volume),
        seam_removed=report.seam_molecules_removed if report else 0,
        clash_removed=report.clash_molecules_removed if report else 0, repaired=report is not None)


@functools.cache
def _known_element(fmt: str, symbol: str) -> bool:
    """Whether the writer of `fmt` can write atoms of element `symbol`."""
    if fmt == "lammps":
        return symbol in LAMMPS_TYPES
    if fmt == "extxyz":
        from ase.data import atomic_numbers  # local: only extended XYZ needs ASE

        return symbol in atomic_numbers
    import mdtraj  # local: see topology()

    try:
        mdtraj.element.get_by_symbol(symbol)
    except KeyError:
        return False
    return True


def check_export_input(frames: Frames, fmt: str, source=None) -> None:
    """Refuse, in one MapSuiteError line naming `source` (the frames file), frames that the writer of
    `fmt` cannot write: values no frames file holds, an element the format cannot write, or a molecule
    id that is not one whole water (O, H, H), whatever --repair or --relax would do after."""
    check_frames(frames, source, allow_empty_frames=True)
    for k, (elements, molecule) in enumerate(zip(frames.elements, frames.molecule)):
        unknown = [e for e in np.unique(elements).tolist() if not _known_element(fmt, e)]
        if unknown:
            can = "O and H only" if fmt == "lammps" else "element symbols only"
            raise MapSuiteError(f"box {k} holds atoms of element {unknown[0]!r}: a {fmt} file takes {can}", source)
        try:
            water_indices(elements, molecule)
        except ValueError as exc:  # an incomplete water, or atoms of other elements under one id
            raise MapSuiteError(f"box {k}: {exc}: export writes each molecule id as one whole water, atoms of no "
                                "molecule have id -1", source) from None


def _check_pdb_columns(boxes: list, indices, source=None) -> None:
    """Refuse boxes (of `indices`) with an atom beyond what a PDB's fixed columns hold."""
    lo, hi = PDB_RANGE_A
    for k in indices:
        positions = 10.0 * np.asarray(boxes[k][0], dtype=np.float64)
        if len(positions) and not (positions.min() >= lo and positions.max() <= hi):
            raise MapSuiteError(f"box {k} does not fit a PDB: an atom at {positions.min():.4g} to {positions.max():.4g} Å, "
                                f"the columns hold {lo:.3f} to {hi:.3f} Å", source)


def prepare_boxes(frames: Frames, repair_boxes: bool = False) -> tuple:
    """([(positions, elements, is_water)] per box as written, [BoxCounts] per box).

    repair_boxes: make each box periodic and MD-ready first (orphans and seam clashes removed). The
    frames' molecule ids are kept where they have any (whole MD molecules stay whole across the
    seam); boxes without ids are grouped as decoded atoms (generated) or as continuous positions.
    """
    voxel = frames.meta.get("voxel_nm") if frames.meta.get("method") == "map" else None
    boxes, counts = [], []
    for f in range(len(frames)):
        pos, el, mol, box = frames.positions[f], frames.elements[f], frames.molecule[f], frames.box[f]
        volume, atoms_in = float(np.prod(box)), len(el)
        try:
            if repair_boxes:
                known = mol if np.any(mol >= 0) else None
                pos, el, mol, report = repair(pos, el, box, voxel=voxel, molecule=known)
                counts.append(_counts(atoms_in, report.molecules_in, report.molecules_out, len(el), volume, report))
            else:
                n = len(water_indices(el, mol))
                counts.append(_counts(atoms_in, n, n, atoms_in, volume))
            boxes.append(ordered_box(pos, el, mol, box))
        except ValueError as exc:  # a molecule id that is not one O and two H
            raise MapSuiteError(f"box {f}: {exc}") from None
    return boxes, counts


def box_paths(out: Path, n: int) -> list:
    """The file names of `n` boxes written one file per box: STEM_000.EXT, STEM_001.EXT, ..."""
    width = max(3, len(str(n - 1)))
    return [out.with_name(f"{out.stem}_{k:0{width}d}{out.suffix}") for k in range(n)]


def check_target(fmt: str, out) -> Path:
    """`out` as a Path if it suits format `fmt` and can be written (check_output_path); MapSuiteError otherwise."""
    if fmt not in FORMATS:
        raise MapSuiteError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    out = check_output_path(out, "file")
    if out.suffix.lower() not in SUFFIXES[fmt]:
        raise MapSuiteError(f"a {fmt} file must end in {' or '.join(SUFFIXES[fmt])}", out)
    return out


def relax_boxes(boxes: list, counts: list, edges: np.ndarray, ps: float, seed: int = 0, progress: bool = False) -> None:
    """Relax every repaired box of `boxes` (``validation.md.relax.relax_box``, `ps` ps of NPT; box k draws
    from the seed stream (seed, k)) in place: its positions, its row of `edges` (K, 3) nm and its counts."""
    for k, (pos, elements, is_water) in enumerate(boxes):
        if progress:
            print(f"export: relaxing box {k} ({k + 1} of {len(boxes)}; {len(pos) // 3} molecules, {ps:g} ps NPT)",
                  file=sys.stderr, flush=True)
        try:
            relaxed = relax_box(pos, edges[k], ps, seed=seed_for(seed, k))
        except MapSuiteError as exc:
            raise MapSuiteError(f"box {k} could not be relaxed: {exc}") from None
        boxes[k] = (relaxed.positions, elements, is_water)
        counts[k].relax_ps, counts[k].minimised_kj_mol = relaxed.ps, relaxed.minimised_kj_mol
        counts[k].box_out_nm, counts[k].box_relaxed_nm = edges[k].tolist(), relaxed.box.tolist()
        counts[k].density_relaxed = relaxed.density_after
        edges[k] = relaxed.box


def export_frames(frames: Frames, fmt: str, out, repair_boxes: bool = False, relax_ps: float | None = None,
                  seed: int = 0, progress: bool = False, source=None) -> Export:
    """Write `frames` in format `fmt` (a key of FORMATS) to `out` (or one file per box beside it,
    see the module docstring); return the paths written and each box's counts.

    repair_boxes: make each box periodic and MD-ready first (orphans and seam clashes removed).
    relax_ps: then relax each repaired box with `relax_ps` ps of NPT (implies `repair_boxes`; box k's MD
    draws from the seed stream (seed, k)); the relaxed positions and box edges are written.
    progress: one line on stderr per box relaxed. source: the frames file, named by refusals of its content.
    Everything is checked before any box is relaxed or written (see the module docstring). All files or
    none: outputs are staged beside their targets and moved into place at the end.
    """
    out = check_target(fmt, out)
    if relax_ps is not None:
        relax_ps, repair_boxes = check_relax_ps(relax_ps), True
    if len(frames) == 0:
        raise MapSuiteError("no frames to export", source)
    check_export_input(frames, fmt, source)
    boxes, counts = prepare_boxes(frames, repair_boxes)
    if not any(len(b[1]) for b in boxes):
        raise MapSuiteError("every box is empty: nothing to export", source)
    empty = [k for k, b in enumerate(boxes) if len(b[1]) == 0]
    if relax_ps is not None and empty:
        raise MapSuiteError(f"box {empty[0]} has no molecules after repair: nothing to relax", source)
    if _same_atoms(boxes) or fmt in ONE_FILE_ANY_COUNTS:
        parts = [(out, list(range(len(boxes))))]
    else:
        if empty:
            raise MapSuiteError(f"box {empty[0]} has no atoms{' after repair' if repair_boxes else ''}: a {fmt} file cannot "
                                f"hold it (pdb, extxyz and lammps can)", out)
        parts = [(p, [k]) for k, p in enumerate(box_paths(out, len(boxes)))]
    for path, _ in parts:  # every file, before the relaxation's minutes: a folder or a file in the way
        check_output_path(path, "file")
        if fmt in NEEDS_TOPOLOGY:
            check_output_path(path.with_suffix(".top.pdb"), "file")
    in_pdb = range(len(boxes)) if fmt == "pdb" else [idx[0] for _, idx in parts if _has_topology(fmt, boxes, idx)]
    _check_pdb_columns(boxes, in_pdb, source)
    edges = np.array(frames.box, dtype=np.float64)
    if relax_ps is not None:  # atom lists stay as they are: only positions and box edges change
        relax_boxes(boxes, counts, edges, relax_ps, seed, progress)
    written = []
    with staged_outputs(out.parent) as stage:  # moved onto their targets together, only if all were written
        for path, idx in parts:
            written += _write([boxes[k] for k in idx], edges[idx], fmt, path, stage, first=idx[0])
    return Export(paths=written, boxes=counts)

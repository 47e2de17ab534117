"""Water boxes from other programs, read into Frames: the inputs of `map-suite validate --boxes` (issue 14).

Formats (chosen by suffix, or `fmt`):

- ``frames``: this project's frames files (.npz), generated open boxes or periodic MD frames;
- ``pdb`` (mdtraj; where its models differ in atom count, this module's fixed-column reader), ``gro`` (mdtraj),
  ``dcd``, ``xtc`` (mdtraj, with a topology file `top`, e.g. the ``.top.pdb`` that `map-suite export`
  writes beside them);
- ``lammps`` dumps: with a topology `top` through mdtraj; without one through ASE (``lammps-dump-text``),
  the elements from the dump's ``element`` column or from its ``type`` column and a type map `types`
  (``--types 1=O,2=H``); molecules from a ``mol`` column;
- ``lammps-data`` (.data, .lmp): LAMMPS data files through ASE (``lammps-data``; Å, as the ``real``
  and ``metal`` units define them), elements from `types`, else ASE's guess from the Masses section,
  molecules from the ``full`` atom style's molecule ids;
- ``extxyz`` (ASE; Å in the file);
- ``npy``: voxel class grids (K, Z, Y, X) or (Z, Y, X), as the seed authors' code writes them:
  0.25 Å voxels and class order empty, H, O unless `classes` says otherwise; decoded at the voxel
  centres into open boxes (``meta["periodic"] = False``).

Water models with massless virtual sites (TIP4P/2005, TIP4P-Ew, OPC, TIP5P; issue 27) are read as
their O and H atoms: each atom of the PDB, GRO, topology and extxyz formats is O, H or a virtual
site, by the element the file states (PDB element column, extxyz species, a topology's element;
``VS``, ``EP`` and ``X`` or zero mass: a virtual site), else by its name (``WATER_OXYGEN_NAMES``,
``WATER_HYDROGEN_NAMES``, ``VIRTUAL_SITE_NAMES``: GROMACS OW HW1 HW2 MW, OpenMM, AMBER and CHARMM
names), else by the reader's guess from the name; a massless atom of unknown name counts as a
virtual site only in a water residue (``WATER_RESIDUES``). Virtual sites are dropped and counted
(``meta["virtual_sites_dropped"]``, one count per box, in all but the frames and npy formats); any
other atom (an ion, a site that names a massive element) refuses the file.

A multi-frame file gives one box per frame; `frames` N keeps N of them, evenly spaced over the file
(first and last included). A triclinic cell (any angle off 90 degrees by more than ``RIGHT_ANGLE_TOL``:
PDB CRYST1 angles, a GRO box line of 9 numbers, an extended XYZ Lattice, LAMMPS xy xz yz tilts) is
refused in one line naming its angles: the observables use rectangular periodic images. So is a
rectangular cell that is rotated or mirrored (an extended XYZ Lattice or GRO box whose vectors do not
point along +x, +y, +z) and a PDB or GRO box edge that is not positive (mdtraj would take its absolute value).

Element names of these formats are compared case-blind: a PDB element column is upper case by the
format ('NA' is sodium), so a lower-case 'o' there, or an extended XYZ species 'o' that ASE reads, is O.
Water's atoms have no two-letter ambiguity, and every atom must still be O, H or a virtual site. Frames
files, this project's own format, hold symbols case exact ('o' is refused).

Molecule ids come from residues holding one O and two H (once the virtual sites are dropped) or,
where a format has no residues, from grouping the atoms (``map_core.atoms.molecules.group_waters``,
with the limits of decoded atoms for class grids). Lengths nm. Anything unreadable, atoms other than
O, H and virtual sites, a missing box (periodic formats), or no atoms at all is refused in one
MapSuiteError line. Every format ends in the checks of a frames file's values
(``map_core.atoms.frames.check_frames``: finite positions near the box, box edges 0.001 to 1000 nm,
molecule ids that can be one water's, ...), so a NaN coordinate or a box of 1e30 nm in any format is
refused like one in a frames file.
"""

from __future__ import annotations

import numbers
import re
from pathlib import Path

import numpy as np

from map_core.atoms.frames import Frames, check_frames, load_frames
from map_core.atoms.frames_check import VIRTUAL_SITE_SYMBOLS, VOXEL_NM
from map_core.atoms.molecules import decoded_water_limits, group_waters
from map_core.atoms.voxels import decode
from map_core.errors import MapSuiteError

SUFFIXES = {".npz": "frames", ".pdb": "pdb", ".gro": "gro", ".dcd": "dcd", ".xtc": "xtc", ".lammpstrj": "lammps",
            ".dump": "lammps", ".xyz": "extxyz", ".extxyz": "extxyz", ".npy": "npy", ".data": "lammps-data",
            ".lmp": "lammps-data"}
FORMATS = tuple(sorted(set(SUFFIXES.values())))
NEEDS_TOPOLOGY = ("dcd", "xtc")
RIGHT_ANGLE_TOL = 0.01  # degrees: text formats round cell angles (GRO box vectors to 1e-5 nm)
SEED_CLASSES = ("empty", "H", "O")  # the seed authors' class order
SEED_VOXEL_NM = 0.025

# Water atom names (upper case) as the programs that write water boxes spell them (issue 27):
# OpenMM (app/data/pdbNames.xml: O alias OW, OH2; H1 alias HW1; H2 alias HW2; the sites of tip4pew.xml, tip4pfb.xml,
# opc.xml: M; of tip5p.xml: M1, M2; app.PDBFile writes their element as EP, mdtraj as VS), GROMACS (share/top/*.ff/
# tip4p.itp, tip4pew.itp: SOL with OW HW1 HW2 MW; tip5p.itp: LP1 LP2), AMBER (extra points EP, EPW; EP1, EP2),
# CHARMM (TIP3: OH2 H1 H2).
WATER_OXYGEN_NAMES = ("O", "OW", "OH2")  # and any name starting with OW (OW1, OW_tip4p, ...)
WATER_HYDROGEN_NAMES = ("H1", "H2", "HW", "HW1", "HW2")
# M, M1, M2 (OpenMM), MW, LP1, LP2 (GROMACS), EP, EPW, EP1, EP2 (AMBER), VS, VS1 (generic virtual sites);
# not any name starting with M: MG is magnesium
VIRTUAL_SITE_NAMES = re.compile(r"M[0-9]*|(?:MW|EP|LP|VS)[A-Z0-9_]*")
# element symbols that mean a massless site: mdtraj's virtual-site element (VS), OpenMM's PDB writer (EP), ASE's dummy (X)
VIRTUAL_SITE_ELEMENTS = VIRTUAL_SITE_SYMBOLS
# water residue names: OpenMM's pdbNames.xml (HOH H2O WAT SOL TIP3 TP3 TIP T4P SPC) and the 4- and 5-site models'
# (TIP4, T4E, TP4, OPC, TIP5, T5P, TP5), AMBER and CHARMM
WATER_RESIDUES = frozenset({"HOH", "H2O", "WAT", "SOL", "TIP", "TIP3", "TP3", "T3P", "SPC", "SPCE", "TIP4", "T4P", "T4E",
                            "TP4", "OPC", "OPC3", "TIP5", "T5P", "TP5"})
VIRTUAL_SITE = ""  # the kind of an atom that is dropped


def detect_format(path) -> str:
    fmt = SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise MapSuiteError(f"unknown box format {Path(path).suffix!r} (known: {', '.join(sorted(SUFFIXES))})", path)
    return fmt


def parse_types(text: str | None, path=None) -> dict | None:
    """LAMMPS type map '1=O,2=H[,3=M]' -> {1: 'O', 2: 'H', 3: 'M'}; a type may name O, H or a virtual site."""
    if text is None:
        return None
    types = {}
    for item in str(text).split(","):
        key, _, name = item.partition("=")
        name = name.strip()
        if not key.strip().isdigit() or int(key) < 1 or int(key) in types:
            raise MapSuiteError(f"--types {text!r}: each item is TYPE=ELEMENT with a distinct positive type number", path)
        if name.upper() not in ("O", "H") and not VIRTUAL_SITE_NAMES.fullmatch(name.upper()) \
                and name.upper() not in VIRTUAL_SITE_ELEMENTS:
            raise MapSuiteError(f"--types {text!r}: type {int(key)} is {name!r}; water's types are O, H or a virtual site "
                                "(M, MW, EP, LP, VS)", path)
        types[int(key)] = name
    return types


def read_boxes(path, fmt: str | None = None, top=None, voxel_nm: float | None = None, classes=SEED_CLASSES,
               types: dict | None = None, frames: int | None = None) -> Frames:
    """Frames of the boxes in `path` (see the module docstring); MapSuiteError naming the file on any problem.

    types: LAMMPS type -> element or virtual-site name (``parse_types``); frames: keep this many
    frames, evenly spaced (None: all)."""
    path = Path(path)
    if not path.is_file():
        raise MapSuiteError("no such boxes file", path)
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise MapSuiteError(f"unknown box format {fmt!r} (known: {', '.join(FORMATS)})", path)
    if fmt in NEEDS_TOPOLOGY and top is None:
        raise MapSuiteError(f"a {fmt} file holds no atom names: give its topology (a PDB) too", path)
    try:
        if fmt == "frames":
            boxes = load_frames(path, allow_empty_frames=True)
        elif fmt == "npy":
            boxes = _read_class_grids(path, SEED_VOXEL_NM if voxel_nm is None else voxel_nm, classes)
        elif fmt in ("extxyz", "lammps-data") or (fmt == "lammps" and top is None):
            boxes = _read_ase(path, fmt, types)
        elif fmt == "pdb" and len(set(_pdb_model_sizes(path))) > 1:  # mdtraj reads equal models only
            boxes = _read_pdb_models(path)
        else:
            boxes = _read_mdtraj(path, top)
    except MapSuiteError:
        raise
    except Exception as exc:  # noqa: BLE001 - any bytes: readers of foreign formats fail in many ways
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise MapSuiteError(f"not a readable {fmt} file ({exc.__class__.__name__}: {first})", path) from None
    _check(boxes, path)
    check_frames(boxes, path, allow_empty_frames=True)  # every format ends in the frames file's checks of values
    return boxes if frames is None else evenly(boxes, frames)


def evenly(boxes: Frames, n: int) -> Frames:
    """`n` of the frames, evenly spaced from the first to the last (all of them if there are no more)."""
    if n < 1:
        raise MapSuiteError(f"--frames must be a positive number of frames, not {n}")
    if n >= len(boxes):
        return boxes
    chosen = boxes.select(np.unique(np.round(np.linspace(0, len(boxes) - 1, n)).astype(int)))
    chosen.meta["frames_in_file"] = len(boxes)
    return chosen


def check_rectangular(angles, path) -> None:
    """Refuse a cell whose angles (degrees, any shape (..., 3)) are not all right angles (within RIGHT_ANGLE_TOL),
    naming the angles: a triclinic cell is never judged as if it were rectangular."""
    angles = np.asarray(angles, dtype=np.float64).reshape(-1, 3)
    finite = np.isfinite(angles).all(axis=1)
    bad = ~finite | np.any(np.abs(angles - 90.0) > RIGHT_ANGLE_TOL, axis=1)
    if np.any(bad):
        first = angles[np.flatnonzero(bad)[0]]
        shown = f"cell angles {first[0]:g}, {first[1]:g}, {first[2]:g} degrees"
        if not finite[np.flatnonzero(bad)[0]]:
            raise MapSuiteError(f"box with {shown}: not a cell (its lengths or angles are not finite numbers)", path)
        raise MapSuiteError(f"triclinic box ({shown}): only rectangular boxes are judged (the observables use "
                            f"rectangular periodic images; right angles are 90 +- {RIGHT_ANGLE_TOL:g} degrees)", path)


def check_aligned(cells, path) -> None:
    """Refuse rectangular cells ((..., 3, 3), rows a, b, c; any length unit) whose vectors do not point along +x,
    +y and +z: a rotated or mirrored cell (an extended XYZ Lattice or a GRO box may be either) would have the
    positions, which are in the lab frame, judged against the wrong box."""
    cells = np.asarray(cells, dtype=np.float64).reshape(-1, 3, 3)
    diagonal = np.diagonal(cells, axis1=1, axis2=2)  # (F, 3)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite cells are refused too
        off = np.abs(np.where(np.eye(3, dtype=bool), 0.0, cells))
        tol = np.sin(np.radians(RIGHT_ANGLE_TOL)) * np.linalg.norm(cells, axis=2)[:, :, None]  # as the right-angle tolerance
        bad = ~np.all(np.isfinite(cells), axis=(1, 2)) | np.any(diagonal <= 0, axis=1) | np.any(off > tol, axis=(1, 2))
    bad = np.flatnonzero(bad)
    if len(bad):
        rows = "; ".join(" ".join(f"{v:g}" for v in row) for row in cells[bad[0]])
        raise MapSuiteError(f"cell vectors ({rows}) do not point along +x, +y and +z: only boxes aligned with the "
                            "axes are judged", path)


def _check(frames: Frames, path) -> None:
    if len(frames) == 0 or frames.counts.sum() == 0:
        raise MapSuiteError("no atoms", path)
    elements = set(np.unique(np.concatenate([np.asarray(e) for e in frames.elements])))
    if not elements <= {"O", "H"}:
        raise MapSuiteError(f"atoms other than water's: {', '.join(sorted(elements - {'O', 'H'}))}", path)
    if not np.all(np.isfinite(frames.box)) or np.any(frames.box <= 0):
        raise MapSuiteError("boxes need finite, positive edge lengths", path)


def _frames(path, positions, elements, box, meta, molecule=None, limits=None) -> Frames:
    """Frames from per-box lists, grouping atoms into waters where no molecule ids are given; the values
    are checked first (check_frames), so that no grouping runs on a NaN position or a box of 1e30 nm."""
    given = [np.asarray(m, dtype=np.int32) for m in molecule] if molecule is not None else None
    frames = Frames.from_arrays(list(positions), list(elements), given, np.asarray(box, dtype=np.float64).reshape(-1, 3), meta)
    check_frames(frames, path, allow_empty_frames=True)
    if molecule is None:
        max_oh, angles = limits or (None, None)
        kw = {} if limits is None else {"max_oh": max_oh, "angle_range": angles}
        periodic = meta.get("periodic") is not False
        frames.molecule = [group_waters(pos, el, box=b if periodic else None, **kw)[0]  # the positions as read, not float32
                           for pos, el, b in zip(positions, frames.elements, frames.box)]
    return frames


def _read_mdtraj(path: Path, top) -> Frames:
    import mdtraj  # local: only foreign formats need mdtraj (0.2 s to import)

    _check_stated_cell(path)  # before mdtraj, which drops an impossible cell and takes the edges' absolute values
    traj = mdtraj.load(str(path), top=None if top is None else str(top))
    if traj.unitcell_lengths is None:
        raise MapSuiteError("no periodic box in the file (a generated open box: save it as a frames file)", path)
    check_rectangular(traj.unitcell_angles, path)
    check_aligned(traj.unitcell_vectors, path)
    atoms = list(traj.topology.atoms)
    # what mdtraj holds for each atom: read from a topology, or guessed from the name (GRO and element-less PDB)
    held = [None if a.element is None else ("VS" if not a.element.mass > 0 else a.element.symbol) for a in atoms]
    source = Path(path if top is None else top)
    if source.suffix.lower() == ".gro":  # no element column: mdtraj's elements are guesses from the names
        declared, guessed = [None] * len(atoms), held
    elif source.suffix.lower() in (".pdb", ".ent"):  # the element column itself, where it aligns with mdtraj's atoms
        column = _pdb_element_column(source)
        declared, guessed = (column, held) if len(column) == len(atoms) else ([None] * len(atoms), held)
    else:  # a topology that states elements (and masses) itself
        declared, guessed = held, [None] * len(atoms)
    residues = [a.residue for a in atoms]
    kinds = _water_kinds([a.name for a in atoms], declared, guessed, [r.name for r in residues], path)
    keep = kinds != VIRTUAL_SITE
    elements = kinds[keep]
    residue = np.array([r.index for r in residues], dtype=np.int64)[keep]
    molecule = _residue_waters(residue, elements)
    dropped = int(np.count_nonzero(~keep))
    meta = {"source": f"{path.name} (mdtraj)", "periodic": True, "virtual_sites_dropped": [dropped] * traj.n_frames}
    return _frames(path, list(traj.xyz[:, keep].astype(np.float64)), [elements] * traj.n_frames,
                   traj.unitcell_lengths.astype(np.float64), meta, None if molecule is None else [molecule] * traj.n_frames)


def _check_stated_cell(path: Path) -> None:
    """Refuse a PDB (CRYST1 a b c alpha beta gamma) or GRO (each box line's first three numbers) file that states
    a box edge that is not a positive number, or (PDB) a cell angle off 90 degrees: mdtraj reads the edges'
    absolute values (a box of -1 nm would be judged as one of 1 nm) and drops a cell that cannot exist
    (angles 1, 90, 90 degrees) as if there were none."""
    suffix = path.suffix.lower()
    if suffix not in (".pdb", ".ent", ".gro"):
        return
    with open(path, "rb") as fh:
        lines = fh.read().decode("latin-1").splitlines()
    if suffix == ".gro":  # title, atom count, the atoms, the box line; frame after frame
        edges, k = [], 0
        while k + 1 < len(lines) and lines[k + 1].strip().isdigit():
            k += 2 + int(lines[k + 1])
            edges.append(lines[k].split()[:3] if k < len(lines) else [])
            k += 1
    else:
        cryst = [line for line in lines if line.startswith("CRYST1")]
        edges = [[line[6:15], line[15:24], line[24:33]] for line in cryst]
        for line in cryst:
            if line[33:54].strip():  # blank angles: a writer that omits them means a rectangular box
                check_rectangular([float(line[33:40]), float(line[40:47]), float(line[47:54])], path)
    for edge in edges:
        try:
            values = [float(x) for x in edge]
        except ValueError:
            values = []
        if len(values) != 3 or not all(np.isfinite(v) and v > 0 for v in values):
            raise MapSuiteError(f"box edges {' '.join(x.strip() for x in edge)!r} are not three positive numbers", path)


def _upper(text) -> str:
    return "" if text is None else str(text).strip().upper()


def _water_kinds(names, declared, guessed, residues, path) -> np.ndarray:
    """'O', 'H' or VIRTUAL_SITE for each atom (see the module docstring); refuses any other atom in one line.

    names: atom names; declared: the element the file states, or None; guessed: the element a reader
    guessed from the name ('VS' where it found none), or None; residues: residue names (or None)."""
    kinds, refused = [], set()
    for name, stated, guess, residue in zip(names, declared, guessed, residues):
        kind = _water_kind(_upper(name), _upper(stated), _upper(guess), _upper(residue) in WATER_RESIDUES)
        if kind not in ("O", "H", VIRTUAL_SITE):
            refused.add(kind)
        kinds.append(kind)
    if refused:
        raise MapSuiteError(f"atoms other than water's: {', '.join(sorted(refused))}", path)
    return np.array(kinds, dtype="<U2")


def _water_kind(name: str, stated: str, guess: str, in_water: bool) -> str:
    """The kind of one atom, or the label it is refused by (arguments upper case, '' for none)."""
    if stated:
        if stated in ("O", "H"):
            return stated
        return VIRTUAL_SITE if stated in VIRTUAL_SITE_ELEMENTS else stated.capitalize()
    if name in WATER_OXYGEN_NAMES or name.startswith("OW"):
        return "O"
    if name in WATER_HYDROGEN_NAMES:
        return "H"
    if VIRTUAL_SITE_NAMES.fullmatch(name):
        return VIRTUAL_SITE
    if guess in ("O", "H"):
        return guess
    if guess and guess not in VIRTUAL_SITE_ELEMENTS:
        return name or guess.capitalize()  # refused by its name: the element is only a guess (mdtraj reads NA as N)
    return VIRTUAL_SITE if in_water else (name or "an unnamed atom")  # massless: a site of a water, else unknown


def _pdb_element_column(path: Path) -> list:
    """The element column (77-78; None where blank) of the ATOM/HETATM records of a PDB file's first model."""
    column = []
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith((b"ATOM", b"HETATM")):
                column.append(line[76:78].decode("latin-1").strip() or None)
            elif line.startswith(b"ENDMDL"):
                break
    return column


def _pdb_model_sizes(path: Path) -> list:
    """Atoms in each MODEL of a PDB file (one entry for a file without MODEL records)."""
    sizes, n = [], 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith((b"ATOM", b"HETATM")):
                n += 1
            elif line.startswith(b"ENDMDL"):
                sizes.append(n)
                n = 0
    return sizes + [n] if n or not sizes else sizes


def _residue_waters(residues, elements) -> np.ndarray | None:
    """Molecule ids from residues: each run of atoms with one residue key that holds one O and two H is a
    water (runs, not numbers: residue numbers wrap at 9999); None if no residue is."""
    residues = np.asarray(residues)
    starts = np.flatnonzero(np.r_[True, residues[1:] != residues[:-1]]) if len(residues) else np.zeros(0, dtype=int)
    molecule = -np.ones(len(residues), dtype=np.int32)
    for k, (a, b) in enumerate(zip(starts, np.r_[starts[1:], len(residues)])):
        if sorted(elements[a:b]) == ["H", "H", "O"]:
            molecule[a:b] = k
    return molecule if np.any(molecule >= 0) else None


def _read_pdb_models(path: Path) -> Frames:
    """A PDB file whose models differ in atom count (one model per box, as `map-suite export` writes
    them; mdtraj reads equal models only), by the fixed columns of the format: atom name 13-16, residue
    name 18-21, residue 18-27, x y z 31-54 (Å), element 77-78; each model's box from the CRYST1 record
    before it."""
    models, atoms, cell = [], [], None
    with open(path, "rb") as fh:
        for raw in fh:
            line = raw.decode("latin-1")
            if line.startswith("CRYST1"):
                cell = np.array([float(line[6:15]), float(line[15:24]), float(line[24:33])]) / 10.0
                if line[33:54].strip():  # the angles (90 where blank: a writer that omits them means a rectangular box)
                    check_rectangular([float(line[33:40]), float(line[40:47]), float(line[47:54])], path)
            elif line.startswith(("ATOM", "HETATM")):
                atoms.append((line[12:16], line[17:21], line[17:27], line[76:78],
                              float(line[30:38]), float(line[38:46]), float(line[46:54])))
            elif line.startswith("ENDMDL") and atoms:
                models.append((atoms, cell))
                atoms = []
    if atoms:
        models.append((atoms, cell))
    positions, elements, boxes, molecules, dropped = [], [], [], [], []
    for atoms, box in models:
        if box is None or not np.all(box > 0):
            raise MapSuiteError("no periodic box in the file", path)
        names, residue_names, residues, stated, *xyz = zip(*atoms)
        kinds = _water_kinds(names, [s.strip() or None for s in stated], [None] * len(names), residue_names, path)
        keep = kinds != VIRTUAL_SITE
        positions.append(np.array(xyz, dtype=np.float64).T[keep] / 10.0)
        elements.append(kinds[keep])
        boxes.append(box)
        molecules.append(_residue_waters(np.array(residues)[keep], kinds[keep]))
        dropped.append(int(np.count_nonzero(~keep)))
    known = molecules if molecules and all(m is not None for m in molecules) else None
    meta = {"source": f"{path.name} (pdb models)", "periodic": True, "virtual_sites_dropped": dropped}
    return _frames(path, positions, elements, boxes, meta, known)


def _read_ase(path: Path, fmt: str, types: dict | None = None) -> Frames:
    """Extended XYZ, LAMMPS dumps and LAMMPS data files through ASE (Å in the files). Their species
    are the stated elements (X: a virtual site); a LAMMPS file's types are mapped by `types`; molecule
    ids come from a LAMMPS ``mol`` column (dumps) or ``mol-id`` (data files of the full atom style)."""
    from ase.io import read  # local: only these formats need ASE

    if fmt == "lammps-data":
        if types is None and not _has_masses(path):  # ASE would read type 1 as H, 2 as He, ...
            raise MapSuiteError("a LAMMPS data file without a Masses section needs --types (e.g. 1=O,2=H)", path)
        images = [read(str(path), format="lammps-data", units="real")]
    else:
        images = read(str(path), index=":", format="lammps-dump-text" if fmt == "lammps" else fmt)
    positions, elements, boxes, dropped, molecules = [], [], [], [], []
    for atoms in images:
        cell = np.asarray(atoms.cell.lengths(), dtype=np.float64) / 10.0
        if not np.all(atoms.pbc) or np.any(cell <= 0):
            raise MapSuiteError("no periodic box in the file", path)
        check_rectangular(atoms.cell.angles(), path)
        check_aligned(atoms.cell.array, path)
        symbols = _lammps_symbols(atoms, types, fmt, path) if fmt.startswith("lammps") else atoms.get_chemical_symbols()
        kinds = _water_kinds([None] * len(symbols), symbols, [None] * len(symbols), [None] * len(symbols), path)
        keep = kinds != VIRTUAL_SITE
        positions.append(np.asarray(atoms.positions, dtype=np.float64)[keep] / 10.0)
        elements.append(kinds[keep])
        boxes.append(cell)
        dropped.append(int(np.count_nonzero(~keep)))
        mol = atoms.arrays.get("mol", atoms.arrays.get("mol-id"))
        molecules.append(None if mol is None else _residue_waters(np.asarray(mol)[keep], kinds[keep]))
    known = molecules if molecules and all(m is not None for m in molecules) else None
    return _frames(path, positions, elements, boxes, {"source": f"{path.name} (ase {fmt})", "periodic": True,
                                                "virtual_sites_dropped": dropped}, known)


def _atomic_number(name: str) -> int:
    """O 8, H 1, a virtual site 0 (ASE's dummy X)."""
    return {"O": 8, "H": 1}.get(name.upper(), 0)


def _lammps_symbols(atoms, types: dict | None, fmt: str, path) -> list:
    """Elements of the atoms of a LAMMPS dump or data file: `types` applied to their types, else ASE's symbols
    (a dump's element column; a data file's guess from its Masses)."""
    if types is None:
        if fmt == "lammps" and "element" not in _dump_columns(path):
            raise MapSuiteError("a LAMMPS dump without an element column needs --types (e.g. 1=O,2=H) or --top", path)
        return atoms.get_chemical_symbols()
    unknown = sorted(set(np.unique(atoms.arrays["type"]).tolist()) - set(types))
    if unknown:
        raise MapSuiteError(f"LAMMPS types {', '.join(map(str, unknown))} are not in --types", path)
    return ["X" if _atomic_number(types[t]) == 0 else types[t].upper() for t in atoms.arrays["type"]]


def _has_masses(path: Path) -> bool:
    """Whether a LAMMPS data file has a Masses section (a line that reads Masses, comments aside)."""
    with open(path, "rb") as fh:
        return any(line.split(b"#")[0].strip() == b"Masses" for line in fh)


def _dump_columns(path: Path) -> list:
    """The column names of a LAMMPS dump's first ITEM: ATOMS line."""
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b"ITEM: ATOMS"):
                return line.decode("latin-1").split()[2:]
    return []


def _read_class_grids(path: Path, voxel: float, classes) -> Frames:
    lo, hi = VOXEL_NM  # a voxel out of range makes boxes out of range: refused before decoding
    if isinstance(voxel, bool) or not isinstance(voxel, numbers.Real) or not lo <= voxel <= hi:  # NaN included
        raise MapSuiteError(f"the voxel of class grids must be a number of nm from {lo:g} to {hi:g}, not {voxel!r}", path)
    grids = np.load(path, allow_pickle=False)
    if grids.ndim == 3:
        grids = grids[None]
    if grids.ndim != 4 or grids.size == 0 or not np.issubdtype(grids.dtype, np.integer):
        raise MapSuiteError(f"class grids must be integers of shape (K, Z, Y, X) or (Z, Y, X), not {grids.dtype} {grids.shape}",
                            path)
    names = list(classes)
    if sorted(names) != ["H", "O", "empty"]:
        raise MapSuiteError(f"classes must name empty, H and O once each, not {names}", path)
    if grids.min() < 0 or grids.max() >= len(names):
        raise MapSuiteError(f"class grids hold values outside 0..{len(names) - 1}", path)
    ours = np.array([{"empty": 0, "O": 1, "H": 2}[n] for n in names], dtype=np.uint8)[grids]  # to map_core's order
    positions, elements = zip(*(decode(g, voxel) for g in ours))
    z, y, x = grids.shape[1:]
    boxes = np.tile(np.array([x, y, z], dtype=np.float64) * voxel, (len(grids), 1))
    meta = {"source": f"{path.name} (class grids)", "periodic": False, "voxel_nm": voxel, "classes": names}
    return _frames(path, positions, elements, boxes, meta, limits=decoded_water_limits(voxel))

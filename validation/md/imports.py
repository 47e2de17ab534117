"""Water boxes from other programs, read into Frames: the inputs of `map-suite validate --boxes` (issue 14).

Formats (chosen by suffix, or `fmt`):

- ``frames``: this project's frames files (.npz), generated open boxes or periodic MD frames;
- ``pdb`` (mdtraj; ASE where its models differ in atom count), ``gro`` (mdtraj), ``dcd``, ``xtc``, ``lammps`` (mdtraj, with a topology file `top`,
  e.g. the ``.top.pdb`` that `map-suite export` writes beside them);
- ``extxyz`` (ASE; Å in the file);
- ``npy``: voxel class grids (K, Z, Y, X) or (Z, Y, X), as the seed authors' code writes them:
  0.25 Å voxels and class order empty, H, O unless `classes` says otherwise; decoded at the voxel
  centres into open boxes (``meta["periodic"] = False``).

Molecule ids come from residues holding one O and two H (mdtraj) or, where a format has no
residues, from grouping the atoms (``map_core.atoms.molecules.group_waters``, with the limits of
decoded atoms for class grids). Lengths nm. Anything unreadable, atoms other than O and H, a
missing box (periodic formats), or no atoms at all is refused in one MapSuiteError line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from map_core.atoms.frames import Frames, load_frames
from map_core.atoms.molecules import decoded_water_limits, group_waters
from map_core.atoms.voxels import decode
from map_core.errors import MapSuiteError

SUFFIXES = {".npz": "frames", ".pdb": "pdb", ".gro": "gro", ".dcd": "dcd", ".xtc": "xtc", ".lammpstrj": "lammps",
            ".dump": "lammps", ".xyz": "extxyz", ".extxyz": "extxyz", ".npy": "npy"}
FORMATS = tuple(sorted(set(SUFFIXES.values())))
NEEDS_TOPOLOGY = ("dcd", "xtc", "lammps")
SEED_CLASSES = ("empty", "H", "O")  # the seed authors' class order
SEED_VOXEL_NM = 0.025


def detect_format(path) -> str:
    fmt = SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise MapSuiteError(f"unknown box format {Path(path).suffix!r} (known: {', '.join(sorted(SUFFIXES))})", path)
    return fmt


def read_boxes(path, fmt: str | None = None, top=None, voxel_nm: float | None = None, classes=SEED_CLASSES) -> Frames:
    """Frames of the boxes in `path` (see the module docstring); MapSuiteError naming the file on any problem."""
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
            frames = load_frames(path, allow_empty_frames=True)
        elif fmt == "npy":
            frames = _read_class_grids(path, voxel_nm or SEED_VOXEL_NM, classes)
        elif fmt == "extxyz":
            frames = _read_ase(path, "extxyz")
        elif fmt == "pdb" and len(set(_pdb_model_sizes(path))) > 1:  # mdtraj reads equal models only
            frames = _read_ase(path, "proteindatabank")
        else:
            frames = _read_mdtraj(path, top)
    except MapSuiteError:
        raise
    except Exception as exc:  # noqa: BLE001 - any bytes: readers of foreign formats fail in many ways
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise MapSuiteError(f"not a readable {fmt} file ({exc.__class__.__name__}: {first})", path) from None
    _check(frames, path)
    return frames


def _check(frames: Frames, path) -> None:
    if len(frames) == 0 or frames.counts.sum() == 0:
        raise MapSuiteError("no atoms", path)
    elements = set(np.unique(np.concatenate([np.asarray(e) for e in frames.elements])))
    if not elements <= {"O", "H"}:
        raise MapSuiteError(f"atoms other than water's: {', '.join(sorted(elements - {'O', 'H'}))}", path)
    if not np.all(np.isfinite(frames.box)) or np.any(frames.box <= 0):
        raise MapSuiteError("boxes need finite, positive edge lengths", path)


def _frames(positions, elements, box, meta, molecule=None, limits=None) -> Frames:
    """Frames from per-box lists, grouping atoms into waters where no molecule ids are given."""
    mols = []
    for f, (pos, el) in enumerate(zip(positions, elements)):
        if molecule is not None:
            mols.append(np.asarray(molecule[f], dtype=np.int32))
        else:
            max_oh, angles = limits or (None, None)
            kw = {} if limits is None else {"max_oh": max_oh, "angle_range": angles}
            mol, _ = group_waters(pos, el, box=None if meta.get("periodic") is False else box[f], **kw)
            mols.append(mol)
    return Frames.from_arrays(list(positions), list(elements), mols, np.asarray(box, dtype=np.float64).reshape(-1, 3), meta)


def _read_mdtraj(path: Path, top) -> Frames:
    import mdtraj  # local: only foreign formats need mdtraj (0.2 s to import)

    traj = mdtraj.load(str(path), top=None if top is None else str(top))
    if traj.unitcell_lengths is None:
        raise MapSuiteError("no periodic box in the file (a generated open box: save it as a frames file)", path)
    elements = np.array([a.element.symbol if a.element is not None else a.name for a in traj.topology.atoms])
    molecule = -np.ones(traj.n_atoms, dtype=np.int32)
    for k, res in enumerate(traj.topology.residues):
        idx = [a.index for a in res.atoms]
        if sorted(elements[idx]) == ["H", "H", "O"]:
            molecule[idx] = k
    known = molecule if np.any(molecule >= 0) else None
    meta = {"source": f"{path.name} (mdtraj)", "periodic": True}
    return _frames(list(traj.xyz.astype(np.float64)), [elements] * traj.n_frames, traj.unitcell_lengths.astype(np.float64),
                   meta, None if known is None else [known] * traj.n_frames)


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


def _residue_waters(numbers, elements) -> np.ndarray | None:
    """Molecule ids from PDB residues: each run of atoms with one residue number that holds one O and
    two H is a water (runs, not numbers: residue numbers wrap at 9999); None if no residue is."""
    starts = np.flatnonzero(np.r_[True, np.diff(numbers) != 0])
    molecule = -np.ones(len(numbers), dtype=np.int32)
    for k, (a, b) in enumerate(zip(starts, np.r_[starts[1:], len(numbers)])):
        if sorted(elements[a:b]) == ["H", "H", "O"]:
            molecule[a:b] = k
    return molecule if np.any(molecule >= 0) else None


def _read_ase(path: Path, fmt: str) -> Frames:
    """Extended XYZ, or a PDB whose models differ in atom count (one model per box, as `map-suite
    export` writes them), through ASE (Å in the file)."""
    from ase.io import read  # local: only these formats need ASE

    images = read(str(path), index=":", format=fmt)
    positions, elements, boxes, molecules = [], [], [], []
    for atoms in images:
        cell = np.asarray(atoms.cell.lengths(), dtype=np.float64) / 10.0
        if not np.all(atoms.pbc) or np.any(cell <= 0):
            raise MapSuiteError("no periodic box in the file", path)
        positions.append(np.asarray(atoms.positions, dtype=np.float64) / 10.0)
        elements.append(np.array(atoms.get_chemical_symbols()))
        boxes.append(cell)
        if "residuenumbers" in atoms.arrays:
            molecules.append(_residue_waters(atoms.arrays["residuenumbers"], elements[-1]))
    known = molecules if molecules and all(m is not None for m in molecules) else None
    return _frames(positions, elements, boxes, {"source": f"{path.name} (ase)", "periodic": True}, known)


def _read_class_grids(path: Path, voxel: float, classes) -> Frames:
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
    return _frames(positions, elements, boxes, meta, limits=decoded_water_limits(voxel))

"""Well-formed box files of other programs with one hostile value, one clear error (issue 29, part 1).

The box formats of `map-suite validate --boxes` (validation.md.imports.read_boxes): PDB (one model
through mdtraj, models of different sizes through the fixed-column reader), GRO, extended XYZ,
LAMMPS dumps and data files, and .npy class grids. Each writer below writes a valid file of one
frame of real MD water (tests/data/water_md_small.npz) as its program does; a strategy puts one
hostile value into one field: a coordinate (NaN, inf, 1e30), a box edge (0, negative, NaN, inf,
tiny, huge), a cell angle or tilt (triclinic), an element other than water's, molecule ids,
the voxel of class grids. The reader must refuse with one MapSuiteError line naming the file
(triclinic cells: naming the angles in degrees), and `validate --boxes` must exit 2 with one
stderr line and leave nothing behind. Valid files, right angles within the tolerance included,
are still read.

`FUZZ` examples per kind (30 in CI; MAP_SUITE_FUZZ_EXAMPLES=2000 for the slow variant).
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import write as ase_write
from hostile import FUZZ, HOSTILE_FLOAT, NOT_A_POSITION
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_values_frames import assert_refused, run_refused

from map_core.atoms.frames import check_frames, load_frames
from map_core.atoms.voxels import encode
from map_core.errors import MapSuiteError
from validation.md.export import export_frames
from validation.md.imports import RIGHT_ANGLE_TOL, read_boxes

ROOT = Path(__file__).resolve().parents[1]
MD = load_frames(ROOT / "tests" / "data" / "water_md_small.npz").select([0])  # 216 waters, O H H, ids 0..215
ANGSTROM = 10.0  # Å per nm: PDB, extended XYZ and LAMMPS (real units) files hold Å, GRO nm
NON_WATER = st.sampled_from(["Na", "Cl", "C", "N", "S", "Mg", "K"])


@dataclass
class Box:
    """One frame to write: positions (N, 3) nm, elements, molecule ids (N,), box edges (3,) nm, and the
    off-diagonal cell terms (xy, xz, yz) nm; PDB only: the cell angles (degrees), and two models of
    different sizes (the fixed-column reader) instead of one (mdtraj)."""

    positions: np.ndarray = field(default_factory=lambda: MD.positions[0].astype(np.float64))
    elements: list = field(default_factory=lambda: MD.elements[0].tolist())
    molecule: np.ndarray = field(default_factory=lambda: MD.molecule[0].astype(np.int64))
    box: np.ndarray = field(default_factory=lambda: MD.box[0].copy())
    tilt: tuple = (0.0, 0.0, 0.0)
    angles: tuple = (90.0, 90.0, 90.0)
    two_models: bool = False


def _num(value: float, width: int, decimals: int) -> str:
    """`value` right-aligned in `width` columns: fixed point where it fits, else the shortest exponent form."""
    text = f"{value:{width}.{decimals}f}"
    for digits in (3, 2, 1, 0):
        if len(text) <= width:
            break
        text = f"{value:{width}.{digits}e}"
    return text


def write_pdb(b: Box, path: Path) -> Path:
    """As `map-suite export` and OpenMM write PDB: CRYST1, HETATM records of HOH residues (Å), element column."""
    lines = ["REMARK   1 WRITTEN BY test_fuzz_values_boxes\n"]
    models = [len(b.positions), len(b.positions) - 3] if b.two_models else [len(b.positions)]
    for m, n in enumerate(models, 1):
        edges = "".join(_num(x * ANGSTROM, 9, 3) for x in b.box)
        angles = "".join(_num(a, 7, 2) for a in b.angles)
        lines += [f"CRYST1{edges}{angles} P 1           1\n", f"MODEL     {m:4d}\n"]
        count = {}
        for i in range(n):
            el, mol = b.elements[i], int(b.molecule[i])
            k = count[mol] = count.get(mol, 0) + 1
            name = {"O": "O", "H": f"H{k - 1}"}.get(el, el.upper())
            resname = "HOH" if el in ("O", "H") else el.upper()
            x, y, z = (_num(v * ANGSTROM, 8, 3) for v in b.positions[i])
            lines.append(f"HETATM{i + 1:5d} {name:<4} {resname:>3} A{(mol + 1) % 10000:4d}    {x}{y}{z}  1.00  0.00"
                         f"          {el.upper():>2}\n")
        lines.append("ENDMDL\n")
    path.write_text("".join(lines))
    return path


def write_gro(b: Box, path: Path) -> Path:
    """As GROMACS writes .gro: nm, SOL residues of OW HW1 HW2, the box line of 3 or 9 numbers."""
    lines = ["water, t= 0.0\n", f"{len(b.positions):5d}\n"]
    count = {}
    for i, (el, mol) in enumerate(zip(b.elements, b.molecule)):
        k = count[int(mol)] = count.get(int(mol), 0) + 1
        name = {"O": "OW", "H": f"HW{k - 1}"}.get(el, el.upper())
        resname = "SOL" if el in ("O", "H") else el.upper()
        x, y, z = (_num(v, 8, 3) for v in b.positions[i])
        lines.append(f"{(int(mol) + 1) % 100000:5d}{resname:<5}{name:>5}{(i + 1) % 100000:5d}{x}{y}{z}\n")
    xy, xz, yz = b.tilt
    edges = list(b.box) + ([0.0, 0.0, xy, 0.0, xz, yz] if any(b.tilt) else [])  # v1(x) v2(y) v3(z) v1(y) v1(z) v2(x) v2(z) v3(x) v3(y)
    lines.append("".join(_num(v, 10, 5) for v in edges) + "\n")
    path.write_text("".join(lines))
    return path


def write_extxyz(b: Box, path: Path) -> Path:
    """As ASE and i-PI write extended XYZ: Lattice (Å, rows a, b, c), species and pos columns."""
    lx, ly, lz = (float(v) * ANGSTROM for v in b.box)
    xy, xz, yz = (float(v) * ANGSTROM for v in b.tilt)
    lattice = " ".join(repr(float(v)) for v in (lx, 0.0, 0.0, xy, ly, 0.0, xz, yz, lz))
    lines = [f"{len(b.positions)}\n", f'Lattice="{lattice}" Properties=species:S:1:pos:R:3 pbc="T T T"\n']
    lines += [f"{el} {' '.join(repr(float(v) * ANGSTROM) for v in p)}\n" for el, p in zip(b.elements, b.positions)]
    path.write_text("".join(lines))
    return path


def _type(el: str) -> int:
    return {"O": 1, "H": 2}.get(el, 3)


def write_dump(b: Box, path: Path) -> Path:
    """As LAMMPS writes `dump custom id mol type element xu yu zu` (real units, Å); a tilted cell as its
    bounding box and tilt factors (BOX BOUNDS xy xz yz)."""
    lx, ly, lz = (float(v) * ANGSTROM for v in b.box)
    xy, xz, yz = (float(v) * ANGSTROM for v in b.tilt)
    if any(b.tilt):
        lo_x, hi_x = min(0.0, xy, xz, xy + xz), max(0.0, xy, xz, xy + xz)
        bounds = ["ITEM: BOX BOUNDS xy xz yz pp pp pp\n", f"{lo_x!r} {lx + hi_x!r} {xy!r}\n",
                  f"{min(0.0, yz)!r} {ly + max(0.0, yz)!r} {xz!r}\n", f"0.0 {lz!r} {yz!r}\n"]
    else:
        bounds = ["ITEM: BOX BOUNDS pp pp pp\n", f"0.0 {lx!r}\n", f"0.0 {ly!r}\n", f"0.0 {lz!r}\n"]
    lines = ["ITEM: TIMESTEP\n", "0\n", "ITEM: NUMBER OF ATOMS\n", f"{len(b.positions)}\n", *bounds,
             "ITEM: ATOMS id mol type element xu yu zu\n"]
    lines += [f"{i + 1} {int(m)} {_type(el)} {el} {' '.join(repr(float(v) * ANGSTROM) for v in p)}\n"
              for i, (el, m, p) in enumerate(zip(b.elements, b.molecule, b.positions))]
    path.write_text("".join(lines))
    return path


MASSES = {1: 15.9994, 2: 1.008, 3: 22.98977}


def write_data(b: Box, path: Path, third: float = MASSES[3]) -> Path:
    """As LAMMPS `write_data` writes atom style full (real units, Å): Masses, then Atoms id mol type q x y z;
    a tilted cell with its "xy xz yz" line. An atom of another element is type 3 of mass `third`."""
    lx, ly, lz = (float(v) * ANGSTROM for v in b.box)
    xy, xz, yz = (float(v) * ANGSTROM for v in b.tilt)
    types = sorted({_type(el) for el in b.elements} | {1, 2})
    lines = ["LAMMPS data file written by test_fuzz_values_boxes\n\n", f"{len(b.positions)} atoms\n",
             f"{len(types)} atom types\n\n", f"0.0 {lx!r} xlo xhi\n", f"0.0 {ly!r} ylo yhi\n", f"0.0 {lz!r} zlo zhi\n"]
    if any(b.tilt):
        lines.append(f"{xy!r} {xz!r} {yz!r} xy xz yz\n")
    lines += ["\nMasses\n\n", *(f"{t} {MASSES[t] if t < 3 else third}\n" for t in types), "\nAtoms # full\n\n"]
    lines += [f"{i + 1} {int(m) + 1} {_type(el)} 0.0 {' '.join(repr(float(v) * ANGSTROM) for v in p)}\n"
              for i, (el, m, p) in enumerate(zip(b.elements, b.molecule, b.positions))]
    path.write_text("".join(lines))
    return path


WRITERS = {"pdb": (write_pdb, ".pdb"), "pdb-models": (lambda b, p: write_pdb(replace(b, two_models=True), p), ".pdb"),
           "gro": (write_gro, ".gro"), "extxyz": (write_extxyz, ".xyz"), "lammps": (write_dump, ".lammpstrj"),
           "lammps-data": (write_data, ".data")}
TILTED = ("gro", "extxyz", "lammps", "lammps-data")  # formats whose cell is vectors (tilts), not angles


def write(fmt: str, b: Box, folder: Path) -> Path:
    writer, suffix = WRITERS[fmt]
    with np.errstate(over="ignore", invalid="ignore"):  # 1.8e308 nm is inf Å: written as inf
        return writer(b, folder / f"boxes{suffix}")


def read(path: Path):
    return read_boxes(path, types={1: "O", 2: "H"} if path.suffix == ".lammpstrj" else None)


# --- hostile values, one field at a time ---------------------------------------------------------


@st.composite
def hostile_coordinate(draw):
    b = Box()
    value = draw(NOT_A_POSITION)
    b.positions[draw(st.integers(0, len(b.positions) - 1)), draw(st.integers(0, 2))] = value
    return f"coordinate {value!r}", b


@st.composite
def hostile_box_edge(draw):
    b = Box()
    value = draw(HOSTILE_FLOAT)
    b.box[draw(st.integers(0, 2))] = value
    return f"box edge {value!r} nm", b


def _off_right_angle(draw) -> float:
    return draw(st.one_of(st.floats(1.0, 179.0).filter(lambda a: abs(a - 90.0) > 2 * RIGHT_ANGLE_TOL),
                          st.sampled_from([90.0 + 2 * RIGHT_ANGLE_TOL, 60.0, 109.47, 120.0])))


@st.composite
def hostile_cell(draw, fmt: str):
    """A triclinic cell: an angle off 90 degrees (PDB) or a tilt past the tolerance (the others)."""
    b = Box()
    if fmt.startswith("pdb"):
        angles = [90.0, 90.0, 90.0]
        angles[draw(st.integers(0, 2))] = _off_right_angle(draw)
        b.angles = tuple(angles)
        return f"cell angles {angles}", b
    tilt = [0.0, 0.0, 0.0]
    # 0.01 nm tilts 0.3 degrees in the 1.85 nm box; the GRO format keeps 1e-5 nm
    tilt[draw(st.integers(0, 2))] = draw(st.one_of(st.floats(0.01, 0.9), st.floats(-0.9, -0.01)))
    b.tilt = tuple(tilt)
    return f"tilts {tilt} nm", b


@st.composite
def hostile_element(draw):
    b = Box()
    atom = draw(st.integers(0, len(b.positions) - 1))
    b.elements[atom] = draw(NON_WATER)
    b.molecule[atom] = 100_000 + atom  # an ion is a residue of its own
    return f"element {b.elements[atom]}", b


KINDS = {"coordinate": lambda fmt: hostile_coordinate(), "box edge": lambda fmt: hostile_box_edge(),
         "triclinic cell": hostile_cell, "element": lambda fmt: hostile_element()}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hostile_values_in_box_files_are_refused(fmt, kind, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"{fmt}_{kind.replace(' ', '_')}")

    @FUZZ
    @given(case=KINDS[kind](fmt))
    def run(case):
        what, b = case
        path = write(fmt, b, folder)
        message = assert_refused(read, path, what)
        if kind == "triclinic cell":
            assert "triclinic box (cell angles" in message and "degrees" in message, message

    run()


@pytest.mark.parametrize("fmt", ["lammps", "lammps-data"])
def test_hostile_molecule_ids_never_reach_the_frames(fmt, tmp_path_factory):
    """LAMMPS mol ids are taken as residues (runs of O, H, H are waters): whatever ids a file holds, the boxes
    read hold valid ids (check_frames passes) or the file is refused in one line."""
    folder = tmp_path_factory.mktemp(f"mol_{fmt}")

    @FUZZ
    @given(atom=st.integers(0, len(MD.positions[0]) - 1),
           value=st.one_of(st.sampled_from([2**31, 2**53 + 1, 2**62, -1, -(2**31)]), st.integers(-(2**40), 2**40)))
    def run(atom, value):
        b = Box()
        b.molecule[atom] = value
        path = write(fmt, b, folder)
        try:
            frames = read(path)
        except MapSuiteError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), str(exc)
            return
        check_frames(frames, path)
        assert frames.molecule[0].max() < len(frames.positions[0]) and frames.molecule[0].min() >= -1

    run()


@st.composite
def hostile_class_grids(draw):
    """(what, grids, voxel nm): .npy class grids with a hostile voxel, dtype, value or shape."""
    grids = _seed_grids()
    how = draw(st.sampled_from(["voxel", "voxel", "dtype", "value", "shape"]))
    if how == "voxel":
        voxel = draw(st.one_of(HOSTILE_FLOAT, st.sampled_from([2.0, 1e-4])))
        return f"voxel {voxel!r} nm", grids, voxel
    if how == "dtype":
        kind = draw(st.sampled_from([np.float32, np.float64, np.complex64, bool, "U2"]))
        return f"grids of {np.dtype(kind)}", grids.astype(kind), 0.05
    if how == "value":
        grids = grids.astype(np.int64)
        grids.flat[draw(st.integers(0, grids.size - 1))] = draw(st.sampled_from([3, 255, -1, 2**40, -(2**63)]))
        return "a class outside 0..2", grids, 0.05
    shape = draw(st.sampled_from([grids[0, 0], grids[None], grids[:, :0], grids.reshape(-1)]))
    return f"grids of shape {shape.shape}", shape, 0.05


def _seed_grids() -> np.ndarray:
    grid, _ = encode(MD.positions[0], MD.elements[0], MD.box[0], 0.05)
    return np.array([0, 2, 1], dtype=np.uint8)[grid][None]  # the seed's class order: empty, H, O


def test_hostile_class_grids_are_refused(tmp_path):
    @FUZZ
    @given(case=hostile_class_grids())
    def run(case):
        what, grids, voxel = case
        path = tmp_path / "grids.npy"
        np.save(path, grids)
        assert_refused(lambda p: read_boxes(p, voxel_nm=voxel), path, what)

    run()


# --- the command: validate --boxes ----------------------------------------------------------------


CLI_CASES = [("pdb", "NaN coordinate"), ("pdb-models", "triclinic"), ("gro", "triclinic"), ("gro", "box 1e30"),
             ("extxyz", "NaN coordinate"), ("extxyz", "triclinic"), ("lammps", "triclinic"), ("lammps-data", "NaN coordinate")]


@pytest.mark.parametrize("fmt,case", CLI_CASES)
def test_validate_refuses_hostile_box_files_in_one_line(fmt, case, tmp_path, capsys):
    b = Box()
    if case == "NaN coordinate":
        b.positions[5, 2] = np.nan
    elif case == "box 1e30":
        b.box[:] = 1e30
    elif fmt.startswith("pdb"):
        b.angles = (90.0, 90.0, 120.0)
    else:
        b.tilt = (0.5, 0.0, 0.0)
    path = write(fmt, b, tmp_path)
    out = tmp_path / "out"
    err = run_refused(capsys, ["validate", "--boxes", path, "--profile", "smoke", "--out", out, "--no-progress"]
                      + (["--types", "1=O,2=H"] if fmt == "lammps" else []), path, out)
    assert case != "triclinic" or "degrees" in err


# --- valid files stay valid -------------------------------------------------------------------------


def test_valid_box_files_of_every_format_are_read(tmp_path):
    """The writers above, `map-suite export` and ASE's writers, right angles within the tolerance, lower-case
    element columns (PDB columns are upper case by the format; readers compare them case-blind), unwrapped atoms."""
    n = len(MD.positions[0])
    for fmt in WRITERS:
        (tmp_path / fmt).mkdir()
        frames = read(write(fmt, Box(), tmp_path / fmt))
        assert frames.counts[0] == n and np.all(frames.molecule[0] >= 0), fmt  # 216 whole waters
        assert np.allclose(frames.box[0], MD.box[0], atol=1e-3) and np.allclose(frames.positions[0], MD.positions[0], atol=1e-3), fmt
    near = tmp_path / "near"
    near.mkdir()
    read(write("pdb", replace(Box(), angles=(90.0 + RIGHT_ANGLE_TOL / 2, 90.0, 90.0 - RIGHT_ANGLE_TOL / 2)), near))
    read(write("pdb-models", replace(Box(), angles=(90.0, 90.0 + RIGHT_ANGLE_TOL / 2, 90.0)), near))
    for fmt in TILTED:  # a tilt of 1e-5 nm, the GRO format's last digit: 3e-4 degrees
        read(write(fmt, replace(Box(), tilt=(1e-5, 0.0, 0.0)), near))
    unwrapped = Box()
    unwrapped.positions[:30] += 40 * unwrapped.box  # a trajectory that was not wrapped into the box
    for fmt in ("pdb", "gro", "extxyz"):
        read(write(fmt, unwrapped, near))
    lower = write_pdb(Box(), near / "lower.pdb")
    lower.write_text(lower.read_text().replace("           O\n", "           o\n"))
    assert read(lower).elements[0].tolist() == MD.elements[0].tolist()
    ours = tmp_path / "export"
    ours.mkdir()
    for fmt, name in (("pdb", "w.pdb"), ("gro", "w.gro"), ("extxyz", "w.xyz"), ("lammps", "w.lammpstrj")):
        export_frames(MD, fmt, ours / name)
        assert read(ours / name).counts.tolist() == [n], fmt
    atoms = Atoms(symbols=MD.elements[0].tolist(), positions=MD.positions[0] * 10, cell=MD.box[0] * 10, pbc=True)
    atoms.new_array("mol-id", MD.molecule[0].astype(int) + 1)
    ase_write(ours / "w.data", atoms, format="lammps-data", atom_style="full", specorder=["O", "H"], masses=True, units="real")
    assert read(ours / "w.data").counts.tolist() == [n]
    np.save(ours / "grids.npy", _seed_grids())
    assert read_boxes(ours / "grids.npy", voxel_nm=0.05).counts[0] > 0

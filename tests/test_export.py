"""`map-suite export`: every format read back with mdtraj or ASE, positions compared; OpenMM takes the PDB; boxes of
different atom counts in one file where the format allows; counts printed per box; all files or none."""

import re

import mdtraj
import numpy as np
import openmm
import pytest
from ase.io import read as ase_read
from openmm import app
from waters import water, water_lattice

from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.errors import MapSuiteError
from validation.cli.main import main
from validation.md.boxes import whole_waters
from validation.md.export import FORMATS, NEEDS_TOPOLOGY, SUFFIXES, export_frames, ordered_box
from validation.md.imports import read_boxes
from validation.md.water_model import build_system, with_m_sites

# readback precision, nm: PDB keeps 0.001 Å, GRO and XTC 0.001 nm, the rest float32 or better
TOLERANCE = {"pdb": 6e-5, "gro": 6e-4, "xtc": 6e-4, "dcd": 1e-5, "lammps": 1e-4, "extxyz": 1e-6}


def read_back(path, fmt):
    """(F, N, 3) positions nm and (F, 3) box edges nm of an exported file."""
    if fmt == "extxyz":
        images = ase_read(str(path), index=":", format="extxyz")
        return np.stack([im.positions / 10.0 for im in images]), np.stack([im.cell.lengths() / 10.0 for im in images])
    top = str(path.with_suffix(".top.pdb")) if fmt in NEEDS_TOPOLOGY else None
    traj = mdtraj.load(str(path), top=top) if top else mdtraj.load(str(path))
    return traj.xyz.astype(np.float64), traj.unitcell_lengths.astype(np.float64)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_md_frames_round_trip(tmp_path, md_frames, fmt):
    """A trajectory (frames sharing one atom list) becomes one multi-frame file with its boxes."""
    frames = md_frames.select([0, 1, 2])
    out = tmp_path / f"water{FORMATS[fmt]}"
    written = export_frames(frames, fmt, out).paths
    assert written[-1] == out and all(p.exists() for p in written)
    xyz, boxes = read_back(out, fmt)
    expected = [ordered_box(frames.positions[f], frames.elements[f], frames.molecule[f], frames.box[f])[0] for f in range(3)]
    assert xyz.shape == (3, len(expected[0]), 3)
    assert np.max(np.abs(xyz - np.stack(expected))) < TOLERANCE[fmt]
    assert np.allclose(boxes, frames.box, atol=TOLERANCE[fmt] + 1e-6)


def _boxes_with_an_orphan(tmp_path):
    """Two boxes of different sizes; the second holds an orphan H."""
    rng = np.random.default_rng(1)
    a = water_lattice(2, 0.31, rng, 0.02)
    b = water_lattice(3, 0.31, rng, 0.02)
    pos_b = np.concatenate([b[0], [[0.45, 0.46, 0.47]]])
    el_b = np.concatenate([b[1], ["H"]])
    mol_b = np.concatenate([b[2], [-1]])
    frames = Frames.from_arrays([a[0], pos_b], [a[1], el_b], [a[2], mol_b], np.stack([a[3], b[3]]),
                                {"method": "map", "voxel_nm": 0.04})
    path = tmp_path / "boxes.npz"
    save_frames(path, frames)
    return path, frames


def _expected(frames, k):
    return ordered_box(frames.positions[k], frames.elements[k], frames.molecule[k], frames.box[k])


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_pdb_of_boxes_of_different_sizes_is_the_out_file(tmp_path, capsys):
    """--out gen.pdb writes gen.pdb and nothing else: one model per box, each with its atoms and its own CRYST1."""
    path, frames = _boxes_with_an_orphan(tmp_path)
    out = tmp_path / "gen.pdb"
    assert main(["export", str(path), "--format", "pdb", "--out", str(out)]) == 0
    assert _files(tmp_path) == ["boxes.npz", "gen.pdb"]
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {out}"
    records = [line[:6] for line in out.read_text().splitlines()]
    assert [r for r in records if r in ("CRYST1", "MODEL ", "ENDMDL", "END   ")] == ["CRYST1", "MODEL ", "ENDMDL"] * 2
    models = ase_read(str(out), index=":")
    assert [len(m) for m in models] == [24, 82]
    for k, model in enumerate(models):
        pos, elements, _ = _expected(frames, k)
        assert np.max(np.abs(model.positions / 10.0 - pos)) < 0.001 and list(model.get_chemical_symbols()) == list(elements)
        assert np.allclose(model.cell.lengths() / 10.0, frames.box[k], atol=1e-4)
    assert set(models[0].get_array("residuenames")) == {"HOH"}
    assert list(models[1].get_array("residuenames")).count("ORP") == 1
    # ... and `validate --boxes gen.pdb` reads it back (mdtraj refuses models of different sizes)
    back = read_boxes(out)
    assert list(back.counts) == [24, 82] and np.allclose(back.box, frames.box, atol=1e-4)
    for k in range(2):
        _, _, molecule = _expected(frames, k)
        assert np.array_equal(back.molecule[k] >= 0, np.asarray(molecule, bool))  # waters whole, the orphan alone


@pytest.mark.parametrize("suffix", SUFFIXES["extxyz"])
def test_extxyz_takes_its_suffixes_and_boxes_of_any_size(tmp_path, suffix):
    assert set(SUFFIXES["extxyz"]) == {".xyz", ".extxyz"}
    path, frames = _boxes_with_an_orphan(tmp_path)
    out = tmp_path / f"gen{suffix}"
    assert main(["export", str(path), "--format", "extxyz", "--out", str(out)]) == 0
    assert _files(tmp_path) == sorted(["boxes.npz", out.name])
    images = ase_read(str(out), index=":", format="extxyz")
    assert [len(im) for im in images] == [len(p) for p in frames.positions]
    for k, im in enumerate(images):
        assert np.max(np.abs(im.positions / 10.0 - _expected(frames, k)[0])) < TOLERANCE["extxyz"]


@pytest.mark.parametrize("suffix", SUFFIXES["lammps"])
def test_lammps_dump_holds_boxes_of_any_size(tmp_path, suffix):
    """One dump, a snapshot per box with its own atom count; ASE reads the elements from its columns."""
    path, frames = _boxes_with_an_orphan(tmp_path)
    out = tmp_path / f"gen{suffix}"
    assert main(["export", str(path), "--format", "lammps", "--out", str(out)]) == 0
    assert _files(tmp_path) == sorted(["boxes.npz", out.name])
    images = ase_read(str(out), index=":", format="lammps-dump-text")
    for k, im in enumerate(images):
        pos, elements, _ = _expected(frames, k)
        assert list(im.get_chemical_symbols()) == list(elements)
        assert np.max(np.abs(im.positions / 10.0 - pos)) < TOLERANCE["lammps"]
        assert np.allclose(im.cell.lengths() / 10.0, frames.box[k])
    assert len(images) == 2


@pytest.mark.parametrize("fmt", ["dcd", "xtc", "gro"])
def test_formats_of_one_atom_count_write_one_file_per_box(tmp_path, fmt, capsys):
    """Boxes of different atom counts: STEM_000.EXT, STEM_001.EXT (and their topology PDBs), as printed."""
    path, frames = _boxes_with_an_orphan(tmp_path)
    out = tmp_path / f"gen{FORMATS[fmt]}"
    assert main(["export", str(path), "--format", fmt, "--out", str(out)]) == 0
    names = [f"gen_{k:03d}{out.suffix}" for k in range(2)]
    tops = [f"gen_{k:03d}.top.pdb" for k in range(2)] if fmt in NEEDS_TOPOLOGY else []
    assert _files(tmp_path) == sorted(["boxes.npz", *names, *tops])
    printed = capsys.readouterr().out.splitlines()
    assert printed[2] == f"wrote {len(names) + len(tops)} files:"
    assert sorted(printed[3:]) == [f"  {tmp_path / n}" for n in sorted(names + tops)]
    for k in range(2):
        xyz, _ = read_back(tmp_path / names[k], fmt)
        expected = _expected(frames, k)[0]
        assert xyz.shape == (1, len(frames.positions[k]), 3) and np.max(np.abs(xyz[0] - expected)) < TOLERANCE[fmt]
    top = tmp_path / (tops[1] if tops else names[1])
    assert {r.name for r in mdtraj.load(str(top)).topology.residues} == {"HOH", "ORP"}


def _boxes_to_repair(tmp_path):
    """Box 0: a lattice of 27 waters in a 1.2 nm box with a gap at its far faces, two waters in the gap whose
    O sit 0.185 nm from a lattice O through the periodic seam only, and one 0.15 nm from a lattice O inside
    the box; box 1: a lattice (0.93 nm box) plus an orphan H."""
    rng = np.random.default_rng(2)
    a = water_lattice(3, 0.31, rng, 0.0)
    extra = [water(np.array(o), rng) for o in ([1.17, 0.155, 0.155], [1.17, 0.775, 0.775], [0.615, 0.465, 0.465])]
    b = water_lattice(3, 0.31, rng, 0.0)
    positions = [np.concatenate([a[0], *extra]), np.concatenate([b[0], [[0.45, 0.46, 0.47]]])]
    elements = [np.concatenate([a[1], ["O", "H", "H"] * 3]), np.concatenate([b[1], ["H"]])]
    molecule = [np.concatenate([a[2], np.repeat([27, 28, 29], 3)]), np.concatenate([b[2], [-1]])]
    frames = Frames.from_arrays(positions, elements, molecule, np.stack([np.full(3, 1.2), b[3]]),
                                {"method": "map", "voxel_nm": 0.04})
    path = tmp_path / "boxes.npz"
    save_frames(path, frames)
    return path, frames


LINE = re.compile(r"box (\d+): (\d+) -> (\d+) molecules \((\d+) removed: (\d+) clashing across the periodic seam, (\d+) "
                  r"clashing inside the box\), (\d+) orphan atoms removed, ([\d.]+) -> ([\d.]+) g/cm3")
PLAIN = re.compile(r"box (\d+): (\d+) atoms, (\d+) molecules, (\d+) orphan atoms, ([\d.]+) g/cm3")


def _density(n_molecules, cell_nm):
    return n_molecules * 18.01528 / 6.02214076e23 / (np.prod(cell_nm) * 1e-21)


def test_printed_counts_match_the_frames(tmp_path, capsys):
    """Per box: molecules before and after repair, why they went, and densities, as the written file holds them."""
    path, frames = _boxes_to_repair(tmp_path)
    out = tmp_path / "gen.pdb"
    assert main(["export", str(path), "--format", "pdb", "--out", str(out)]) == 0
    plain = [PLAIN.fullmatch(line) for line in capsys.readouterr().out.splitlines()[:2]]
    models = ase_read(str(out), index=":")
    for k, (m, model) in enumerate(zip(plain, models)):
        names = list(model.get_array("residuenames"))
        assert int(m[1]) == k and int(m[2]) == len(model) == len(frames.positions[k])
        assert int(m[3]) == names.count("HOH") // 3 and int(m[4]) == names.count("ORP")
        assert float(m[5]) == pytest.approx(_density(names.count("HOH") // 3, model.cell.lengths() / 10.0), abs=6e-4)
    assert [int(m[3]) for m in plain] == [30, 27] and [int(m[4]) for m in plain] == [0, 1]

    repaired = tmp_path / "md.pdb"
    assert main(["export", str(path), "--format", "pdb", "--out", str(repaired), "--repair"]) == 0
    lines = [LINE.fullmatch(line) for line in capsys.readouterr().out.splitlines()[:2]]
    models = ase_read(str(repaired), index=":")
    for k, (m, model) in enumerate(zip(lines, models)):
        before, after, removed, seam, inside, orphans = (int(m[i]) for i in range(2, 8))
        assert int(m[1]) == k and before == int(plain[k][3]) and orphans == int(plain[k][4])
        assert after == len(model) // 3 and set(model.get_array("residuenames")) == {"HOH"}
        assert removed == before - after == seam + inside
        assert float(m[8]) == float(plain[k][5])
        assert float(m[9]) == pytest.approx(_density(after, model.cell.lengths() / 10.0), abs=6e-4)
    # why: the two seam clashes and the one inside box 0, the orphan of box 1
    assert [(int(m[5]), int(m[6]), int(m[7])) for m in lines] == [(2, 1, 0), (0, 0, 1)]


def test_repair_keeps_md_molecules_whole(tmp_path, md_frames, capsys):
    """MD frames are wrapped atom by atom: their own molecule ids keep the waters that straddle the seam."""
    path = tmp_path / "md.npz"
    save_frames(path, md_frames.select([0]))
    out = tmp_path / "md.xyz"
    assert main(["export", str(path), "--format", "extxyz", "--out", str(out), "--repair"]) == 0
    m = LINE.fullmatch(capsys.readouterr().out.splitlines()[0])
    assert (int(m[2]), int(m[3]), int(m[4]), int(m[7])) == (216, 216, 0, 0)
    (image,) = ase_read(str(out), index=":", format="extxyz")
    assert len(image) == 648


@pytest.mark.parametrize("fmt", ["pdb", "dcd"])
def test_a_failure_at_a_later_box_leaves_nothing(tmp_path, fmt, capsys):
    """Box 1 holds an atom no PDB can place (-500 nm: inside the frames file's bound of 1000 box lengths, past the PDB columns): the PDB fails at its second model; as DCD, box 0's
    files (gen_000.dcd, gen_000.top.pdb), written before box 1's topology PDB fails, go too."""
    _, frames = _boxes_with_an_orphan(tmp_path)
    frames.positions[1][-1] = [-500, 0.5, 0.5]
    path = tmp_path / "boxes.npz"
    save_frames(path, frames)
    assert main(["export", str(path), "--format", fmt, "--out", str(tmp_path / f"gen{FORMATS[fmt]}")]) == 2
    assert "box 1 does not fit a PDB" in capsys.readouterr().err
    assert _files(tmp_path) == ["boxes.npz"]


def test_repaired_pdb_goes_into_openmm(tmp_path):
    """--repair leaves whole waters only: OpenMM builds a periodic TIP3P system from the PDB as written
    (a PDB of one box: OpenMM reads the atoms of a multi-model PDB's first model only)."""
    _, frames = _boxes_with_an_orphan(tmp_path)
    path = tmp_path / "one.npz"
    save_frames(path, frames.select([1]))
    out = tmp_path / "md.pdb"
    assert main(["export", str(path), "--format", "pdb", "--out", str(out), "--repair"]) == 0
    pdb = app.PDBFile(str(out))
    assert {r.name for r in pdb.topology.residues()} == {"HOH"} and pdb.topology.getNumAtoms() == 81
    assert pdb.topology.getPeriodicBoxVectors() is not None
    system = app.ForceField("amber14/tip3pfb.xml").createSystem(pdb.topology, nonbondedMethod=app.PME,
                                                                 nonbondedCutoff=0.4, constraints=None)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(pdb.positions)
    energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)
    assert np.isfinite(energy)


def test_refusals_write_nothing(tmp_path):
    path, frames = _boxes_with_an_orphan(tmp_path)
    with pytest.raises(MapSuiteError, match="must end in .pdb"):
        export_frames(frames, "pdb", tmp_path / "x.gro")
    with pytest.raises(MapSuiteError, match=r"must end in \.xyz or \.extxyz"):
        export_frames(frames, "extxyz", tmp_path / "x.pdb")
    with pytest.raises(MapSuiteError, match="unknown format"):
        export_frames(frames, "mol2", tmp_path / "x.mol2")
    empty = Frames.from_arrays([np.zeros((0, 3))], [np.array([], "<U1")], [np.array([], int)], np.ones((1, 3)), {})
    with pytest.raises(MapSuiteError, match="empty"):
        export_frames(empty, "pdb", tmp_path / "x.pdb")
    one_empty = Frames.from_arrays([frames.positions[0], np.zeros((0, 3))], [frames.elements[0], np.array([], "<U1")],
                                   [frames.molecule[0], np.array([], int)], frames.box, {})
    with pytest.raises(MapSuiteError, match="box 1 has no atoms: a dcd file cannot hold it"):
        export_frames(one_empty, "dcd", tmp_path / "x.dcd")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a frames file")
    assert main(["export", str(bad), "--format", "pdb", "--out", str(tmp_path / "x.pdb")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "boxes.npz"]
    assert len(load_frames(path)) == 2


# --- --relax: minimisation and NPT of q-TIP4P/F in OpenMM after the repair (issue 26) -----------------------------

RELAXED = re.compile(LINE.pattern + r"; relaxed \(([\d.]+) ps NPT, 300 K, 1 bar; minimised (-?[\d.]+) kJ/mol per molecule\): "
                     r"([\d.]+) -> ([\d.]+) g/cm3, box ([\d.]+) x ([\d.]+) x ([\d.]+) -> ([\d.]+) x ([\d.]+) x ([\d.]+) Å")


def _training_cube(tmp_path, md_frames, frame: int = 3, edge: float = 1.4):
    """A cube of `edge` nm cut from a training MD frame like a generated box (the whole waters whose O lies in
    it, open edges): the repair removes the molecules that clash across its new periodic seam, leaving it thin
    (frame 3, 1.4 nm: 92 -> 81 molecules, 1.003 -> 0.883 g/cm3)."""
    pos, waters = whole_waters(md_frames, frame)
    waters = waters[np.all(pos[waters[:, 0]] < edge, axis=1)]
    frames = Frames.from_arrays([pos[waters.reshape(-1)]], [md_frames.elements[frame][waters.reshape(-1)]],
                                [np.repeat(np.arange(len(waters)), 3)], np.full((1, 3), edge),
                                {"method": "map", "voxel_nm": 0.05})
    path = tmp_path / "cube.npz"
    save_frames(path, frames)
    return path


def test_relax_brings_a_thin_repaired_box_towards_the_liquid_density(tmp_path, md_frames, capsys):
    """--relax 4 (implying --repair) runs OpenMM: the repaired cube (0.883 g/cm3) shrinks towards 1.0 g/cm3, and
    the PDB holds the relaxed box edges and positions, a liquid by q-TIP4P/F's energy.

    What 4 ps show, and what not: measured on this cube, 4 ps ended at 0.961-1.006 g/cm3 and 8 ps at
    0.971-1.010 over seeds and thread counts, but a 1.7 nm cube (0.919) ended at 0.954 after 4 ps with two
    threads, and generated boxes stay near their repaired density for the 2 ps the minimised (cold) box takes
    to warm (validation/md/relax.py). So the test asks for a rise of 0.04 g/cm3 (observed: 0.08-0.12) and no
    overshoot, not "within 3 % of 1.0"."""
    path = _training_cube(tmp_path, md_frames)
    out = tmp_path / "relaxed.pdb"
    assert main(["export", str(path), "--format", "pdb", "--out", str(out), "--relax", "4"]) == 0
    printed = capsys.readouterr().out.splitlines()
    m = RELAXED.fullmatch(printed[0])
    assert m, printed[0]
    assert printed[1] == f"wrote {out}" and _files(tmp_path) == ["cube.npz", "relaxed.pdb"]
    after, repaired, ps, energy, before, relaxed = int(m[3]), float(m[9]), float(m[10]), float(m[11]), float(m[12]), float(m[13])
    old_box, new_box = np.array([float(m[i]) for i in (14, 15, 16)]), np.array([float(m[i]) for i in (17, 18, 19)])
    assert ps == 4.0 and before == repaired < 0.89 and np.allclose(old_box, 14.0)
    assert repaired + 0.04 <= relaxed <= 1.05, relaxed
    assert -70.0 < energy < -40.0  # q-TIP4P/F minimised liquid: about -54 kJ/mol per molecule
    (model,) = ase_read(str(out), index=":")
    cell = model.cell.lengths()
    assert np.allclose(cell, new_box, atol=0.006) and np.all(cell < 0.99 * old_box)  # the relaxed box, Å
    assert len(model) == 3 * after and set(model.get_array("residuenames")) == {"HOH"}
    assert relaxed == pytest.approx(_density(after, cell / 10.0), abs=6e-4)
    oxygens = model.positions[model.numbers == 8]
    assert np.all((oxygens >= 0) & (oxygens < cell + 1e-3))  # molecules whole, each O wrapped into the box
    system = build_system(after, cell / 10.0, 0.42 * cell.min() / 10.0)
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(with_m_sites(model.positions / 10.0))
    per_molecule = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole) / after
    assert -50.0 < per_molecule < -30.0, per_molecule  # a liquid at 300 K in the exported cell, not a squeezed one


@pytest.mark.parametrize("bad", ["0", "-2", "nan", "inf", "0.0001", "1001", "1e9", "four"])
def test_bad_relax_lengths_are_refused_in_one_line(tmp_path, bad, capsys):
    """PS must be finite, at least one 0.5 fs step and at most MAX_RELAX_PS: refused when parsed, exit 2, one line
    naming --relax, nothing written; export_frames refuses the same before any work."""
    path, frames = _boxes_to_repair(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["export", str(path), "--format", "pdb", "--out", str(tmp_path / "x.pdb"), f"--relax={bad}"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(err.splitlines()) == 1 and "--relax" in err, err
    if bad != "four":
        with pytest.raises(MapSuiteError, match=r"^--relax must be a finite number of picoseconds in \[0.0005, 1000\]"):
            export_frames(frames, "pdb", tmp_path / "x.pdb", relax_ps=float(bad))
    assert _files(tmp_path) == ["boxes.npz"]

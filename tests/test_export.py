"""`map-suite export`: every format read back with mdtraj or ASE, positions compared; OpenMM takes the PDB."""

import mdtraj
import numpy as np
import openmm
import pytest
from ase.io import read as ase_read
from openmm import app
from waters import water_lattice

from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.errors import MapSuiteError
from validation.cli.main import main
from validation.md.export import FORMATS, NEEDS_TOPOLOGY, export_frames, ordered_box

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
    written = export_frames(frames, fmt, out)
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


@pytest.mark.parametrize("fmt", ["pdb", "extxyz", "xtc"])
def test_generated_boxes_become_one_file_each(tmp_path, fmt):
    path, frames = _boxes_with_an_orphan(tmp_path)
    out = tmp_path / f"gen{FORMATS[fmt]}"
    assert main(["export", str(path), "--format", fmt, "--out", str(out)]) == 0
    for k in range(2):
        xyz, _ = read_back(out.with_name(f"gen_{k:03d}{out.suffix}"), fmt)
        expected = ordered_box(frames.positions[k], frames.elements[k], frames.molecule[k], frames.box[k])[0]
        assert xyz.shape == (1, len(frames.positions[k]), 3) and np.max(np.abs(xyz[0] - expected)) < TOLERANCE[fmt]
    residues = {r.name for r in mdtraj.load(str(out.with_name(f"gen_001{out.suffix}")),
                                            **({"top": str(out.with_name("gen_001.top.pdb"))} if fmt == "xtc" else {})).topology.residues} \
        if fmt != "extxyz" else None
    assert residues is None or residues == {"HOH", "ORP"}


def test_repaired_pdb_goes_into_openmm(tmp_path):
    """--repair leaves whole waters only: OpenMM builds a periodic TIP3P system from the PDB as written."""
    path, _ = _boxes_with_an_orphan(tmp_path)
    out = tmp_path / "md.pdb"
    assert main(["export", str(path), "--format", "pdb", "--out", str(out), "--repair"]) == 0
    pdb = app.PDBFile(str(tmp_path / "md_001.pdb"))
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
    with pytest.raises(MapSuiteError, match="unknown format"):
        export_frames(frames, "mol2", tmp_path / "x.mol2")
    empty = Frames.from_arrays([np.zeros((0, 3))], [np.array([], "<U1")], [np.array([], int)], np.ones((1, 3)), {})
    with pytest.raises(MapSuiteError, match="empty"):
        export_frames(empty, "pdb", tmp_path / "x.pdb")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a frames file")
    assert main(["export", str(bad), "--format", "pdb", "--out", str(tmp_path / "x.pdb")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz", "boxes.npz"]
    assert len(load_frames(path)) == 2

"""Foreign water ensembles for the gate (validation.gate.foreign): transforms of held-out training
frames keep what they should, tiny real OpenMM runs write rigid TIP3P / TIP4P-Ew water, the CLI refuses."""

import fcntl
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from map_core.atoms.frames import load_frames
from map_core.atoms.molecules import make_whole, water_indices
from map_core.errors import MapSuiteError
from validation.gate.foreign import (
    SHIPPED_TRAINING_SET,
    expanded,
    held_out_frames,
    main,
    reoriented,
)
from validation.md.rigid_water import openmm_water
from validation.observables.density import compute_density
from validation.observables.geometry import compute_hoh_angles, compute_oh_distances

ROOT = Path(__file__).resolve().parents[1]
RIGID_OH_NM = 0.09572
RIGID_HOH_DEG = 104.52


@pytest.fixture(scope="module")
def held():
    """The first 2 held-out frames of the shipped training set (216 q-TIP4P/F waters)."""
    return held_out_frames(limit=2)


def _oh_units(frames, f):
    """(M, 2, 3) unit O->H vectors of frame f."""
    pos = make_whole(frames.positions[f], frames.elements[f], frames.molecule[f], frames.box[f])
    trip = water_indices(frames.elements[f], frames.molecule[f])
    v = pos[trip[:, 1:]] - pos[trip[:, :1]]
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _assert_same_atoms_and_geometry(new, old):
    for f in range(len(old)):
        assert new.elements[f].tolist() == old.elements[f].tolist()
        assert new.molecule[f].tolist() == old.molecule[f].tolist()
        assert np.all(new.positions[f] >= 0) and np.all(new.positions[f] < new.box[f])  # wrapped per atom
    np.testing.assert_allclose(compute_oh_distances(new), compute_oh_distances(old), atol=1e-6)
    np.testing.assert_allclose(compute_hoh_angles(new), compute_hoh_angles(old), atol=1e-5)


def test_held_out_frames_are_the_last_fifth():
    frames = held_out_frames()
    assert len(frames) == 80 and frames.meta["frames_used"] == [320, 400]
    np.testing.assert_array_equal(frames.positions[0], load_frames(SHIPPED_TRAINING_SET).positions[320])


def test_reoriented_keeps_oxygens_and_geometry_but_turns_hydrogens(held):
    new = reoriented(held, seed=7)
    _assert_same_atoms_and_geometry(new, held)
    np.testing.assert_array_equal(new.box, held.box)
    for f in range(len(held)):
        o = held.elements[f] == "O"
        np.testing.assert_allclose(new.positions[f][o], held.positions[f][o], atol=1e-6)
        cos = np.einsum("mad,mad->ma", _oh_units(new, f), _oh_units(held, f))
        assert abs(cos.mean()) < 0.1 and np.mean(cos > 0.99) < 0.01  # random new directions, hardly any kept
    again, other = reoriented(held, seed=7), reoriented(held, seed=8)
    np.testing.assert_array_equal(again.positions[0], new.positions[0])
    assert not np.allclose(other.positions[0], new.positions[0])
    assert new.meta["density_g_cm3"] == pytest.approx(compute_density(held).mean(), rel=1e-12)


def test_expanded_divides_density_by_factor_cubed_and_keeps_molecules(held):
    new = expanded(held, 1.03)
    ratio = compute_density(new) / compute_density(held)
    np.testing.assert_allclose(ratio, 1.0 / 1.03**3, rtol=1e-6)
    np.testing.assert_allclose(new.box, held.box * 1.03, rtol=1e-12)
    _assert_same_atoms_and_geometry(new, held)
    for f in range(len(held)):
        o = held.elements[f] == "O"
        np.testing.assert_allclose(new.positions[f][o], np.mod(held.positions[f][o] * 1.03, new.box[f]), atol=2e-6)
    with pytest.raises(MapSuiteError):
        expanded(held, 0.0)


def _check_rigid_water(frames, start, model):
    n = 216
    assert len(frames) == 2
    for f in range(2):
        assert frames.elements[f].tolist() == ["O", "H", "H"] * n  # no virtual sites
        assert frames.molecule[f].tolist() == list(np.repeat(np.arange(n), 3))
        assert np.all(frames.positions[f] >= 0) and np.all(frames.positions[f] < frames.box[f])
    start_bonds = compute_oh_distances(start.select([0]))
    assert start_bonds.std() > 1e-3  # the flexible start is far from rigid, so the constraints did it
    bonds, angles = compute_oh_distances(frames), np.degrees(compute_hoh_angles(frames))
    assert bonds.shape == (2 * n, 2)
    np.testing.assert_allclose(bonds, RIGID_OH_NM, rtol=1e-4)
    np.testing.assert_allclose(angles, RIGID_HOH_DEG, rtol=1e-4)
    meta = frames.meta
    assert meta["force_field"].endswith(f"{model}.xml") and meta["temperature"] == 300.0
    assert meta["openmm_version"] and meta["steps"]["equilibrate"] == 100 and meta["steps"]["stride"] == 50
    assert 0.9 < meta["density_g_cm3"] < 1.1


@pytest.mark.parametrize("model", ["tip3p", "tip4pew"])
def test_tiny_openmm_run_writes_rigid_water_without_virtual_sites(model):
    start = load_frames(SHIPPED_TRAINING_SET).select([0, 1])
    frames = openmm_water(model, n_frames=2, stride_ps=0.1, equilibrate_ps=0.2, seed=3, start=start, threads=2)
    _check_rigid_water(frames, start, model)
    assert frames.meta["virtual_sites"] == ("dropped" if model == "tip4pew" else "none")


def test_bad_model_and_times_are_refused(held):
    with pytest.raises(MapSuiteError, match="model must be one of"):
        openmm_water("spce", 1, 0.1, 0.0, 1, held)
    with pytest.raises(MapSuiteError, match="whole number"):
        openmm_water("tip3p", 1, 0.003, 0.0, 1, held)


def test_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    proc = subprocess.run([sys.executable, "-m", "validation.gate.foreign", str(tmp_path), "--frames", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "unrecognized arguments" in proc.stderr
    not_a_folder = tmp_path / "file.npz"
    not_a_folder.write_text("x")
    assert main([str(not_a_folder), "--small"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a directory" in err[0]


def test_a_second_builder_of_one_folder_is_refused(tmp_path, capsys):
    with open(tmp_path / ".foreign.lock", "a") as held_lock:  # as a running build holds it
        fcntl.flock(held_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main([str(tmp_path), "--small"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another build" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".foreign.lock"]  # nothing made

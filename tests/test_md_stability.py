"""Stability rules of an MD run (validation.md.stability): the pure functions on hand-made cases
and the shipped liquid, and real OpenMM runs through run_md that fail with the step and the
molecule named, resume to the same verdict, and pass when healthy."""

import json
from pathlib import Path

import numpy as np
import pytest

from map_core.atoms.frames import load_frames
from map_core.errors import MapSuiteError
from validation.gate.md import md_checks, run_seeded
from validation.gate.profile import load_profile
from validation.md.boxes import ideal_molecule, make_water_box
from validation.md.checkpoints import load_md_checkpoint
from validation.md.run import run_md
from validation.md.settings import MDSettings
from validation.md.stability import (
    ISOLATION_NM,
    ISOLATION_PS,
    check_stability,
    isolated_molecules,
    jump_tolerance_k,
    persistent_isolation,
    temperature_jump,
)
from validation.md.water_model import with_m_sites

SHIPPED = Path(__file__).resolve().parents[1] / "map_core" / "data" / "water_classical_216.npz"
N = 30
DOF_216 = 9 * 216


@pytest.fixture(scope="module")
def liquid():
    return load_frames(SHIPPED)


@pytest.fixture(scope="module")
def box30():
    return make_water_box(N, seed=11)


def slab_with_lone_molecule(box30, height_nm: float = 4.0):
    """30 waters of liquid as a slab (periodic in x and y) in a box `height_nm` tall, and molecule
    30 alone in the middle of the vacuum, ~1.5 nm from both faces of the slab."""
    pos, box = box30
    tall = np.array([box[0], box[1], height_nm])
    lone = ideal_molecule() + np.array([box[0] / 2, box[1] / 2, box[2] + (height_nm - box[2]) / 2])
    return np.concatenate([pos, lone]), tall


def quick(**kw):
    base = dict(npt_ps=0.0, nvt_ps=0.1, report_ps=0.05, traj_ps=0.25, chunk_ps=0.25, platform="CPU", threads=1,
                seed=11)
    base.update(kw)
    return MDSettings(**base)


class Stop(Exception):
    pass


# --- temperature jump -------------------------------------------------------------------------
def test_jump_tolerance_numbers():
    assert jump_tolerance_k(300.0, DOF_216) == pytest.approx(75.0)  # the 0.25 x target floor
    assert jump_tolerance_k(300.0, 9 * 8) == pytest.approx(300.0)  # 6 sigma of a tiny box's temperature
    assert jump_tolerance_k(300.0, 9 * N) == pytest.approx(6 * 300 * np.sqrt(2 / 270))


def test_a_temperature_jump_is_caught_and_named():
    series = [301.0, 296.0, 305.0, 299.0, 392.0, 900.0]
    reasons = [temperature_jump(a, b, 300.0, DOF_216) for a, b in zip([None] + series[:-1], series)]
    assert reasons[:4] == [None] * 4
    assert reasons[4] is not None and "from 299 K to 392 K" in reasons[4]
    assert temperature_jump(150.0, 380.0, 300.0, DOF_216) is not None  # from a dip to well above the target


def test_a_noisy_thermostatted_series_and_the_first_reports_do_not_trip():
    rng = np.random.default_rng(5)
    for n in (8, 30, 216):
        dof = 9 * n
        # independent canonical draws: the largest report-to-report changes a thermostat allows
        series = 300.0 * rng.chisquare(dof, size=20_000) / dof
        assert not any(temperature_jump(a, b, 300.0, dof) for a, b in zip(series[:-1], series[1:])), n
    # first report (no previous), the equipartition dip after thermalising a minimised box and
    # the thermostat's recovery, and cooling, never trip
    start = [None, 300.0, 160.0, 150.0, 220.0, 290.0, 310.0, 1500.0]
    after = [300.0, 160.0, 150.0, 220.0, 290.0, 310.0, 370.0, 300.0]
    assert [temperature_jump(a, b, 300.0, DOF_216) for a, b in zip(start, after)] == [None] * len(after)


# --- isolated molecules -----------------------------------------------------------------------
def test_liquid_frames_from_the_shipped_data_have_no_isolated_molecule(liquid):
    for f in range(len(liquid.positions)):
        pos, box = liquid.positions[f], liquid.box[f]
        n = len(pos) // 3
        assert len(isolated_molecules(pos, box, n)) == 0, f
        # the rule's radius with 0.15 nm to spare: the shipped frames' largest nearest O-O is 0.345 nm
        assert len(isolated_molecules(pos, box, n, r_nm=ISOLATION_NM - 0.15)) == 0, f


def test_a_molecule_pulled_1nm_away_from_the_rest_is_named(liquid):
    pos = liquid.positions[7].astype(np.float64).reshape(-1, 3, 3)
    box = liquid.box[7] + np.array([0.0, 0.0, 3.0])  # the liquid becomes a slab with 3 nm of vacuum
    k = 57
    top = int(np.argmax(np.where(np.arange(216) == k, -np.inf, pos[:, 0, 2])))  # highest other oxygen
    pos[k] += pos[top, 0] + [0.0, 0.0, 1.0] - pos[k, 0]  # 1 nm straight above it, whole
    flat = pos.reshape(-1, 3)
    assert isolated_molecules(flat, box, 216).tolist() == [k]
    assert isolated_molecules(with_m_sites(flat), box, 216).tolist() == [k]  # O, H, H, M layout
    # the same molecule 0.3 nm above that oxygen has a neighbour
    pos[k] -= [0.0, 0.0, 0.7]
    assert isolated_molecules(pos.reshape(-1, 3), box, 216).tolist() == []


def test_isolation_is_measured_under_the_minimum_image():
    box = np.array([3.0, 3.0, 3.0])
    molecule = ideal_molecule()
    pos = np.concatenate([molecule + [0.05, 1.5, 1.5], molecule + [2.98, 1.5, 1.5], molecule + [1.5, 1.5, 1.5]])
    assert isolated_molecules(pos, box, 3).tolist() == [2]  # 0 and 1 are 0.07 nm apart through the face


def test_isolation_must_persist_for_the_stated_time():
    since = {}
    for t in (0.0, 0.5, 0.9):
        reason, since = persistent_isolation([4], since, t)
        assert reason is None
    reason, since = persistent_isolation([4], since, ISOLATION_PS)
    assert reason is not None and reason.startswith("molecule 4 ") and "t = 0.0000 ps" in reason
    # a report with a neighbour ends the spell; a new spell starts from zero
    reason, since = persistent_isolation([], since, 1.1)
    assert since == {}
    reason, since = persistent_isolation([4], since, 1.2)
    assert reason is None and since == {"4": 1.2}


def test_check_stability_carries_its_state_between_reports(liquid, box30):
    pos, box = box30
    reason, state = check_stability(None, 0.1, 250.0, pos, box, N, 300.0, 9 * N)
    assert reason is None and state == {"temperature_k": 250.0, "isolated_since_ps": {}}
    state = json.loads(json.dumps(state))  # what a checkpoint keeps
    reason, _ = check_stability(state, 0.2, 600.0, pos, box, N, 300.0, 9 * N)
    assert reason is not None and "temperature jumped from 250 K to 600 K" in reason
    lone, tall = slab_with_lone_molecule(box30)
    state = None
    for t in np.arange(0.05, 1.06, 0.05):
        reason, state = check_stability(state, t, 300.0, lone, tall, N + 1, 300.0, 9 * (N + 1))
    assert reason is not None and reason.startswith(f"molecule {N} (0-based)")


# --- real MD ----------------------------------------------------------------------------------
def test_a_molecule_alone_in_vacuum_fails_the_run_with_step_and_molecule_named(tmp_path, box30):
    pos, tall = slab_with_lone_molecule(box30)
    settings = quick(nvt_ps=1.5)
    with pytest.raises(MapSuiteError) as info:
        run_md(pos, tall, settings, tmp_path, progress=False)
    message = str(info.value)
    # isolated from the first report (0.05 ps = step 100) on; failed 1 ps later, at step 2100
    assert message.startswith("nvt stage blew up at step 2100 of 3000"), message
    assert f"molecule {N} (0-based) has had no other oxygen within 0.5 nm" in message
    assert "since t = 0.0500 ps" in message and "last good state (nvt step 2000)" in message
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["step"] == 2100


def test_a_resumed_run_reaches_the_same_verdict(tmp_path, box30):
    pos, tall = slab_with_lone_molecule(box30)
    settings = quick(nvt_ps=1.5)

    def stop(stage, step, chunk):
        if step == 1000:
            raise Stop()

    with pytest.raises(Stop):
        run_md(pos, tall, settings, tmp_path, progress=False, on_checkpoint=stop)
    kept = load_md_checkpoint(tmp_path / "checkpoint.npz")["progress"]["stability"]
    assert kept["isolated_since_ps"] == {str(N): pytest.approx(0.05)}
    with pytest.raises(MapSuiteError, match=r"^nvt stage blew up at step 2100 of 3000 .*molecule 30 .*t = 0\.0500 ps"):
        run_md(pos, tall, settings, tmp_path, progress=False)


def test_the_gate_stable_check_fails_with_the_reason(tmp_path, box30):
    pos, tall = slab_with_lone_molecule(box30)
    result = run_seeded(pos, tall, quick(nvt_ps=1.5), tmp_path, min_waters=8, repair_report={})
    smoke = load_profile("smoke")
    thresholds = {**smoke["thresholds"], "md_tolerance": smoke["thresholds.md_tolerance"]}
    stable = md_checks(result, {"stable": True}, thresholds, "classical")[0]
    assert stable.name == "md_classical_stable" and not stable.passed
    assert "step 2100" in stable.detail and f"molecule {N} (0-based)" in stable.detail


def test_a_heating_run_fails_on_the_temperature_jump(tmp_path, box30):
    """A 2.5 fs step is far too long for flexible water: the temperature runs away within a few
    steps. With the absolute blow-up limit out of the way, the jump rule names the step."""
    pos, box = box30
    settings = quick(timestep_fs=2.5, nvt_ps=0.05, report_ps=0.0025, traj_ps=0.05, chunk_ps=0.05,
                     blowup_temperature_k=1e30)
    with pytest.raises(MapSuiteError, match=r"^nvt stage blew up at step \d+ of 20 .*temperature jumped from"):
        run_md(pos, box, settings, tmp_path, progress=False)


def test_a_healthy_run_passes_and_keeps_the_rules_history(tmp_path, box30):
    pos, box = box30
    settings = quick(npt_ps=0.1, nvt_ps=0.1, report_ps=0.025, traj_ps=0.025, chunk_ps=0.05)
    summary = run_md(pos, box, settings, tmp_path, progress=False)
    assert summary["status"] == "done"
    kept = load_md_checkpoint(tmp_path / "checkpoint.npz")["progress"]["stability"]
    assert kept["isolated_since_ps"] == {} and 50.0 < kept["temperature_k"] < 600.0

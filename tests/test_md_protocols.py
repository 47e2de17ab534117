"""MD protocols with real OpenMM on tiny boxes: outputs, resume, blow-up detection, RPMD."""

import json

import mdtraj
import numpy as np
import openmm
import pytest

from map_core.errors import MapSuiteError
from validation.md.boxes import make_water_box, water_topology
from validation.md.checkpoints import load_md_checkpoint
from validation.md.engine import Engine, make_integrator
from validation.md.files import DcdWriter, dcd_frame_count, read_dcd, read_state_log, truncate_to
from validation.md.platform import pick_platform
from validation.md.run import run_md
from validation.md.settings import MDSettings
from validation.md.volume import rescale_molecules
from validation.md.water_model import with_m_sites

N = 30


def quick(**kw):
    base = dict(npt_ps=0.1, nvt_ps=0.1, report_ps=0.025, traj_ps=0.025, chunk_ps=0.05,
                platform="CPU", threads=1, seed=11)
    base.update(kw)
    return MDSettings(**base)


@pytest.fixture(scope="module")
def box30():
    return make_water_box(N, seed=11)


class Stop(Exception):
    pass


def test_classical_run_writes_log_trajectory_and_summary(tmp_path, box30):
    positions, box = box30
    summary = run_md(positions, box, quick(), tmp_path, progress=False)
    assert summary["status"] == "done" and summary["n_waters"] == N
    log = read_state_log(tmp_path / "state_log.csv")
    assert list(log["stage"]) == ["npt"] * 4 + ["nvt"] * 4
    assert np.all(np.diff(log["time_ps"]) > 0)
    assert np.all((log["density_g_cm3"] > 0.8) & (log["density_g_cm3"] < 1.2))
    assert np.all(np.isfinite(log["potential_kj_mol"])) and np.all(log["temperature_k"] > 50)
    traj = mdtraj.load(str(tmp_path / "traj_nvt.dcd"), top=str(tmp_path / "topology.pdb"))
    assert traj.n_frames == 4 and traj.n_atoms == 3 * N
    # NVT runs at the mean NPT box, which differs from the starting box
    assert np.allclose(traj.unitcell_lengths, summary["nvt_box_nm"], atol=1e-5)
    assert not np.allclose(summary["nvt_box_nm"], box, atol=1e-4)
    assert len(set(np.round(log["volume_nm3"][log["stage"] == "nvt"], 6))) == 1
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["stages"]["nvt"]["steps"] == 200 and on_disk["stages"]["nvt"]["ns_per_day"] > 0


def test_resume_after_interruption_continues_without_redoing_work(tmp_path, box30):
    positions, box = box30
    settings = quick(nvt_ps=0.2)

    def stop_in_nvt(stage, step, chunk):
        if stage == "nvt" and step == 200:
            raise Stop()

    with pytest.raises(Stop):
        run_md(positions, box, settings, tmp_path, progress=False, on_checkpoint=stop_in_nvt)
    frames_before = read_dcd(tmp_path / "traj_nvt.dcd")[0]
    assert len(frames_before) == 4
    assert load_md_checkpoint(tmp_path / "checkpoint.npz")["progress"]["step"] == 200
    calls = []
    summary = run_md(positions, box, settings, tmp_path, progress=False,
                     on_checkpoint=lambda *a: calls.append(a))
    assert summary["resumed"] == 1
    assert [c[:2] for c in calls] == [("nvt", 300), ("nvt", 400)]  # only the unfinished chunks ran
    xyz, _ = read_dcd(tmp_path / "traj_nvt.dcd")
    assert len(xyz) == 8
    np.testing.assert_array_equal(xyz[:4], frames_before)  # finished frames kept, not redone
    log = read_state_log(tmp_path / "state_log.csv")
    assert len(log["time_ps"]) == 12 and np.all(np.diff(log["time_ps"]) > 0)


def test_rows_written_after_the_last_checkpoint_are_cut_on_resume(tmp_path, box30):
    positions, box = box30
    settings = quick(nvt_ps=0.0, npt_ps=0.1, chunk_ps=0.1, report_ps=0.025)
    run_md(positions, box, settings, tmp_path, progress=False)
    log = (tmp_path / "state_log.csv").read_text().splitlines()
    assert load_md_checkpoint(tmp_path / "checkpoint.npz")["progress"]["stage"] == "done"
    # a kill between a report and the next checkpoint leaves a row the checkpoint does not know
    with open(tmp_path / "state_log.csv", "a") as fh:
        fh.write("npt,999,9.9,1,1,1,1,1,1,1,1\n")
    run_md(positions, box, settings, tmp_path, progress=False)
    assert (tmp_path / "state_log.csv").read_text().splitlines() == log


def test_absurd_time_step_blows_up_with_stage_and_step_and_keeps_last_good_state(tmp_path, box30):
    positions, box = box30
    settings = quick(timestep_fs=12.0, npt_ps=0.0, nvt_ps=6.0, report_ps=0.012, traj_ps=0.6, chunk_ps=0.6)
    with pytest.raises(MapSuiteError, match=r"nvt stage blew up at step \d+ of 500") as info:
        run_md(positions, box, settings, tmp_path, progress=False)
    assert "last good state" in str(info.value)
    good = load_md_checkpoint(tmp_path / "checkpoint.npz")
    assert np.all(np.isfinite(good["positions"])) and np.all(np.isfinite(good["velocities"]))
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "failed"


def test_overlapping_molecules_fail_with_a_named_stage(tmp_path):
    positions, box = make_water_box(8, seed=1, density_g_cm3=0.3)
    positions[3:6] = positions[0:3] + 0.002  # molecule 1 sits on molecule 0
    settings = quick(npt_ps=0.05, nvt_ps=0.05, minimise=False)
    with pytest.raises(MapSuiteError, match=r"(npt|nvt) stage blew up at (a )?step"):
        run_md(positions, box, settings, tmp_path, progress=False)


def test_a_different_run_in_the_same_workdir_is_refused(tmp_path, box30):
    positions, box = box30
    run_md(positions, box, quick(npt_ps=0.0, nvt_ps=0.05), tmp_path, progress=False)
    with pytest.raises(MapSuiteError, match="different run"):
        run_md(positions, box, quick(npt_ps=0.0, nvt_ps=0.05, temperature_k=250), tmp_path, progress=False)


def test_rpmd_run_with_contraction_and_barostat(tmp_path):
    positions, box = make_water_box(N, seed=3)
    settings = quick(method="rpmd", beads=4, contract_reciprocal=True, npt_ps=0.02, nvt_ps=0.02,
                     report_ps=0.01, traj_ps=0.01, chunk_ps=0.01)
    summary = run_md(positions, box, settings, tmp_path, progress=False)
    assert summary["trajectory_beads"] == "one random bead per frame"
    ckpt = load_md_checkpoint(tmp_path / "checkpoint.npz")
    assert ckpt["positions"].shape == (4, 4 * N, 3)
    assert np.abs(ckpt["positions"][1] - ckpt["positions"][0]).max() > 1e-4  # beads have spread
    log = read_state_log(tmp_path / "state_log.csv")
    assert np.all(np.isfinite(log["potential_kj_mol"])) and np.all(log["temperature_k"] > 50)
    assert dcd_frame_count(tmp_path / "traj_nvt.dcd") == 2


def test_rpmd_barostat_moves_the_box_every_interval_not_every_integrator_call():
    """OpenMM's RPMDIntegrator.step(n) consults the barostat once per call; Engine.step must
    still give it one attempt per barostat_interval steps."""
    positions, box = make_water_box(N, seed=8)
    settings = MDSettings(method="rpmd", beads=2, platform="CPU", threads=1, barostat_interval=5)
    engine = Engine(N, box, settings, "npt", 9)
    engine.set_state(with_m_sites(positions))
    engine.minimise()
    engine.thermalise(4)
    volumes = []
    for _ in range(4):
        engine.step(25)  # 5 attempts per call; the bare OpenMM integrator would make one per 5 calls
        volumes.append(np.prod(engine.get_box()))
    assert len(set(volumes)) == 4


def test_integrators_and_barostats_follow_the_settings():
    assert isinstance(make_integrator(MDSettings(), 1), openmm.LangevinMiddleIntegrator)
    mts = make_integrator(MDSettings(intra_substeps=5), 1)
    assert isinstance(mts, openmm.CustomIntegrator)  # MTSLangevinIntegrator is a CustomIntegrator
    rpmd = make_integrator(MDSettings(method="rpmd", beads=4, contract_reciprocal=True), 1)
    assert rpmd.getNumCopies() == 4 and dict(rpmd.getContractions()) == {2: 1}
    positions, box = make_water_box(N, seed=2)
    for settings, kind in ((MDSettings(platform="CPU"), openmm.MonteCarloBarostat),
                           (MDSettings(platform="CPU", barostat="anisotropic"), openmm.MonteCarloAnisotropicBarostat),
                           (MDSettings(platform="CPU", method="rpmd", beads=2), openmm.RPMDMonteCarloBarostat)):
        engine = Engine(N, box, settings, "npt", 3)
        assert any(isinstance(f, kind) for f in engine.system.getForces())


def test_mts_run_is_stable(tmp_path, box30):
    positions, box = box30
    summary = run_md(positions, box, quick(intra_substeps=5, npt_ps=0.0, nvt_ps=0.1), tmp_path, progress=False)
    assert summary["status"] == "done"
    log = read_state_log(tmp_path / "state_log.csv")
    assert np.all(log["temperature_k"] < 600)


@pytest.mark.parametrize("bad", [dict(method="pimd"), dict(timestep_fs=0), dict(npt_ps=-1),
                                 dict(method="rpmd", beads=0), dict(method="rpmd", beads=4, intra_substeps=5),
                                 dict(method="rpmd", beads=4, barostat="anisotropic"), dict(report_ps=1e-5),
                                 dict(barostat="berendsen")])
def test_bad_settings_are_refused(bad):
    with pytest.raises(MapSuiteError):
        MDSettings(**bad).check()


def test_platform_choice():
    platform, props = pick_platform("cpu", threads=1)
    assert platform.getName() == "CPU" and props == {"Threads": "1"}
    with pytest.raises(MapSuiteError, match="available"):
        pick_platform("NoSuchPlatform")


def test_dcd_truncation_restores_a_readable_file(tmp_path):
    top = water_topology(2, [1.0, 1.0, 1.0])
    writer = DcdWriter(tmp_path / "t.dcd", top, 0.0005, 10)
    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 1, size=(5, 6, 3))
    sizes = []
    for f in frames:
        writer.append(f, [1.0, 1.0, 1.0])
        sizes.append((tmp_path / "t.dcd").stat().st_size)
    truncate_to(tmp_path / "t.dcd", sizes[2])
    writer.append(frames[4], [1.0, 1.1, 1.2])
    xyz, boxes = read_dcd(tmp_path / "t.dcd")
    np.testing.assert_allclose(xyz, np.concatenate([frames[:3], frames[4:]]), atol=1e-6)
    np.testing.assert_allclose(boxes[-1], [1.0, 1.1, 1.2])
    traj = mdtraj.load(str(tmp_path / "t.dcd"), top=mdtraj.Topology.from_openmm(top))
    assert traj.n_frames == 4


def test_rescale_keeps_molecules_rigid_and_scales_centres():
    positions, box = make_water_box(N, seed=5)
    pos4 = with_m_sites(positions)
    new = rescale_molecules(pos4, box, box * 1.1, N)
    a, b = pos4.reshape(N, 4, 3), new.reshape(N, 4, 3)
    np.testing.assert_allclose(b - b[:, :1], a - a[:, :1], atol=1e-12)
    w = np.array([15.99943, 1.007947, 1.007947, 0.0])
    com_a = np.einsum("j,njd->nd", w, a) / w.sum()
    com_b = np.einsum("j,njd->nd", w, b) / w.sum()
    np.testing.assert_allclose(com_b, 1.1 * com_a, atol=1e-12)

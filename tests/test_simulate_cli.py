"""`map-suite simulate` end to end on tiny boxes: a valid frames file, exit code 2, kill + resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from map_core.atoms.frames import load_frames
from validation.cli.main import main
from validation.md.checkpoints import load_md_checkpoint
from validation.md.files import read_dcd
from validation.observables.geometry import compute_oh_distances

pytestmark = pytest.mark.slow  # subprocesses, OpenMM or whole gate runs: `pytest -m 'not slow' tests` skips them

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--waters", "30", "--equilibrate-ps", "0.05", "--seed", "3", "--threads", "1", "--quiet"]


def test_simulate_writes_a_valid_frames_file(tmp_path, capsys):
    out = tmp_path / "water.npz"
    rc = main(["simulate", "--frames", "2", "--stride-ps", "0.05", "--out", str(out)] + TINY)
    assert rc == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["frames"] == 2 and printed["frames_file"] == str(out)
    frames = load_frames(out)
    assert len(frames) == 2
    for f in range(2):
        assert frames.elements[f].tolist() == ["O", "H", "H"] * 30
        assert frames.molecule[f].tolist() == list(np.repeat(np.arange(30), 3))
        assert frames.positions[f].dtype == np.float32
        assert np.all(frames.positions[f] >= 0) and np.all(frames.positions[f] < frames.box[f])
    np.testing.assert_array_equal(frames.box[0], frames.box[1])  # NVT: one box
    bonds = compute_oh_distances(frames)
    assert bonds.shape == (60, 2) and np.all((bonds > 0.085) & (bonds < 0.11))
    meta = frames.meta
    assert meta["method"] == "classical" and meta["beads"] == 1 and meta["seed"] == 3
    assert meta["temperature"] == 300.0 and meta["stride_ps"] == 0.05 and meta["water_model"] == "q-TIP4P/F"
    assert meta["wrapping"] == "per atom into [0, L)" and "simulate" in meta["source"]
    assert (tmp_path / "water.npz.partial" / "summary.json").exists()  # default work directory


def test_rpmd_simulate_writes_one_bead_per_frame(tmp_path):
    out = tmp_path / "rpmd.npz"
    argv = ["simulate", "--method", "rpmd", "--beads", "2", "--contract", "--frames", "2",
            "--stride-ps", "0.01", "--out", str(out), "--waters", "30", "--equilibrate-ps", "0.02",
            "--seed", "5", "--threads", "1", "--quiet"]
    assert main(argv) == 0
    frames = load_frames(out)
    assert len(frames) == 2 and frames.meta["method"] == "rpmd" and frames.meta["beads"] == 2
    assert frames.meta["bead_selection"] == "one random bead per frame"
    assert frames.meta["contract_reciprocal"] is True
    bonds = compute_oh_distances(frames)
    assert np.all((bonds > 0.07) & (bonds < 0.13))


FRAMES = ["--waters", "30", "--frames", "2", "--stride-ps", "0.05"]


@pytest.mark.parametrize("bad,name", [
    (["--waters", "0", "--frames", "2", "--stride-ps", "0.05"], "water.npz"),
    (["--waters", "30", "--frames", "2", "--stride-ps", "-1"], "water.npz"),
    (["--waters", "30", "--frames", "0", "--stride-ps", "0.05"], "water.npz"),
    (FRAMES + ["--equilibrate-ps", "-2"], "water.npz"),
    (["--waters", "30", "--frames", "2", "--stride-ps", "0.00025"], "water.npz"),  # half a time step
    (FRAMES + ["--method", "rpmd", "--beads", "0"], "water.npz"),
    (FRAMES + ["--timestep-fs", "0"], "water.npz"),
    (FRAMES + ["--platform", "NoSuchPlatform"], "water.npz"),
    (FRAMES, "water.txt"),
    (FRAMES + ["--beads", "4"], "water.npz"),  # beads without --method rpmd
])
def test_bad_input_gives_exit_code_2_and_one_line(tmp_path, capsys, bad, name):
    out = tmp_path / name
    base = ["--equilibrate-ps", "0.05", "--seed", "1", "--quiet", "--out", str(out)]
    try:
        rc = main(["simulate"] + base + bad)  # later flags win over the defaults in `base`
    except SystemExit as exc:  # out-of-range numbers are refused by the parser, before the command runs
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("map-suite simulate: error:"), err
    assert not out.exists()


def _run_and_kill(argv, work, nvt_step: int) -> None:
    """Start `map-suite simulate argv` and SIGKILL it once its checkpoint is past `nvt_step` NVT steps."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "validation.cli"] + argv, cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            ckpt = work / "checkpoint.npz"
            if ckpt.exists():
                prog = load_md_checkpoint(ckpt)["progress"]
                if prog["stage"] == "nvt" and prog["step"] >= nvt_step:
                    break
            if proc.poll() is not None:
                pytest.fail("the run finished before it could be killed; make it longer")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_killed_run_resumes_without_redoing_finished_frames(tmp_path):
    out = tmp_path / "water.npz"
    work = tmp_path / "work"
    argv = ["simulate", "--frames", "6", "--stride-ps", "0.25", "--out", str(out), "--workdir", str(work)] + TINY
    _run_and_kill(argv, work, 1000)  # two frames done
    assert not out.exists()
    done_before = load_md_checkpoint(work / "checkpoint.npz")["progress"]["step"] // 500
    kept = read_dcd(work / "traj_nvt.dcd")[0][:done_before]
    assert 2 <= done_before < 6
    assert main(argv) == 0
    frames = load_frames(out)
    assert len(frames) == 6
    xyz, _ = read_dcd(work / "traj_nvt.dcd")
    np.testing.assert_array_equal(xyz[:done_before], kept)  # finished frames were not redone
    summary = json.loads((work / "summary.json").read_text())
    assert summary["resumed"] == 1 and summary["stages"]["nvt"]["steps"] == 3000


def test_killed_run_on_the_reference_platform_resumes_bit_for_bit(tmp_path):
    """OpenMM's Reference platform is deterministic across processes, so a run killed and resumed from
    its OpenMM checkpoint writes the frames of an uninterrupted run exactly. (The CPU platform is not:
    two uninterrupted runs with the same seed and one thread already differ after 100 steps.)"""
    args = ["--frames", "12", "--stride-ps", "0.1", "--platform", "Reference"] + TINY
    whole = tmp_path / "whole.npz"
    assert main(["simulate", *args, "--out", str(whole), "--workdir", str(tmp_path / "w1")]) == 0
    out, work = tmp_path / "killed.npz", tmp_path / "w2"
    argv = ["simulate", *args, "--out", str(out), "--workdir", str(work)]
    _run_and_kill(argv, work, 600)
    assert not out.exists()
    assert main(argv) == 0
    a, b = load_frames(whole), load_frames(out)
    assert json.loads((work / "summary.json").read_text())["resumed"] == 1
    assert all(np.array_equal(p, q) for p, q in zip(a.positions, b.positions)) and np.array_equal(a.box, b.box)

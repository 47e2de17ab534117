"""SIGKILL at random points of long commands, then the same command again: it resumes, no partial
file passes for a finished one, and the final output equals an uninterrupted run's (issue 16).

Each command runs as a real subprocess and is killed with SIGKILL (not Ctrl-C: no handler runs)
once it has written its first resumable piece, after a further random delay.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from gate_helpers import comparable, tiny_gate_command

from map_core.atoms.frames import load_frames
from validation.cli.main import main

pytestmark = pytest.mark.slow  # subprocesses, OpenMM or whole gate runs: `pytest -m 'not slow' tests` skips them

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


def cli(*args):
    return [sys.executable, "-m", "validation.cli", *map(str, args)]


def run_killed(args, ready, delay: float, timeout: float = 120.0) -> bool:
    """Start `args`, wait until `ready()` is true, wait `delay` s more, SIGKILL it.
    Returns True if it was killed, False if it finished first."""
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while not ready() and proc.poll() is None:
        if time.monotonic() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"{args} never became ready")
        time.sleep(0.02)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def run(args) -> None:
    result = subprocess.run(args, env=ENV, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def run_here(*args) -> None:
    """`map-suite ARGS` in this process (the uninterrupted references; only the killed run and its
    rerun need processes of their own), leaving torch's thread count as it was."""
    threads = torch.get_num_threads()
    try:
        assert main([str(a) for a in args]) == 0
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("delay", [0.0, 0.7])
def test_train_killed_resumes_to_the_same_weights(tmp_path, lattice_file, delay):
    common = ["--data", lattice_file, "--layers", "2", "--filters", "3", "--crop", "8", "--steps", "60", "--batch", "2",
              "--test-crops", "1", "--checkpoint-every", "5", "--no-progress", "--threads", "1", "--resume"]
    reference = tmp_path / "reference.pt"
    run_here("train", "--out", reference, *common)
    out = tmp_path / "killed.pt"
    killed = run_killed(cli("train", "--out", out, *common), out.exists, delay)
    assert killed, "the run finished before the kill: nothing was tested"
    run(cli("train", "--out", out, *common))  # the same command again
    a = torch.load(reference, weights_only=True)
    b = torch.load(out, weights_only=True)
    assert b["provenance"]["steps"] == 60 and len(b["provenance"]["segments"]) >= 2  # it did resume
    for name in a["state_dict"]:
        assert torch.equal(a["state_dict"][name], b["state_dict"][name]), name
    assert a["provenance"]["test_cross_entropy"] == b["provenance"]["test_cross_entropy"]


@pytest.mark.parametrize("delay", [0.0, 0.4])
def test_generate_killed_resumes_to_the_same_boxes(tmp_path, lattice_file, delay):
    model = tmp_path / "m.pt"
    run_here("train", "--data", lattice_file, "--out", model, "--layers", "1", "--filters", "3", "--crop", "8", "--steps", "2",
             "--test-crops", "1", "--no-progress")
    common = ["--model", model, "--shape", "6", "8", "8", "--n-boxes", "6", "--batch", "1", "--seed", "5", "--no-progress",
              "--sampler", "reference"]
    reference = tmp_path / "reference.npz"
    run_here("generate", "--out", reference, *common)
    out = tmp_path / "killed.npz"
    partial = out.with_name(out.name + ".partial")
    killed = run_killed(cli("generate", "--out", out, *common), lambda: any(partial.glob("boxes_*.npz")), delay)
    assert killed, "the run finished before the kill: nothing was tested"
    assert not out.exists()  # a killed run never leaves something that looks finished
    run(cli("generate", "--out", out, *common))
    a, b = load_frames(reference, allow_empty_frames=True), load_frames(out, allow_empty_frames=True)
    assert np.array_equal(a.extra["grids"], b.extra["grids"]) and np.array_equal(a.extra["log_prob"], b.extra["log_prob"])
    assert a.meta == b.meta and not partial.exists()


def test_validate_killed_twice_resumes_to_the_same_results(tmp_path, tiny_gate):
    """Killed while sampling the judged boxes, then again while sampling the Markov check's seeded boxes;
    the third run finishes from the cache and its results equal an uninterrupted run's."""
    profile, model, reference = tiny_gate
    cache, out = tmp_path / "cache", tmp_path / "report"
    command = tiny_gate_command(profile, model, cache, out)
    assert run_killed(command, lambda: any(cache.glob("generated-*/boxes_*.npz.sha256")), 0.0)
    first = {p: p.stat().st_mtime_ns for p in cache.glob("generated-*/boxes_*.npz")}
    assert run_killed(command, lambda: any(cache.glob("seeded-*/boxes_*.npz.sha256")), 0.0)
    assert not out.exists()  # nothing that looks like a finished report
    result = subprocess.run(command, env=ENV, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in first.items())  # finished batches were kept, not redone
    assert comparable(json.loads((out / "results.json").read_text())) == comparable(reference)

"""torchrun (DDP) training on CPU processes over gloo (issue 17): two processes that share each step's
batch train the weights of one process to floating-point order."""

import os
import subprocess
import sys

import pytest
import torch

pytestmark = pytest.mark.slow  # subprocesses, OpenMM or whole gate runs: `pytest -m 'not slow' tests` skips them

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}


def train_args(data, out, steps: int = 8, batch: int = 4) -> list:
    # Adam moves the weights far (0.07 in 8 steps) so that a missing gradient exchange shows; dropout 0
    # because its masks are drawn per process (map_core.training.distributed)
    return ["train", "--data", str(data), "--out", str(out), "--layers", "2", "--filters", "4", "--crop", "8",
            "--steps", str(steps), "--batch", str(batch), "--test-crops", "2", "--dropout", "0", "--optimizer", "adam",
            "--lr", "0.01", "--checkpoint-every", "4", "--no-progress", "--threads", "1"]


def torchrun(args, processes: int = 2):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(processes), "-m", "validation.cli", *args], env=ENV, capture_output=True, text=True)


def test_two_gloo_processes_train_the_single_process_weights(tmp_path, lattice_file):
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    result = subprocess.run([sys.executable, "-m", "validation.cli", *train_args(lattice_file, one)], env=ENV,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    result = torchrun(train_args(lattice_file, two))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("wrote") == 1  # one line, from process 0
    a, b = (torch.load(p, weights_only=True) for p in (one, two))
    moved = max(float(v.abs().max()) for v in a["state_dict"].values())
    diff = max(float((a["state_dict"][k] - b["state_dict"][k]).abs().max()) for k in a["state_dict"])
    assert moved > 0.01 and diff < 1e-5, diff  # measured: 2.7e-7 (the order of the gradient sums)
    assert abs(a["provenance"]["test_cross_entropy"] - b["provenance"]["test_cross_entropy"]) < 1e-6
    for (s1, l1), (s2, l2) in zip(a["training_state"]["history"], b["training_state"]["history"]):
        assert s1 == s2 and abs(l1 - l2) < 1e-6  # the logged loss is the whole batch's
    assert b["provenance"]["segments"][-1]["processes"] == 2


def test_a_batch_that_does_not_split_evenly_is_refused_in_one_line(tmp_path, lattice_file):
    out = tmp_path / "m.pt"
    result = torchrun(train_args(lattice_file, out, batch=3))
    assert result.returncode != 0 and not out.exists()
    lines = [line for line in result.stderr.splitlines() if line.startswith("map-suite train: error:")]
    assert lines and "--batch 3 must be a multiple of the 2 torchrun processes" in lines[0], result.stderr

"""Scale-out on Dask (issue 17): `generate` and `validate` over a 2-worker LocalCluster give the output
of a single-process run; a scheduler that cannot be used is refused in one line."""

import json
import logging
import shutil

import numpy as np
import pytest
from distributed import LocalCluster
from gate_helpers import TINY_PROFILE, comparable

from map_core import cluster as cluster_module
from validation.cli.main import main

pytestmark = pytest.mark.slow  # subprocesses, OpenMM or whole gate runs: `pytest -m 'not slow' tests` skips them


@pytest.fixture(scope="module")
def dask_cluster():
    """A LocalCluster of 2 single-threaded worker processes, reached by its address (as a remote one would be)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        yield cluster


@pytest.fixture
def small_model(tmp_path, lattice_file):
    model = tmp_path / "m.pt"
    assert main(["train", "--data", str(lattice_file), "--out", str(model), "--layers", "1", "--filters", "3", "--crop", "8",
                 "--steps", "2", "--test-crops", "1", "--no-progress"]) == 0
    return model


def test_generate_on_a_local_cluster_writes_the_single_process_file(tmp_path, small_model):
    common = ["generate", "--model", str(small_model), "--shape", "6", "8", "8", "--n-boxes", "5", "--batch", "2",
              "--seed", "7", "--no-progress"]
    assert main([*common, "--out", str(tmp_path / "one.npz")]) == 0
    assert main([*common, "--out", str(tmp_path / "dask.npz"), "--scheduler", "local:2"]) == 0
    a, b = np.load(tmp_path / "one.npz"), np.load(tmp_path / "dask.npz")
    assert sorted(a.files) == sorted(b.files)
    for name in a.files:
        assert np.array_equal(a[name], b[name]), name


def test_validate_on_a_cluster_gives_the_single_process_results(tmp_path, tiny_gate, dask_cluster, capsys):
    """Structure and Markov groups of the crash-test profile, batches sampled on 2 workers reached by address."""
    profile, model, reference = tiny_gate
    out = tmp_path / "report"
    rc = main(["validate", "--model", str(model), "--profile", str(profile), "--cache", str(tmp_path / "cache"), "--out", str(out),
               "--groups", "structure,markov", "--scheduler", dask_cluster.scheduler_address])
    assert rc in (0, 1)
    assert "as 2 Dask tasks" in capsys.readouterr().err  # the batches did go to the cluster
    assert comparable(json.loads((out / "results.json").read_text())) == comparable(reference)


def test_validate_runs_the_two_md_runs_as_dask_tasks(tmp_path, dask_cluster, capsys):
    """The MD group over the cluster, then single-process on a cache holding the same sampled boxes: the same
    checks on the same boxes. Their values are not compared: OpenMM's CPU platform does not repeat a run
    bit for bit in another process (tests/test_simulate_cli.py)."""
    profile = tmp_path / "md.toml"
    profile.write_text(TINY_PROFILE.replace("enabled = false\nbox_nm = 0.6", "box_nm = 0.7\nmin_waters = 8")
                       + "[md.classical]\nnpt_ps = 0.2\nnvt_ps = 0.2\n[md.rpmd]\nbeads = 2\nnvt_ps = 0.04\n")
    cache_a, cache_b = tmp_path / "a", tmp_path / "b"
    args = ["validate", "--profile", str(profile), "--groups", "md"]
    assert main([*args, "--cache", str(cache_a), "--out", str(tmp_path / "ra"), "--scheduler",
                 dask_cluster.scheduler_address]) in (0, 1)
    assert "as two Dask tasks" in capsys.readouterr().err
    for sampled in cache_a.glob("generated-*"):
        shutil.copytree(sampled, cache_b / sampled.name)
    assert main([*args, "--cache", str(cache_b), "--out", str(tmp_path / "rb")]) in (0, 1)
    assert "sampling" not in capsys.readouterr().err  # the single-process run judged the same boxes
    ra, rb = (json.loads((tmp_path / r / "results.json").read_text()) for r in ("ra", "rb"))
    assert [c["name"] for c in ra["checks"]] == [c["name"] for c in rb["checks"]] and ra["checks"]
    for r in (ra, rb):
        assert all(r["md"][side][m]["stable"] for side in ("generated", "training") for m in ("classical", "rpmd")), r["md"]
    for side in ("generated", "training"):
        assert ra["md"][side]["classical"]["waters"] == rb["md"][side]["classical"]["waters"]


@pytest.mark.parametrize("spec, message", [("local:0", "local:N needs a whole number"),
                                           ("local:two", "local:N needs a whole number"),
                                           ("tcp://127.0.0.1:9", "cannot reach the Dask scheduler")])
def test_a_scheduler_that_cannot_be_used_is_one_line(tmp_path, small_model, monkeypatch, capsys, spec, message):
    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT", "1s")
    out = tmp_path / "boxes.npz"
    rc = main(["generate", "--model", str(small_model), "--shape", "4", "4", "4", "--out", str(out), "--scheduler", spec,
               "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()

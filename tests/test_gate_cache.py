"""The gate cache verifies every entry on read: damaged, torn or unsealed entries are recomputed, never trusted (issue 16)."""

import contextlib
import json
import multiprocessing
import threading
import time

import numpy as np
import pytest
import torch

from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.sampling.generate import SamplingJob
from validation.gate import cache as cache_module
from validation.gate.boxes import sample_boxes
from validation.gate.cache import Cache, seal, verified_bytes


class Counter:
    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def damage(path, how: str):
    data = path.read_bytes()
    if how == "flip":
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes([data[mid] ^ 0x5A]) + data[mid + 1:])
    elif how == "truncate":
        path.write_bytes(data[: len(data) // 3])
    elif how == "unsealed":
        path.with_name(path.name + ".sha256").unlink()
    elif how == "foreign":  # another program's valid JSON/npz, sealed by nobody
        path.write_bytes(b'{"stolen": true}')


@pytest.mark.parametrize("how", ["flip", "truncate", "unsealed", "foreign"])
def test_a_damaged_json_entry_is_recomputed(tmp_path, how):
    cache = Cache(tmp_path)
    compute = Counter({"g_OO": [0.1, 0.2], "n": 3})
    assert cache.json("structure-x", compute) == compute.value
    assert cache.json("structure-x", compute) == compute.value and compute.calls == 1  # reused
    damage(tmp_path / "structure-x.json", how)
    assert cache.json("structure-x", compute) == compute.value and compute.calls == 2  # recomputed
    assert verified_bytes(tmp_path / "structure-x.json") is not None  # and sealed again


@pytest.mark.parametrize("how", ["flip", "truncate", "unsealed"])
def test_a_damaged_array_entry_is_recomputed(tmp_path, how):
    cache = Cache(tmp_path)
    compute = Counter({"x": np.arange(2000.0).reshape(40, 50), "box": np.ones(3)})
    first = cache.arrays("features", compute)
    damage(tmp_path / "features.npz", how)
    again = cache.arrays("features", compute)
    assert compute.calls == 2
    for k in first:
        np.testing.assert_array_equal(first[k], again[k])


def test_without_the_checksum_a_damaged_entry_would_be_trusted(tmp_path, monkeypatch):
    """What the seal guards against: trusting the bytes as they are returns wrong numbers."""
    cache = Cache(tmp_path)
    compute = Counter({"value": 1.0})
    cache.json("e", compute)
    (tmp_path / "e.json").write_text(json.dumps({"value": 9.0}))  # valid JSON, wrong content
    monkeypatch.setattr(cache_module, "verified_bytes", lambda path: path.read_bytes() if path.exists() else None)
    assert cache.json("e", compute) == {"value": 9.0}  # trusted: wrong
    monkeypatch.undo()
    assert cache.json("e", compute) == {"value": 1.0} and compute.calls == 2


def test_a_damaged_sampled_batch_is_sampled_again_identically(tmp_path):
    torch.manual_seed(0)
    model = PixelCNN3D(ModelConfig(layers=1, filters=2, dropout=0.0)).eval()
    first = sample_boxes(model, SamplingJob((3, 4, 5), 2, 1.0, seed=7, boundary="empty", batch=1), cache_dir=tmp_path)
    pieces = sorted(tmp_path.glob("boxes_*.npz"))
    assert len(pieces) == 2 and all(verified_bytes(p) is not None for p in pieces)
    pieces[1].write_bytes(pieces[1].read_bytes()[:40])  # torn by a crash or a full disk
    again = sample_boxes(model, SamplingJob((3, 4, 5), 2, 1.0, seed=7, boundary="empty", batch=1), cache_dir=tmp_path)
    np.testing.assert_array_equal(first, again)
    assert verified_bytes(pieces[1]) is not None


def test_seal_records_the_bytes_as_written(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[1, 2]")
    seal(path)
    assert verified_bytes(path) == b"[1, 2]"
    path.write_text("[1, 3]")
    assert verified_bytes(path) is None


def _slow_entry(root, log):
    """Compute one cache entry slowly, noting each computation in `log` (run in a child process)."""
    def compute():
        with open(log, "a") as fh:
            fh.write("computed\n")
        time.sleep(1.0)
        return {"value": 42}

    return Cache(root).json("shared-entry", compute)


def test_two_runs_on_one_cache_compute_an_entry_once(tmp_path):
    """Two processes ask for the same entry at once: one computes it, the other waits and reads it."""
    log = tmp_path / "log.txt"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_slow_entry, [(str(tmp_path / "cache"), str(log))] * 2)
    assert results == [{"value": 42}, {"value": 42}]
    assert log.read_text().count("computed") == 1
    assert verified_bytes(tmp_path / "cache" / "shared-entry.json") is not None


def test_without_the_lock_both_runs_would_compute(tmp_path, monkeypatch):
    """What the lock guards against, shown with threads and the lock taken away."""
    monkeypatch.setattr(Cache, "_lock", lambda self, name: contextlib.nullcontext())
    log = tmp_path / "log.txt"
    threads = [threading.Thread(target=_slow_entry, args=(tmp_path / "cache", log)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.read_text().count("computed") == 2

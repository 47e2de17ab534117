"""A full disk (ENOSPC) ends a command with one line and exit 2; earlier outputs stay intact (issue 16).

A small tmpfs is mounted for the test where the platform allows it (root, or a container with the
capability); elsewhere the test says why it cannot run.
"""

import errno
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from gate_helpers import SUBPROCESS_ENV, comparable, tiny_gate_command

from map_core.errors import MapSuiteError
from map_core.files import atomic_path, write_text_atomic
from validation.cli.main import main
from validation.gate.cache import verified_bytes

pytestmark = pytest.mark.slow  # subprocesses, OpenMM or whole gate runs: `pytest -m 'not slow' tests` skips them


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "small_disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", f"tmpfs-{uuid.uuid4().hex[:8]}", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip() or result.returncode}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_write_that_fills_the_disk_is_one_clear_error(small_disk):
    earlier = small_disk / "earlier.json"
    write_text_atomic(earlier, '{"kept": true}')
    with pytest.raises(MapSuiteError, match="not written: No space left on device") as info:
        with atomic_path(small_disk / "big.bin") as tmp:
            tmp.write_bytes(b"\0" * (2 << 20))
    assert "\n" not in str(info.value) and "big.bin" in str(info.value)
    assert earlier.read_text() == '{"kept": true}'
    assert sorted(p.name for p in small_disk.iterdir()) == ["earlier.json"]  # no temporary left behind


def test_train_on_a_full_disk_exits_2_with_one_line(small_disk, lattice_file):
    earlier = small_disk / "model.pt"
    earlier.write_bytes(b"an earlier output")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-m", "validation.cli", "train", "--data", str(lattice_file), "--out",
                             str(small_disk / "big.pt"), "--layers", "4", "--filters", "48", "--crop", "8", "--steps", "1",
                             "--test-crops", "1", "--no-progress", "--optimizer", "adam"],
                            capture_output=True, text=True, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "big.pt" in lines[0] and ("No space left" in lines[0] or "no space left" in lines[0]), lines[0]
    assert earlier.read_bytes() == b"an earlier output"
    assert sorted(p.name for p in small_disk.iterdir()) == ["model.pt"]


def test_the_gate_refuses_a_cache_too_small_for_its_boxes_before_any_work(small_disk, capsys):
    """The quick profile's boxes need about 2.4 MB of cache; a 1 MB disk is refused in one line."""
    rc = main(["validate", "--profile", "quick", "--cache", str(small_disk / "cache"), "--out", str(small_disk / "report")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "of disk" in err[0], err
    assert not (small_disk / "report").exists() and not any((small_disk / "cache").rglob("*.npz"))


def test_simulate_refuses_a_box_that_cannot_fit_in_memory_before_building_it(tmp_path, capsys):
    out = tmp_path / "huge.npz"
    rc = main(["simulate", "--waters", "100000000", "--frames", "2", "--stride-ps", "0.05", "--equilibrate-ps", "0",
               "--seed", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "GB of memory" in err[0], err
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


def fill(disk) -> None:
    """Write a filler file on `disk` until the file system says ENOSPC."""
    with open(disk / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e


def test_a_disk_that_fills_during_a_gate_run(small_disk, tmp_path, tiny_gate):
    """The cache's disk fills after the first sampled batch: one line, exit 2; the entries written so far
    still verify, and once there is room again the same command finishes with an uninterrupted run's results."""
    profile, model, reference = tiny_gate
    cache, out = small_disk / "cache", tmp_path / "report"
    command = tiny_gate_command(profile, model, cache, out)
    proc = subprocess.Popen(command, env=SUBPROCESS_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while not any(cache.glob("generated-*/boxes_*.npz.sha256")):
        assert proc.poll() is None and time.monotonic() - t0 < 120, "the run never wrote a batch"
        time.sleep(0.02)
    fill(small_disk)
    err = proc.communicate(timeout=300)[1].strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and "No space left on device" in err[0], err
    sealed = [p for p in cache.rglob("*") if p.suffix in (".npz", ".json")]
    assert sealed and all(verified_bytes(p) is not None for p in sealed if p.with_name(p.name + ".sha256").exists())
    assert not any(".tmp" in p.name for p in cache.rglob("*")), list(cache.rglob("*"))  # no temporaries left
    assert not out.exists()
    (small_disk / "filler").unlink()
    result = subprocess.run(command, env=SUBPROCESS_ENV, capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    assert comparable(json.loads((out / "results.json").read_text())) == comparable(reference)

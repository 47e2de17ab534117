"""A full disk (ENOSPC) ends a command with one line and exit 2; earlier outputs stay intact (issue 16).

A small tmpfs is mounted for the test where the platform allows it (root, or a container with the
capability); elsewhere the test says why it cannot run.
"""

import os
import subprocess
import sys
import uuid

import pytest

from map_core.errors import MapSuiteError
from map_core.files import atomic_path, write_text_atomic
from validation.cli.main import main


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

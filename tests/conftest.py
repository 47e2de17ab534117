# tests/ has no __init__.py, so pytest (default import mode) puts this folder on sys.path before it
# imports this file: the helper modules `waters` and `gate_helpers` import by their plain names.
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from gate_helpers import SUBPROCESS_ENV, TINY_PROFILE, save_tiny_model, tiny_gate_command
from waters import water_lattice

from map_core.atoms.frames import Frames, load_frames, save_frames

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def one_thread():
    """Every test runs torch on one thread, whatever an earlier test's CLI call (`--threads`) set:
    the test models are tiny, threads buy nothing, and on a busy machine torch's thread pool
    oversubscribes the cores and runs many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def md_frames():
    """A few frames of real q-TIP4P/F MD water (216 molecules), made by `map-suite simulate` (see tests/data/README.md)."""
    return load_frames(DATA / "water_md_small.npz")


@pytest.fixture
def lattice_file(tmp_path):
    """A frames file of 4 boxes of jittered-lattice waters (64 molecules, 1.24 nm box)."""
    rng = np.random.default_rng(0)
    parts = [water_lattice(4, 0.31, rng, 0.03) for _ in range(4)]
    path = tmp_path / "lattice.npz"
    save_frames(path, Frames.from_arrays([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts], [p[3] for p in parts]))
    return path


@pytest.fixture(scope="session")
def tiny_gate(tmp_path_factory):
    """(profile path, model path, results.json) of one uninterrupted crash-test gate run on a fresh cache."""
    root = tmp_path_factory.mktemp("tiny_gate")
    profile = root / "crash-test.toml"
    profile.write_text(TINY_PROFILE)
    model = save_tiny_model(root / "tiny.pt")
    result = subprocess.run(tiny_gate_command(profile, model, root / "cache", root / "report"), env=SUBPROCESS_ENV,
                            capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr
    return profile, model, json.loads((root / "report" / "results.json").read_text())

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

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
    from map_core.frames import load_frames
    return load_frames(DATA / "water_md_small.npz")


@pytest.fixture
def lattice_file(tmp_path):
    """A frames file of 4 boxes of jittered-lattice waters (64 molecules, 1.24 nm box)."""
    import numpy as np

    from map_core.frames import Frames, save_frames
    from waters import water_lattice

    rng = np.random.default_rng(0)
    parts = [water_lattice(4, 0.31, rng, 0.03) for _ in range(4)]
    path = tmp_path / "lattice.npz"
    save_frames(path, Frames.from_arrays([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts], [p[3] for p in parts]))
    return path

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

# The test models are tiny: threads buy nothing, and on a busy machine torch's thread pool
# oversubscribes the cores and runs many times slower.
torch.set_num_threads(1)

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def md_frames():
    """A few frames of real q-TIP4P/F MD water (216 molecules), made by `map-suite simulate` (see tests/data/README.md)."""
    from map_core.frames import load_frames
    return load_frames(DATA / "water_md_small.npz")

"""The reference a gate run judges against: training frames, their train/held-out split, their windows.

``Reference`` owns the frames file, its sha256, how it was found, and the split into the frames a
model was trained on and the frames it never saw. The split is the model's own (``test_fraction``
from the checkpoint's training settings), so held-out windows are never frames the model learned;
frames that come without a model (``--boxes``, calibration, error rates on the shipped set) are
split at ``HELDOUT_FRACTION``, training's default. Calibration, the error-rate measurement, the
gate and ``--boxes`` all cut their windows through this object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from map_core.atoms.frames import Frames, load_frames
from map_core.errors import MapSuiteError
from map_core.files import sha256_file
from map_core.training.crops import split_frames
from validation.gate.boxes import window_ensemble, window_grids

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_TRAINING_SET = PACKAGE_ROOT / "map_core" / "data" / "water_classical_216.npz"
HELDOUT_FRACTION = 0.2  # held-out share of frames that come without a model: `map-suite train`'s default --test-fraction


@dataclass
class Reference:
    """Reference frames and their split. Lengths nm.

    path, sha256: the frames file; source: how it was found (for the report); frames: map_core
    Frames; test_fraction: the held-out share (last frames, as training splits them).
    """

    path: Path
    sha256: str
    source: str
    frames: Frames
    test_fraction: float
    train_indices: list = field(init=False)
    heldout_indices: list = field(init=False)

    def __post_init__(self):
        self.train_indices, self.heldout_indices = split_frames(len(self.frames), self.test_fraction)

    def indices(self, which: str) -> list:
        """Frame indices of 'training' or 'heldout'."""
        return self.train_indices if which == "training" else self.heldout_indices

    def grids(self, which: str, shape, coder, n: int, rng, region=None) -> np.ndarray:
        """(n, Z, Y, X) voxel windows of the split `which`, encoded by `coder`."""
        return window_grids(self.frames, self.indices(which), shape, coder, n, rng, region)

    def windows(self, which: str, geometry, coder, n: int, rng):
        """Frames (open boxes) of `n` windows of `geometry` from the split `which`: voxelised by
        `coder` and decoded, or continuous positions with `coder` None."""
        return window_ensemble(self.frames, self.indices(which), geometry, coder, n, rng)

    def summary(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "found_as": self.source, "frames": len(self.frames),
                "train_frames": len(self.train_indices), "heldout_frames": len(self.heldout_indices),
                "test_fraction": self.test_fraction, "meta": self.frames.meta}


def load_reference(path, source: str, test_fraction: float = HELDOUT_FRACTION) -> Reference:
    """Read and check water reference frames (one MapSuiteError line on any problem)."""
    path = Path(path)
    if not path.is_file():
        raise MapSuiteError("no such reference frames file", path)
    frames = load_frames(path)
    check_water(frames, path)
    return Reference(path=path, sha256=sha256_file(path), source=source, frames=frames, test_fraction=float(test_fraction))


def check_water(frames, path) -> None:
    """Refuse reference frames holding atoms other than water's O and H (one MapSuiteError line)."""
    elements = set(np.unique(np.concatenate(frames.elements)))
    if not elements <= {"O", "H"}:
        raise MapSuiteError(f"reference frames hold {sorted(elements - {'O', 'H'})}; the gate compares water (O, H)", path)

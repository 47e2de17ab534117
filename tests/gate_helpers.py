"""Helpers of the gate tests: small real models and checkpoints whose training data is the shipped test frames."""

from pathlib import Path

import numpy as np

from map_core.files import sha256_file
from map_core.model.checkpoint import load_checkpoint, save_checkpoint
from map_core.model.default import default_model_path
from map_core.training import crops
from validation.gate.calibrate import marginal_model

__all__ = ["DATA", "VOXEL", "class_frequencies", "marginal_model", "save_model"]

DATA = Path(__file__).parent / "data" / "water_md_small.npz"


def _shipped_voxel() -> float:
    return float(load_checkpoint(default_model_path())["config"]["voxel_nm"])


# The shipped default model's voxel (nm): the shipped profiles are calibrated at it, so the
# calibration tests run at it too.
VOXEL = _shipped_voxel()


def class_frequencies(frames, voxel: float) -> np.ndarray:
    """(3,) fraction of empty, O and H voxels of all the voxelised frames."""
    grids = crops.voxelise(frames, voxel)
    return crops.class_frequencies(grids, range(len(grids)), 3)


def save_model(path, model, data=DATA) -> Path:
    """Save `model` as a checkpoint whose provenance names `data` as its training data."""
    save_checkpoint(path, model, {"data_path": str(data), "data_sha256": sha256_file(data), "steps": 0, "seed": 0,
                                  "settings": {"test_fraction": 0.2}})
    return Path(path)

"""Helpers of the gate tests: small real models and checkpoints whose training data is the shipped test frames."""

from pathlib import Path

import numpy as np

from map_core.files import sha256_file
from map_core.model.checkpoint import save_checkpoint
from map_core.training import crops
from validation.gate.calibrate import control_config, marginal_model, shipped_encoding

__all__ = ["CODER", "DATA", "VOXEL", "class_frequencies", "control_config", "marginal_model", "save_model"]

DATA = Path(__file__).parent / "data" / "water_md_small.npz"


# The shipped default model's encoding and voxel (nm): the shipped profiles are calibrated for
# them, so the calibration tests run with them too.
CODER = shipped_encoding()
VOXEL = CODER.voxel_nm


def class_frequencies(frames, coder=CODER) -> np.ndarray:
    """(n_classes,) fraction of the voxels in each class of all the frames voxelised by `coder`."""
    grids = crops.voxelise(frames, coder)
    return crops.class_frequencies(grids, range(len(grids)), coder.n_classes)


def save_model(path, model, data=DATA) -> Path:
    """Save `model` as a checkpoint whose provenance names `data` as its training data."""
    save_checkpoint(path, model, {"data_path": str(data), "data_sha256": sha256_file(data), "steps": 0, "seed": 0,
                                  "settings": {"test_fraction": 0.2}})
    return Path(path)

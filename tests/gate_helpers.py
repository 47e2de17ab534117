"""Helpers of the gate tests: small real models and checkpoints whose training data is the shipped test frames."""

import os
import sys
from pathlib import Path

import numpy as np

from map_core.atoms.frames import load_frames
from map_core.files import sha256_file
from map_core.model.checkpoint import save_checkpoint
from map_core.training import crops
from validation.gate.calibrate import control_config, marginal_model, shipped_encoding

__all__ = ["CODER", "DATA", "TINY_PROFILE", "VOXEL", "class_frequencies", "comparable", "control_config", "marginal_model",
           "save_model", "SUBPROCESS_ENV", "tiny_gate_command", "save_tiny_model"]

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


# A gate profile for the crash tests (kill -9, full disk, a Dask cluster): a small model
# (`save_tiny_model`), structure and Markov groups on 2 boxes of a 0.7 nm region sampled one per
# cached batch, no MD. These tests check what a kill or a full disk leaves and that a resumed or
# distributed run equals an uninterrupted one, which any real model shows; with the shipped model
# each run took 2-4 minutes of sampling on a 2-core machine.
TINY_PROFILE = """extends = "smoke"
[profile]
name = "crash-test"
[sampling]
region_nm = 0.7
burn_in_nm = 0.1
burn_in_fields = 0.5
n_boxes = 2
batch = 1
[reference]
windows = 4
[structure]
rdf_r_max_nm = 0.3
sq_r_max_nm = 0.5
classifier_epochs = 20
[markov]
seeded_boxes = 2
[md]
enabled = false
box_nm = 0.6
"""


def comparable(results: dict) -> dict:
    """A gate's results.json without what differs between equal runs: wall times and the run's provenance."""
    return {k: v for k, v in results.items() if k not in ("timing_s", "provenance")}


def save_tiny_model(path) -> Path:
    """A checkpoint of a 2-layer x 8-filter model of the shipped encoding, torch's random weights with
    the training frames' class frequencies as its output bias (``validation.gate.calibrate.marginal_model``),
    its training data the shipped test frames: a real chain at a twentieth of the shipped model's cost."""
    config = control_config(CODER, layers=2, filters=8, dropout=0.0)
    return save_model(path, marginal_model(config, class_frequencies(load_frames(DATA)), random_weights=True))


def tiny_gate_command(profile, model, cache, out) -> list:
    """`map-suite validate` of `model` (`save_tiny_model`) with the crash-test profile (gate_helpers.TINY_PROFILE)."""
    return [sys.executable, "-m", "validation.cli", "validate", "--model", str(model), "--profile", str(profile),
            "--cache", str(cache), "--out", str(out), "--groups", "structure,markov", "--no-progress"]


SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}

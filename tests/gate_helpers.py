"""Helpers of the gate tests: small real models and checkpoints whose training data is the shipped test frames."""

from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).parent / "data" / "water_md_small.npz"


def class_frequencies(frames, voxel: float) -> np.ndarray:
    """(3,) fraction of empty, O and H voxels of the voxelised frames."""
    from map_core.data import voxelise

    grids = voxelise(frames, voxel)
    counts = sum(np.bincount(g.ravel(), minlength=3) for g in grids)
    return counts / counts.sum()


def marginal_model(config, freq, random_weights: bool, seed: int = 0):
    """A PixelCNN3D whose output bias gives the class frequencies `freq`.

    random_weights=True: PyTorch's random initialisation elsewhere (the random-weight control);
    False: every other weight zero, i.e. voxels drawn independently with the training class
    frequencies (an ideal gas of atoms at the right density).
    """
    from map_core.model import PixelCNN3D

    torch.manual_seed(seed)
    model = PixelCNN3D(config)
    with torch.no_grad():
        if not random_weights:
            for p in model.parameters():
                p.zero_()
        model.head_out.bias.copy_(torch.log(torch.as_tensor(freq, dtype=torch.float32)))
    return model.eval()


def save_model(path, model, data=DATA) -> Path:
    """Save `model` as a checkpoint whose provenance names `data` as its training data."""
    from map_core.checkpoint import save_checkpoint
    from map_core.data import sha256_file

    save_checkpoint(path, model, {"data_path": str(data), "data_sha256": sha256_file(data), "steps": 0, "seed": 0,
                                  "settings": {"test_fraction": 0.2}})
    return Path(path)

"""Training: voxelised frames, rotation augmentation, crops and the train/test split; the training loop.

- ``crops``: frames -> class grids -> rotated crops, the held-out split, class frequencies;
- ``train``: optimiser, cross-entropy, checkpoints every N steps, exact resume;
- ``distributed``: the same loop in several processes under torchrun (DDP).
"""

from map_core.training.crops import (
    ROTATION_SETS,
    check_crop,
    class_frequencies,
    sample_crops,
    split_frames,
    voxelise,
)
from map_core.training.train import TrainSettings, baseline_cross_entropy, cross_entropy, train

__all__ = [
    "ROTATION_SETS", "TrainSettings", "baseline_cross_entropy", "check_crop", "class_frequencies",
    "cross_entropy", "sample_crops", "split_frames", "train", "voxelise",
]

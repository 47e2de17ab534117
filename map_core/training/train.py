"""Training a MAP PixelCNN on voxelised frames: SGD (or Adam), cross-entropy, checkpoints, resume.

Every step draws its crops from a generator seeded by (seed, step) and reseeds torch (dropout)
the same way, so a run resumed from a checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from map_core.atoms.frames import load_frames
from map_core.errors import MapSuiteError
from map_core.files import sha256_file
from map_core.model.checkpoint import check_voxel_size, load_checkpoint, save_checkpoint
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D, one_hot
from map_core.training.crops import (
    ROTATION_SETS,
    check_crop,
    class_frequencies,
    sample_crops,
    split_frames,
    voxelise,
)


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings. Seed 000: SGD, momentum 0.9, lr 0.01, batch 1, 40^3 crops."""

    crop: int = 32
    steps: int = 1000
    batch: int = 4
    lr: float = 0.01
    momentum: float = 0.9
    optimizer: str = "sgd"  # or "adam"
    rotations: str = "seed"  # "seed" (7), "full" (24) or "none"
    test_fraction: float = 0.2
    test_crops: int = 16
    checkpoint_every: int = 100
    seed: int = 0
    lr_drop_steps: tuple = ()  # at each of these steps the learning rate is multiplied by lr_drop_factor
    lr_drop_factor: float = 0.1

    def lr_at(self, step: int) -> float:
        """Learning rate of optimiser step `step` (0-based): a function of the step alone, so a
        resumed run and a run from scratch use the same rates."""
        return self.lr * self.lr_drop_factor ** sum(1 for s in self.lr_drop_steps if step >= s)

    def __post_init__(self):
        if self.optimizer not in ("sgd", "adam"):
            raise MapSuiteError(f"optimizer must be 'sgd' or 'adam', not {self.optimizer!r}")
        if self.rotations not in ROTATION_SETS:
            raise MapSuiteError(f"rotations must be one of {sorted(ROTATION_SETS)}, not {self.rotations!r}")
        if self.steps < 0 or self.batch < 1 or self.lr <= 0 or self.checkpoint_every < 1 or self.test_crops < 1:
            raise MapSuiteError("steps >= 0, batch >= 1, lr > 0, checkpoint_every >= 1 and test_crops >= 1 are required")
        object.__setattr__(self, "lr_drop_steps", tuple(sorted(int(s) for s in self.lr_drop_steps)))
        if any(s < 1 for s in self.lr_drop_steps) or not 0 < self.lr_drop_factor <= 1:
            raise MapSuiteError("learning-rate drop steps must be >= 1 and 0 < lr_drop_factor <= 1")


def cross_entropy(model, crops: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per voxel) of (B, Z, Y, X) class crops under `model`."""
    logits = model(one_hot(crops, model.config.n_classes))
    return F.cross_entropy(logits, crops)


def baseline_cross_entropy(freq: np.ndarray, crops: np.ndarray) -> float:
    """Cross-entropy (nats per voxel) of `crops` under independent voxels with class frequencies `freq`."""
    test_freq = np.bincount(crops.ravel(), minlength=len(freq)) / crops.size
    return float(-(test_freq * np.log(np.maximum(freq, 1e-12))).sum())


def make_optimizer(model, settings: TrainSettings):
    if settings.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.lr)
    return torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)


def train(data_path, out_path, config: ModelConfig, settings: TrainSettings, resume: bool = False, progress: bool = True,
          lr_drop: tuple | None = None) -> dict:
    """Train on the frames file `data_path`, checkpointing to `out_path`; return the provenance dict.

    With resume=True and an existing `out_path`, continue that run (its config and settings win)
    up to `settings.steps` total steps. lr_drop: (steps, factor) to set on resume; the steps
    already taken must keep their rates (same drops before the checkpoint's step, same factor if
    any), so the result equals a run from scratch with these settings.
    """
    data_path, out_path = Path(data_path), Path(out_path)
    start_step, history, elapsed = 0, [], 0.0
    model_state = optim_state = None
    if resume and out_path.exists():
        payload = load_checkpoint(out_path)
        state = payload.get("training_state") or {}
        if "step" not in state:
            raise MapSuiteError("checkpoint has no training state to resume from", out_path)
        old_settings = state["settings"]
        settings = TrainSettings(**{**old_settings, "steps": settings.steps})
        if lr_drop is not None:
            new = dataclasses.replace(settings, lr_drop_steps=tuple(lr_drop[0]), lr_drop_factor=float(lr_drop[1]))
            if any(new.lr_at(s) != settings.lr_at(s) for s in range(state["step"])):
                raise MapSuiteError(f"the learning-rate drops {list(new.lr_drop_steps)} x {new.lr_drop_factor} change the rate "
                                    f"of steps before the checkpoint's step {state['step']}; a resumed run can only change "
                                    "steps not taken yet", out_path)
            settings = new
        old_config = ModelConfig.from_dict(payload["config"])
        check_voxel_size(old_config.voxel_nm, config.voxel_nm, out_path)
        config = old_config
        start_step, history, elapsed = state["step"], list(state["history"]), state["elapsed_s"]
        model_state, optim_state = payload["state_dict"], state["optimizer"]
        data_sha = sha256_file(data_path)
        if payload["provenance"].get("data_sha256") != data_sha:
            raise MapSuiteError("resume refused: data file differs from the one this checkpoint was trained on", data_path)
    frames = load_frames(data_path)
    grids = voxelise(frames, config.voxel_nm, data_path)
    check_crop(grids, settings.crop, data_path)
    train_idx, test_idx = split_frames(len(grids), settings.test_fraction)
    rotations = ROTATION_SETS[settings.rotations]()
    freq = class_frequencies(grids, train_idx, config.n_classes)
    test_crops = sample_crops(grids, test_idx, settings.crop, settings.test_crops, np.random.default_rng([settings.seed, 2**31]), [()])
    baseline = baseline_cross_entropy(freq, test_crops)
    data_sha = sha256_file(data_path)

    torch.manual_seed(settings.seed)
    model = PixelCNN3D(config)
    optimizer = make_optimizer(model, settings)
    if model_state is not None:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
    else:
        # Start at the class-frequency baseline: with ~0.15 % of voxels occupied, learning the
        # marginal alone would otherwise take most of a short run.
        with torch.no_grad():
            model.head_out.bias.copy_(torch.log(torch.as_tensor(np.maximum(freq, 1e-12), dtype=torch.float32)))

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            losses = [cross_entropy(model, torch.from_numpy(test_crops[i : i + 4])).item() * len(test_crops[i : i + 4]) for i in range(0, len(test_crops), 4)]
        model.train()
        return float(sum(losses) / len(test_crops))

    def checkpoint(step: int, test_ce: float | None) -> dict:
        provenance = {
            "data_path": str(data_path), "data_sha256": data_sha, "data_meta": frames.meta,
            "frames": len(grids), "train_frames": len(train_idx), "test_frames": len(test_idx),
            "steps": step, "seed": settings.seed, "settings": dataclasses.asdict(settings),
            "train_loss_last": history[-1][1] if history else None,
            "test_cross_entropy": test_ce, "baseline_cross_entropy": baseline,
            "class_frequencies": freq.tolist(), "wall_time_s": elapsed,
            "torch_version": str(torch.__version__),
        }
        training_state = {
            "step": step, "settings": dataclasses.asdict(settings), "optimizer": optimizer.state_dict(),
            "history": history, "elapsed_s": elapsed,
        }
        save_checkpoint(out_path, model, provenance, training_state)
        return provenance

    bar = None
    if progress:
        bar = tqdm(total=settings.steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)
    model.train()
    t0 = time.perf_counter() - elapsed
    for step in range(start_step, settings.steps):
        rng = np.random.default_rng([settings.seed, step])
        torch.manual_seed(settings.seed * 1_000_003 + step)
        crops = torch.from_numpy(sample_crops(grids, train_idx, settings.crop, settings.batch, rng, rotations))
        loss = cross_entropy(model, crops)
        if not math.isfinite(loss.item()):
            raise MapSuiteError(f"training diverged at step {step} (loss {loss.item()}); last checkpoint kept, try a smaller --lr", out_path)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = settings.lr_at(step)
        optimizer.step()
        history.append((step + 1, float(loss.item())))
        elapsed = time.perf_counter() - t0
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if (step + 1) % settings.checkpoint_every == 0 and step + 1 < settings.steps:
            checkpoint(step + 1, None)
    if bar:
        bar.close()
    test_ce = evaluate()
    return checkpoint(settings.steps, test_ce)

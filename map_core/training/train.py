"""Training a MAP PixelCNN on voxelised frames: SGD (or Adam), cross-entropy, checkpoints, resume.

Every step draws its crops from a generator seeded by (seed, step) and reseeds torch (dropout)
the same way, so a run resumed from a checkpoint continues exactly as if it had never stopped
(on the same device and precision; CUDA runs use cuDNN's deterministic algorithms for this).

On a CUDA device the voxelised frames live on the device and crops are cut there (only the
(frame, corner, rotation) draws come from the host), the forward pass runs under bf16 autocast
unless ``precision="fp32"``, and the loss is read back only every ``SYNC_EVERY`` steps, so the
host never waits for the device between steps.

Under torchrun the same command trains one model in several processes
(map_core.training.distributed): each takes an equal share of every step's crops.
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
from map_core.model.device import resolve_device
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.training import distributed
from map_core.training.crops import (
    ROTATION_SETS,
    check_crop,
    class_frequencies,
    class_permutations,
    crop_specs,
    cut_crops,
    sample_crops,
    split_frames,
    voxelise,
)

PRECISIONS = ("auto", "fp32", "bf16")
SYNC_EVERY = 10  # steps between reads of the loss from the device (progress, history, NaN check)


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


def cross_entropy(model, crops: torch.Tensor, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Mean cross-entropy (nats per voxel, float32) of (B, Z, Y, X) class crops under `model`;
    with `autocast_dtype` (torch.bfloat16) the network runs under autocast on the crops' device."""
    crops = crops.long()
    with torch.autocast(crops.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        logits = model.logits(crops) if hasattr(model, "logits") else model(crops)  # a DDP wrapper has only forward
    return F.cross_entropy(logits.float(), crops)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bfloat16 for precision "bf16" (and "auto" on CUDA), None (fp32) otherwise."""
    if precision not in PRECISIONS:
        raise MapSuiteError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def _to_cpu(state):
    """A state dict (nested dicts and lists of tensors) with every tensor on the CPU."""
    if isinstance(state, torch.Tensor):
        return state.detach().cpu()
    if isinstance(state, dict):
        return {k: _to_cpu(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_to_cpu(v) for v in state)
    return state


def baseline_cross_entropy(freq: np.ndarray, crops: np.ndarray) -> float:
    """Cross-entropy (nats per voxel) of `crops` under independent voxels with class frequencies `freq`."""
    test_freq = np.bincount(crops.ravel(), minlength=len(freq)) / crops.size
    return float(-(test_freq * np.log(np.maximum(freq, 1e-12))).sum())


def make_optimizer(model, settings: TrainSettings):
    if settings.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=settings.lr)
    return torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)


def train(data_path, out_path, config: ModelConfig, settings: TrainSettings, resume: bool = False, progress: bool = True,
          lr_drop: tuple | None = None, device: str = "cpu", precision: str = "auto") -> dict:
    """Train on the frames file `data_path`, checkpointing to `out_path`; return the provenance dict.

    device: "cpu", "cuda" or "cuda:N"; precision: "auto" (bf16 autocast on CUDA, fp32 on the
    CPU), "fp32" or "bf16". Each (re)start appends (device, precision, first step) to the
    checkpoint's provenance ``segments``.

    With resume=True and an existing `out_path`, continue that run (its config and settings win)
    up to `settings.steps` total steps. lr_drop: (steps, factor) to set on resume; the steps
    already taken must keep their rates (same drops before the checkpoint's step, same factor if
    any), so the result equals a run from scratch with these settings.
    Launched by torchrun, the processes share every step's batch (map_core.training.distributed);
    process 0 writes the checkpoints.
    """
    data_path, out_path = Path(data_path), Path(out_path)
    rank, world, dev = distributed.start(resolve_device(device), settings.batch)
    try:
        return _train(data_path, out_path, config, settings, resume, progress and rank == 0, lr_drop, dev, precision,
                      rank, world)
    finally:
        distributed.stop()


def _train(data_path, out_path, config, settings, resume, progress, lr_drop, dev, precision, rank, world) -> dict:
    amp = autocast_dtype(precision, dev)
    start_step, history, elapsed, segments = 0, [], 0.0, []
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
        segments = list(state.get("segments") or [{"device": "cpu", "precision": "fp32", "from_step": 0}])
        model_state, optim_state = payload["state_dict"], state["optimizer"]
        data_sha = sha256_file(data_path)
        if payload["provenance"].get("data_sha256") != data_sha:
            raise MapSuiteError("resume refused: data file differs from the one this checkpoint was trained on", data_path)
    distributed.check_batch(settings.batch, world)  # a resumed run keeps its checkpoint's batch
    frames = load_frames(data_path)
    grids = voxelise(frames, config.coder(), data_path)
    check_crop(grids, settings.crop, data_path)
    train_idx, test_idx = split_frames(len(grids), settings.test_fraction)
    rotations = ROTATION_SETS[settings.rotations]()
    perms = class_permutations(config.coder(), rotations)
    freq = class_frequencies(grids, train_idx, config.n_classes)
    test_crops = sample_crops(grids, test_idx, settings.crop, settings.test_crops, np.random.default_rng([settings.seed, 2**31]), [()])
    baseline = baseline_cross_entropy(freq, test_crops)
    data_sha = sha256_file(data_path)

    segments.append({"device": str(dev), "precision": "fp32" if amp is None else "bf16", "from_step": start_step,
                     "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                     "processes": world})
    if dev.type == "cuda":
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False  # exact resume

    torch.manual_seed(settings.seed)
    model = PixelCNN3D(config).to(dev)
    optimizer = make_optimizer(model, settings)
    if model_state is not None:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optim_state)
    else:
        # Start at the class-frequency baseline: with ~0.15 % of voxels occupied, learning the
        # marginal alone would otherwise take most of a short run.
        with torch.no_grad():
            model.head_out.bias.copy_(torch.log(torch.as_tensor(np.maximum(freq, 1e-12), dtype=torch.float32)))
    net = distributed.wrap(model, dev, world)
    # On the CPU crops are cut from the numpy grids (as always); elsewhere from copies on the device.
    device_grids = grids if dev.type == "cpu" else [torch.from_numpy(g).to(dev) for g in grids]
    if perms is not None and dev.type != "cpu":
        perms = [torch.from_numpy(p).to(dev) for p in perms]
    shapes = [g.shape for g in grids]
    test_tensor = torch.from_numpy(test_crops).to(dev)

    def evaluate() -> float:
        """Held-out cross-entropy in fp32 whatever the training precision: the number models are chosen by."""
        model.eval()
        with torch.no_grad():
            losses = [cross_entropy(model, test_tensor[i : i + 4]).item() * len(test_tensor[i : i + 4])
                      for i in range(0, len(test_tensor), 4)]
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
            "torch_version": str(torch.__version__), "segments": segments,
        }
        training_state = {
            "step": step, "settings": dataclasses.asdict(settings), "optimizer": _to_cpu(optimizer.state_dict()),
            "history": history, "elapsed_s": elapsed, "segments": segments,
        }
        if rank == 0:
            save_checkpoint(out_path, model, provenance, training_state)
        distributed.barrier(world)  # no process runs ahead of a checkpoint it could be resumed from
        return provenance

    bar = None
    if progress:
        bar = tqdm(total=settings.steps, initial=start_step, desc="train", unit="step", dynamic_ncols=True)
    model.train()
    t0 = time.perf_counter() - elapsed
    pending = []  # (step, loss on the device) not yet read back

    def drain():
        """Read the pending losses back (one host-device sync), check them, record them."""
        nonlocal elapsed
        if not pending:
            return
        values = torch.stack([loss for _, loss in pending]).tolist()
        for (step, _), value in zip(pending, values):
            if not math.isfinite(value):
                raise MapSuiteError(f"training diverged at step {step} (loss {value}); last checkpoint kept, try a smaller --lr", out_path)
            history.append((step + 1, float(value)))
        pending.clear()
        elapsed = time.perf_counter() - t0
        if bar:
            bar.update(history[-1][0] - bar.n)
            bar.set_postfix(loss=f"{history[-1][1]:.4f}")

    for step in range(start_step, settings.steps):
        rng = np.random.default_rng([settings.seed, step])
        torch.manual_seed(settings.seed * 1_000_003 + step)
        specs = crop_specs(shapes, train_idx, settings.crop, settings.batch, rng, len(rotations))
        crops = cut_crops(device_grids, distributed.share(specs, rank, world), settings.crop, rotations, perms)
        loss = cross_entropy(net, torch.from_numpy(crops) if dev.type == "cpu" else crops, amp)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in optimizer.param_groups:
            group["lr"] = settings.lr_at(step)
        pending.append((step, distributed.mean_over_processes(loss.detach(), world)))
        if dev.type == "cpu" or len(pending) >= SYNC_EVERY or (step + 1) % settings.checkpoint_every == 0:
            drain()  # every loss is checked before the checkpoint that would hold its step
        optimizer.step()
        if (step + 1) % settings.checkpoint_every == 0 and step + 1 < settings.steps:
            checkpoint(step + 1, None)
    drain()
    if bar:
        bar.close()
    test_ce = evaluate()
    return checkpoint(settings.steps, test_ce)

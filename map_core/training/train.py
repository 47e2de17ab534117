"""Training a MAP model on voxelised frames: SGD (or Adam), cross-entropy, checkpoints, resume.

The network and its loss come from the model's kind (``map_core.model.kinds``, by
``ModelConfig.kind``). `train` runs four steps: the run's state (fresh, or resumed from the
checkpoint: `resume_state`), the data (`load_data`: voxelised frames, the held-out split, the
class-frequency baseline; the data file is hashed once), the loop (`train_steps`), and the
provenance written with every checkpoint (`save`).

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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from map_core.atoms.frames import Frames, load_frames
from map_core.errors import MapSuiteError
from map_core.files import sha256_file
from map_core.model.checkpoint import check_voxel_size, load_checkpoint, load_model, save_checkpoint
from map_core.model.device import resolve_device
from map_core.model.kind_base import ModelKind
from map_core.model.kinds import kind_of
from map_core.model.pixelcnn import ModelConfig
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
    init_from: str = ""  # checkpoint whose weights a fresh run starts from, where they fit (ModelKind.warm_start)

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
    """Mean cross-entropy (nats per voxel, float32) of (B, Z, Y, X) class crops under `model` (its kind's
    training loss); with `autocast_dtype` (torch.bfloat16) the network runs under autocast on the crops' device."""
    return kind_of(model.config).loss(model, crops, autocast_dtype)


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
    """The optimiser over the parameter groups of the model's kind, each at its `lr_scale` x the run's rate."""
    groups = [{"params": params, "lr": settings.lr * scale, "lr_scale": scale}
              for params, scale in kind_of(model.config).param_groups(model)]
    if settings.optimizer == "adam":
        return torch.optim.Adam(groups, lr=settings.lr)
    return torch.optim.SGD(groups, lr=settings.lr, momentum=settings.momentum)


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
        amp = autocast_dtype(precision, dev)
        if resume and out_path.exists():
            state = resume_state(out_path, data_path, config, settings, lr_drop)
        else:
            state = RunState(config, settings)
        distributed.check_batch(state.settings.batch, world)  # a resumed run keeps its checkpoint's batch
        data = load_data(data_path, state.config, state.settings, state.data_sha256)
        state.segments.append({"device": str(dev), "precision": "fp32" if amp is None else "bf16", "from_step": state.step,
                               "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                               "processes": world})
        if dev.type == "cuda":
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False  # exact resume
        run = start_run(state, data, out_path, dev, amp, rank, world)
        bar = None
        if progress and rank == 0:
            bar = tqdm(total=state.settings.steps, initial=state.step, desc="train", unit="step", dynamic_ncols=True)
        train_steps(run, bar)
        if bar:
            bar.close()
        return save(run, state.settings.steps, held_out_cross_entropy(run))
    finally:
        distributed.stop()


# --- 1. the run's state: fresh, or where the checkpoint left it ---------------------------------

@dataclass
class RunState:
    """What a checkpoint's training state holds: the run's config and settings, the next step, the
    (step, loss) history, wall time and (re)start segments so far, the weights and optimiser state
    to continue from (None: a fresh run), and the data's sha256 when a resume has checked it."""

    config: ModelConfig
    settings: TrainSettings
    step: int = 0
    history: list = field(default_factory=list)
    elapsed_s: float = 0.0
    segments: list = field(default_factory=list)
    model_state: dict | None = None
    optimizer_state: dict | None = None
    data_sha256: str | None = None


def resume_state(out_path: Path, data_path: Path, config: ModelConfig, settings: TrainSettings, lr_drop) -> RunState:
    """The state of the run saved in `out_path`, to continue up to `settings.steps` steps; refused if its
    voxel size differs from `config`'s, if `lr_drop` would change the rate of steps already taken, or
    if `data_path` is not the file it was trained on."""
    payload = load_checkpoint(out_path)
    state = payload.get("training_state") or {}
    if "step" not in state:
        raise MapSuiteError("checkpoint has no training state to resume from", out_path)
    settings = TrainSettings(**{**state["settings"], "steps": settings.steps})
    if lr_drop is not None:
        new = dataclasses.replace(settings, lr_drop_steps=tuple(lr_drop[0]), lr_drop_factor=float(lr_drop[1]))
        if any(new.lr_at(s) != settings.lr_at(s) for s in range(state["step"])):
            raise MapSuiteError(f"the learning-rate drops {list(new.lr_drop_steps)} x {new.lr_drop_factor} change the rate "
                                f"of steps before the checkpoint's step {state['step']}; a resumed run can only change "
                                "steps not taken yet", out_path)
        settings = new
    old_config = ModelConfig.from_dict(payload["config"])
    check_voxel_size(old_config.voxel_nm, config.voxel_nm, out_path)
    data_sha = sha256_file(data_path)
    if payload["provenance"].get("data_sha256") != data_sha:
        raise MapSuiteError("resume refused: data file differs from the one this checkpoint was trained on", data_path)
    return RunState(config=old_config, settings=settings, step=state["step"], history=list(state["history"]),
                    elapsed_s=state["elapsed_s"],
                    segments=list(state.get("segments") or [{"device": "cpu", "precision": "fp32", "from_step": 0}]),
                    model_state=payload["state_dict"], optimizer_state=state["optimizer"], data_sha256=data_sha)


# --- 2. the data ------------------------------------------------------------------------------

@dataclass
class TrainingData:
    """The voxelised frames of a data file and what the run derives from them once."""

    path: Path
    sha256: str
    frames: Frames
    grids: list  # (Z, Y, X) uint8 class grids, one per frame
    train_idx: list
    test_idx: list
    rotations: list  # augmentation: rot90 step tuples
    perms: list | None  # the class map of each rotation (None: classes do not turn)
    freq: np.ndarray  # class frequencies of the training frames
    test_crops: np.ndarray  # (test_crops, crop, crop, crop) int64, unrotated, from the held-out frames
    baseline: float  # cross-entropy of test_crops under independent voxels with `freq`


def load_data(data_path: Path, config: ModelConfig, settings: TrainSettings, sha256: str | None = None) -> TrainingData:
    """Voxelise `data_path` with `config`'s encoding and split it (`sha256`: the file's, if already known)."""
    frames = load_frames(data_path)
    coder = config.coder()
    grids = voxelise(frames, coder, data_path)
    check_crop(grids, settings.crop, data_path)
    train_idx, test_idx = split_frames(len(grids), settings.test_fraction)
    rotations = ROTATION_SETS[settings.rotations]()
    perms = class_permutations(coder, rotations)
    freq = class_frequencies(grids, train_idx, config.n_classes)
    test_crops = sample_crops(grids, test_idx, settings.crop, settings.test_crops, np.random.default_rng([settings.seed, 2**31]), [()])
    baseline = baseline_cross_entropy(freq, test_crops)
    return TrainingData(path=data_path, sha256=sha256 or sha256_file(data_path), frames=frames, grids=grids,
                        train_idx=train_idx, test_idx=test_idx, rotations=rotations, perms=perms, freq=freq,
                        test_crops=test_crops, baseline=baseline)


# --- 3. the model and the loop ----------------------------------------------------------------

@dataclass
class Run:
    """One (re)started run: its state and data, the model of its kind with its optimiser, where it
    checkpoints, and where it runs (device, autocast dtype or None, process rank and count)."""

    state: RunState
    data: TrainingData
    kind: ModelKind
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    out_path: Path
    dev: torch.device
    amp: torch.dtype | None
    rank: int
    world: int


def start_run(state: RunState, data: TrainingData, out_path: Path, dev: torch.device, amp, rank: int, world: int) -> Run:
    """The model and optimiser: from the checkpoint's state, or new weights (seeded by the run's seed)
    that start at the class-frequency baseline."""
    torch.manual_seed(state.settings.seed)
    kind = kind_of(state.config)
    model = kind.build(state.config).to(dev)
    optimizer = make_optimizer(model, state.settings)
    if state.model_state is not None:
        model.load_state_dict(state.model_state)
        optimizer.load_state_dict(state.optimizer_state)
    else:
        kind.start_from_frequencies(model, data.freq)
        if state.settings.init_from:
            source, payload = load_model(state.settings.init_from)
            check_voxel_size(source.config.voxel_nm, state.config.voxel_nm, state.settings.init_from)
            copied = kind.warm_start(model.cpu(), source)
            model.to(dev)
            state.segments[-1]["init_from"] = {"path": state.settings.init_from, "tensors": len(copied),
                                               "sha256": sha256_file(state.settings.init_from)}
    return Run(state, data, kind, model, optimizer, out_path, dev, amp, rank, world)


class _Losses:
    """Step losses still on the device, read back in one host-device sync (`drain`), checked and recorded."""

    def __init__(self, run: Run, bar):
        self.run, self.bar, self.pending = run, bar, []
        self.t0 = time.perf_counter() - run.state.elapsed_s

    def drain(self) -> None:
        if not self.pending:
            return
        state = self.run.state
        values = torch.stack([loss for _, loss in self.pending]).tolist()
        for (step, _), value in zip(self.pending, values):
            if not math.isfinite(value):
                raise MapSuiteError(f"training diverged at step {step} (loss {value}); last checkpoint kept, try a smaller --lr",
                                    self.run.out_path)
            state.history.append((step + 1, float(value)))
        self.pending.clear()
        state.elapsed_s = time.perf_counter() - self.t0
        if self.bar:
            self.bar.update(state.history[-1][0] - self.bar.n)
            self.bar.set_postfix(loss=f"{state.history[-1][1]:.4f}")


def train_steps(run: Run, bar=None) -> None:
    """Optimiser steps from the run's step to its settings' total, checkpointing every checkpoint_every steps."""
    s, data, dev = run.state.settings, run.data, run.dev
    objective = distributed.wrap(distributed.Objective(run.kind, run.model, run.amp), dev, run.world)
    # On the CPU crops are cut from the numpy grids (as always); elsewhere from copies on the device.
    grids = data.grids if dev.type == "cpu" else [torch.from_numpy(g).to(dev) for g in data.grids]
    perms = data.perms
    if perms is not None and dev.type != "cpu":
        perms = [torch.from_numpy(p).to(dev) for p in perms]
    shapes = [g.shape for g in data.grids]
    run.model.train()
    losses = _Losses(run, bar)
    for step in range(run.state.step, s.steps):
        rng = np.random.default_rng([s.seed, step])
        torch.manual_seed(s.seed * 1_000_003 + step)
        specs = crop_specs(shapes, data.train_idx, s.crop, s.batch, rng, len(data.rotations))
        crops = cut_crops(grids, distributed.share(specs, run.rank, run.world), s.crop, data.rotations, perms)
        loss = objective(torch.from_numpy(crops) if dev.type == "cpu" else crops)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for group in run.optimizer.param_groups:
            group["lr"] = s.lr_at(step) * group.get("lr_scale", 1.0)
        losses.pending.append((step, distributed.mean_over_processes(loss.detach(), run.world)))
        if dev.type == "cpu" or len(losses.pending) >= SYNC_EVERY or (step + 1) % s.checkpoint_every == 0:
            losses.drain()  # every loss is checked before the checkpoint that would hold its step
        run.optimizer.step()
        if (step + 1) % s.checkpoint_every == 0 and step + 1 < s.steps:
            save(run, step + 1, None)
    losses.drain()


def held_out_cross_entropy(run: Run) -> float:
    """Held-out cross-entropy in fp32 whatever the training precision: the number models are chosen by."""
    model, test = run.model, torch.from_numpy(run.data.test_crops).to(run.dev)
    model.eval()
    with torch.no_grad():
        losses = [run.kind.loss(model, test[i : i + 4]).item() * len(test[i : i + 4]) for i in range(0, len(test), 4)]
    model.train()
    return float(sum(losses) / len(test))


# --- 4. provenance and checkpoints ------------------------------------------------------------

def provenance(run: Run, step: int, test_ce: float | None) -> dict:
    """What a checkpoint says about how its weights were made."""
    data, state, s = run.data, run.state, run.state.settings
    return {
        "data_path": str(data.path), "data_sha256": data.sha256, "data_meta": data.frames.meta,
        "frames": len(data.grids), "train_frames": len(data.train_idx), "test_frames": len(data.test_idx),
        "steps": step, "seed": s.seed, "settings": dataclasses.asdict(s),
        "train_loss_last": state.history[-1][1] if state.history else None,
        "test_cross_entropy": test_ce, "baseline_cross_entropy": data.baseline,
        "class_frequencies": data.freq.tolist(), "wall_time_s": state.elapsed_s,
        "torch_version": str(torch.__version__), "segments": state.segments,
    }


def save(run: Run, step: int, test_ce: float | None) -> dict:
    """Checkpoint the run after `step` steps (process 0 writes; the others wait for it); returns the provenance."""
    state = run.state
    prov = provenance(run, step, test_ce)
    training_state = {
        "step": step, "settings": dataclasses.asdict(state.settings), "optimizer": _to_cpu(run.optimizer.state_dict()),
        "history": state.history, "elapsed_s": state.elapsed_s, "segments": state.segments,
    }
    if run.rank == 0:
        save_checkpoint(run.out_path, run.model, prov, training_state)
    distributed.barrier(run.world)  # no process runs ahead of a checkpoint it could be resumed from
    return prov

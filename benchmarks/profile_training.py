"""Where a training step's time goes, and which changes make it faster (issue 25).

Run: python -m benchmarks.profile_training [--quick] [--steps N] [--threads T]

A step is what `map_core.training.train` does per step: the model kind's loss on a batch of 2 real
training crops of 32^3 voxels, backward, and an Adam step, on the CPU.

1. Components. Every causal convolution (depth, vertical, horizontal stacks) and 1x1 map of the
   shipped architecture is timed alone, forward plus backward, at the input shape it gets in a step,
   and summed by role; "other" is the step's time less the components (gates, shifts, the loss's
   log-softmax, the optimiser).
2. Variants, each timed over the same crops in this one run and given as a ratio to the default:
   the old nn.Conv3d 1x1 maps, channels-last 3D memory, torch.compile, bf16 autocast, a wider trunk,
   and the two-stage kind's step (its orientation stage is the difference).

Times are medians over `steps` steps after warm-up, so a second process on the machine slows all
variants alike; the ratios are the result. Which variant pays depends on the CPU (bf16 autocast is
1.27x faster on an AVX512-BF16 EPYC and 40x slower on an AVX2-only one, where bf16 is emulated), so
benchmarks/results/training_profile.json keeps one entry per CPU model and flag set, this run's
replacing that machine's earlier one.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import machine_info
from map_core.atoms.encoding import Encoding
from map_core.files import write_text_atomic
from map_core.model.kinds import kind_of
from map_core.model.pixelcnn import CausalConv3d, ModelConfig, Pointwise
from map_core.training.crops import sample_crops
from map_core.training.train import TrainSettings, load_data

RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).resolve().parents[1] / "map_core" / "data" / "water_classical_216.npz"
SHIPPED = dict(layers=12, filters=16, encoding="water", voxel_nm=0.05, dropout=0.1)  # the shipped model's architecture
BATCH, CROP = 2, 32  # as the shipped model and the long run are trained
PROFILE = RESULTS / "training_profile.json"


def config(**changes) -> ModelConfig:
    arch = {**SHIPPED, **changes}
    return ModelConfig(n_classes=Encoding(arch["encoding"], arch["voxel_nm"]).n_classes, **arch)


def real_crops(cfg: ModelConfig, n: int) -> torch.Tensor:
    """(n, CROP, CROP, CROP) class canvases cut from the training frames (seeded)."""
    data = load_data(DATA, cfg, TrainSettings(crop=CROP, test_crops=1))
    return torch.from_numpy(sample_crops(data.grids, data.train_idx, CROP, n, np.random.default_rng(0), [()]))


def median_ms(fn, steps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def step_fn(net, kind, crops, amp=None, memory_format=None):
    """One training step (loss, backward, Adam) on `crops`, as a closure."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = kind.loss(net, crops, amp)
        loss.backward()
        opt.step()
    if memory_format is not None:
        net.to(memory_format=memory_format)
    return step


def role(name: str) -> str:
    last = name.rsplit(".", 1)[-1]
    if name.startswith("head") or ".head" in name:
        return "head 1x1 maps"
    if last in ("depth", "vertical", "horizontal"):
        return f"{last} causal convolutions"
    return "1x1 maps in the layers"


def components(net, crops, steps: int) -> dict:
    """Forward+backward ms per step of each role, each module timed alone at its step input shape."""
    shapes = {}

    def keep_shape(name):
        def hook(module, inputs, output):
            shapes.setdefault(name, inputs[0].shape)  # returns None: the output stays
        return hook
    hooks = [m.register_forward_hook(keep_shape(n)) for n, m in net.named_modules() if isinstance(m, (CausalConv3d, Pointwise))]
    with torch.no_grad():
        kind_of(net.config).loss(net, crops)
    for h in hooks:
        h.remove()
    modules = dict(net.named_modules())
    out = {}
    for name, shape in shapes.items():
        x = torch.randn(shape, requires_grad=True)
        m = modules[name]
        out.setdefault(role(name), 0.0)
        out[role(name)] += median_ms(lambda: m(x).sum().backward(), steps)
    return out


def with_conv3d_maps(net):
    """A copy of `net` whose 1x1 maps are plain nn.Conv3d (the path before Pointwise), same weights."""
    net = copy.deepcopy(net)
    for name, m in list(net.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, Pointwise):
                conv = torch.nn.Conv3d(child.in_channels, child.out_channels, 1)
                conv.load_state_dict(child.state_dict())
                setattr(m, child_name, conv)
    return net


def variants(crops_by_classes, steps: int, quick: bool) -> dict:
    cfg = config()
    kind = kind_of(cfg)
    crops = crops_by_classes
    rows = {}

    def add(label, net, k=kind, **kw):
        try:
            rows[label] = median_ms(step_fn(net, k, crops, **kw), steps)
        except Exception as e:  # a variant this torch or CPU cannot run is a result, not a crash
            rows[label] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
        print(f"  {label}: {rows[label] if isinstance(rows[label], str) else f'{rows[label]:.0f} ms/step'}", flush=True)

    torch.manual_seed(0)
    base = kind.build(cfg)
    add("default (1x1 maps as batched matrix products)", base)
    add("1x1 maps as nn.Conv3d (before)", with_conv3d_maps(base))
    add("channels-last 3D", copy.deepcopy(base), memory_format=torch.channels_last_3d)
    add("bf16 autocast", copy.deepcopy(base), amp=torch.bfloat16)
    if not quick:
        add("torch.compile", torch.compile(copy.deepcopy(base)))
        wide_cfg = config(filters=32)
        wide = kind_of(wide_cfg).build(wide_cfg)
        add("32 filters", wide, kind_of(wide_cfg))
        add("32 filters, bf16 autocast", copy.deepcopy(wide), kind_of(wide_cfg), amp=torch.bfloat16)
        two_cfg = dataclasses.replace(cfg, kind="two-stage", reach_nm=0.35)
        add("two-stage kind (stage 1 as default + orientation stage)", kind_of(two_cfg).build(two_cfg), kind_of(two_cfg))
    return rows


def merged_runs(run: dict) -> list:
    """The runs already in PROFILE, with `run` replacing the one of the same CPU model and flags."""
    def key(r):
        return r["machine"]["cpu"], tuple(r["machine"].get("cpu_flags") or ())
    try:
        runs = json.loads(PROFILE.read_text())["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        runs = []
    return [r for r in runs if isinstance(r, dict) and "machine" in r and key(r) != key(run)] + [run]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="components and three variants only, 3 timed steps")
    p.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default 5; 3 with --quick)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = args.steps or (3 if args.quick else 5)
    cfg = config()
    crops = real_crops(cfg, BATCH)
    torch.manual_seed(0)
    net = kind_of(cfg).build(cfg)
    step_ms = median_ms(step_fn(copy.deepcopy(net), kind_of(cfg), crops), steps)
    print(f"default step: {step_ms:.0f} ms ({BATCH * 1e3 / step_ms:.2f} crops/s of {CROP}^3)", flush=True)
    parts = components(net, crops, steps)
    parts["other (gates, shifts, loss, optimiser)"] = step_ms - sum(parts.values())
    for k, v in parts.items():
        print(f"  {k}: {v:.0f} ms ({100 * v / step_ms:.0f} %)", flush=True)
    print("variants:", flush=True)
    rows = variants(crops, steps, args.quick)
    ref = rows["default (1x1 maps as batched matrix products)"]
    ratios = {k: (ref / v if isinstance(v, float) else v) for k, v in rows.items()}
    out = {"machine": machine_info(), "batch": BATCH, "crop": CROP, "steps": steps, "architecture": cfg.to_dict(),
           "step_ms": step_ms, "components_ms": parts, "variants_ms": rows, "speed_vs_default": ratios}
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(PROFILE, json.dumps({"runs": merged_runs(out)}, indent=1))
    print(json.dumps(ratios, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

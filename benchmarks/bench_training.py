"""Training throughput: crops of 32^3 voxels per second through map_core's own training loop.

Run: python -m benchmarks.bench_training [--quick] [--steps N]
Times `map_core.training.train.train` itself (crop sampling, forward, backward, optimiser) on
the shipped training set: a warm-up run, then a resumed run whose loop time is the measurement.
CPU with 1 and 2 torch threads (batch 2, as the shipped model was trained); on a CUDA device
also fp32 and bf16 autocast at batch 16. Writes benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.machine import machine_info
from map_core.atoms.encoding import Encoding
from map_core.files import write_text_atomic
from map_core.model.checkpoint import load_checkpoint
from map_core.model.pixelcnn import ModelConfig
from map_core.training.train import TrainSettings, train

RESULTS = Path(__file__).parent / "results"
DATA = Path(__file__).resolve().parents[1] / "map_core" / "data" / "water_classical_216.npz"
WATER = {"encoding": "water", "n_classes": Encoding("water", 0.05).n_classes, "voxel_nm": 0.05}
MODELS = {
    "default": ModelConfig(layers=12, filters=16, **WATER),  # fragment classes, as the shipped model
    "atoms_12x16": ModelConfig(layers=12, filters=16, voxel_nm=0.04),  # the previous shipped model's
    "wide": ModelConfig(layers=12, filters=32, **WATER),
}


def crops_per_second(config: ModelConfig, batch: int, steps: int, warmup: int, device: str, precision: str) -> dict:
    """Crops per second of `steps` training steps after `warmup` steps (loop time only)."""
    settings = TrainSettings(crop=32, steps=warmup, batch=batch, optimizer="adam", lr=0.003, checkpoint_every=10**9,
                             test_crops=1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.pt"
        train(DATA, out, config, settings, progress=False, device=device, precision=precision)
        before = load_checkpoint(out)["training_state"]["elapsed_s"]
        prov = train(DATA, out, config, dataclasses.replace(settings, steps=warmup + steps), resume=True, progress=False,
                     device=device, precision=precision)
    wall = prov["wall_time_s"] - before
    return {"crops_per_second": steps * batch / wall, "steps_per_second": steps / wall, "steps": steps, "batch": batch,
            "crop": 32, "wall_s": wall, "device": device, "precision": precision, "threads": torch.get_num_threads()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps, default model only")
    p.add_argument("--steps", type=int, default=None, help="timed steps per setting (default 10 on the CPU, 50 on CUDA)")
    args = p.parse_args(argv)
    cpu_steps = args.steps or (3 if args.quick else 10)
    models = {"default": MODELS["default"]} if args.quick else MODELS
    threads = torch.get_num_threads()
    out = {"machine": machine_info(), "models": {}}
    for name, config in models.items():
        rows = {}
        for n in sorted({1, min(2, threads)}):
            torch.set_num_threads(n)
            rows[f"cpu_{n}_threads"] = crops_per_second(config, 2, cpu_steps, 2, "cpu", "fp32")
            print(f"{name} cpu {n} thread(s): {rows[f'cpu_{n}_threads']['crops_per_second']:.2f} crops/s", flush=True)
        torch.set_num_threads(threads)
        if torch.cuda.is_available():
            for precision in ("fp32", "bf16"):
                rows[f"cuda_{precision}"] = crops_per_second(config, 16, args.steps or 50, 10, "cuda", precision)
                print(f"{name} cuda {precision}: {rows[f'cuda_{precision}']['crops_per_second']:.1f} crops/s", flush=True)
        out["models"][name] = {"config": config.to_dict(), "settings": rows}
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "training.json", json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

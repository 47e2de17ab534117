"""Load: many small jobs in one process must not grow its memory (issue 16). Measured, never asserted.

Run: python -m benchmarks.bench_load [--boxes 1000] [--gate-runs 20]

Generates `--boxes` tiny boxes one `generate_to_file` call at a time, then runs the structure group of
the gate `--gate-runs` times on a tiny profile (a fresh cache each run, so every run computes), and
records the resident memory (VmRSS, MiB) after each tenth of the work. A leak shows as a rising
line; the slope (MiB per 100 boxes, per gate run) over the second half is printed and kept in
benchmarks/results/load.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import machine_info
from map_core.arguments import count
from map_core.files import write_text_atomic
from map_core.model.checkpoint import save_checkpoint
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.sampling.generate import SamplingJob, generate_to_file
from validation.gate.inputs import resolve_inputs
from validation.gate.reference import SHIPPED_TRAINING_SET
from validation.gate.session import GateSession

RESULTS = Path(__file__).parent / "results"
TINY_PROFILE = '''extends = "smoke"
[profile]
name = "load"
[sampling]
n_boxes = 2
batch = 2
region_nm = 0.8
[reference]
windows = 2
[structure]
rdf_r_max_nm = 0.4
sq_r_max_nm = 0.6
[md]
enabled = false
box_nm = 0.8
'''


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def slope(points) -> float:
    """Least-squares slope of the second half of (x, MiB) points, MiB per unit of x."""
    half = np.asarray(points[len(points) // 2:], dtype=float)
    return float(np.polyfit(half[:, 0], half[:, 1], 1)[0]) if len(half) >= 2 else float("nan")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--boxes", type=count(10), default=1000)
    p.add_argument("--gate-runs", type=count(2), default=20)
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model = PixelCNN3D(ModelConfig(layers=2, filters=4, dropout=0.0, voxel_nm=0.04)).eval()
    out = {"machine": machine_info(), "boxes": [], "gate_runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        step = max(1, args.boxes // 10)
        for k in range(args.boxes):
            generate_to_file(model, tmp / "box.npz", SamplingJob((6, 6, 6), 1, seed=k), progress=False)
            if (k + 1) % step == 0:
                out["boxes"].append((k + 1, rss_mb()))
                print(f"{k + 1} boxes: {out['boxes'][-1][1]:.0f} MiB", flush=True)
        out["boxes_seconds"] = time.perf_counter() - t0
        ckpt = tmp / "model.pt"
        save_checkpoint(ckpt, model, {"data_path": str(SHIPPED_TRAINING_SET), "steps": 0, "seed": 0,
                                      "settings": {"test_fraction": 0.2}})
        profile = tmp / "load.toml"
        profile.write_text(TINY_PROFILE)
        inputs = resolve_inputs(ckpt, profile)
        for run in range(args.gate_runs):
            GateSession(inputs, tmp / f"cache{run}").group("structure")
            out["gate_runs"].append((run + 1, rss_mb()))
            print(f"gate run {run + 1}: {out['gate_runs'][-1][1]:.0f} MiB", flush=True)
    out["slope_mib_per_100_boxes"] = 100 * slope(out["boxes"])
    out["slope_mib_per_gate_run"] = slope(out["gate_runs"])
    print(f"memory slope: {out['slope_mib_per_100_boxes']:.2f} MiB per 100 boxes, "
          f"{out['slope_mib_per_gate_run']:.2f} MiB per gate run (second half of each)")
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / "load.json", json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

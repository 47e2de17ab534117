"""Sampler benchmarks: fast vs reference speed, scaling with box size, roofline fraction.

Run: python -m benchmarks.bench_sampler [--sizes 32 64 96 128] [--quick]
Writes benchmarks/results/sampler.json. Times are wall-clock seconds on this machine; every
ratio compares numbers measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import machine_info
from map_core.files import write_text_atomic
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.sampling.fast import sample_fast
from map_core.sampling.reference import sample_reference

RESULTS = Path(__file__).parent / "results"
PAPER = ModelConfig(layers=20, filters=20, kernel=3, activation="relu", dropout=0.21)  # seed 000
DEFAULT = ModelConfig()


def macs_per_voxel(config: ModelConfig) -> int:
    """Multiply-adds the network spends per voxel (all three stacks, links and head)."""
    k, r, f, c = config.kernel, config.kernel // 2, config.filters, config.n_classes
    w = 2 * f if config.activation == "gated" else f
    total = 0
    for i in range(config.layers):
        cin = c if i == 0 else f
        total += (r + 1) * k * k * cin * w + (r + 1) * k * cin * w + (r + 1) * cin * w  # depth, vertical, horizontal
        total += 3 * w * w + f * f  # three links and the horizontal 1x1 output
    return total + f * f + f * c


def dense_macs_per_second(config: ModelConfig, side: int = 32, repeats: int = 3) -> float:
    """This machine's throughput for the model's own convolutions: a full teacher-forced pass, 1 thread."""
    torch.manual_seed(0)
    model = PixelCNN3D(config).eval()
    x = torch.zeros(1, config.n_classes, side, side, side)
    x[:, 0] = 1
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            model(x)
            t = time.perf_counter()
            for _ in range(repeats):
                model(x)
            dt = (time.perf_counter() - t) / repeats
    finally:
        torch.set_num_threads(threads)
    return macs_per_voxel(config) * side**3 / dt


def time_fast(config: ModelConfig, shape, n_boxes: int = 1, seed: int = 0, **options) -> float:
    """Seconds to generate `n_boxes` boxes of `shape` with the fast sampler (random weights),
    after an untimed warm-up box (first calls of torch and numpy routines are slow).
    options: passed to sample_fast (backend, device, max_planes)."""
    torch.manual_seed(seed)
    model = PixelCNN3D(config).eval()
    sample_fast(model, (2, 4, 4), n_boxes=n_boxes, seed=seed + 1, **options)
    if options.get("device", "cpu") != "cpu":
        torch.cuda.synchronize()
    t = time.perf_counter()
    sample_fast(model, shape, n_boxes=n_boxes, seed=seed, **options)
    return time.perf_counter() - t


def time_reference(config: ModelConfig, voxels: int, seed: int = 0) -> float:
    """Seconds per voxel of the reference sampler, timed on a row of `voxels` voxels deep inside
    a box (full receptive-field window, float32 as the fast sampler)."""
    torch.manual_seed(seed)
    model = PixelCNN3D(config).eval()
    rf_planes = config.layers * (config.kernel // 2) + 1
    # the window is clipped at the canvas edge: start after a full field of known voxels
    shape = (rf_planes + 1, rf_planes + 1, voxels)
    fixed = np.zeros(shape, dtype=np.int64)
    fixed[-1, -1, :] = -1  # only the last row is sampled
    warm = fixed.copy()
    warm[-1, -1, 1:] = 0
    sample_reference(model, shape, fixed=warm, dtype=torch.float32, seed=seed + 1)  # untimed warm-up voxel
    t = time.perf_counter()
    sample_reference(model, shape, fixed=fixed, dtype=torch.float32, seed=seed)
    return (time.perf_counter() - t) / voxels


def scaling_point(config: ModelConfig, side: int) -> dict:
    """One cube in a fresh process, so that its peak memory is its own."""
    code = (
        "import json, sys; from benchmarks.bench_sampler import time_fast, config_from, peak_rss_mb;"
        f"t = time_fast(config_from({json.dumps(config.to_dict())}), ({side}, {side}, {side}));"
        "print(json.dumps({'seconds': t, 'peak_rss_mb': peak_rss_mb()}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parent.parent)
    point = json.loads(out.stdout.strip().splitlines()[-1])
    point.update(side=side, voxels=side**3, seconds_per_voxel=point["seconds"] / side**3)
    return point


def peak_rss_mb() -> float:
    """This process's peak resident memory, MiB (VmHWM: unlike getrusage's ru_maxrss on Linux,
    it does not carry over the parent's peak into a freshly started child)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def config_from(d: dict) -> ModelConfig:
    return ModelConfig.from_dict(d)


def run(sizes=(32, 64, 96, 128), reference_voxels: int = 40, speed_shape=(16, 48, 48)) -> dict:
    results = {"machine": machine_info(), "models": {}}
    for name, config in (("paper_20x20", PAPER), ("default", DEFAULT)):
        fast_s = time_fast(config, speed_shape)
        fast_vps = np.prod(speed_shape) / fast_s
        ref_spv = time_reference(config, reference_voxels)
        roof_vps = dense_macs_per_second(config) / macs_per_voxel(config)
        batch = 8
        batch_vps = batch * np.prod(speed_shape) / time_fast(config, speed_shape, n_boxes=batch)
        # what the 3D wavefront adds: the same sampler with one plane in flight (a 2D wavefront)
        plane_vps = np.prod(speed_shape) / time_fast(config, speed_shape, max_planes=1)
        # the code path a GPU runs, here on the CPU
        torch_vps = np.prod(speed_shape) / time_fast(config, speed_shape, backend="torch")
        cuda_vps = np.prod(speed_shape) / time_fast(config, speed_shape, device="cuda") if torch.cuda.is_available() else None
        results["models"][name] = {
            "config": config.to_dict(), "macs_per_voxel": macs_per_voxel(config),
            "voxels_per_second": fast_vps, "voxels_per_second_batch8": batch_vps,
            "voxels_per_second_one_plane_in_flight": plane_vps, "voxels_per_second_torch_backend_cpu": torch_vps,
            "voxels_per_second_cuda": cuda_vps,
            "reference_voxels_per_second": 1 / ref_spv, "reference_voxels_timed": reference_voxels,
            "speedup_vs_reference": fast_vps * ref_spv,
            "roofline_voxels_per_second": roof_vps, "roofline_fraction": fast_vps / roof_vps,
            "roofline_fraction_batch8": batch_vps / roof_vps,
        }
        print(f"{name}: fast {fast_vps:.0f} vox/s (batch 8: {batch_vps:.0f}; one plane in flight: {plane_vps:.0f}; "
              f"torch backend: {torch_vps:.0f}; cuda: {cuda_vps}), reference {1 / ref_spv:.3f} vox/s, "
              f"speedup {fast_vps * ref_spv:.0f}x, roofline {roof_vps:.0f} vox/s ({100 * fast_vps / roof_vps:.1f} %)", flush=True)
    points = []
    for side in sizes:
        point = scaling_point(DEFAULT, side)
        points.append(point)
        print(f"scaling: {side}^3 in {point['seconds']:.1f} s, {1e6 * point['seconds_per_voxel']:.1f} us/voxel, "
              f"peak {point['peak_rss_mb']:.0f} MB", flush=True)
    exponent = float(np.polyfit(np.log([p["voxels"] for p in points]), np.log([p["seconds"] for p in points]), 1)[0]) if len(points) > 1 else None
    default = results["models"]["default"]
    for model in results["models"].values():
        for key, value in model.items():
            if isinstance(value, np.generic):
                model[key] = value.item()
    results.update(
        scaling={"model": "default", "points": points, "exponent": exponent},
        scaling_exponent=exponent,
        speedup_vs_reference=default["speedup_vs_reference"],
        roofline_fraction=default["roofline_fraction"],
        voxels_per_second=default["voxels_per_second"],
        targets={
            "speedup_vs_reference >= 1000 (paper model)": bool(results["models"]["paper_20x20"]["speedup_vs_reference"] >= 1000),
            "speedup_vs_reference >= 1000 (default model)": bool(default["speedup_vs_reference"] >= 1000),
            "scaling exponent 1.00 +/- 0.05": bool(exponent is not None and abs(exponent - 1) <= 0.05),
            "roofline fraction >= 0.30": bool(default["roofline_fraction"] >= 0.30),
        },
    )
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 96, 128])
    p.add_argument("--quick", action="store_true", help="small sizes only (a check that the benchmark runs)")
    p.add_argument("--out", default=str(RESULTS / "sampler.json"))
    args = p.parse_args(argv)
    sizes = [8, 12, 16] if args.quick else args.sizes
    results = run(sizes, reference_voxels=5 if args.quick else 40, speed_shape=(2, 12, 12) if args.quick else (16, 48, 48))
    write_text_atomic(args.out, json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

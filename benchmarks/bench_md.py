"""MD benchmarks: q-TIP4P/F throughput (ns/day), classical and RPMD, and the cost of one
equilibrated box by MD against one MAP box of the same size.

Run: python -m benchmarks.bench_md [--waters 343] [--quick] [--platform CUDA]
Writes benchmarks/results/md.json. Throughput is timed on NVT steps after minimisation,
thermalisation and a short warm-up, on OpenMM's fastest available platform (or --platform);
every entry records the platform, the device (the GPU's name on CUDA and OpenCL) and its
precision. On a GPU the RPMD cases are the paper profile's 32 beads, on a CPU 8 (32 would take
hours there). From the measured throughput it estimates the MD hours of the `paper` gate profile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import machine_info
from map_core.files import write_text_atomic
from map_core.model.checkpoint import load_model
from map_core.model.default import default_model_path
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.sampling.fast import sample_fast
from validation.gate.profile import load_profile
from validation.md.boxes import make_water_box
from validation.md.engine import Engine
from validation.md.platform import describe_platform, pick_platform
from validation.md.settings import MDSettings
from validation.md.water_model import with_m_sites

RESULTS = Path(__file__).parent / "results"
EQUILIBRATION_PS = 125.0  # seed 000: NPT 125 ps before production, the MD cost of one fresh box


def ns_per_day(n_waters: int, steps: int, **settings) -> dict:
    """Measured ns/day of `steps` NVT steps for `n_waters` waters; settings as MDSettings fields."""
    positions, box = make_water_box(n_waters, seed=1)
    md = MDSettings(**settings)
    engine = Engine(n_waters, box, md, "nvt", 3)
    engine.set_state(with_m_sites(positions))
    engine.minimise()
    engine.thermalise(4)
    engine.step(10)
    t0 = time.perf_counter()
    engine.step(steps)
    wall = time.perf_counter() - t0
    return {"ns_per_day": steps * md.timestep_ps * 1e-3 * 86400 / wall, "steps": steps, "wall_s": wall,
            "settings": {k: v for k, v in settings.items()}, **describe_platform(engine.context)}


def paper_md_hours(throughput: dict, beads: int) -> dict | None:
    """MD hours of the `paper` gate profile (two seed boxes, each classical MTS then RPMD) at the measured
    ns/day; None unless the RPMD cases ran with the profile's bead count."""
    p = load_profile("paper")
    if beads != p["md.rpmd"]["beads"]:
        return None
    classical_ns = 2 * (p["md.classical"]["npt_ps"] + p["md.classical"]["nvt_ps"]) * 1e-3
    rpmd_ns = 2 * (p["md.rpmd"]["npt_ps"] + p["md.rpmd"]["nvt_ps"]) * 1e-3
    classical = classical_ns / throughput["classical_mts_0.5_0.1fs"]["ns_per_day"] * 24
    rpmd = rpmd_ns / throughput[f"rpmd_{beads}_beads_contracted"]["ns_per_day"] * 24
    return {"classical_hours": classical, "rpmd_hours": rpmd, "total_hours": classical + rpmd,
            "classical_ns": classical_ns, "rpmd_ns": rpmd_ns}


def map_box_seconds(n_waters: int, voxel: float, config: ModelConfig) -> dict:
    """Seconds to generate one MAP box holding `n_waters` waters at 1 g/cm3 (random weights: the
    cost does not depend on them)."""
    edge = (n_waters * 18.015 / 6.02214076e23 / 1.0) ** (1 / 3) * 1e7  # nm
    side = int(np.ceil(edge / voxel))
    torch.manual_seed(0)
    model = PixelCNN3D(config).eval()
    t0 = time.perf_counter()
    sample_fast(model, (side, side, side))
    return {"seconds": time.perf_counter() - t0, "side_voxels": side, "edge_nm": edge, "model": config.to_dict()}


def run(n_waters: int = 343, quick: bool = False, platform: str | None = None) -> dict:
    scale = 0.2 if quick else 1.0
    gpu = (platform or pick_platform()[0].getName()) in ("CUDA", "OpenCL")
    beads = 32 if gpu else 8
    many = 10 if gpu else 1  # a GPU runs thousands of steps in the time a CPU runs hundreds
    cases = {
        "classical": dict(method="classical"),
        "classical_mts_0.5_0.1fs": dict(method="classical", intra_substeps=5),
        f"rpmd_{beads}_beads": dict(method="rpmd", beads=beads),
        f"rpmd_{beads}_beads_contracted": dict(method="rpmd", beads=beads, contract_reciprocal=True),
    }
    steps = dict(zip(cases, (2000 * many, 1000 * many, 200 * many, 200 * many)))
    results = {"machine": machine_info(), "waters": n_waters, "throughput": {}}
    for name, kw in cases.items():
        results["throughput"][name] = ns_per_day(n_waters, max(20, int(steps[name] * scale)), platform=platform, **kw)
        t = results["throughput"][name]
        print(f"{name}: {t['ns_per_day']:.2f} ns/day ({t['platform']}, {t['device']})", flush=True)
    results["paper_profile_md"] = paper_md_hours(results["throughput"], beads)
    if results["paper_profile_md"]:
        print(f"paper profile MD: {results['paper_profile_md']['total_hours']:.2f} h", flush=True)

    shipped = load_model(default_model_path())[0].config  # the shipped model's size and voxel
    map_cost = map_box_seconds(n_waters, shipped.voxel_nm, shipped)
    print(f"MAP box {map_cost['side_voxels']}^3 voxels: {map_cost['seconds']:.0f} s", flush=True)
    md_box = {name: EQUILIBRATION_PS * 1e-3 / t["ns_per_day"] * 86400 for name, t in results["throughput"].items()}
    results["box_cost"] = {
        "equilibration_ps": EQUILIBRATION_PS, "md_seconds": md_box, "map": map_cost,
        "md_over_map": {name: s / map_cost["seconds"] for name, s in md_box.items()},
    }
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--waters", type=int, default=343)
    p.add_argument("--quick", action="store_true", help="few steps (a check that the benchmark runs)")
    p.add_argument("--platform", default=None, help="OpenMM platform (default: the fastest present)")
    p.add_argument("--out", default=str(RESULTS / "md.json"))
    args = p.parse_args(argv)
    results = run(args.waters, args.quick, args.platform)
    write_text_atomic(args.out, json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: every lattice toy system of seed 001 end to end at larger settings than CI; prints the numbers.

    python -m benchmarks.bench_lattice_systems [--out DIR] [--systems NAME ...] [--seed S]

Runs validation.theory.pipeline.run_toy per system (data, Eq. 21 fit, PixelCNN training, generation with
the reference sampler, structure distances with thresholds, Fig. 11d convergence, exact Markov-chain
numbers), writes DIR/NAME.json + figures, and DIR/summary.json with one row per system. Measured,
not asserted; reruns reuse finished stages.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from map_core.files import write_text_atomic
from map_core.model.checkpoint import load_model
from map_core.sampling.generate import sampler_function
from validation.theory.pipeline import ToySettings, run_toy
from validation.theory.registry import SYSTEMS
from validation.theory.row_convergence import row_convergence

# Larger than the CLI defaults: 64 generated boxes (fast sampler), more data where the signal is weak
# (hot_attractive: 1 % density, so 64^2 grids), a wider field where the structure is larger (drying).
SETTINGS = {
    "ideal_gas": dict(steps=400, n_generate=64),
    "hard_core": dict(steps=600, n_generate=64),
    "cold_repulsive": dict(steps=600, n_generate=64),
    "hot_repulsive": dict(steps=800, n_generate=64),
    "hot_attractive": dict(steps=800, n_generate=64, size=64, n_data=200, crop=24),
    "drying": dict(steps=1500, layers=5, filters=16, crop=24, n_data=120, n_generate=64),
}
BOUNDARY_CHECK = ("drying",)  # also measure Fig. 11d from an 'empty' boundary (out of the training distribution)


def empty_boundary_convergence(settings: ToySettings, out: Path) -> dict:
    """Fig. 11d numbers for boxes generated from an 'empty' boundary with the model `run_toy` saved."""
    model, _ = load_model(out / f"{settings.system}_model.pt")
    rows = settings.size + 4 * model.config.layers
    t0 = time.perf_counter()
    grids, _ = sampler_function(settings.sampler)(model, (1, rows, settings.size), n_boxes=settings.n_generate,
                                                   seed=settings.seed + 1, boundary="empty")
    conv = row_convergence(model, grids[:, 0].numpy(), boundary="empty")
    return {"converged_row": conv.converged_row, "rows_back": conv.rows_back, "receptive_fields": conv.receptive_fields,
            "density_converged_row": conv.density_converged_row, "density_receptive_fields": conv.density_receptive_fields,
            "row_mean_first": conv.row_mean[: 2 * conv.rows_back].round(3).tolist(), "plateau": conv.plateau,
            "density_first_field": float(grids[:, 0, : conv.rows_back].float().mean()),
            "density_after_two_fields": float(grids[:, 0, 2 * conv.rows_back :].float().mean()),
            "seconds": time.perf_counter() - t0}


def summarise(r: dict) -> dict:
    s, m, c = r["structure"], r["markov"], r["convergence"]
    row = {
        "system": r["system"], "density": r["data"]["measured_density"],
        "pair_distance": s["pixelcnn"]["pair_correlation"], "pair_threshold": s["thresholds"]["pair_correlation"],
        "neighbour_tv": s["pixelcnn"]["neighbour_counts"], "neighbour_threshold": s["thresholds"]["neighbour_counts"],
        "pixelcnn_pass": s["pixelcnn"]["pass"], "expansion_pass": s["expansion"]["pass"],
        "expansion_pair": s["expansion"]["pair_correlation"], "expansion_neighbour": s["expansion"]["neighbour_counts"],
        "broken_pass": s["broken"]["pass"], "broken_pair": s["broken"]["pair_correlation"],
        "broken_neighbour": s["broken"]["neighbour_counts"],
        "held_out_ce": r["pixelcnn"]["held_out_cross_entropy"], "baseline_ce": r["pixelcnn"]["baseline_cross_entropy"],
        "converged_rows": c["converged_row"], "rows_back": c["rows_back"], "converged_receptive_fields": c["receptive_fields"],
        "density_converged_receptive_fields": c["density_receptive_fields"],
        "chain1d_gap": m["expansion_1d"]["spectral_gap"], "chain1d_mixing": m["expansion_1d"]["mixing_time"],
        "chain1d_argmax_ergodic": m["expansion_1d_argmax"]["ergodic"],
        "rows_chain": {k: m["pixelcnn_rows"].get(k) for k in ("n_states", "ergodic", "spectral_gap", "mixing_time",
                                                              "mixing_time_receptive_fields", "diameter", "skipped")},
        "c_rho_fitted": r["expansion"]["fitted"]["c_rho"],
        "pixelcnn_density_error": s["pixelcnn"]["density"], "neighbour_radius": s["neighbour_radius"],
        "timing_s": r["timing"],
    }
    if "eq7" in r:
        row["eq7"] = r["eq7"]
    if "dilute_pair" in r:
        row["dilute_pair"] = r["dilute_pair"]
    if "eq15" in r:
        row["eq15"] = {k: v for k, v in r["eq15"].items() if k != "c_neighbours_exact"}
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/toy_benchmark")
    p.add_argument("--systems", nargs="*", default=list(SYSTEMS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.systems:
        t0 = time.perf_counter()
        r = run_toy(ToySettings(system=name, seed=args.seed, **SETTINGS.get(name, {})), args.out,
                    log=lambda msg, n=name: print(f"[{n}] {msg}", file=sys.stderr, flush=True))
        row = summarise(r)
        if name in BOUNDARY_CHECK:
            row["empty_boundary_convergence"] = empty_boundary_convergence(
                ToySettings(system=name, seed=args.seed, **SETTINGS.get(name, {})), Path(args.out))
        row["wall_s"] = time.perf_counter() - t0
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_text_atomic(Path(args.out) / "summary.json", json.dumps(rows, indent=1))
    print(f"{'system':15s} {'pair d/thr':>14s} {'nbr TV/thr':>14s} {'pass':>5s} {'broken':>7s} {'conv RF':>8s} {'dens RF':>8s} "
          f"{'1D gap':>7s} {'t_mix':>6s}")
    for row in rows:
        print(f"{row['system']:15s} {row['pair_distance']:6.3f}/{row['pair_threshold']:6.3f} "
              f"{row['neighbour_tv']:6.3f}/{row['neighbour_threshold']:6.3f} {str(row['pixelcnn_pass']):>5s} "
              f"{str(row['broken_pass']):>7s} {row['converged_receptive_fields']:8.2f} "
              f"{row['density_converged_receptive_fields']:8.2f} {row['chain1d_gap']:7.3f} "
              f"{row['chain1d_mixing']!s:>6s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The model study: one row per candidate model, measured, never asserted (model card table).

Run: python -m benchmarks.model_study MODEL.pt [MODEL.pt ...] [--label NAME ...] [--profile quick]
     [--temperature T] [--cache DIR]

Each row holds the model's held-out cross-entropy (from its checkpoint) and its split into
occupancy and orientation in nats per molecule (`map-suite evaluate`'s, on held-out crops), the gate's structure
values at the profile's sizes (the same session, cache and thresholds as `map-suite validate
--groups structure`), the cost (training crops/s from the checkpoint's wall time, sampling
voxels/s of the fast sampler on one 32^3 box, measured here) and the wall times. Rows are kept
in benchmarks/results/model_study.json under their label (a rerun replaces its row) and printed
as the markdown table of the model card.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from map_core.files import write_text_atomic
from map_core.sampling.fast import sample_fast
from map_core.sampling.likelihood import cross_entropy_split
from map_core.training.crops import sample_crops, voxelise
from validation.gate.cache import default_cache_dir
from validation.gate.inputs import resolve_inputs
from validation.gate.profile import load_profile
from validation.gate.session import GateSession

RESULTS = Path(__file__).parent / "results" / "model_study.json"
COLUMNS = ("density", "orphan_rate", "g_OO", "g_OH", "g_HH", "oh_bond", "hoh_angle", "q4", "q6", "tetrahedral",
           "hbonds", "energy", "classifier")


def sampling_voxels_per_second(model, side: int = 32) -> float:
    sample_fast(model, (8, 8, 8))  # warm-up
    t0 = time.perf_counter()
    sample_fast(model, (side, side, side))
    return side ** 3 / (time.perf_counter() - t0)


SPLIT_CROPS, SPLIT_CROP = 8, 32  # held-out 32^3 crops (about 1,100 molecules) for the cross-entropy split


def heldout_split(inputs) -> dict | None:
    """Held-out cross-entropy split into occupancy and orientation (nats per molecule), on crops of the
    reference's held-out frames (the model's own split); None for encodings without orientations."""
    model = inputs.model
    if model.config.coder().orientations() is None:
        return None
    ref = inputs.reference
    grids = voxelise(ref.frames, model.config.coder(), ref.path)
    crops = sample_crops(grids, ref.heldout_indices, SPLIT_CROP, SPLIT_CROPS, np.random.default_rng(0), [()])
    freq = (inputs.payload.get("provenance") or {}).get("class_frequencies")
    return cross_entropy_split(model, crops, "outside", freq)


def study_row(model_path, label: str, profile: str = "quick", temperature: float | None = None, cache=None) -> dict:
    """One row of the study for the checkpoint `model_path`."""
    prof = profile
    if temperature is not None:  # a profile that differs from `profile` in the sampling temperature only
        base = load_profile(profile)
        prof = Path(cache or default_cache_dir()) / f"study-{base.name}-T{temperature:g}.toml"
        prof.parent.mkdir(parents=True, exist_ok=True)
        prof.write_text(f'extends = "{base.name}"\n[sampling]\ntemperature = {temperature!r}\n')
    inputs = resolve_inputs(model_path, str(prof))
    t0 = time.perf_counter()
    session = GateSession(inputs, cache or default_cache_dir())
    checks = session.group("structure")["checks"]
    gate_s = time.perf_counter() - t0
    prov = inputs.payload.get("provenance") or {}
    settings = prov.get("settings") or {}
    crops = (prov.get("steps") or 0) * (settings.get("batch") or 0)
    cfg = inputs.model.config
    return {
        "label": label, "model": str(model_path), "sha256": inputs.model_sha256[:12],
        "architecture": f"{cfg.kind}, {cfg.layers}x{cfg.filters} {cfg.activation}, k{cfg.kernel}, head {cfg.head or cfg.filters}, "
                        f"{cfg.encoding} classes, {cfg.voxel_nm} nm, dropout {cfg.dropout}"
                        + (f", stage-2 reach {cfg.reach_nm} nm" if cfg.kind == "two-stage" else ""),
        "split": heldout_split(inputs),
        "reach_nm": (inputs.payload.get("receptive_field") or {}).get("reach_nm"),
        "steps": prov.get("steps"), "batch": settings.get("batch"),
        "test_cross_entropy": prov.get("test_cross_entropy"), "baseline_cross_entropy": prov.get("baseline_cross_entropy"),
        "train_wall_s": prov.get("wall_time_s"),
        "train_crops_per_second": crops / prov["wall_time_s"] if prov.get("wall_time_s") else None,
        "sampling_voxels_per_second": sampling_voxels_per_second(inputs.model),
        "profile": inputs.profile.name, "temperature": inputs.profile["sampling"]["temperature"],
        "structure": {c.name: {"value": c.value, "threshold": c.threshold, "passed": c.passed} for c in checks},
        "structure_passed": sum(c.passed for c in checks), "structure_checks": len(checks), "gate_wall_s": gate_s,
    }


def split_cells(split) -> list:
    """Occupancy and orientation nats per molecule (with ln K for a uniform turn), or blanks."""
    if not split:
        return ["", ""]
    return [f"{split['occupancy_nats_per_molecule']:.2f}",
            f"{split['orientation_nats_per_molecule']:.2f} (ln K {split['uniform_orientation_nats']:.2f})"]


def markdown(rows: list) -> str:
    head = ["model", "reach nm", "steps x batch", "held-out CE", "occupancy nats/mol", "orientation nats/mol", "T",
            *COLUMNS, "passed", "train crops/s", "sampling voxels/s", "train wall"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = []
        for name in COLUMNS:
            c = r["structure"].get(name)
            vals.append("" if c is None else f"{c['value']:.3g}{'' if c['passed'] else ' **x**'}")
        ce = r["test_cross_entropy"]
        out.append("| " + " | ".join([
            f"{r['label']} ({r['architecture']})", f"{r['reach_nm']:.2f}" if r["reach_nm"] else "",
            f"{r['steps']} x {r['batch']}", f"{ce:.5f}" if ce is not None else "", *split_cells(r.get("split")),
            f"{r['temperature']:g}", *vals,
            f"{r['structure_passed']}/{r['structure_checks']}",
            f"{r['train_crops_per_second']:.2f}" if r["train_crops_per_second"] else "",
            f"{r['sampling_voxels_per_second']:.0f}", f"{(r['train_wall_s'] or 0) / 60:.0f} min"]) + " |")
    return "\n".join(out) + ("\n\nValues as the gate reports them (bond nm, angle rad, energy kJ/mol, density relative, "
                              "orphans fraction of atoms); **x**: fails the profile's threshold (each row judged by the "
                              "thresholds calibrated for its encoding and voxel). Held-out cross-entropy compares models "
                              "of one encoding and voxel only (other classes, other numbers of voxels).\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="checkpoints to measure")
    p.add_argument("--label", nargs="*", default=None, help="row names, one per model (default: the file stem)")
    p.add_argument("--profile", default="quick")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: the profile's)")
    p.add_argument("--cache", default=None, help="gate cache (default: the gate's)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.exists() else []
    labels = args.label or [Path(m).stem + (f" T={args.temperature:g}" if args.temperature is not None else "") for m in args.models]
    for model, label in zip(args.models, labels):
        row = study_row(model, label, args.profile, args.temperature, args.cache)
        rows = [r for r in rows if r["label"] != label] + [row]
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, json.dumps(rows, indent=1))
        print(f"{label}: {row['structure_passed']}/{row['structure_checks']} structure checks, "
              f"CE {row['test_cross_entropy']}, gate {row['gate_wall_s']:.0f} s", flush=True)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

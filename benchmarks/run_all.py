"""Run every benchmark, then write benchmarks/results/table.md and the README's benchmark table.

Run: python -m benchmarks.run_all [--quick]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from map_core.atoms.encoding import Encoding
from map_core.files import write_text_atomic

from . import bench_md, bench_sampler, bench_training

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent.parent / "README.md"
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"


def model_label(name: str, cfg: dict) -> str:
    """A benchmarked model in a table row: its name, architecture and classes (its encoding's label)."""
    classes = Encoding(cfg.get("encoding", "atoms"), cfg["voxel_nm"]).label
    return f"{name} ({cfg['layers']}x{cfg['filters']}, {cfg['activation']}, {classes} classes)"


def training_rows(training: dict) -> list:
    rows = []
    for name, m in training["models"].items():
        label = model_label(name, m["config"])
        for key, r in m["settings"].items():
            where = f"CPU, {r['threads']} thread(s)" if r["device"] == "cpu" else f"{r['device']} {r['precision']}"
            rows.append(f"| training, {label}, {where} | {r['crops_per_second']:.2f} crops/s of 32^3 (batch {r['batch']}, "
                        f"{r['steps_per_second']:.2f} steps/s) | |")
        if not any(r["device"] != "cpu" for r in m["settings"].values()):
            rows.append(f"| training, {label}, CUDA | no GPU on this machine | |")
    return rows


def table(sampler: dict, md: dict, training: dict | None = None) -> str:
    """Markdown table of the headline numbers."""
    rows = ["| measure | value | target |", "|---|---|---|"]
    for name, m in sampler["models"].items():
        label = model_label(name, m["config"])
        rows.append(f"| fast sampler, {label} | {m['voxels_per_second']:.0f} voxels/s (8 boxes at once: {m['voxels_per_second_batch8']:.0f}) | |")
        cuda = f"{m['voxels_per_second_cuda']:.0f} voxels/s" if m.get("voxels_per_second_cuda") else "no GPU on this machine"
        rows.append(f"| fast sampler, {label}, variants | one plane in flight (2D wavefront): {m['voxels_per_second_one_plane_in_flight']:.0f}; "
                    f"torch backend on the CPU (the GPU code path): {m['voxels_per_second_torch_backend_cpu']:.0f}; CUDA: {cuda} | |")
        rows.append(f"| reference sampler, {label} | {m['reference_voxels_per_second']:.3g} voxels/s | |")
        rows.append(f"| speed-up over reference, {label} | {m['speedup_vs_reference']:.0f}x | >= 1000x: {'reached' if m['speedup_vs_reference'] >= 1000 else 'not reached'} |")
        one, eight = m["roofline_fraction"], m["roofline_fraction_batch8"]
        verdict = "reached with 1 box" if one >= 0.3 else ("reached with 8 boxes at once, not with 1" if eight >= 0.3 else "not reached")
        rows.append(f"| roofline fraction, {label} | 1 box: {100 * one:.1f} %, 8 boxes at once: {100 * eight:.1f} % | >= 30 %: {verdict} |")
    pts = sampler["scaling"]["points"]
    sides = ", ".join(f"{p['side']}^3: {1e6 * p['seconds_per_voxel']:.0f} us/voxel, {p['peak_rss_mb']:.0f} MB" for p in pts)
    exp = sampler["scaling_exponent"]
    rows.append(f"| scaling (default model) | exponent {exp:.3f}; {sides} | 1.00 +/- 0.05: {'reached' if exp is not None and abs(exp - 1) <= 0.05 else 'not reached'} |")
    for name, t in md["throughput"].items():
        where = t.get("device", "platform not recorded") + (f", {t['precision']} precision" if t.get("precision") else "")
        rows.append(f"| MD {name}, {md['waters']} waters, OpenMM {t.get('platform', '')} ({where}) | {t['ns_per_day']:.2f} ns/day | |")
    if md.get("paper_profile_md"):
        pm = md["paper_profile_md"]
        rows.append(f"| `paper` gate profile MD at these rates ({pm['classical_ns']:.2f} ns MTS + {pm['rpmd_ns']:.2f} ns 32-bead "
                    f"contracted RPMD) | {pm['total_hours']:.2f} h | |")
    bc = md["box_cost"]
    for name, s in bc["md_seconds"].items():
        rows.append(f"| one {md['waters']}-water box: {bc['equilibration_ps']:.0f} ps {name} MD vs MAP ({bc['map']['side_voxels']}^3 voxels, {bc['map']['seconds']:.0f} s) | {s / 3600:.2f} h, {bc['md_over_map'][name]:.0f}x the MAP cost | |")
    if training:
        rows += training_rows(training)
    mach = sampler["machine"]
    rows.append("")
    flags = ", ".join(mach.get("cpu_flags") or []) or "flags not recorded"
    rows.append(f"Measured on {mach['cpu']} ({mach['cores']} cores; {flags}), torch {mach['torch']}, Python {mach['python']}.")
    return "\n".join(rows) + "\n"


def update_readme(text: str) -> None:
    readme = README.read_text()
    if START not in readme:
        return
    new = re.sub(re.escape(START) + ".*?" + re.escape(END), START + "\n" + text + END, readme, flags=re.S)
    write_text_atomic(README, new)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip-md", action="store_true", help="reuse benchmarks/results/md.json")
    p.add_argument("--skip-sampler", action="store_true", help="reuse benchmarks/results/sampler.json")
    p.add_argument("--skip-training", action="store_true", help="reuse benchmarks/results/training.json")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="cube sides for the scaling run (default 32 64 96 128)")
    args = p.parse_args(argv)
    if not args.skip_sampler:
        bench_sampler.main(["--quick"] if args.quick else (["--sizes", *map(str, args.sizes)] if args.sizes else []))
    if not args.skip_md:
        bench_md.main(["--quick"] if args.quick else [])
    if not args.skip_training:
        bench_training.main(["--quick"] if args.quick else [])
    sampler = json.loads((RESULTS / "sampler.json").read_text())
    md = json.loads((RESULTS / "md.json").read_text())
    training = json.loads((RESULTS / "training.json").read_text()) if (RESULTS / "training.json").exists() else None
    text = table(sampler, md, training)
    write_text_atomic(RESULTS / "table.md", text)
    update_readme(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The seam study (issue 26): what `map-suite export --repair` removes from generated boxes, and why,
and what `--relax` gives back. Measured, never asserted.

Run: python -m benchmarks.seam_study [--boxes 4] [--voxels 32] [--seed 0] [--relax-ps 3] [--cubes 16] [--threads 1]
     [--frames KEEP.npz]

1. Generates --boxes boxes of --voxels^3 voxels with the shipped default model (map_core/data/default_model.pt;
   `generate_to_file`, the fast sampler, temperature 1, one receptive field of burn-in, no repair), as
   `map-suite generate` does, once per boundary: "outside" (the cut: burn-in on five faces, the box cut out
   of the canvas) and "wrap" (periodic in x and y where raster order allows, burn-in below only); and
   repairs each as `map-suite export --repair` does (``validation.md.export.prepare_boxes``).
2. For each box, the molecules the repair removes, by why (a clash that exists only across the periodic seam,
   a clash inside the box, and orphan atoms, which are atoms in no whole water) and, for the seam clashes,
   by the face pair they clash across: x, y or z, or several at once (an edge or a corner: "xy", "xyz").
   The attribution replays the repair's greedy removal (``map_core.atoms.molecules.repair``: seam clashes
   first, the molecule with the most clashes first) and records the axes along which each removed
   molecule's remaining clashes reach through the seam; `matches_repair` says whether the replay removed
   the very molecules the repair removed.
3. The control: cubes of the same edge cut from the shipped training MD (map_core/data/water_classical_216.npz,
   periodic 1.86 nm frames) at random corners, whole waters whose O lies in the cube, put through the same
   repair and attribution. A cube cut from the liquid has open faces too: the study says how much of the
   generated boxes' loss any cube of that edge has.
4. The repaired generated boxes relaxed as `map-suite export --relax PS` does (``validation.md.relax``):
   minimisation, PS ps of NPT at 300 K and 1 bar; densities before and after, minimised energy, wall time.

Writes benchmarks/results/seam_study.json (atomically; "generated": {boundary: boxes and totals}) and prints
a table. Lengths nm, densities g/cm3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from benchmarks.machine import machine_info
from map_core.atoms.frames import Frames, load_frames
from map_core.atoms.molecules import CLASH_NM, make_whole, water_indices
from map_core.atoms.neighbors import pairs_within
from map_core.files import shown_path, write_text_atomic
from map_core.model.checkpoint import load_model
from map_core.model.default import default_model_path
from map_core.sampling.generate import SamplingJob, generate_to_file
from validation.md.engine import seed_for
from validation.md.export import prepare_boxes
from validation.md.relax import relax_box

RESULTS = Path(__file__).parent / "results" / "seam_study.json"
TRAINING = Path(__file__).resolve().parents[1] / "map_core" / "data" / "water_classical_216.npz"
AXES = "xyz"


def replay_repair(positions, elements, molecule, box, clash_nm=CLASH_NM) -> dict:
    """The repair's removals of one box, each with its reason and, for a seam clash, its face pairs.

    Mirrors ``map_core.atoms.molecules.repair`` for boxes with molecule ids (generated boxes have them):
    clashing pairs of whole waters under the minimum image, a pair "across the seam" when it clashes only
    through a periodic image; first pass over seam pairs, second over all, each time removing the molecule
    with the most active clashes. Returns {"molecules": whole waters, "orphan_atoms", "removed": [(molecule,
    "seam" | "inside", axes)], "kept": (M,) bool}.
    """
    box = np.asarray(box, dtype=np.float64)
    waters = water_indices(elements, molecule)
    pos = np.asarray(positions, dtype=np.float64)[waters.reshape(-1)]
    elem = np.asarray(elements)[waters.reshape(-1)]
    mol = np.repeat(np.arange(len(waters)), 3)
    cutoff = max(clash_nm.values())
    i, j, d = pairs_within(pos, pos, cutoff, box)
    inter = mol[i] < mol[j]
    i, j, d = i[inter], j[inter], d[inter]
    limit = np.array([clash_nm.get((elem[a], elem[b]), clash_nm.get((elem[b], elem[a]))) for a, b in zip(i, j)])
    clash = d < limit if len(d) else np.zeros(0, bool)
    i, j = i[clash], j[clash]
    delta = pos[i] - pos[j]
    seam = np.linalg.norm(delta, axis=1) >= cutoff
    crossed = np.abs(delta) > 0.5 * box  # the axes along which the minimum image goes through the seam
    pairs = [(int(mol[a]), int(mol[b]), bool(s), "".join(AXES[k] for k in range(3) if c[k]))
             for a, b, s, c in zip(i, j, seam, crossed)]
    removed, out = set(), []
    for seam_pass in (True, False):
        while True:
            active = [p for p in pairs if p[0] not in removed and p[1] not in removed and (p[2] or not seam_pass)]
            if not active:
                break
            counts = np.bincount(np.array([p[:2] for p in active]).reshape(-1), minlength=len(waters))
            worst = int(np.argmax(counts))
            axes = set("".join(p[3] for p in active if worst in p[:2] and p[2]))
            removed.add(worst)
            out.append((worst, "seam" if seam_pass else "inside", "".join(a for a in AXES if a in axes)))
    kept = np.array([m not in removed for m in range(len(waters))], dtype=bool)
    return {"molecules": len(waters), "orphan_atoms": int(len(elements) - 3 * len(waters)), "removed": out, "kept": kept,
            "waters": waters}


def study_box(positions, elements, molecule, box, voxel) -> dict:
    """Counts of one box: the repair (``prepare_boxes``, as `export --repair`) and the replay's reasons and faces."""
    frames = Frames.from_arrays([positions], [elements], [molecule], np.asarray(box).reshape(1, 3),
                                {"method": "map", "voxel_nm": voxel})
    (repaired,), (counts,) = prepare_boxes(frames, repair_boxes=True)
    replay = replay_repair(positions, elements, molecule, box)
    kept_atoms = replay["waters"][replay["kept"]].reshape(-1)
    n_kept = int(replay["kept"].sum())
    expected = make_whole(np.asarray(positions, dtype=np.float64)[kept_atoms], np.tile(["O", "H", "H"], n_kept),
                          np.repeat(np.arange(n_kept), 3), box, wrap=False)
    seam = [r for r in replay["removed"] if r[1] == "seam"]
    faces = Counter(r[2] for r in seam)
    per_axis = {a: sum(1 for r in seam if a in r[2]) for a in AXES}
    return {
        "box_nm": np.asarray(box, dtype=float).tolist(), "molecules_in": counts.molecules_in,
        "molecules_out": counts.molecules_out, "density_in": counts.density_in, "density_out": counts.density_out,
        "removed_seam": counts.seam_removed, "removed_inside": counts.clash_removed,
        "orphan_atoms_removed": counts.orphan_atoms_in,
        "seam_by_faces": dict(sorted(faces.items(), key=lambda kv: (len(kv[0]), kv[0]))),
        "seam_by_axis": per_axis,
        "matches_repair": bool(len(expected) == len(repaired[0]) and np.allclose(expected, repaired[0])
                               and sum(1 for r in replay["removed"] if r[1] == "inside") == counts.clash_removed
                               and len(seam) == counts.seam_removed),
        "removed_fraction": (counts.molecules_in - counts.molecules_out) / max(counts.molecules_in, 1),
        "repaired": repaired,
    }


def training_cubes(edge: float, n: int, seed: int) -> list:
    """`n` cubes of `edge` nm cut at random corners from random frames of the shipped training MD: the
    whole waters whose O lies in the cube, positions from its corner (as a generated box is cut)."""
    frames = load_frames(TRAINING)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        f = int(rng.integers(len(frames)))
        box = frames.box[f]
        pos = make_whole(frames.positions[f], frames.elements[f], frames.molecule[f], box, wrap=True)
        waters = water_indices(frames.elements[f], frames.molecule[f])
        corner = rng.uniform(0, box)
        offset = pos[waters[:, 0]] - corner
        image = np.mod(offset, box) - offset  # the periodic image that puts each O within a box of the corner
        inside = np.all(offset + image < edge, axis=1)
        waters, image = waters[inside], image[inside]
        cube = (pos[waters] - corner + image[:, None, :]).reshape(-1, 3)
        out.append((cube, frames.elements[f][waters.reshape(-1)], np.repeat(np.arange(len(waters)), 3), np.full(3, edge)))
    return out


def summary(rows: list) -> dict:
    """Totals over boxes."""
    total = lambda key: int(sum(r[key] for r in rows))  # noqa: E731
    faces = Counter()
    for r in rows:
        faces.update(r["seam_by_faces"])
    out = {k: total(k) for k in ("molecules_in", "molecules_out", "removed_seam", "removed_inside", "orphan_atoms_removed")}
    out["removed_fraction"] = 1.0 - out["molecules_out"] / max(out["molecules_in"], 1)
    out["density_in"] = float(np.mean([r["density_in"] for r in rows]))
    out["density_out"] = float(np.mean([r["density_out"] for r in rows]))
    out["seam_by_faces"] = dict(sorted(faces.items(), key=lambda kv: (len(kv[0]), kv[0])))
    out["seam_by_axis"] = {a: int(sum(r["seam_by_axis"][a] for r in rows)) for a in AXES}
    out["matches_repair"] = all(r["matches_repair"] for r in rows)
    return out


BOUNDARIES = ("outside", "wrap")  # the cut and the wrap-around boundary (map_core.sampling.canvas.make_canvas)


def generated_boxes(model, n_boxes: int, voxels: int, seed: int, boundary: str, keep=None) -> tuple:
    """(frames, seconds): the boxes generated (`keep`: a frames file to write them to, or to read them from
    when it holds boxes of these settings: a rerun of the MD part skips the sampling)."""
    job = SamplingJob(shape=(voxels,) * 3, n_boxes=n_boxes, seed=seed, boundary=boundary)
    if keep is not None:
        keep = Path(keep).with_name(f"{Path(keep).stem}_{boundary}.npz")
        if keep.exists():
            frames = load_frames(keep)
            meta = frames.meta
            if (meta.get("shape"), meta.get("n_boxes"), meta.get("seed"), meta.get("boundary")) == ([voxels] * 3, n_boxes, seed, boundary):
                return frames, None
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seam-study-") as tmp:
        frames = generate_to_file(model, keep if keep is not None else Path(tmp) / "boxes.npz", job, progress=False)
    return frames, time.perf_counter() - t0


def study_generated(model, n_boxes: int, voxels: int, seed: int, boundary: str, relax_ps: float, threads: int, keep) -> dict:
    """Boxes of one boundary: generated, repaired, attributed and relaxed; rows and totals."""
    frames, generate_s = generated_boxes(model, n_boxes, voxels, seed, boundary, keep)
    voxel = model.config.voxel_nm
    rows = [study_box(frames.positions[k], frames.elements[k], frames.molecule[k], frames.box[k], voxel)
            for k in range(len(frames))]
    for k, row in enumerate(rows):
        t = time.perf_counter()
        relaxed = relax_box(row["repaired"][0], row["box_nm"], relax_ps, seed=seed_for(seed, k), threads=threads)
        row["relax"] = {"ps": relaxed.ps, "density_before": relaxed.density_before, "density_after": relaxed.density_after,
                        "box_after_nm": relaxed.box.tolist(), "minimised_kj_mol_per_molecule": relaxed.minimised_kj_mol,
                        "platform": relaxed.platform, "wall_s": time.perf_counter() - t}
        print(f"{boundary} box {k}: relaxed {relaxed.density_before:.3f} -> {relaxed.density_after:.3f} g/cm3 in "
              f"{row['relax']['wall_s']:.0f} s", file=sys.stderr, flush=True)
        del row["repaired"]
    total = summary(rows)
    total["density_relaxed"] = float(np.mean([r["relax"]["density_after"] for r in rows]))
    total["generate_wall_s"] = generate_s  # None: the boxes were read from --frames
    return {"boxes": rows, "total": total}


def run(n_boxes: int = 4, voxels: int = 32, seed: int = 0, relax_ps: float = 3.0, cubes: int = 16, threads: int = 1,
        keep=None) -> dict:
    torch.set_num_threads(threads)
    model, _ = load_model(default_model_path())
    voxel = model.config.voxel_nm
    edge = voxels * voxel
    generated = {b: study_generated(model, n_boxes, voxels, seed, b, relax_ps, threads, keep) for b in BOUNDARIES}
    control = [study_box(*cube, voxel) for cube in training_cubes(edge, cubes, seed)]
    for row in control:
        del row["repaired"]
    return {
        "machine": machine_info(), "torch_threads": torch.get_num_threads(),
        "settings": {"boxes": n_boxes, "voxels": voxels, "edge_nm": edge, "voxel_nm": voxel, "seed": seed,
                     "relax_ps": relax_ps, "training_cubes": cubes, "model": shown_path(default_model_path()),
                     "model_sha256": hashlib.sha256(default_model_path().read_bytes()).hexdigest(), "threads": threads,
                     "training_frames": shown_path(TRAINING), "boundaries": list(BOUNDARIES)},
        "generated": generated,
        "training_cubes": {"boxes": control, "total": summary(control)},
    }


def table(results: dict) -> str:
    """A small markdown table: one row per generated box of each boundary, the totals of each, then the
    totals of the training cubes."""
    lines = ["| boundary | box | molecules in -> out | seam (x/y/z/several) | inside | orphan atoms | "
             "g/cm3 in -> repaired -> relaxed |", "|---|---|---|---|---|---|---|"]

    def faces(r):
        f = r["seam_by_faces"]
        several = sum(v for k, v in f.items() if len(k) > 1)
        return f"{r['removed_seam']} ({f.get('x', 0)}/{f.get('y', 0)}/{f.get('z', 0)}/{several})"

    def row(boundary, name, r, relaxed):
        removed = f" ({100 * r['removed_fraction']:.1f} % removed)" if "removed_fraction" in r else ""
        tail = f" -> {relaxed:.3f}" if relaxed is not None else ""
        return (f"| {boundary} | {name} | {r['molecules_in']} -> {r['molecules_out']}{removed} | {faces(r)} | "
                f"{r['removed_inside']} | {r['orphan_atoms_removed']} | {r['density_in']:.3f} -> {r['density_out']:.3f}{tail} |")

    for boundary, part in results["generated"].items():
        for k, r in enumerate(part["boxes"]):
            lines.append(row(boundary, k, r, r["relax"]["density_after"]))
        lines.append(row(boundary, "all", part["total"], part["total"]["density_relaxed"]))
    n = len(results["training_cubes"]["boxes"])
    lines.append(row("training MD", f"{n} cubes", results["training_cubes"]["total"], None))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--boxes", type=int, default=4, help="generated boxes (default: %(default)s)")
    p.add_argument("--voxels", type=int, default=32, help="voxels per edge of each box (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling, cube and MD seed (default: %(default)s)")
    p.add_argument("--relax-ps", type=float, default=3.0, help="NPT ps of the relaxation (default: %(default)s)")
    p.add_argument("--cubes", type=int, default=16, help="control cubes cut from the training MD (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="torch and OpenMM CPU threads (default: %(default)s)")
    p.add_argument("--frames", default=None,
                   help="keep the generated boxes in this frames file, or reuse it if it holds boxes of these settings "
                        "(default: generate into a temporary folder)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    results = run(args.boxes, args.voxels, args.seed, args.relax_ps, args.cubes, args.threads, args.frames)
    write_text_atomic(args.out, json.dumps(results, indent=1))
    print(table(results))
    matches = {b: part["total"]["matches_repair"] for b, part in results["generated"].items()}
    print(f"replay matches the repair: {matches} (generated), {results['training_cubes']['total']['matches_repair']} "
          f"(training cubes)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

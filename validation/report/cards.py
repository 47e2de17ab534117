"""Data and model cards: what a shipped training set or checkpoint is, in measured numbers.

Run: python -m validation.report.cards data FRAMES.npz   |   python -m validation.report.cards model MODEL.pt
Prints markdown; the shipped cards in map_core/data/ are made with it.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from map_core.atoms.frames import load_frames
from map_core.files import sha256_file
from map_core.model.checkpoint import load_model
from map_core.model.kinds import kind_of
from validation.md.stats import block_average
from validation.observables.density import compute_density
from validation.observables.geometry import compute_hoh_angles, compute_oh_distances
from validation.observables.rdf import compute_rdf, first_peak


def frames_observables(frames, periodic: bool = True) -> dict:
    """Density, O-H bond, H-O-H angle means (with block-average standard errors over frames) and
    the g_OO first peak of a Frames."""
    density = block_average(compute_density(frames, periodic=periodic))
    bonds = [compute_oh_distances(frames.select([f]), periodic=periodic).mean() for f in range(len(frames))]
    angles = [compute_hoh_angles(frames.select([f]), periodic=periodic).mean() for f in range(len(frames))]
    r_max = min(0.8, 0.49 * float(frames.box.min())) if periodic else 0.6
    r, g = compute_rdf(frames, ("O", "O"), r_max=r_max, bin_width=0.0025, periodic=periodic)
    peak_r, peak_g = first_peak(r, g)
    return {
        "density_g_cm3": density, "oh_bond_angstrom": tuple(10 * v for v in block_average(bonds)),
        "hoh_angle_deg": tuple(np.degrees(v) for v in block_average(angles)),
        "goo_first_peak_angstrom": 10 * peak_r, "goo_first_peak_height": peak_g,
    }


def data_card(path) -> str:
    frames = load_frames(path)
    obs = frames_observables(frames)
    meta = frames.meta
    lines = [
        f"# Data card: `{path}`", "",
        f"- sha256: `{sha256_file(path)}`",
        f"- {len(frames)} frames of {frames.counts[0] // 3} waters; box {frames.box.mean(0).round(4).tolist()} nm (mean)",
        f"- made by: {meta.get('source', '?')}; method {meta.get('method')}, water model {meta.get('water_model')}, "
        f"{meta.get('temperature')} K, stride {meta.get('stride_ps')} ps, equilibration {meta.get('equilibrate_ps')} ps, "
        f"ensemble {meta.get('ensemble')}, time step {meta.get('timestep_fs')} fs, seed {meta.get('seed')}",
        "", "| observable | value (mean +/- standard error over frames) |", "|---|---|",
        f"| density | {obs['density_g_cm3'][0]:.4f} +/- {obs['density_g_cm3'][1]:.4f} g/cm3 |",
        f"| mean O-H bond | {obs['oh_bond_angstrom'][0]:.4f} +/- {obs['oh_bond_angstrom'][1]:.4f} Å |",
        f"| mean H-O-H angle | {obs['hoh_angle_deg'][0]:.2f} +/- {obs['hoh_angle_deg'][1]:.2f} deg |",
        f"| g_OO first peak | {obs['goo_first_peak_angstrom']:.3f} Å, height {obs['goo_first_peak_height']:.2f} (0.025 Å bins) |",
        "", "Full meta:", "", "```json", json.dumps(meta, indent=1, sort_keys=True), "```",
    ]
    return "\n".join(lines) + "\n"


def model_card(path) -> str:
    model, payload = load_model(path)
    prov = payload["provenance"]
    rf = payload["receptive_field"]
    cfg = payload["config"]
    classes = model.config.coder().describe_classes(model.config.n_classes)
    kind = kind_of(model.config)
    lines = [
        f"# Model card: `{path}`", "",
        f"- sha256: `{sha256_file(path)}`",
        f"- model kind: {kind.name} ({kind.description})",
        f"- architecture: {cfg['layers']} layers x {cfg['filters']} filters, kernel {cfg['kernel']}, {cfg['activation']}, "
        f"head {model.config.head or cfg['filters']}, dropout {cfg['dropout']}; {classes}; voxel {cfg['voxel_nm']} nm; "
        f"{sum(p.numel() for p in model.parameters())} parameters",
        f"- receptive field: {rf['planes_back']} planes back, rows -{rf['rows_back']}..{rf['rows_ahead']}, "
        f"columns +/-{rf['cols']}, {rf['cols_back']} back in the row; reach {10 * rf['reach_nm']:.2f} Å along every axis "
        f"(water's O-O first shell: 2.8 Å); {rf['voxels']} voxels",
        f"- training data: `{prov.get('data_path')}` sha256 `{prov.get('data_sha256')}`; "
        f"{prov.get('train_frames')} train / {prov.get('test_frames')} test frames (held out in time)",
        f"- training: {prov.get('steps')} steps, settings {json.dumps(prov.get('settings'))}, seed {prov.get('seed')}, "
        f"wall time {prov.get('wall_time_s', 0) / 60:.1f} min, torch {prov.get('torch_version')}",
        f"- test cross-entropy {prov.get('test_cross_entropy'):.5f} nats/voxel against the class-frequency baseline "
        f"{prov.get('baseline_cross_entropy'):.5f} ({100 * (1 - prov['test_cross_entropy'] / prov['baseline_cross_entropy']):.1f} % below); "
        f"last training loss {prov.get('train_loss_last'):.5f}",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("data", "model"):
        print("usage: python -m validation.report.cards data FRAMES.npz | model MODEL.pt", file=sys.stderr)
        return 2
    print(data_card(argv[1]) if argv[0] == "data" else model_card(argv[1]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

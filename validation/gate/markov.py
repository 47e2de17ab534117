"""Markov-chain checks of the model under test (seed 001: MAP generation is a Markov chain).

- ``markov_positive``: every class has probability > 0 in every context the chain visited
  (the generated boxes) at the profile temperature. With all softmax probabilities > 0 the
  chain over context states is irreducible and aperiodic, so it converges to a unique
  stationary distribution (seed 001); "> 0" is judged as the sampler computes it, in float64,
  so the value is the smallest log10 probability seen and the threshold sits just above
  float64 underflow (about -307.6): a smaller probability is never drawn.
- ``markov_saturation``: the mean log-probability of the sampled voxels per plane (over the
  analysed columns) no longer drifts after the burn-in: the per-box difference between the
  first and second half of the kept planes is zero by a one-sample t-test (seed 001, Fig. 11d:
  the row-wise mean log-probability saturates).
- ``markov_boundary``: statistics after the burn-in do not depend on the boundary: boxes
  grown from an empty boundary and boxes grown inside training voxels have the same oxygen
  and hydrogen fractions and mean log-probability, by Welch two-sample t-tests on blocks of
  planes one receptive field thick (Bonferroni over the three statistics).

Both report a relative difference against an allowance: the larger of ``rel_tol`` and the
difference the t-test would call significant at ``alpha`` (so large samples do not fail on
negligible differences, and small samples do not pass on large ones by luck alone).
Log-probabilities in nats per voxel.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from map_core.model.kinds import kind_of
from map_core.sampling.canvas import make_canvas
from validation.gate.checks import Check
from validation.gate.registry import names, spec

MARKOV_CHECKS = names("markov")
BLOCK_STATS = ("O fraction", "H fraction", "mean log p")


@torch.no_grad()
def class_log_probs(model, grid, temperature: float, boundary="empty") -> np.ndarray:
    """(C, Z, Y, X) float64 log-probabilities of every class at every voxel of one sampled box,
    given the voxels before it (teacher forcing: the contexts the chain visited).

    The network runs in float32, as the sampler's default; softmax and logs are float64, as
    the sampler draws in float64, so a probability that underflows there shows up here.
    """
    cfg = model.config
    grid = torch.as_tensor(np.asarray(grid), dtype=torch.int64)[None]
    bnd = boundary if isinstance(boundary, str) else np.asarray(boundary)[None]
    canvas = make_canvas(grid.shape[1:], 1, kind_of(cfg).receptive_field(cfg), cfg.n_classes, bnd)
    free = canvas.box_view(canvas.free)
    canvas.box_view(canvas.values)[free] = grid[free]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # measured: on a busy 2-core machine two threads run this pass many times slower
    try:
        return kind_of(cfg).class_log_probs(model, canvas, temperature, torch.float32)[0].numpy()
    finally:
        torch.set_num_threads(threads)


def measure_chain(model, grids, temperature: float, geometry, boundary="empty") -> dict:
    """Per-box plane curves and block statistics of one ensemble of sampled boxes.

    boundary: 'empty'/'outside' or (K, ...) boundary arrays, one per box, as sampled.
    Returns min log10 p per class, per-plane mean log p of the sampled voxels (K, Z) over the
    analysed columns, and per-(box, block) O fraction, H fraction and mean log p.
    """
    lo, hi = geometry.b, geometry.b + geometry.n
    thick = max(kind_of(model.config).receptive_field(model.config).planes_back, 1)
    n_classes, coder = model.config.n_classes, model.config.coder()
    min_logp = np.full(n_classes, np.inf)
    planes, blocks = [], []
    for k, grid in enumerate(np.asarray(grids)):
        bnd = boundary if isinstance(boundary, str) else np.asarray(boundary)[k]
        logp = class_log_probs(model, grid, temperature, bnd)
        min_logp = np.minimum(min_logp, logp.reshape(n_classes, -1).min(axis=1))
        chosen = np.take_along_axis(logp, grid[None].astype(np.int64), 0)[0]  # (Z, Y, X)
        planes.append(chosen[:, lo:hi, lo:hi].mean(axis=(1, 2)))
        for z in range(lo, hi - thick + 1, thick):
            cube = grid[z:z + thick, lo:hi, lo:hi]
            blocks.append([*atoms_per_voxel(cube, coder), chosen[z:z + thick, lo:hi, lo:hi].mean()])
    return {"min_log10_p": (min_logp / np.log(10.0)).tolist(), "plane_logp": np.asarray(planes).tolist(),
            "blocks": np.asarray(blocks).tolist(), "block_planes": thick, "burn_in": lo, "region_end": hi}


def atoms_per_voxel(cube, coder) -> tuple:
    """(O, H) atoms per voxel of a block of classes: O and H voxels for atom classes; for fragment
    classes every occupied voxel is one O with its two H."""
    if coder.whole_molecules:
        oxygen = float(np.mean(cube > 0))
        return oxygen, 2.0 * oxygen
    return float(np.mean(cube == 1)), float(np.mean(cube == 2))


def saturation_test(planes, burn_in: int, end: int, alpha: float) -> dict:
    """Paired test that kept planes [burn_in, end) have the same mean log p in both halves.

    Returns the drift (first half minus second, nats/voxel), the drift relative to the mean,
    the t-test p-value and `critical`: the relative drift that would be significant at `alpha`.
    """
    planes = np.asarray(planes, dtype=np.float64)
    mid = (burn_in + end) // 2
    diff = planes[:, burn_in:mid].mean(axis=1) - planes[:, mid:end].mean(axis=1)
    scale = abs(float(planes[:, burn_in:end].mean())) or 1.0
    k = len(diff)
    se = float(np.std(diff, ddof=1) / np.sqrt(k)) if k > 1 else float("nan")
    p = float(stats.ttest_1samp(diff, 0.0).pvalue) if k > 1 and se > 0 else float("nan")
    critical = float(stats.t.ppf(1.0 - alpha / 2.0, k - 1) * se / scale) if k > 1 else float("nan")
    return {"p": p, "drift": float(diff.mean()), "rel_drift": abs(float(diff.mean())) / scale,
            "critical": critical, "mean_logp": -scale}


def boundary_test(blocks_empty, blocks_seeded, alpha: float) -> dict:
    """Welch t-tests of O fraction, H fraction and mean log p between the two boundaries.

    For each statistic: relative difference |mean_empty - mean_seeded| / |mean_seeded|, p-value,
    and `critical`: the relative difference significant at alpha / 3 (Bonferroni).
    """
    a, b = np.asarray(blocks_empty, float), np.asarray(blocks_seeded, float)
    out = {}
    for j, name in enumerate(BLOCK_STATS):
        x, y = a[:, j], b[:, j]
        scale = abs(y.mean()) or 1.0
        vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
        se = float(np.sqrt(vx + vy))
        if se > 0:
            df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
            p = float(stats.ttest_ind(x, y, equal_var=False).pvalue)
            critical = float(stats.t.ppf(1.0 - alpha / (2.0 * len(BLOCK_STATS)), df) * se / scale)
        else:
            p, critical = (1.0 if x.mean() == y.mean() else 0.0), 0.0
        out[name] = {"rel_diff": abs(x.mean() - y.mean()) / scale, "p": p, "critical": critical,
                     "empty": float(x.mean()), "seeded": float(y.mean())}
    return {"stats": out, "blocks": [len(a), len(b)]}


def class_detail(per_class) -> str:
    """The markov_positive detail: every class's smallest log10 p for atom classes, a summary for many classes."""
    if len(per_class) == 3:
        return "smallest log10 probability per class (empty, O, H) over the sampled contexts: " + ", ".join(
            f"{v:.2f}" for v in per_class)
    occupied = np.asarray(per_class[1:])
    return (f"smallest log10 probability over the sampled contexts: empty {per_class[0]:.2f}; the {len(occupied)} "
            f"oriented-molecule classes {occupied.min():.2f} to {occupied.max():.2f} (median {np.median(occupied):.2f})")


def _check(name: str, value, threshold, detail: str) -> Check:
    row = spec(name)
    return Check(name, row.group, row.title, value, threshold, row.relation, row.unit, detail)


def markov_checks(empty: dict, seeded: dict, markov: dict, thresholds: dict) -> tuple:
    """(checks, summary) from the two chain measurements and the profile's [markov] / [thresholds].

    Saturation and boundary checks report a relative difference against its allowance: the
    larger of rel_tol and the difference that a t-test would call significant at alpha.
    """
    alpha, tol = markov["alpha"], markov["rel_tol"]
    per_class = np.minimum(empty["min_log10_p"], seeded["min_log10_p"]).tolist()
    sat = saturation_test(empty["plane_logp"], empty["burn_in"], empty["region_end"], alpha)
    bnd = boundary_test(empty["blocks"], seeded["blocks"], alpha)
    worst = max(bnd["stats"], key=lambda k: bnd["stats"][k]["rel_diff"] / max(tol, bnd["stats"][k]["critical"]))
    w = bnd["stats"][worst]
    checks = [
        _check("markov_positive", min(per_class), thresholds[spec("markov_positive").threshold_key], class_detail(per_class)),
        _check("markov_saturation", sat["rel_drift"], max(tol, sat["critical"]),
               f"mean log p {sat['mean_logp']:.5f} nats/voxel; first minus second half of the kept planes "
               f"{sat['drift']:.2e} (t-test p = {sat['p']:.3g}); allowance = max(rel_tol {tol}, drift significant "
               f"at alpha {alpha})"),
        _check("markov_boundary", w["rel_diff"], max(tol, w["critical"]),
               f"empty vs training-seeded boundary over {bnd['blocks'][0]} and {bnd['blocks'][1]} blocks; worst: {worst} "
               f"({w['empty']:.4g} vs {w['seeded']:.4g}); " + ", ".join(
                   f"{k}: {100 * v['rel_diff']:.1f} % (p = {v['p']:.2g})" for k, v in bnd["stats"].items())),
    ]
    summary = {"saturation": sat, "boundary": bnd, "min_log10_p_per_class": per_class}
    return checks, summary

"""The numbers `map-suite toy` reports for one system: structure against the training data, exact
checks of the correlation expansion and the PixelCNN, and Markov-chain examples (seed 001).

All functions take plain arrays and models and return JSON-ready dicts (and, for figures, arrays).
"""

from __future__ import annotations

import numpy as np
import torch

from map_core.model.pixelcnn import eval_copy, one_hot
from validation.theory.correlation_expansion import fit_expansion
from validation.theory.lattice_stats import structure_distances
from validation.theory.lattice_systems import hard_core_fluid, ideal_gas, ideal_gas_bias
from validation.theory.markov_chain import analyse_chain, transition_matrix
from validation.theory.markov_empirical import context_frequencies, sample_chain, total_variation, tv_bound
from validation.theory.markov_models import expansion_conditional, row_conditional, rows_context_length

# Floors of the structure thresholds; the working threshold is max(floor, NOISE_FACTOR x the distance
# between two independent sets of training samples of the sizes compared), so it follows the statistics.
BASE_THRESHOLDS = {"pair_correlation": 0.10, "neighbour_counts": 0.05}
NOISE_FACTOR = 3.0
METRICS = tuple(BASE_THRESHOLDS)


def structure_thresholds(noise: dict) -> dict:
    """Thresholds per metric from the measured data-vs-data noise distances."""
    return {m: max(BASE_THRESHOLDS[m], NOISE_FACTOR * noise[m]) for m in METRICS}


def compare_structure(reference, test, thresholds: dict, radius: int = 1) -> dict:
    """Distances of `test` from `reference` grids and, per metric, whether it is within its threshold."""
    d = structure_distances(reference, test, radius=radius)
    return {**d, "passes": {m: bool(d[m] <= thresholds[m]) for m in METRICS}, "pass": all(d[m] <= thresholds[m] for m in METRICS)}


def structure_report(train, held, generated: dict, ideal: bool, radius: int, seed: int) -> tuple:
    """Every generated ensemble (name -> (n, S, S) grids) against the held-out data, with thresholds from the
    distance between held-out data and as many training samples, and a deliberately wrong ensemble that
    must fail: an ideal gas at the same density (for the ideal gas itself: a hard-core fluid).
    Returns (report, the wrong ensemble's grids)."""
    n, size = len(next(iter(generated.values()))), held.shape[-1]
    rng = np.random.default_rng([seed, 7])
    same_size = train[rng.choice(len(train), size=min(n, len(train)), replace=False)]
    noise = structure_distances(held, same_size, radius=radius)
    thresholds = structure_thresholds(noise)
    rho = float(train.mean())
    if ideal:
        broken, what = hard_core_fluid(n, (size, size), min(0.9, rho / (1 - rho) ** 2), 1, seed + 1), "hard-core fluid at a similar density"
    else:
        broken, what = ideal_gas(n, (size, size), rho, seed + 1), "ideal gas at the same density"
    report = {"thresholds": thresholds, "base_thresholds": BASE_THRESHOLDS, "noise_factor": NOISE_FACTOR,
              "data_vs_data": noise, "neighbour_radius": radius}
    for name, grids in generated.items():
        report[name] = compare_structure(held, grids, thresholds, radius)
    report["broken"] = {"what": what, **compare_structure(held, broken, thresholds, radius)}
    return report, broken


@torch.no_grad()
def site_probabilities(model, grids) -> np.ndarray:
    """(B, H, W) p(X = 1 | earlier sites) of the PixelCNN on (B, H, W) grids, boundary 'outside' (teacher forcing)."""
    g = torch.as_tensor(np.asarray(grids), dtype=torch.int64)[:, None]
    model = eval_copy(model, torch.float64)
    return torch.softmax(model(one_hot(g, model.config.n_classes, torch.float64)), dim=1)[:, 1, 0].numpy()


def eq7_check(train, expansion, model, held_out) -> dict:
    """Ideal gas: the bias c_b = 1/2 ln(rho / (1 - rho)) (Eq. 7) vs the fitted c_rho and the PixelCNN's
    half logit gap 1/2 ln(p1 / p0) averaged over held-out sites (equal for every context if it learned Eq. 6)."""
    rho = float(np.mean(train))
    p = site_probabilities(model, held_out)
    half_gap = 0.5 * np.log(p / (1 - p))
    return {
        "density": rho, "c_b_eq7": ideal_gas_bias(rho), "c_rho_fitted": float(expansion.coefficients[0]),
        "max_abs_correlation_coefficient": float(np.abs(expansion.coefficients[1:]).max()),
        "pixelcnn_half_logit_gap_mean": float(half_gap.mean()), "pixelcnn_half_logit_gap_std": float(half_gap.std()),
    }


def hard_core_check(rho_eff: float, expansion, exact, model, held_out) -> dict:
    """Hard-core fluid: fitted vs exact coefficients (Eq. 15-16) and the PixelCNN's p(X = 1) where the causal
    neighbours within R_c = 1 are empty (exactly rho_eff, Eq. 10) or not (exactly 0)."""
    g = np.asarray(held_out).astype(bool)
    pad = np.pad(g, ((0, 0), (1, 0), (1, 1)))
    blocked = pad[:, :-1, :-2] | pad[:, :-1, 1:-1] | pad[:, :-1, 2:] | pad[:, 1:, :-2]  # (-1,-1) (-1,0) (-1,1) (0,-1)
    p = site_probabilities(model, held_out)
    return {
        "rho_eff": rho_eff, "c_rho_eq15": float(exact.coefficients[0]), "c_rho_fitted": float(expansion.coefficients[0]),
        "c_neighbours_exact": "-inf (Eq. 16)", "c_neighbours_fitted": [float(c) for c in expansion.coefficients[1:]],
        "pixelcnn_p_free_mean": float(p[~blocked].mean()), "pixelcnn_p_blocked_max": float(p[blocked].max()) if blocked.any() else None,
        "pixelcnn_p_blocked_mean": float(p[blocked].mean()) if blocked.any() else None,
    }


def dilute_pair_check(expansion, beta_eps: float) -> dict:
    """Metropolis pair fluid, dilute limit: an occupied nearest neighbour multiplies the odds of occupation
    by exp(-beta eps), so each single-site coefficient of the causal nearest neighbours is -beta eps / 2
    (Eq. 21 in the convention of Eq. 7); -inf for a repulsive fluid at T = 0 (Eq. 16)."""
    near = [k for k, c in enumerate(expansion.clusters) if len(c) == 1 and np.abs(expansion.offsets[c[0]]).max() == 1]
    fitted = [float(expansion.coefficients[1 + k]) for k in near]
    analytic = -0.5 * beta_eps
    return {"beta_eps": beta_eps if np.isfinite(beta_eps) else str(beta_eps),
            "c_nearest_analytic_dilute": analytic if np.isfinite(analytic) else str(analytic),
            "c_nearest_fitted": fitted, "c_nearest_fitted_mean": float(np.mean(fitted))}


def chain_tv_curve(P, conditional, n_values, seed: int) -> dict:
    """Empirical context distribution of one generated chain vs the exact stationary one, and the n^-1/2 bound."""
    context = int(round(np.log(len(P)) / np.log(conditional.shape[1])))
    pi = analyse_chain(P).stationary
    seq = sample_chain(conditional, int(max(n_values)) + context - 1, seed=seed)[0]
    tv = [total_variation(context_frequencies(seq[: n + context - 1], conditional.shape[1], context), pi) for n in n_values]
    return {"n": [int(n) for n in n_values], "tv": tv, "bound": [tv_bound(P, int(n)) for n in n_values]}


def markov_examples(train, model, temperature: float, seed: int, width: int = 2) -> dict:
    """Exact chain analyses: a 1D correlation expansion fitted to the rows of the data (L_c 3, order 3) at
    beta = 1 and beta = inf, its empirical convergence, and the PixelCNN's row chain on a `width`-wide strip."""
    out = {}
    exp1d = fit_expansion(train, 3, 3, dims=1)
    table = expansion_conditional(exp1d, 1.0)
    P = transition_matrix(table)
    out["expansion_1d"] = {"coefficients": exp1d.as_dict(), **analyse_chain(P).as_dict()}
    argmax = transition_matrix(expansion_conditional(exp1d, np.inf))
    out["expansion_1d_argmax"] = analyse_chain(argmax).as_dict()
    out["tv_convergence"] = chain_tv_curve(P, table, [100, 300, 1000, 3000, 10000, 30000], seed)
    rows_back = rows_context_length(model)
    n_states = model.config.n_classes ** (width * rows_back)
    if n_states <= 1024:
        R = transition_matrix(row_conditional(model, width, temperature))
        rep = analyse_chain(R).as_dict()
        rep["width"], rep["rows_back"] = width, rows_back
        if rep["mixing_time"] is not None:
            rep["mixing_time_receptive_fields"] = rep["mixing_time"] / rows_back
        out["pixelcnn_rows"] = rep
    else:
        out["pixelcnn_rows"] = {"skipped": f"{n_states} super-states on a {width}-wide strip exceed 1024"}
    return out

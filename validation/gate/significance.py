"""How surprising is a check's value if the judged boxes were training water? p-values and z-scores.

The null distribution of each structure check (except the classifier) at the profile's sizes
is bootstrapped over windows, in physical_validation's spirit: a pool of held-out reference
windows is measured one window at a time (``measure_structure`` gives counts and histograms that
add up, so a resample is a sum, not a new measurement); each of `draws` resamples takes
`n_boxes` windows of the pool with replacement and is compared with the training windows
exactly as the judged boxes are. Then

- p-value = (1 + #{null values >= value}) / (1 + draws): one-sided, since every distance is
  zero for identical ensembles (Davison and Hinkley 1997, Eq. 4.11 for the +1s);
- z-score = (value - mean(null)) / sd(null).

The smallest reachable p-value is 1 / (1 + draws). Resamples with replacement scatter a little
more than fresh windows (repeated windows), so these p-values err on the side of passing.
The classifier's p-value is exact instead (binomial accuracy, validation.gate.classifier).
"""

from __future__ import annotations

import math

import numpy as np

from validation.gate.structure import structure_values

BOOTSTRAP_DRAWS = 200
POOL_FACTOR = 4  # pool of held-out windows = POOL_FACTOR x n_boxes


def combine_measurements(parts: list) -> dict:
    """One measurement (as measure_structure returns) of the union of the windows of `parts`
    (each a measure_structure dict): counts, histograms and per-box lists add up."""
    out = {"boxes": sum(p["boxes"] for p in parts), "molecules": sum(p["molecules"] for p in parts),
           "atoms": sum(p["atoms"] for p in parts), "too_dense_boxes": sum(p.get("too_dense_boxes", 0) for p in parts)}
    for name in ("density_per_box", "orphan_atoms", "region_atoms", "energy_per_box"):
        out[name] = [x for p in parts for x in p[name]]
    if any(p.get("rdf") is None for p in parts):
        out["rdf"], out["hist"] = None, None
        return out
    out["rdf"] = {name: {"r": parts[0]["rdf"][name]["r"],
                         "counts": np.sum([p["rdf"][name]["counts"] for p in parts], axis=0).tolist(),
                         "expected": np.sum([p["rdf"][name]["expected"] for p in parts], axis=0).tolist()}
                  for name in parts[0]["rdf"]}
    out["hist"] = {name: np.sum([p["hist"][name] for p in parts], axis=0).tolist() for name in parts[0]["hist"]}
    out["sq"] = {k: (v if k == "r" else np.sum([p["sq"][k] for p in parts], axis=0).tolist())
                 for k, v in parts[0]["sq"].items()}
    out["rings"] = {"sizes": parts[0]["rings"]["sizes"], "molecules": sum(p["rings"]["molecules"] for p in parts),
                    "counts": np.sum([p["rings"]["counts"] for p in parts], axis=0).tolist()}
    return out


def bootstrap_null(windows: list, reference: dict, structure: dict, n_boxes: int, draws: int = BOOTSTRAP_DRAWS,
                   seed: int = 0) -> dict:
    """{check: [draws values]}: structure_values of `draws` resamples of `n_boxes` of the per-window
    measurements `windows` against `reference` (the training windows' measurement)."""
    rng = np.random.default_rng([seed, 31])
    null = {}
    for _ in range(draws):
        pick = rng.integers(0, len(windows), n_boxes)
        values = structure_values(combine_measurements([windows[i] for i in pick]), reference, structure)
        for name, (value, _) in values.items():
            null.setdefault(name, []).append(float(value))
    return null


def p_value(value: float, null) -> float | None:
    """One-sided bootstrap p-value of `value` (larger = worse) against the null sample; None if
    either is not finite (a check that could not be measured has no p-value)."""
    null = np.asarray([x for x in null if math.isfinite(x)], dtype=float)
    if value is None or not math.isfinite(value) or len(null) == 0:
        return None
    return float((1 + np.count_nonzero(null >= value - 1e-12 * max(abs(value), 1e-300))) / (1 + len(null)))


def z_score(value: float, null) -> float | None:
    """(value - mean) / sd of the null sample; None when undefined (no spread, or not finite)."""
    null = np.asarray([x for x in null if math.isfinite(x)], dtype=float)
    if value is None or not math.isfinite(value) or len(null) < 2 or null.std(ddof=1) <= 0:
        return None
    return float((value - null.mean()) / null.std(ddof=1))


def null_summary(null) -> dict:
    """Median, 95th percentile and maximum of a null sample (JSON-safe)."""
    v = np.asarray([x for x in null if math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return {"n": 0}
    return {"n": int(len(v)), "median": float(np.median(v)), "p95": float(np.percentile(v, 95)), "max": float(v.max())}

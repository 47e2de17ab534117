"""One check of the gate: a measured value, a threshold, a verdict; and the distances it uses.

Every check compares a measured number against a profile threshold with a fixed relation
('<=' or '>='). A value that could not be measured (NaN, e.g. no molecules in a box) fails.
Where the gate also measured held-out training frames with the same sizes, `control` holds
that value: the noise floor of the check at this profile's scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

# Units of code and files (nm, radians) as text for people shows them (Å, degrees): (factor, symbol).
SHOWN_UNITS = {"nm": (10.0, "Å"), "rad": (180.0 / math.pi, "°")}


def shown(value: float, unit: str) -> tuple:
    """(value, unit) as people read it: nm -> Å, rad -> degrees, other units as they are."""
    scale, symbol = SHOWN_UNITS.get(unit, (1.0, unit))
    return value * scale, symbol



@dataclass
class Check:
    """name: stable id (test id of the pytest gate); group: structure | markov | md;
    value and threshold in `unit`; relation: value must be `<=` or `>=` the threshold."""

    name: str
    group: str
    title: str
    value: float
    threshold: float
    relation: str = "<="
    unit: str = ""
    detail: str = ""
    control: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return relation_holds(self.relation, self.value, self.threshold)

    def line(self) -> str:
        """One line for terminals: verdict, name, value, relation, threshold."""
        verdict = "PASS" if self.passed else "FAIL"
        unit = f" {self.unit}" if self.unit else ""
        ctrl = "" if self.control is None else f" (held-out control {_fmt(self.control)})"
        why = f" - {self.detail}" if self.detail else ""
        return f"{verdict} {self.name}: {_fmt(self.value)}{unit} {self.relation} {_fmt(self.threshold)}{unit}{ctrl}{why}"

    def as_dict(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        out["value"] = _clean(self.value)
        out["control"] = _clean(self.control)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "Check":
        known = {k: data[k] for k in ("name", "group", "title", "value", "threshold", "relation", "unit",
                                      "detail", "control", "extra") if k in data}
        if known.get("value") is None:
            known["value"] = float("nan")
        return cls(**known)


def _fmt(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.4g}"
    return f"{x:.3e}"


def _clean(x):
    """JSON-safe float: NaN and inf become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def relation_holds(relation: str, value, threshold) -> bool:
    """The pass rule: value `relation` threshold ('<=' or '>='); a missing or non-finite value fails."""
    if value is None or not math.isfinite(value):
        return False
    return bool(value <= threshold if relation == "<=" else value >= threshold)


def verdict(checks) -> bool:
    """True if every check passed (and there is at least one)."""
    checks = list(checks)
    return bool(checks) and all(c.passed for c in checks)


# --- distances between distributions ------------------------------------------------------

def histogram(values, lo: float, hi: float, bins: int) -> np.ndarray:
    """(bins,) counts of `values` on [lo, hi], values outside clipped into the end bins."""
    v = np.clip(np.asarray(values, dtype=np.float64).ravel(), lo, hi)
    v = v[np.isfinite(v)]
    return np.histogram(v, bins=bins, range=(lo, hi))[0].astype(np.float64)


def wasserstein_hist(counts_a, counts_b, bin_width: float) -> float:
    """Earth mover's (Wasserstein-1) distance between two histograms on the same bins, in the
    unit of `bin_width`: the integral of |CDF_a - CDF_b|. NaN if either is empty."""
    a, b = np.asarray(counts_a, float), np.asarray(counts_b, float)
    if a.sum() <= 0 or b.sum() <= 0:
        return float("nan")
    return float(np.abs(np.cumsum(a / a.sum()) - np.cumsum(b / b.sum())).sum() * bin_width)


def kl_hist(counts_ref, counts_gen, pseudo: float = 0.5) -> float:
    """KL divergence D(P_ref || P_gen), nats, of two histograms on the same bins (seed 000,
    Fig. 5). Each bin gets `pseudo` counts first so that an empty bin is not infinitely
    surprising (additive smoothing). NaN if either is empty."""
    p, q = np.asarray(counts_ref, float), np.asarray(counts_gen, float)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p = (p + pseudo) / (p + pseudo).sum()
    q = (q + pseudo) / (q + pseudo).sum()
    return float(np.sum(p * np.log(p / q)))


def rms_difference(a, b, mask=None) -> float:
    """Root-mean-square difference of two curves on the same grid (optionally on `mask`)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if mask is not None:
        a, b = a[mask], b[mask]
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return float("nan")
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))

"""What the gate cannot see: the smallest change of each structure observable that its check
detects (issue 28).

For each structure check with a perturbation family (``validation.gate.measures.Measure.perturbation``)
the generated side of held-out draws (real training-like water judged as if generated: the null)
is moved by ``delta`` along the check's observable, and the check is judged again against the
same training measurement:

- density: every box's density scaled by 1 + delta (unit: relative);
- energy: every box's energy per molecule shifted by delta (kJ/mol);
- histograms (tetrahedral, hbonds, q4, q6, oh_bond, hoh_angle): every value shifted by delta in
  the observable's unit (dimensionless, H-bonds per molecule, nm, rad): the histogram on its grid
  moved by linear interpolation of its CDF, with what passes an end clipped into the end bin;
- g_OO, g_OH, g_HH and S_OO: the structure's amplitude scaled, g - 1 -> (1 + delta)(g - 1)
  (relative amplitude of g(r) - 1);
- rings: rings per molecule of every size scaled by 1 + delta (relative).

The orphan rate and the classifier have no family (the classifier's power is measured on foreign
ensembles, ``validation.gate.error_rates``).

The power at delta is the fraction of draws whose perturbed value fails the check: the value
comes from the check's own ``measure.compare`` (the code ``validation.gate.structure.structure_values``
runs for the verdict, with its rule that an over-dense ensemble's liquid checks are not measured),
and fails by the check's pass rule (``validation.gate.registry.passed``) at the profile's
threshold. Nothing is re-implemented: a change is judged exactly as a generated ensemble with that
change would be, up to the perturbation being applied to the measurement rather than to the atoms.

The minimum detectable difference (MDD) in each direction (delta > 0: "increase", delta < 0:
"decrease", reported as magnitudes in the family's unit) is the smallest |delta| at which the
power reaches `power` (default 0.8): found on a geometric grid (factor 2 from 1e-6 of the
family's limit, ``Measure.perturb_limit``: 50 % relative (rings: 100 %), 20 kJ/mol, a quarter of a
histogram's range), then bisected to two significant digits. None: not reached within the limit. The power
need not rise monotonically with |delta| (moving towards the training value first lowers a
check's value), so the MDD is the first crossing found on that grid. "power_at_zero" is the
check's false-failure rate over the draws.

    inputs = judging_inputs("quick", coder=None)          # validation.gate.error_rates
    draws = heldout_draws(Drawer(inputs), [7000 + d for d in range(60)])
    table = minimum_detectable(draws, inputs.thresholds, inputs.profile["structure"])
"""

from __future__ import annotations

import math

from validation.gate.registry import passed, spec, structure_rows

GRID_FACTOR = 2.0
GRID_FROM = 1e-6   # the grid starts at this fraction of the family's limit
DIGITS = 2         # significant digits of a reported MDD


def perturbable() -> tuple:
    """Names of the structure checks that have a perturbation family, in registry order."""
    return tuple(r.name for r in structure_rows() if r.measure.perturbation is not None)


def check_value(name: str, gen: dict, ref: dict, structure: dict) -> float:
    """The value of check `name` for measurements `gen` against `ref`, as
    ``validation.gate.structure.structure_values`` gives it (one check only)."""
    measure = spec(name).measure
    if measure.liquid and (gen.get("rdf") is None or gen.get("too_dense_boxes")):
        return float("nan")  # not measured (denser than MAX_DENSITY): structure_values fails it the same way
    return measure.compare(name, gen, ref, structure)[0]


def perturbed_value(name: str, gen: dict, ref: dict, structure: dict, delta: float) -> float:
    """The value of check `name` with the generated observable moved by `delta`."""
    return check_value(name, spec(name).measure.perturb(name, gen, delta), ref, structure)


def power_at(draws, name: str, delta: float, thresholds: dict, structure: dict) -> float:
    """Fraction of `draws` ((generated, training) measurement pairs of held-out draws) whose value
    of check `name`, with the generated observable moved by `delta`, fails the check at
    `thresholds` (a [thresholds] table: the row's threshold_key)."""
    if not draws:
        return float("nan")
    threshold = thresholds[spec(name).threshold_key]
    failed = sum(not passed(name, perturbed_value(name, gen, ref, structure, delta), threshold) for gen, ref in draws)
    return failed / len(draws)


def _step(x: float) -> float:
    """One unit of the last of DIGITS significant digits of x > 0."""
    return 10.0 ** (math.floor(math.log10(x)) - DIGITS + 1)


def _round_up(x: float) -> float:
    """x > 0 rounded up to DIGITS significant digits."""
    step = _step(x)
    return float(f"{math.ceil(x / step - 1e-9) * step:.{DIGITS}g}")


def smallest_detectable(draws, name: str, sign: int, thresholds: dict, structure: dict, power: float = 0.8):
    """Smallest |delta| (delta of sign `sign`) with power >= `power`, to DIGITS significant digits
    (the bisection's upper end rounded up); 0.0 if the check already fails that often
    unperturbed; None if not reached within the family's limit."""
    def powerful(size: float) -> bool:
        return power_at(draws, name, sign * size, thresholds, structure) >= power

    if powerful(0.0):
        return 0.0
    limit = spec(name).measure.perturb_limit(structure)
    lo, hi = 0.0, limit * GRID_FROM
    while not powerful(hi):
        if hi >= limit:
            return None
        lo, hi = hi, min(hi * GRID_FACTOR, limit)
    while hi - lo > 0.5 * _step(hi):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if powerful(mid) else (mid, hi)
    return _round_up(hi)


def minimum_detectable(draws, thresholds: dict, structure: dict, power: float = 0.8) -> dict:
    """{check: {"perturbation", "unit", "increase", "decrease", "power_at_zero"}} for every check
    with a perturbation family: the minimum detectable difference (magnitude, in `unit`) of a
    change of each sign at `power`, or None if not reached within the family's limit."""
    out = {}
    for name in perturbable():
        what, unit = spec(name).measure.perturbation
        out[name] = {"perturbation": what, "unit": unit,
                     "increase": smallest_detectable(draws, name, +1, thresholds, structure, power),
                     "decrease": smallest_detectable(draws, name, -1, thresholds, structure, power),
                     "power_at_zero": power_at(draws, name, 0.0, thresholds, structure)}
    return out


def heldout_draws(drawer, seeds) -> list:
    """(generated, training) measurement pairs of held-out draws seeded `seeds`, judged by
    ``validation.gate.error_rates.Drawer.judged`` (`drawer`: a Drawer)."""
    ref = drawer.inputs.reference
    pairs = []
    for seed in seeds:
        judged = drawer.judged(ref.frames, ref.heldout_indices, seed, f"{ref.sha256}:heldout")
        pairs.append((judged["generated"], judged["training"]))
    return pairs


__all__ = ["check_value", "heldout_draws", "minimum_detectable", "perturbable", "perturbed_value",
           "power_at", "smallest_detectable"]

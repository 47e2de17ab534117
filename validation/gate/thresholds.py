"""Where the structure thresholds come from: the null distribution of each check, at a stated level.

A profile names its rule in ``[calibration]``:

- ``rule = "null-quantile"`` (issue 28): each structure check's threshold is the (1 - alpha/k)
  quantile of its null distribution at the profile's sizes, k being the number of structure
  checks that can fail in the judging mode (``counted``, the combined test included). By
  Bonferroni's inequality the family-wise false-failure rate of the structure group is then at most
  alpha (``[calibration] alpha``, 5 % in the shipped profiles), whatever the checks' correlations.
  The null distribution is ``NULL_DRAWS`` fresh draws of held-out training windows (never
  resamples), each as many windows as the profile judges, judged through the gate's own path
  (``validation.gate.error_rates.Drawer``). The quantile is the empirical one, taken at the draw
  just above it (numpy's "higher" method), then rounded up to 3 significant figures.
- ``rule = "max-heldout"``: the rule of the earlier profiles, kept so that results can be
  compared: 1.5 x the largest value of the first 20 of those draws (for the classifier AUC, 0.5 +
  1.5 x its largest excess over 0.5), rounded up to 2 significant figures. It states no level.

Both rules are computed from the same draws by ``python -m validation.gate.calibrate PROFILE
--null``, which records the draws, k, alpha and both rules' thresholds in
``validation/gate/profiles/null_draws.json`` (``--write`` also copies the profile rule's
numbers into the profile's threshold table, where the gate reads them).

The **combined test** (check ``combined``) pools the evidence of all counted checks: Fisher's
statistic F = -2 sum_i ln p_i, where p_i = (1 + #{null draws >= value_i}) / (1 + N) is check i's
one-sided p-value against the recorded null draws (Davison and Hinkley 1997, Eq. 4.11).
The checks are correlated, so F is not chi-squared with 2k degrees of freedom; its null
distribution is measured instead, as the leave-one-out F of each recorded draw against the other
N - 1, and its threshold is that distribution's (1 - alpha/k) quantile like every other check's.
Many small, consistent shifts (water a little too warm: energy, H-bonds and g_OO each a little
off) add up in F where no single check crosses its threshold.

The orphan rate keeps seed 000's threshold (held-out windows have no orphans, so its null is 0
and it cannot fail good water); checks fixed by the judging encoding (bonds and angles of rigid
voxel molecules) cannot fail either. Neither counts in k.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np

from map_core.files import write_text_atomic
from validation.gate.classifier import FEATURES_VERSION
from validation.gate.registry import structure_rows
from validation.gate.significance import p_value
from validation.gate.sources import sampling_key
from validation.gate.structure import MEASUREMENT_VERSION, fixed_by_encoding

RULES = ("null-quantile", "max-heldout")
NULL_DRAWS = 1000          # draws behind a null-quantile threshold: about 4 beyond a 1 - 0.05/13 quantile
MAX_HELDOUT_DRAWS = 20     # draws behind the max-heldout rule (the earlier profiles' calibration)
MAX_HELDOUT_FACTOR = 1.5
COMBINED = "combined"
SEED_000_RULE = ("orphan_rate",)  # thresholds from seed 000's published model, not from the null
NULL_PATH = Path(__file__).parent / "profiles" / "null_draws.json"


def counted(coder) -> tuple:
    """Names of the structure checks that can fail good water in the judging mode of `coder` (None:
    continuous), the combined test last: the k of alpha/k."""
    rows = [r for r in structure_rows() if r.name not in SEED_000_RULE and r.name != COMBINED
            and not fixed_by_encoding(r, coder)]
    return (*(r.name for r in rows), COMBINED)


def level(alpha: float, k: int) -> float:
    """The quantile level of each check's threshold: 1 - alpha / k."""
    return 1.0 - alpha / k


def null_quantile(values, q: float) -> float:
    """The empirical q-quantile of a null sample (the draw just above it), rounded up to 3 figures."""
    v = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    return _ceil_figures(float(np.quantile(v, q, method="higher")), 3) if len(v) else float("nan")


def max_heldout(name: str, values) -> float:
    """The earlier rule: 1.5 x the largest of the first MAX_HELDOUT_DRAWS values (AUC: of the excess over 0.5)."""
    largest = float(np.nanmax(np.asarray(values[:MAX_HELDOUT_DRAWS], dtype=float)))
    if name == "classifier":
        return 0.5 + _ceil_figures(MAX_HELDOUT_FACTOR * max(largest - 0.5, 0.0), 2)
    return _ceil_figures(MAX_HELDOUT_FACTOR * largest, 2)


def _ceil_figures(x: float, figures: int) -> float:
    if x <= 0 or not math.isfinite(x):
        return x
    scale = 10.0 ** (math.floor(math.log10(x)) - figures + 1)
    return round(math.ceil(x / scale - 1e-9) * scale, 12)


def fisher(p_values) -> float:
    """Fisher's combination statistic -2 sum ln p."""
    return float(-2.0 * np.sum(np.log(np.asarray(list(p_values), dtype=float))))


def combined_value(values: dict, record: dict) -> tuple:
    """(F, detail) of the combined test for `values` (name -> value) against a null record."""
    null = record["values"]
    names = [n for n in record["counted"] if n != COMBINED]
    # a value that could not be measured (NaN) is as surprising as the draws allow
    p = {n: p_value(values[n], null[n]) or 1.0 / (1 + len(null[n])) for n in names}
    smallest = sorted(p, key=p.get)[:3]
    return fisher(p.values()), (
        f"Fisher's combination of the p-values of {len(names)} checks against {record['draws']} held-out draws; "
        "smallest: " + ", ".join(f"{n} {p[n]:.2g}" for n in smallest))


def combined_null(null: dict, names) -> np.ndarray:
    """(N,) leave-one-out Fisher statistics of the recorded draws: draw j against the other N - 1."""
    names = [n for n in names if n != COMBINED]
    v = np.array([null[n] for n in names], dtype=float)              # (checks, N)
    v = np.where(np.isfinite(v), v, np.inf)
    n = v.shape[1]
    # rank of each draw within its check: #{other draws >= it}, ties counted, the draw itself excluded
    greater_equal = np.array([(row[None, :] >= row[:, None]).sum(axis=1) - 1 for row in v])  # (checks, N)
    p = (1.0 + greater_equal) / n
    return -2.0 * np.log(p).sum(axis=0)


def thresholds_from(record: dict) -> dict:
    """{rule: {check: threshold}} of both rules from a null record's draws (the combined test's
    threshold comes from its leave-one-out null; under max-heldout it is not judged)."""
    q = level(record["alpha"], len(record["counted"]))
    null = record["values"]
    names = [n for n in record["counted"] if n != COMBINED]
    out = {"null-quantile": {n: null_quantile(null[n], q) for n in names},
           "max-heldout": {n: max_heldout(n, null[n]) for n in names}}
    out["null-quantile"][COMBINED] = null_quantile(combined_null(null, names), q)
    return out


# --- the record ----------------------------------------------------------------------------------

def null_under(inputs) -> dict:
    """What a null record of `inputs` (GateInputs) depends on: the judging mode, the analysed region,
    the reference, the profile sections that shape a draw and the versions of the measurements."""
    p, geo = inputs.profile, inputs.geometry
    return {"mode": inputs.mode, "voxel_nm": geo.voxel_nm, "region_voxels": geo.n,
            "reference_sha256": inputs.reference.sha256, "test_fraction": inputs.reference.test_fraction,
            "sampling": {k: v for k, v in sampling_key(p).items() if k in ("region_nm", "n_boxes")},
            "reference": p["reference"], "structure": p["structure"], "seed": p.seed,
            "measurement_version": MEASUREMENT_VERSION, "features_version": FEATURES_VERSION}


def null_fingerprint(inputs) -> str:
    """sha256 of `null_under(inputs)`."""
    return hashlib.sha256(json.dumps(null_under(inputs), sort_keys=True).encode()).hexdigest()


def load_nulls(path=NULL_PATH) -> dict:
    """The whole record file ({} if there is none). A copy: callers may change it."""
    path = Path(path)
    if not path.is_file():
        return {}
    stat = path.stat()
    return copy.deepcopy(_read_nulls(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=4)
def _read_nulls(path: str, mtime_ns: int, size: int) -> dict:
    """The parsed record file, read once per version of it (every judgement of a run looks it up)."""
    return json.loads(Path(path).read_text())


def null_record_for(inputs, path=NULL_PATH) -> dict | None:
    """The recorded null of this run's profile and mode when it was measured under this run's
    fingerprint, else None (the combined test is then not judged)."""
    entry = load_nulls(path).get(inputs.profile.name, {}).get(inputs.mode)
    return entry if entry and entry.get("fingerprint") == null_fingerprint(inputs) else None


def write_null(record: dict, path=NULL_PATH) -> None:
    """Merge `record` into the record file under [profile][mode] (atomic write)."""
    data = load_nulls(path)
    data.setdefault(record["profile"], {})[record["mode"]] = record
    write_text_atomic(Path(path), json.dumps(data, indent=1, sort_keys=True) + "\n")


def write_profile_thresholds(path, section: str, values: dict) -> None:
    """Set `values` (threshold key -> number) in table [`section`] of a profile TOML file, keeping its
    comments and layout (atomic write); every key must already be there."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    current, seen = None, set()
    for i, line in enumerate(lines):
        header = re.match(r"\s*\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
            continue
        entry = re.match(r"(\s*)([A-Za-z0-9_]+)(\s*=\s*)([^#\n]*?)(\s*#.*)?$", line.rstrip("\n"))
        if current == section and entry and entry.group(2) in values:
            value = values[entry.group(2)]
            text = json.dumps(value) if isinstance(value, str) else repr(value)  # TOML strings: double quotes
            lines[i] = f"{entry.group(1)}{entry.group(2)}{entry.group(3)}{text}{entry.group(5) or ''}\n"
            seen.add(entry.group(2))
    missing = sorted(set(values) - seen)
    if missing:
        raise ValueError(f"{path}: no key {missing[0]!r} in [{section}]")
    write_text_atomic(path, "".join(lines))

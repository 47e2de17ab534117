"""The gate's stated error rates: where they are recorded, what they were measured under, and
whether they apply to a run.

``validation/gate/profiles/error_rates.json`` holds, per profile and judging mode, the measured
false-failure rate on fresh held-out draws and the power against each foreign ensemble
(``validation.gate.error_rates`` measures them through the gate's own judging path). Each entry
carries the ``fingerprint`` of what it was measured under: the profile sections that shape the
structure group (sampling but the device, reference windows, structure), the thresholds the
structure checks were judged by, the window geometry, the judging mode and the reference data.
A run quotes the entry only when its own fingerprint is the same; otherwise its report says that
the rates were measured under other thresholds or sizes, instead of quoting them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from scipy.stats import binomtest

from map_core.files import write_text_atomic
from validation.gate.registry import structure_rows
from validation.gate.sources import sampling_key
from validation.gate.thresholds import null_record_for

ERROR_RATES_PATH = Path(__file__).parent / "profiles" / "error_rates.json"


def measured_under(inputs) -> dict:
    """What an error-rate measurement of `inputs` (GateInputs) depends on, as JSON."""
    p = inputs.profile
    keys = [row.threshold_key for row in structure_rows() if row.threshold_key]
    record = null_record_for(inputs)
    return {"mode": inputs.mode, "geometry": inputs.geometry.as_dict(), "reference_sha256": inputs.reference.sha256,
            "test_fraction": inputs.reference.test_fraction, "sampling": sampling_key(p), "reference": p["reference"],
            "structure": p["structure"], "thresholds": {k: inputs.thresholds[k] for k in keys},
            "rule": inputs.threshold_rule, "null": record["fingerprint"] if record else None}


def fingerprint(inputs) -> str:
    """sha256 of `measured_under(inputs)`."""
    return hashlib.sha256(json.dumps(measured_under(inputs), sort_keys=True).encode()).hexdigest()


def rates_for(inputs, path=None) -> dict | None:
    """The recorded entry of this run's profile and mode with ``applies`` True when it was measured
    under this run's fingerprint; a note (``applies`` False) when it was not; None if never measured."""
    entry = load_error_rates(inputs.profile.name, inputs.mode, ERROR_RATES_PATH if path is None else path)
    if entry is None:
        return None
    if entry.get("fingerprint") == fingerprint(inputs):
        return {**entry, "applies": True, "detectable_sentence": detectable_sentence(entry)}
    return {"mode": inputs.mode, "applies": False,
            "note": f"measured for the {inputs.profile.name} profile ({inputs.mode}) under other thresholds, sizes, "
                    "geometry or reference than this run's, so not quoted here; measure them for this run with "
                    f"python -m validation.gate.calibrate PROFILE --error-rates"}


def load_error_rates(profile_name: str, mode: str, path=ERROR_RATES_PATH) -> dict | None:
    """The recorded error rates of a profile in one judging mode, or None if not measured."""
    try:
        return json.loads(Path(path).read_text()).get(profile_name, {}).get(mode)
    except (OSError, ValueError, AttributeError):
        return None


def write_error_rates(result: dict, path=ERROR_RATES_PATH) -> None:
    """Merge `result` into the error-rates file under [profile][mode] (atomic write)."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.setdefault(result["profile"], {})[result["mode"]] = result
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def markdown_table(data: dict) -> str:
    """GATE.md's table of the recorded error rates: per profile and judging mode, the false-failure
    rate on held-out water and the power against each foreign ensemble (failed / draws)."""
    names = sorted({name for modes in data.values() for r in modes.values() for name in r.get("power", {})})
    lines = ["| profile | judging | false failures (held-out water) | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for profile in ("smoke", "quick", "paper"):
        for mode, r in sorted(data.get(profile, {}).items()):
            ff = r["false_failure"]
            ci = binomtest(ff["failed"], ff["draws"]).proportion_ci(0.95)  # Clopper-Pearson
            cells = [f"{ff['failed']}/{ff['draws']} ({100 * ff['rate']:.0f} %; 95 % CI {100 * ci.low:.0f}-{100 * ci.high:.0f} %)"]
            for name in names:
                pw = r.get("power", {}).get(name)
                cells.append("" if pw is None else f"{pw['failed']}/{pw['draws']} ({100 * pw['rate']:.0f} %)")
            lines.append(f"| {profile} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def checks_table(data: dict) -> str:
    """Which checks reject each foreign ensemble (draws failing each check), per profile and mode."""
    lines = []
    for profile, modes in data.items():
        for mode, r in sorted(modes.items()):
            for name, pw in sorted(r.get("power", {}).items()):
                by = ", ".join(f"{k} {v}" for k, v in sorted(pw["per_check"].items(), key=lambda kv: -kv[1]))
                lines.append(f"- {profile}, {mode}, {name}: {by or 'no check fails'}")
    return "\n".join(lines) + "\n"


def _mdd(entry: dict) -> float | None:
    """The larger of a check's two minimum detectable differences (None: one is not reached)."""
    up, down = entry.get("increase"), entry.get("decrease")
    return None if up is None or down is None else max(up, down)


def _mdd_text(mdd, unit: str) -> str:
    if mdd is None:
        return "not within the searched range"
    if unit == "relative" or unit.startswith("relative amplitude"):
        return f"{100 * mdd:.2g} %"
    return f"{mdd:.2g} {'' if unit == 'dimensionless' else unit}".rstrip()


def detectable_sentence(record: dict) -> str:
    """One sentence for a report's header: the differences the recorded run's checks cannot see
    (80 % power at their thresholds); '' when none were measured."""
    table = (record or {}).get("detectable", {}).get("checks", {})
    parts = [f"{name} {_mdd_text(_mdd(e), e['unit'])}" for name, e in table.items()
             if not (e["unit"] in ("nm", "rad") and (_mdd(e) or 0) < 1e-5)]  # rigid molecules: fixed, not judged
    if not parts:
        return ""
    return (f"At these sizes a check misses, in more than {100 - 100 * record['detectable']['power']:.0f} % of runs, "
            "a change smaller than: " + "; ".join(parts) + " (amplitudes: of g(r) - 1 and S(q) - 1).")


def detectable_table(data: dict) -> str:
    """GATE.md's table of minimum detectable differences per profile and judging mode."""
    rows = [(p, m, r["detectable"]) for p in ("smoke", "quick", "paper") for m, r in sorted(data.get(p, {}).items())
            if r.get("detectable")]
    if not rows:
        return ""
    names = list(rows[0][2]["checks"])
    units = {n: rows[0][2]["checks"][n]["unit"] for n in names}
    lines = ["| profile | judging | " + " | ".join(names) + " |",
             "|---|---|" + "---|" * len(names)]
    for profile, mode, det in rows:
        cells = [_mdd_text(_mdd(det["checks"][n]), units[n]) if n in det["checks"] else "" for n in names]
        lines.append(f"| {profile} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

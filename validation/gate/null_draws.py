"""The null distribution of the structure checks: fresh held-out draws, judged as the gate judges.

Draw d (d = 0 .. N-1) is a fresh set of held-out training windows, as many as the profile judges,
seeded ``DRAW_SEED + d`` (validation.gate.error_rates; the error-rate measurement starts at
``FRESH_FROM``, past every calibration draw), judged through ``GateSession.judge_structure``
against the run's fixed training windows. Each draw's check values are appended to a JSON-lines
file as soon as they are known, so a killed calibration resumes where it stopped.

    python -m validation.gate.calibrate quick --null [--draws 1000] [--encoding continuous] [--write]

The record (validation.gate.thresholds) holds every draw's values, so that the thresholds, the
combined test's null and the minimum detectable differences can all be recomputed from it.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
from pathlib import Path

from validation.gate.error_rates import DRAW_SEED, FRESH_FROM, Drawer
from validation.gate.thresholds import COMBINED, counted, null_fingerprint, null_under, thresholds_from

ROUND_FIGURES = 6  # figures kept of each recorded value


def measure_null(inputs, draws: int, work_dir, alpha: float, log=print) -> dict:
    """The null record of `inputs` (GateInputs) over `draws` held-out draws, resuming from `work_dir`."""
    if draws > FRESH_FROM:
        raise ValueError(f"at most {FRESH_FROM} calibration draws (the error-rate draws start there)")
    names = counted(inputs.source.coder)
    fp = null_fingerprint(inputs)
    path = Path(work_dir) / f"null-{inputs.profile.name}-{inputs.mode}-{fp[:12]}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = _read_done(path)
    if done:
        log(f"resuming: {len(done)} of {draws} draws done ({path})")
    drawer = Drawer(inputs)
    with open(path, "a", encoding="utf-8") as out:
        for d in range(draws):
            if d in done:
                continue
            checks = {c.name: c.value for c in drawer.heldout(DRAW_SEED + d)}
            done[d] = {n: _round(checks[n]) for n in names if n != COMBINED}
            out.write(json.dumps({"draw": d, "values": done[d]}) + "\n")
            out.flush()
            os.fsync(out.fileno())
            log(f"null draw {d + 1}/{draws}")
    values = {n: [done[d][n] for d in range(draws)] for n in names if n != COMBINED}
    record = {"profile": inputs.profile.name, "mode": inputs.mode, "fingerprint": fp, "null_under": null_under(inputs),
              "judged_by": "validation.gate.session.GateSession.judge_structure", "draws": draws,
              "seeds": [DRAW_SEED, DRAW_SEED + draws - 1], "alpha": alpha, "counted": list(names), "values": values,
              "measured": {"date": datetime.date.today().isoformat(), "machine": platform.processor() or platform.machine()}}
    record["thresholds"] = thresholds_from(record)
    return record


def _read_done(path: Path) -> dict:
    """{draw: values} of the complete lines of a work file (a torn last line is dropped)."""
    done = {}
    if not path.is_file():
        return done
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            done[int(row["draw"])] = row["values"]
        except (ValueError, KeyError, TypeError):
            continue
    return done


def _round(x) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{ROUND_FIGURES}g}")

"""The gate's error rates, measured: how often it fails good water, how often it catches bad water.

- **False-failure rate**: fresh draws of held-out reference windows (seeds 1000 + d for d from
  FRESH_FROM on, never the draws the thresholds were calibrated on), each as many windows as the
  profile judges, go through the whole structure group against the training windows; a draw
  fails when any check fails.
- **Power**: the same for windows of named foreign ensembles (validation.gate.foreign: molecules
  re-oriented, expanded 3 %, TIP3P, TIP4P-Ew, q-TIP4P/F at 330 K): the fraction of draws rejected.

    python -m validation.gate.calibrate quick --error-rates [--encoding continuous] [--foreign DIR] [--write]

Results go to ``validation/gate/profiles/error_rates.json`` (per profile and judging mode) with
``--write``; every gate run copies its profile's entry into results.json and the report's header.
``python -m validation.gate.calibrate --table`` prints the recorded rates as GATE.md's table.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import load_frames
from map_core.files import write_text_atomic
from map_core.training.crops import split_frames
from validation.gate.boxes import judging_geometry, region_frames, window_ensemble
from validation.gate.classifier import classifier_test, molecule_features
from validation.gate.structure import TITLES, measure_structure, structure_values

ERROR_RATES_PATH = Path(__file__).parent / "profiles" / "error_rates.json"
FRESH_FROM = 20       # calibration used draws 0..19
FOREIGN_SEED = 2000   # draw d of a foreign ensemble: windows seeded FOREIGN_SEED + d


def mode_name(coder: Encoding | None) -> str:
    """'continuous', or 'ENCODING@VOXEL' (e.g. 'water@0.05')."""
    return "continuous" if coder is None else f"{coder.name}@{coder.voxel_nm:g}"


def judging_thresholds(profile, coder: Encoding | None) -> dict:
    """The structure thresholds of `profile` for a judging mode."""
    th = dict(profile["thresholds"])
    if coder is None:
        th.update(profile["thresholds.continuous"])
    return th


def failed_checks(values: dict, thresholds: dict) -> list:
    """Names of the checks whose value (name -> float) fails its threshold (NaN fails)."""
    out = []
    for name, value in values.items():
        limit = thresholds[TITLES[name][2]]
        if not (math.isfinite(value) and value <= limit):
            out.append(name)
    return out


class Judge:
    """Structure group of one profile and judging mode against fixed training windows."""

    def __init__(self, profile, frames, train_indices, coder: Encoding | None):
        self.profile, self.coder = profile, coder
        cal = profile["calibration"]
        self.geo = judging_geometry(coder.voxel_nm if coder else cal["voxel_nm"], coder.name if coder else cal["encoding"],
                                    profile["sampling"])
        self.thresholds = judging_thresholds(profile, coder)
        self.ref = self.measure(window_ensemble(frames, train_indices, self.geo, coder, profile["reference"]["windows"],
                                                np.random.default_rng(11)))

    def measure(self, whole) -> tuple:
        """(structure measurement, classifier features) of whole boxes (Frames, open) of this geometry."""
        st = self.profile["structure"]
        region = region_frames(whole, self.geo)
        return measure_structure(region, whole, st, self.geo), molecule_features(region)

    def values(self, frames, indices, seed: int) -> dict:
        """check -> value of one draw of windows of `frames` (at `indices`), windows seeded `seed`."""
        n = self.profile["sampling"]["n_boxes"]
        return self.judged(self.measure(window_ensemble(frames, indices, self.geo, self.coder, n,
                                                        np.random.default_rng(seed))))

    def judged(self, gen: tuple) -> dict:
        """check -> value of a `measure` result against the training windows."""
        st = self.profile["structure"]
        out = {k: v[0] for k, v in structure_values(gen[0], self.ref[0], st).items()}
        out["classifier"] = classifier_test(*gen[1], *self.ref[1], hidden=st["classifier_hidden"],
                                            epochs=st["classifier_epochs"], folds=st["classifier_folds"],
                                            max_samples=st["classifier_max_samples"], seed=0)["auc"]
        return out

    def rate(self, frames, indices, seeds, log=print, label="") -> dict:
        """{'draws', 'failed', 'rate', 'per_check': {check: failures}} over draws seeded `seeds`."""
        per_check, failed = {}, 0
        for k, seed in enumerate(seeds):
            bad = failed_checks(self.values(frames, indices, seed), self.thresholds)
            failed += bool(bad)
            for name in bad:
                per_check[name] = per_check.get(name, 0) + 1
            log(f"{label} draw {k + 1}/{len(seeds)}: " + (f"FAIL ({', '.join(bad)})" if bad else "pass"))
        return {"draws": len(seeds), "failed": failed, "rate": failed / len(seeds), "per_check": per_check}


def measure_error_rates(profile, data, coder: Encoding | None, draws: int = 50, foreign: dict | None = None,
                        power_draws: int = 20, log=print) -> dict:
    """False-failure rate over `draws` fresh held-out draws and power against each foreign
    ensemble (name -> frames path) over `power_draws` draws, for one profile and judging mode."""
    frames = load_frames(data)
    train, held = split_frames(len(frames), 0.2)
    judge = Judge(profile, frames, train, coder)
    out = {"profile": profile.name, "mode": mode_name(coder), "geometry": judge.geo.as_dict(),
           "windows_per_draw": profile["sampling"]["n_boxes"], "rule": "a draw fails when any structure check fails",
           "false_failure": judge.rate(frames, held, [1000 + d for d in range(FRESH_FROM, FRESH_FROM + draws)], log,
                                       "held-out"),
           "power": {}}
    for name, path in (foreign or {}).items():
        other = load_frames(path)
        result = judge.rate(other, range(len(other)), [FOREIGN_SEED + d for d in range(power_draws)], log, name)
        result["source"] = {"path": Path(path).name, "frames": len(other),
                            "description": other.meta.get("description", other.meta.get("source"))}
        out["power"][name] = result
    return out


def write_error_rates(result: dict, path=ERROR_RATES_PATH) -> None:
    """Merge `result` into the error-rates file under [profile][mode] (atomic write)."""
    path = Path(path)
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.setdefault(result["profile"], {})[result["mode"]] = result
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def load_error_rates(profile_name: str, mode: str, path=ERROR_RATES_PATH) -> dict | None:
    """The measured error rates of a shipped profile in one judging mode, or None if not measured."""
    try:
        return json.loads(Path(path).read_text()).get(profile_name, {}).get(mode)
    except (OSError, ValueError, AttributeError):
        return None


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


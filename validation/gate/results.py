"""The results.json format of a gate run: written here, read here, by everyone.

A results file is strict JSON (NaN and inf become null) with ``format`` = FORMAT and
``format_version`` = FORMAT_VERSION; what the keys hold is documented in ``validation/GATE.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from map_core.atoms.encoding import ENCODINGS, Encoding
from map_core.errors import MapSuiteError
from map_core.files import write_text_atomic
from validation.gate.registry import BY_NAME
from validation.gate.structure import fixed_by_encoding

FORMAT = "map-suite-gate-results"
FORMAT_VERSION = 2


def _from_version_1(results: dict) -> None:
    """Version 2 added ``md.not_judged`` ({check: why}: the MD checks a profile leaves out by name;
    a version-1 file judged every MD check it holds) and a structure check's
    ``extra.fixed_by_encoding`` (a version-1 file of a model's boxes: derived from its encoding)."""
    if isinstance(results.get("md"), dict):
        results["md"].setdefault("not_judged", {})
    calibration, provenance = results.get("calibration"), results.get("provenance")
    model = calibration.get("model") if isinstance(calibration, dict) else None
    if isinstance(provenance, dict) and provenance.get("model") and isinstance(model, dict) \
            and isinstance(model.get("encoding"), str) and model["encoding"] in ENCODINGS:
        coder = Encoding(model["encoding"], 1.0)  # only its facts are read, not its voxel size
        for check in results["checks"]:
            row = BY_NAME.get(check.get("name"))
            if row is not None and isinstance(check.get("extra"), dict):
                check["extra"].update(fixed_by_encoding(row, coder))


# How each earlier version that has shipped is brought one version up, in place: the renderer and
# everyone else read only the current layout.
UPGRADES = {1: _from_version_1}


def load_results(path) -> dict:
    """Read a results.json written by the gate; MapSuiteError if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise MapSuiteError("no such results file", path)
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MapSuiteError(f"not a JSON results file ({exc})", path) from None
    if not isinstance(results, dict) or results.get("format") != FORMAT:
        raise MapSuiteError("not a gate results file (no format marker)", path)
    version = results.get("format_version")
    if type(version) is not int or (version != FORMAT_VERSION and version not in UPGRADES):  # not True, not 1.0
        raise MapSuiteError(f"results format version {version!r} is not supported (this map-suite reads "
                            f"versions {min(UPGRADES)} to {FORMAT_VERSION})", path)
    problem = _shape_problem(results)
    if not problem:  # upgrades read a well-formed file
        for older in range(version, FORMAT_VERSION):
            UPGRADES[older](results)
        results["format_version"] = FORMAT_VERSION
    if problem:
        raise MapSuiteError(f"not a complete gate results file: {problem}", path)
    return results


def _shape_problem(results: dict) -> str:
    """What is wrong with the top-level shape of a results dict ('' if nothing)."""
    if results.get("verdict") not in ("pass", "fail", "incomplete"):
        return "verdict is not pass, fail or incomplete"
    for key, kind in (("checks", list), ("groups", list), ("profile", dict), ("provenance", dict)):
        if not isinstance(results.get(key), kind):
            return f"{key} is not a {kind.__name__}"
    for k, c in enumerate(results["checks"]):
        if not isinstance(c, dict):
            return f"check {k} is not an object"
        for key, kinds in (("name", str), ("group", str), ("title", str), ("relation", str), ("unit", str),
                           ("passed", bool), ("value", (int, float, type(None))), ("threshold", (int, float, type(None)))):
            if not isinstance(c.get(key), kinds) or (key != "passed" and isinstance(c.get(key), bool)):
                return f"check {k} has no valid {key}"
        if c["relation"] not in ("<=", ">="):
            return f"check {k} has relation {c['relation']!r}"
    if not all(g in ("structure", "markov", "md") for g in results["groups"]):
        return "groups names an unknown group"
    return ""


def write_results(results: dict, out_dir) -> Path:
    """Write results.json (strict JSON: NaN and inf become null) atomically."""
    path = Path(out_dir) / "results.json"
    write_text_atomic(path, json.dumps(_strict(results), indent=1, sort_keys=True))
    return path


def _strict(x):
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    if isinstance(x, (np.floating, np.integer, np.bool_)):
        return _strict(x.item())
    if isinstance(x, np.ndarray):
        return _strict(x.tolist())
    return x

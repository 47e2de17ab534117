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
from map_core.values import is_real
from validation.gate.registry import BY_NAME, GROUPS
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
    """Read a results.json written by the gate; MapSuiteError if it is not one.

    Beyond the JSON itself, every field that a reader of results reads (the report's HTML, Markdown
    table and figures: `SCHEMA`) must hold the type it needs, so that a well-formed file of wrong
    values is refused here, in one line, and never half-rendered."""
    path = Path(path)
    if not path.is_file():
        raise MapSuiteError("no such results file", path)
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MapSuiteError(f"not a JSON results file ({exc})", path) from None
    except ValueError as exc:  # an integer of more than 4300 digits (Python's int-string limit)
        raise MapSuiteError(f"not a usable results file ({str(exc)[:120]})", path) from None
    except RecursionError:  # arrays or objects nested thousands deep
        raise MapSuiteError("not a usable results file (values nested too deeply)", path) from None
    if not isinstance(results, dict) or results.get("format") != FORMAT:
        raise MapSuiteError("not a gate results file (no format marker)", path)
    version = results.get("format_version")
    if type(version) is not int or (version != FORMAT_VERSION and version not in UPGRADES):  # not True, not 1.0
        raise MapSuiteError(f"results format version {_shown(version)} is not supported (this map-suite reads "
                            f"versions {min(UPGRADES)} to {FORMAT_VERSION})", path)
    problem = _depth_problem(results) or _shape_problem(results)
    if not problem:  # upgrades read a well-formed file
        for older in range(version, FORMAT_VERSION):
            UPGRADES[older](results)
        results["format_version"] = FORMAT_VERSION
        problem = SCHEMA(results, "results")
    if problem:
        raise MapSuiteError(f"not a complete gate results file: {problem}", path)
    return results


MAX_DEPTH = 32  # a results file is about 8 levels deep; the renderer's json.dumps recurses per level


def _depth_problem(results) -> str:
    """'' unless objects or arrays nest deeper than MAX_DEPTH (checked without recursion)."""
    stack = [(results, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"values nested deeper than {MAX_DEPTH} levels"
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return ""


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


# --- what the readers of a results file read, and the type each needs ------------------------------
# A spec is a function (value, where) -> problem ('' if none). Keys a spec does not name are kept as
# they are: the report shows them (profile, provenance) but computes nothing from them.

def _shown(x) -> str:
    """A value for a one-line message: short; never str() of a huge integer (it fails past 4300 digits)."""
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**15:
        return "an integer of 16 digits or more"
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(x) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(x), f"the number {_shown(x)}")


def _is(test, what: str):
    return lambda x, where: "" if test(x) else f"{where} is {_kind(x)}, not {what}"


NUMBER = _is(is_real, "a number")
NUMBER_OR_NULL = _is(lambda x: x is None or is_real(x), "a number or null")
POSITIVE = _is(lambda x: is_real(x) and x > 0, "a positive number")  # a length the report divides by or draws to
NONNEGATIVE = _is(lambda x: is_real(x) and x >= 0, "a number >= 0")
FRACTION = _is(lambda x: is_real(x) and 0 <= x <= 1, "a number in [0, 1]")
COUNT = _is(lambda x: isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63, "a count (an integer >= 0)")
COUNT_OR_NULL = _is(lambda x: x is None or (isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**63),
                    "a count or null")
TEXT = _is(lambda x: isinstance(x, str), "a string")
TEXT_OR_NULL = _is(lambda x: x is None or isinstance(x, str), "a string or null")
FLAG = _is(lambda x: isinstance(x, bool), "true or false")
FLAG_OR_NULL = _is(lambda x: x is None or isinstance(x, bool), "true, false or null")
ANY_OBJECT = _is(lambda x: isinstance(x, dict), "an object")


def _one_of(*options):
    return _is(lambda x: isinstance(x, str) and x in options, " or ".join(repr(o) for o in options))


def _array(item, length: int | None = None):
    def check(x, where):
        if not isinstance(x, list):
            return f"{where} is {_kind(x)}, not an array"
        if length is not None and len(x) != length:
            return f"{where} has {len(x)} items, not {length}"
        return next((p for i, v in enumerate(x) if (p := item(v, f"{where}[{i}]"))), "")
    return check


def _mapping(item):
    """An object whose every value is `item` (its keys are names: checks, methods, packages)."""
    def check(x, where):
        if not isinstance(x, dict):
            return f"{where} is {_kind(x)}, not an object"
        return next((p for k, v in x.items() if (p := item(v, f"{where}.{k}"))), "")
    return check


def _object(required: dict, optional: dict | None = None, also=None):
    """An object with the `required` keys and, where present, the `optional` ones; `also(x, where)`: a
    check of how its fields relate."""
    def check(x, where):
        if not isinstance(x, dict):
            return f"{where} is {_kind(x)}, not an object"
        for key, spec in required.items():
            if key not in x:
                return f"{where} has no {key}"
            if problem := spec(x[key], f"{where}.{key}"):
                return problem
        for key, spec in (optional or {}).items():
            if key in x and (problem := spec(x[key], f"{where}.{key}")):
                return problem
        return also(x, where) if also else ""
    return check


def _maybe(spec):
    return lambda x, where: "" if x is None else spec(x, where)


def _same_lengths(*keys):
    def check(x, where):
        lengths = {len(x[k]) for k in keys if k in x}
        return "" if len(lengths) <= 1 else f"{where}: {', '.join(keys)} differ in length"
    return check


SERIES = _array(NUMBER_OR_NULL)  # measured curves: the writer turns NaN into null
CURVE = _object({"r": _array(NUMBER), "counts": SERIES, "expected": SERIES}, also=_same_lengths("r", "counts", "expected"))


def _threshold_of_control(c, where):
    # the report compares a held-out control with the threshold
    if c.get("control") is not None and c["threshold"] is None:
        return f"{where} has a control but no threshold"
    return ""


CHECK = _object(
    {"name": TEXT, "group": _one_of(*GROUPS), "title": TEXT, "relation": _one_of("<=", ">="), "unit": TEXT,
     "passed": FLAG, "value": NUMBER_OR_NULL, "threshold": NUMBER_OR_NULL, "detail": TEXT},
    {"control": NUMBER_OR_NULL,
     "extra": _maybe(_object({}, {"p_value": NUMBER_OR_NULL, "z_score": NUMBER_OR_NULL, "statistic": TEXT,
                                  "fixed_by_encoding": TEXT_OR_NULL}))},
    also=_threshold_of_control)
DEFECTS = _object({"orphans": COUNT, "atoms": COUNT, **{f"{axis}_{part}": SERIES for axis in ("distance", "z")
                                                       for part in ("edges", "atoms", "orphans")}})
ENSEMBLE = _object(
    {"boxes": COUNT, "molecules": COUNT, "defects": DEFECTS},
    {"rdf": _maybe(_mapping(CURVE)), "hist": _maybe(_mapping(SERIES)),
     "sq": _object({"r": _array(NUMBER), "counts": SERIES, "expected": SERIES, "references": COUNT,
                    "pairs_per_volume": NONNEGATIVE}, also=_same_lengths("r", "counts", "expected")),
     "rings": _object({"sizes": _array(COUNT), "counts": SERIES}, also=_same_lengths("sizes", "counts"))})


def _rectangular(x, where):
    return "" if len({len(row) for row in x}) <= 1 else f"{where} has rows of different lengths"


def _plane_logp(x, where):
    return _array(SERIES)(x, where) or _rectangular(x, where)


MARKOV_RUN = _object({"plane_logp": _plane_logp, "burn_in": NUMBER, "region_end": NUMBER})
MD_RUN = _object({}, {"series": _mapping(_array(lambda v, w: "" if v is None or is_real(v) or isinstance(v, str)
                                                 else f"{w} is {_kind(v)}, not a value"))})
ERROR_RATES = _object({}, {"applies": FLAG, "note": TEXT, "mode": TEXT, "detectable_sentence": TEXT_OR_NULL,
                           "false_failure": _object({"failed": COUNT, "draws": COUNT, "rate": FRACTION}),
                           "power": _mapping(_object({"failed": COUNT, "draws": COUNT}))},
                      also=lambda x, where: "" if x.get("applies") is False or "false_failure" in x
                      else f"{where} has no false_failure")
TABLE1_ROW = _object({"run": TEXT}, {"failed": TEXT, "waters": COUNT_OR_NULL,
                                     **{k: NUMBER_OR_NULL for k in ("density_g_cm3", "density_se", "oh_bond_nm", "oh_bond_se",
                                                                    "hoh_angle_deg", "hoh_angle_se", "dipole_debye",
                                                                    "dipole_se")}})
PROVENANCE = _object(
    {"model": _maybe(_object({"path": TEXT, "sha256": TEXT, "config": ANY_OBJECT, "training": ANY_OBJECT})),
     "reference": _object({"path": TEXT, "found_as": TEXT, "sha256": TEXT, "train_frames": COUNT, "heldout_frames": COUNT},
                          {"is_training_data": FLAG_OR_NULL}),
     "seed": COUNT, "versions": _mapping(TEXT_OR_NULL), "date_utc": TEXT,
     "machine": _object({"platform": TEXT, "cpus": COUNT_OR_NULL, "openmm_platforms": _array(TEXT)})},
    {"command": TEXT_OR_NULL},
    also=lambda x, where: "" if x["model"] else _object(
        {"boxes": _object({"path": TEXT, "sha256": TEXT, "boxes": COUNT, "judging": TEXT})})(x, where))
# sq_r_max_nm: the report transforms g(r) on 0.0125 nm bins out to it (validation.report.figures.experiment_sq);
# no region the gate samples reaches 1000 nm (8e12 voxels of 0.05 nm), and 80,000 bins are cheap.
MAX_R_NM = 1000.0
PROFILE = _object({"source": TEXT, "profile": _object({"name": TEXT, "description": TEXT}),
                   "structure": _object({}, {"sq_r_max_nm": _is(lambda x: is_real(x) and 0 < x <= MAX_R_NM,
                                                                f"a length in (0, {MAX_R_NM:g}] nm")})})
PROFILE_MD = _object({"md": _object({"box_nm": POSITIVE}),
                      "md.classical": _object({"npt_ps": NONNEGATIVE, "nvt_ps": NONNEGATIVE}),
                      "md.rpmd": _object({"beads": COUNT, "npt_ps": NONNEGATIVE, "nvt_ps": NONNEGATIVE, "start": TEXT})})


def _groups(results, where):
    """The sections of the groups that ran."""
    groups = results["groups"]
    if "structure" in groups and (p := _object({"generated": ENSEMBLE, "training": ENSEMBLE},
                                               {"heldout": ENSEMBLE})(results.get("structure"), f"{where}.structure")):
        return p
    if "markov" in groups and (p := _object({}, {"skipped": TEXT, "empty": MARKOV_RUN, "seeded": MARKOV_RUN},
                                            also=lambda x, w: "" if ("empty" in x) == ("seeded" in x)
                                            else f"{w} has only one of empty and seeded")(results.get("markov"),
                                                                                            f"{where}.markov")):
        return p
    if "md" in groups:
        md = _object({}, {"skipped": TEXT, "not_judged": _mapping(TEXT), "generated": _mapping(MD_RUN),
                          "training": _mapping(MD_RUN)})
        if p := md(results.get("md"), f"{where}.md") or PROFILE_MD(results["profile"], f"{where}.profile"):
            return p
    return ""


SCHEMA = _object(
    {"verdict": _one_of("pass", "fail", "incomplete"), "groups": _array(_one_of(*GROUPS)), "checks": _array(CHECK),
     "profile": PROFILE, "provenance": PROVENANCE, "judged": TEXT,
     "geometry": _object({"voxel_nm": POSITIVE, "region_nm": POSITIVE, "burn_in_nm": NONNEGATIVE,
                          "shape_zyx": _array(COUNT, 3)}),
     "calibration": _object({"matches": FLAG, "note": TEXT}), "timing_s": _mapping(NUMBER_OR_NULL)},
    {"error_rates": _maybe(ERROR_RATES), "table1": _array(TABLE1_ROW), "judging": ANY_OBJECT,
     "not_applicable": _mapping(TEXT)},
    also=_groups)


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

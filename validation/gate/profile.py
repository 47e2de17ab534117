"""Gate profiles: TOML files that fix the sizes, run lengths and thresholds of one gate run.

A profile is either a shipped name (``smoke``, ``quick``, ``paper``, ``gpu``: ``validation/gate/profiles/``)
or the path of a user's ``.toml`` file. A user file may start from a shipped profile with
``extends = "quick"`` at the top level and then override single keys. Every key is checked
(type, range, unknown names) before any work starts; a problem is one MapSuiteError line
naming the file, the section and the key. Three layers, in this order: each key alone (`SCHEMA`;
the bounds below say where each comes from), keys that bound each other (`_check_relations`), and
the memory and time that the sizes and run lengths imply together
(``validation.gate.profile_budget``), so that no count reaches an allocation or a loop unchecked.

Units: lengths nm, times ps (``timestep_fs`` fs), angles radians, energies kJ/mol, dipoles
Debye. Sections and keys (see ``SCHEMA``; shipped files document every key):

- ``[profile]`` name, description, seed.
- ``[sampling]`` region_nm (edge of the analysed cube), burn_in_nm and burn_in_fields (the
  burned-in margin is the larger of burn_in_nm and burn_in_fields receptive-field depths),
  n_boxes, batch, temperature, boundary, device (where the sampler runs: 'cpu', 'cuda', 'cuda:N';
  the boxes do not depend on it, so it is not part of their cache key).
- ``[reference]`` windows: training-frame windows voxelised like the generated boxes.
- ``[structure]`` RDF range and bins, histogram bins, classifier size.
- ``[markov]`` seeded_boxes, alpha (two-sample test level), rel_tol.
- ``[md]`` enabled, box_nm, timestep_fs, traj_ps, report_ps, min_waters, platform (OpenMM
  platform name, or 'auto': CUDA > OpenCL > CPU); ``[md.classical]`` npt_ps,
  nvt_ps, intra_substeps; ``[md.rpmd]`` enabled, beads, npt_ps, nvt_ps, contract_reciprocal,
  start ('repaired' box or end of the 'classical' run). RPMD that starts from the classical run may
  skip NPT (npt_ps = 0): it then runs NVT at the classical run's mean volume and its density is not
  judged (``validation.gate.md.md_checks``).
- ``[calibration]`` encoding and voxel_nm: the voxel encoding the thresholds were calibrated for
  (``python -m validation.gate.calibrate``); the gate warns when a model's differ. rule: how the
  structure thresholds were set ('null-quantile': the 1 - alpha/k quantile of each check's null
  distribution, with the combined test; 'max-heldout': 1.5 x the largest of 20 held-out values,
  the earlier rule; ``validation.gate.thresholds``); alpha: the structure group's family-wise
  false-failure rate under the null-quantile rule.
- ``[thresholds]`` one number per check (the ``threshold_key`` of its row in
  ``validation.gate.registry``) and
  ``[thresholds.md_tolerance]`` absolute agreement tolerances of the MD observables;
  ``[thresholds.continuous]`` the structure thresholds for boxes judged as continuous positions
  (``map-suite validate --boxes`` without ``--voxel``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from map_core.atoms.encoding import ENCODINGS
from map_core.errors import MapSuiteError
from map_core.files import shown_path
from map_core.model.checkpoint import VOXEL_NM_MAX, VOXEL_NM_MIN
from validation.gate.boxes import WATER_NUMBER_DENSITY
from validation.gate.profile_budget import check_budget
from validation.gate.registry import threshold_schema
from validation.gate.values import BOOL, DEVICE, NONNEG, POS, PROB, STR, choice, ints

SHIPPED = ("smoke", "quick", "paper", "gpu")
PLATFORMS = ("auto", "CUDA", "OpenCL", "CPU", "Reference")
SQ_REGION_FRACTION = 0.75  # largest sq_r_max_nm as a fraction of region_nm

# Bounds of single keys (sizes and run lengths are bounded together by validation.gate.profile_budget).
# seed: numpy's SeedSequence takes any integer >= 0, but the classifier seeds torch with
# seed * 1000 + fold (validation.gate.classifier.classifier_test) and torch.manual_seed takes < 2**64.
MAX_FOLDS = 1000  # folds beyond 1000 would make seed * 1000 + fold repeat another seed's fold streams
SEED_MAX = (2**64 - MAX_FOLDS) // 1000
# temperature: the sampler divides float64 logits by it (map_core.model.choice.choose); below 0.01 a
# logit gap of 7.5 is already exp(-750) = 0, an argmax, and above 100 the draw is nearly uniform noise.
# The gate judges a model at T = 1; its negative controls use 0.5 and 2.
TEMPERATURE_RANGE = (0.01, 100.0)
# rdf_bin_nm: positions are float32 (frames files), about 1e-7 nm at the 1-3 nm of a region, so a
# bin under 1e-6 nm resolves rounding, not structure; the bin count is bounded by the budget.
RDF_BIN_MIN_NM = 1e-6
# timestep_fs: q-TIP4P/F is flexible: its O-H stretch (period ~9 fs) needs about 0.5 fs (seed 000;
# 0.1 fs for the bonded forces with MTS); 4 fs is past where any integrator of flexible water is stable.
TIMESTEP_FS_MAX = 4.0
# intra_substeps: the bonded forces' inner step is timestep_fs / intra_substeps; seed 000 used 5
# (0.5 / 0.1 fs), which resolves the O-H stretch already; 100 (0.005 fs) is past any use.
MAX_INTRA_SUBSTEPS = 100
# classifier_max_samples: a cap ("at most"), so any size is harmless except one the classifier's
# share per box (limit / boxes, a float division) cannot hold exactly.
MAX_SAMPLES_CAP = 2**53
# name: it names the gate's default report folder (reports/gate-NAME) and keys the recorded error
# rates and null draws, so it is a file name: no separators, no leading dot.
NAME = (lambda x: isinstance(x, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", x) is not None,
        "a name of up to 64 letters, digits, '.', '_' and '-' (it names the report folder reports/gate-NAME)")


def _guarded(check):
    """`check` that says False where a hostile value makes it raise (math.isfinite(10**5000), ...)."""
    def ok(x):
        try:
            return bool(check(x))
        except (OverflowError, TypeError, ValueError):
            return False
    return ok


def _int_in(lo: int, hi: int) -> tuple:
    return (lambda x: isinstance(x, int) and not isinstance(x, bool) and lo <= x <= hi), f"an integer in [{lo}, {hi}]"


def _real_in(lo: float, hi: float, lo_open: bool = False) -> tuple:
    def ok(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and \
            (lo < x if lo_open else lo <= x) and x <= hi
    return ok, f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]"


def shown_value(x) -> str:
    """A value for a one-line message: short, and never str() of a huge integer (which raises past
    4300 digits) or a long text."""
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**15:
        return f"{'-' if x < 0 else ''}~1e{int(abs(x).bit_length() * math.log10(2))} (an integer)"
    if isinstance(x, dict):
        return "a table"
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."

# section -> key -> (check, description). Nested tables are sections named "md.classical" etc.
# The threshold tables come from the check registry (validation.gate.registry).
SCHEMA = {
    "profile": {"name": NAME, "description": STR, "seed": _int_in(0, SEED_MAX)},
    "sampling": {
        "region_nm": POS, "burn_in_nm": NONNEG, "burn_in_fields": NONNEG, "n_boxes": ints(2),
        "batch": ints(1), "temperature": _real_in(*TEMPERATURE_RANGE), "boundary": choice("empty", "outside"),
        "device": DEVICE,
    },
    "reference": {"windows": ints(2)},
    "structure": {
        "rdf_r_max_nm": POS, "rdf_bin_nm": _real_in(RDF_BIN_MIN_NM, math.inf), "rdf_r_min_nm": NONNEG, "sq_r_max_nm": POS,
        "q_bins": ints(4), "classifier_hidden": ints(1), "classifier_epochs": ints(1),
        "classifier_folds": _int_in(2, MAX_FOLDS), "classifier_max_samples": _int_in(10, MAX_SAMPLES_CAP),
    },
    "markov": {"seeded_boxes": ints(2), "alpha": PROB, "rel_tol": NONNEG},
    "md": {"enabled": BOOL, "box_nm": POS, "timestep_fs": _real_in(0.0, TIMESTEP_FS_MAX, lo_open=True), "traj_ps": POS,
           "report_ps": POS, "min_waters": ints(2), "platform": choice(*PLATFORMS)},
    "md.classical": {"npt_ps": POS, "nvt_ps": POS, "intra_substeps": _int_in(1, MAX_INTRA_SUBSTEPS)},
    "md.rpmd": {"enabled": BOOL, "beads": ints(1), "npt_ps": NONNEG, "nvt_ps": POS, "contract_reciprocal": BOOL,
                "start": choice("repaired", "classical")},
    # voxel_nm: the range a checkpoint's voxel may have (map_core.model.checkpoint); also the voxel
    # size at which the budget estimates the boxes.
    "calibration": {"encoding": choice(*ENCODINGS), "voxel_nm": _real_in(VOXEL_NM_MIN, VOXEL_NM_MAX),
                    "rule": choice("null-quantile", "max-heldout"), "alpha": PROB},
    **threshold_schema(),
}


@dataclass(frozen=True)
class Profile:
    """A validated profile: `data` maps section -> {key: value} (nested TOML tables flattened
    to "md.classical" etc.); `source` is the file it came from."""

    data: dict
    source: str

    @property
    def name(self) -> str:
        return self.data["profile"]["name"]

    @property
    def seed(self) -> int:
        return self.data["profile"]["seed"]

    def __getitem__(self, section: str) -> dict:
        return self.data[section]

    def with_seed(self, seed: int | None) -> Profile:
        """A copy whose [profile] seed is `seed` (unchanged if None)."""
        if seed is None:
            return self
        ok, what = SCHEMA["profile"]["seed"]
        if not ok(seed):  # the command line's --seed takes the place of [profile] seed: the same bound
            raise MapSuiteError(f"seed {shown_value(seed)} (in place of [profile] seed) must be {what}", self.source)
        data = copy.deepcopy(self.data)
        data["profile"]["seed"] = int(seed)
        return Profile(data, self.source)

    def sha256(self, *sections: str) -> str:
        """Hash of the named sections (all if none): the cache key of the work they define."""
        chosen = {s: self.data[s] for s in (sections or sorted(self.data))}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()

    def as_dict(self) -> dict:
        return {"source": shown_path(self.source), **copy.deepcopy(self.data)}


def shipped_path(name: str) -> Path:
    """Path of a shipped profile file."""
    return Path(str(resources.files("validation.gate") / "profiles" / f"{name}.toml"))


def load_profile(spec) -> Profile:
    """Load a shipped profile by name or a user's TOML file by path; raise MapSuiteError on any defect."""
    spec = str(spec)
    path = shipped_path(spec) if spec in SHIPPED else Path(spec)
    raw = _read_toml(path, spec)
    base = raw.pop("extends", None)
    if base is not None:
        if base not in SHIPPED:
            raise MapSuiteError(f"extends = {base!r}: only the shipped profiles {', '.join(SHIPPED)} can be extended", path)
        merged = _read_toml(shipped_path(base), base)
        merged.pop("extends", None)
        _merge(merged, raw)
        raw = merged
    data = _flatten(raw, path)
    _check(data, path)
    return Profile(data, str(path))


def _read_toml(path: Path, spec: str) -> dict:
    if not path.exists():
        hint = f" (shipped profiles: {', '.join(SHIPPED)})" if not spec.endswith(".toml") else ""
        raise MapSuiteError(f"no such profile{hint}", path)
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise MapSuiteError(f"not valid TOML ({exc})", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MapSuiteError(f"unreadable profile ({exc.__class__.__name__}: {exc})", path) from None
    except ValueError:  # an integer of more than 4300 digits (Python's int-string limit)
        raise MapSuiteError(f"{_long_integer(path)} is an integer of more than "
                            f"{sys.get_int_max_str_digits()} digits: no count, size or seed is", path) from None
    except RecursionError:  # arrays nested thousands deep
        raise MapSuiteError("not a usable profile (values nested too deeply)", path) from None


def _long_integer(path: Path) -> str:
    """'[section] key' (or 'a value') of the first integer too long for Python to read in a TOML file."""
    section, digits = "", sys.get_int_max_str_digits()
    for line in path.read_text(errors="replace").splitlines():
        table = re.match(r"\s*\[+\s*([^\]]+?)\s*\]", line)
        if table:
            section = table.group(1)
        found = re.match(rf"\s*([\w.\"'-]+)\s*=\s*[-+]?[\d_]{{{digits},}}", line)
        if found:
            return f"[{section}] {found.group(1)}" if section else found.group(1)
    return "a value"


def _merge(base: dict, over: dict) -> None:
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _flatten(raw: dict, path) -> dict:
    """{"md": {"box_nm": 1, "classical": {...}}} -> {"md": {"box_nm": 1}, "md.classical": {...}}."""
    out = {}

    def walk(prefix: str, table: dict):
        out.setdefault(prefix, {})
        for key, value in table.items():
            name = f"{prefix}.{key}"
            if isinstance(value, dict):
                if key in SCHEMA.get(prefix, {}):  # a table where a value belongs: `n_boxes = {a = 1}`
                    raise MapSuiteError(f"[{prefix}] {key} = a table must be {SCHEMA[prefix][key][1]}", path)
                if name not in SCHEMA:
                    raise MapSuiteError(f"unknown section [{name}]", path)
                walk(name, value)
            else:
                out[prefix][key] = value

    for key, value in raw.items():
        if not isinstance(value, dict):
            raise MapSuiteError(f"unknown top-level key {key!r} (keys belong in sections such as [sampling])", path)
        if key not in SCHEMA:
            raise MapSuiteError(f"unknown section [{key}] (known: {', '.join(s for s in SCHEMA if '.' not in s)})", path)
        walk(key, value)
    return out


def _check(data: dict, path) -> None:
    for section, keys in SCHEMA.items():
        given = data.get(section)
        if given is None:
            raise MapSuiteError(f"missing section [{section}]", path)
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise MapSuiteError(f"unknown key {unknown[0]!r} in [{section}] (known: {', '.join(keys)})", path)
        for key, (ok, what) in keys.items():
            if key not in given:
                raise MapSuiteError(f"missing key {key!r} in [{section}]", path)
            if not _guarded(ok)(given[key]):
                raise MapSuiteError(f"[{section}] {key} = {shown_value(given[key])} must be {what}", path)
    _check_relations(data, path)
    check_budget(data, path)  # sizes and run lengths together: memory and time, before any work


def _check_relations(data: dict, path) -> None:
    """Keys that bound each other (single keys are checked against SCHEMA first)."""
    s, st, md = data["sampling"], data["structure"], data["md"]
    if st["rdf_r_max_nm"] <= st["rdf_r_min_nm"] or st["rdf_bin_nm"] >= st["rdf_r_max_nm"]:
        raise MapSuiteError("[structure] needs rdf_r_min_nm < rdf_r_max_nm and rdf_bin_nm < rdf_r_max_nm", path)
    if st["rdf_r_max_nm"] > 0.5 * s["region_nm"]:
        raise MapSuiteError(f"[structure] rdf_r_max_nm = {st['rdf_r_max_nm']} must be at most half of "
                            f"[sampling] region_nm = {s['region_nm']}", path)
    if not 2 * st["rdf_bin_nm"] < st["sq_r_max_nm"] <= SQ_REGION_FRACTION * s["region_nm"] + 1e-9:
        raise MapSuiteError(f"[structure] sq_r_max_nm = {st['sq_r_max_nm']} must exceed two RDF bins and be at most "
                            f"{SQ_REGION_FRACTION} x [sampling] region_nm = {s['region_nm']} (the edge-corrected g(r) "
                            "behind S(q) grows noisy as its spheres leave the region)", path)
    if md["box_nm"] > s["region_nm"]:
        raise MapSuiteError(f"[md] box_nm = {md['box_nm']} must fit in [sampling] region_nm = {s['region_nm']} "
                            "(the MD box is cut from a generated box's analysed region)", path)
    for name in ("traj_ps", "report_ps"):
        if md[name] * 1000.0 < md["timestep_fs"]:
            raise MapSuiteError(f"[md] {name} = {md[name]} ps is shorter than one {md['timestep_fs']} fs step", path)
        for method in ("classical", "rpmd") if md["enabled"] else ():
            run = data[f"md.{method}"]
            if (method == "classical" or run["enabled"]) and md[name] > run["npt_ps"] + run["nvt_ps"]:
                raise MapSuiteError(f"[md] {name} = {md[name]} ps is longer than the whole {method} run "
                                    f"([md.{method}] npt_ps + nvt_ps = {run['npt_ps'] + run['nvt_ps']:g} ps): "
                                    "it would record nothing", path)
    rp = data["md.rpmd"]
    if rp["npt_ps"] == 0 and rp["start"] != "classical":
        raise MapSuiteError("[md.rpmd] npt_ps = 0 needs start = 'classical' (a repaired box must relax its volume "
                            "in NPT)", path)
    if s["batch"] > s["n_boxes"]:
        raise MapSuiteError(f"[sampling] batch = {shown_value(s['batch'])} exceeds n_boxes = {shown_value(s['n_boxes'])}",
                            path)
    # The classifier deals whole boxes to its folds, per class (generated or held-out boxes: n_boxes;
    # training windows: windows): a fold without a box of each class tests nothing.
    boxes = min(s["n_boxes"], data["reference"]["windows"])
    if st["classifier_folds"] > boxes:
        raise MapSuiteError(f"[structure] classifier_folds = {st['classifier_folds']} exceeds the boxes of a class "
                            f"([sampling] n_boxes = {shown_value(s['n_boxes'])}, [reference] windows = "
                            f"{shown_value(data['reference']['windows'])})", path)
    if md["enabled"]:
        waters = WATER_NUMBER_DENSITY * md["box_nm"] * md["box_nm"] * md["box_nm"]  # a float ** that overflows raises
        if md["min_waters"] > waters:
            raise MapSuiteError(f"[md] min_waters = {shown_value(md['min_waters'])} exceeds the {waters:.0f} waters a "
                                f"box_nm = {md['box_nm']} box holds at 1 g/cm3: no MD run could start", path)

"""Gate profiles: TOML files that fix the sizes, run lengths and thresholds of one gate run.

A profile is either a shipped name (``smoke``, ``quick``, ``paper``, ``gpu``: ``validation/gate/profiles/``)
or the path of a user's ``.toml`` file. A user file may start from a shipped profile with
``extends = "quick"`` at the top level and then override single keys. Every key is checked
(type, range, unknown names) before any work starts; a problem is one MapSuiteError line
naming the file, the section and the key.

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
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from map_core.atoms.encoding import ENCODINGS
from map_core.errors import MapSuiteError
from map_core.files import shown_path
from validation.gate.registry import threshold_schema
from validation.gate.values import BOOL, DEVICE, NONNEG, POS, PROB, STR, choice, ints

SHIPPED = ("smoke", "quick", "paper", "gpu")
PLATFORMS = ("auto", "CUDA", "OpenCL", "CPU", "Reference")
SQ_REGION_FRACTION = 0.75  # largest sq_r_max_nm as a fraction of region_nm

# section -> key -> (check, description). Nested tables are sections named "md.classical" etc.
# The threshold tables come from the check registry (validation.gate.registry).
SCHEMA = {
    "profile": {"name": STR, "description": STR, "seed": ints(0)},
    "sampling": {
        "region_nm": POS, "burn_in_nm": NONNEG, "burn_in_fields": NONNEG, "n_boxes": ints(2),
        "batch": ints(1), "temperature": POS, "boundary": choice("empty", "outside"), "device": DEVICE,
    },
    "reference": {"windows": ints(2)},
    "structure": {
        "rdf_r_max_nm": POS, "rdf_bin_nm": POS, "rdf_r_min_nm": NONNEG, "sq_r_max_nm": POS, "q_bins": ints(4),
        "classifier_hidden": ints(1), "classifier_epochs": ints(1), "classifier_folds": ints(2),
        "classifier_max_samples": ints(10),
    },
    "markov": {"seeded_boxes": ints(2), "alpha": PROB, "rel_tol": NONNEG},
    "md": {"enabled": BOOL, "box_nm": POS, "timestep_fs": POS, "traj_ps": POS, "report_ps": POS,
           "min_waters": ints(2), "platform": choice(*PLATFORMS)},
    "md.classical": {"npt_ps": POS, "nvt_ps": POS, "intra_substeps": ints(1)},
    "md.rpmd": {"enabled": BOOL, "beads": ints(1), "npt_ps": NONNEG, "nvt_ps": POS, "contract_reciprocal": BOOL,
                "start": choice("repaired", "classical")},
    "calibration": {"encoding": choice(*ENCODINGS), "voxel_nm": POS, "rule": choice("null-quantile", "max-heldout"),
                    "alpha": PROB},
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

    def with_seed(self, seed: int | None) -> "Profile":
        """A copy whose [profile] seed is `seed` (unchanged if None)."""
        if seed is None:
            return self
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
            if not ok(given[key]):
                raise MapSuiteError(f"[{section}] {key} = {given[key]!r} must be {what}", path)
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
    rp = data["md.rpmd"]
    if rp["npt_ps"] == 0 and rp["start"] != "classical":
        raise MapSuiteError("[md.rpmd] npt_ps = 0 needs start = 'classical' (a repaired box must relax its volume "
                            "in NPT)", path)
    if s["batch"] > s["n_boxes"]:
        raise MapSuiteError(f"[sampling] batch = {s['batch']} exceeds n_boxes = {s['n_boxes']}", path)

"""What a gate run starts from, resolved and checked in one step before any work.

``resolve_gate_inputs`` turns the user's options into ``GateInputs``: the profile, the reference
(``validation.gate.reference.Reference``, with the model's own train/held-out split), the box
source (``validation.gate.sources``: a model's samples, or given boxes), the geometry (computed
once, here), the thresholds of the judging mode and whether the profile was calibrated for it.
``GateInputs.preflight`` adds the checks that need the cache folder and the groups to run: the
memory and disk that sampling and MD need, and the Markov test's block size. Every problem is
one MapSuiteError line.

Reference: with no ``--reference``, a model's own training data: the checkpoint's provenance
``data_path`` (as written, relative to the checkpoint, or relative to the package root), else the
shipped training set, whichever has the sha256 recorded in the checkpoint. Given boxes are judged
against the shipped training set unless ``--reference`` names other frames.

Given boxes (``--boxes``, issue 14): any format of ``validation.md.imports.read_boxes``, judged as
continuous positions or voxelised on both sides (``--voxel``), cut into windows exactly like
held-out reference frames: periodic boxes anywhere, open boxes only where the analysed cube fits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from map_core.atoms.encoding import Encoding
from map_core.atoms.voxels import check_memory_budget, check_voxel_budget
from map_core.errors import MapSuiteError
from map_core.files import sha256_file
from map_core.model.checkpoint import check_voxel_size, load_model
from map_core.model.default import default_model_path
from map_core.model.device import resolve_device
from map_core.sampling.generate import check_fits
from map_core.training.crops import voxelise
from validation.gate.boxes import WATER_NUMBER_DENSITY, is_periodic, window_images_bytes
from validation.gate.md import WINDOW_MARGIN_NM, md_settings
from validation.gate.profile import load_profile
from validation.gate.reference import HELDOUT_FRACTION, PACKAGE_ROOT, SHIPPED_TRAINING_SET, Reference, load_reference
from validation.gate.registry import GROUPS, spec
from validation.gate.sources import BoxSource, ModelSource, WindowSource, mode_name
from validation.md.budget import check_md_fits
from validation.md.imports import SEED_CLASSES, parse_types, read_boxes


@dataclass
class GateInputs:
    """Everything a gate run needs, checked: profile, reference, box source and geometry.

    thresholds: the [thresholds] table the structure checks are judged by (with
    [thresholds.continuous] over it for continuous positions); calibration: whether the
    profile's thresholds were calibrated for the judging mode (``calibration_match``).
    """

    profile: object
    reference: Reference
    source: BoxSource
    geometry: object
    thresholds: dict
    calibration: dict
    rule: str | None = None  # the threshold rule in force (validation.gate.thresholds); None: the profile's

    @property
    def threshold_rule(self) -> str:
        """'null-quantile' or 'max-heldout': how the structure thresholds were set (the combined test is
        judged only under the null-quantile rule)."""
        return self.rule or self.profile["calibration"]["rule"]

    def with_thresholds(self, record: dict, rule: str) -> "GateInputs":
        """The same run judged by `rule`'s thresholds recomputed from a null record (comparisons of rules)."""
        keyed = {spec(n).threshold_key: t for n, t in record["thresholds"][rule].items() if spec(n).threshold_key}
        return dataclasses.replace(self, thresholds={**self.thresholds, **keyed}, rule=rule)

    @property
    def mode(self) -> str:
        """The judging mode: 'continuous' or 'ENCODING@VOXEL'."""
        return mode_name(self.source.coder)

    # what reports, benchmarks and tests read of a model's inputs
    @property
    def model(self):
        return self.source.model

    @property
    def model_path(self):
        return getattr(self.source, "path", None)

    @property
    def model_sha256(self):
        return getattr(self.source, "sha256", None)

    @property
    def payload(self):
        return getattr(self.source, "payload", None)

    @property
    def frames(self):
        return self.reference.frames

    @property
    def train_indices(self):
        return self.reference.train_indices

    @property
    def heldout_indices(self):
        return self.reference.heldout_indices

    def with_source(self, source: BoxSource) -> "GateInputs":
        """The same run judging another source of the same geometry (controls, error-rate draws)."""
        return dataclasses.replace(self, source=source)

    def preflight(self, cache_root, groups=GROUPS) -> None:
        """Refuse, before any work, a run whose sampling or MD needs more memory or disk than is free
        under `cache_root`, or whose region is too thin for the Markov test's blocks."""
        p = self.profile
        if isinstance(self.source, ModelSource):
            boxes = p["sampling"]["n_boxes"] + p["markov"]["seeded_boxes"]
            check_fits(self.geometry.shape, p["sampling"]["batch"], boxes, Path(cache_root) / "sampled.npz")
        if p["md"]["enabled"]:
            box = np.full(3, float(p["md"]["box_nm"]))
            waters = int(round(WATER_NUMBER_DENSITY * float(np.prod(box))))
            for method in ("classical", "rpmd") if p["md.rpmd"]["enabled"] else ("classical",):
                check_md_fits(waters, md_settings(p, method, p.seed, box), cache_root)
        if "markov" in groups and self.source.markov is None:
            thick = self.source.markov_planes()
            if self.geometry.n < thick:
                raise MapSuiteError(
                    f"{p.source}: [sampling] region_nm = {p['sampling']['region_nm']} is {self.geometry.n} planes, under "
                    f"one block of {thick} planes (the model's receptive-field depth) that the Markov boundary test "
                    "compares; raise region_nm or leave out the markov group")


def resolve_gate_inputs(model=None, boxes=None, profile="quick", reference=None, seed=None, voxel=None, encoding=None,
                        classes="empty,H,O", top=None, types=None, frames=None) -> GateInputs:
    """GateInputs of a model, or of given boxes (`boxes`), for the CLI and the pytest gate;
    classes: comma-separated class order of .npy grids; types: LAMMPS type map text ('1=O,2=H');
    frames: judge this many frames of the file, evenly spaced. Options of the other kind are refused."""
    if boxes is None:
        for flag, value in (("voxel", voxel), ("encoding", encoding), ("top", top), ("types", types), ("frames", frames)):
            if value is not None:
                raise MapSuiteError(f"--{flag} belongs to --boxes")
        return resolve_inputs(model, profile, reference, seed)
    if model is not None:
        raise MapSuiteError("give --model or --boxes, not both")
    return resolve_box_inputs(boxes, profile, reference, seed, voxel, encoding, [c.strip() for c in classes.split(",")], top,
                              parse_types(types, boxes), frames)


def resolve_inputs(model=None, profile="quick", reference=None, seed=None) -> GateInputs:
    """GateInputs of a model's samples (`model`: checkpoint path, None for the shipped default).

    profile: shipped name or TOML path; reference: frames file or None for the model's training
    data; seed: overrides the profile's.
    """
    prof = load_profile(profile).with_seed(seed)
    model_path = Path(model) if model is not None else default_model_path()
    net, payload = load_model(model_path)
    source = ModelSource(model=net, path=model_path, sha256=sha256_file(model_path), payload=payload)
    geometry = source.geometry(prof)  # refuses regions under 4 voxels
    ref_path, how = _find_reference(reference, payload, model_path)
    fraction = float((payload["provenance"].get("settings") or {}).get("test_fraction", HELDOUT_FRACTION))
    ref = load_reference(ref_path, how, fraction)
    voxel = net.config.voxel_nm
    if "voxel_nm" in ref.frames.meta:
        check_voxel_size(voxel, float(ref.frames.meta["voxel_nm"]), ref_path)
    if np.any(ref.frames.box.min(axis=1) < 4 * voxel):
        raise MapSuiteError(f"reference boxes are smaller than 4 voxels of {voxel} nm", ref_path)
    check_voxel_budget(ref.frames.box, voxel, ref_path)  # before any grid is allocated
    voxelise(ref.frames, source.coder, ref_path)  # refuses frames whose atoms collide at the model's voxel
    resolve_device(prof["sampling"]["device"])  # a CUDA profile on a machine without one: refused now
    return GateInputs(prof, ref, source, geometry, dict(prof["thresholds"]), calibration_match(prof, source.coder))


def resolve_box_inputs(boxes, profile="quick", reference=None, seed=None, voxel=None, encoding=None,
                       classes=SEED_CLASSES, top=None, types=None, frames=None) -> GateInputs:
    """GateInputs of given boxes judged against a reference.

    boxes: any format of validation.md.imports.read_boxes; voxel: judge voxelised at this voxel
    (nm; for .npy class grids also the grids' voxel, default 0.025) or None for continuous
    positions; encoding: 'atoms' or 'water' (default: atoms for class grids, else the profile's
    calibration encoding); classes: class order of .npy grids; top: topology of DCD/XTC/LAMMPS;
    types: LAMMPS type -> element map; frames: keep this many frames, evenly spaced (None: all).
    """
    prof = load_profile(profile).with_seed(seed)
    if voxel is not None and not (np.isfinite(voxel) and voxel > 0):
        raise MapSuiteError(f"--voxel must be a positive number of nm, not {voxel}")
    path = Path(boxes)
    given = read_boxes(path, top=top, voxel_nm=voxel, classes=classes, types=types, frames=frames)
    grid_voxel = given.meta.get("voxel_nm")
    if voxel is not None and grid_voxel is not None and abs(float(grid_voxel) - voxel) > 1e-9 * voxel:
        raise MapSuiteError(f"the boxes were made on {float(grid_voxel):g} nm voxels, not the --voxel {voxel:g} nm given; "
                            "judge them at their own voxel or as continuous positions (no --voxel)", path)
    if encoding is None:
        encoding = "atoms" if given.meta.get("classes") is not None else prof["calibration"]["encoding"]
    coder = Encoding(encoding, float(voxel)) if voxel is not None else None
    ref_path = Path(reference) if reference is not None else SHIPPED_TRAINING_SET
    ref = load_reference(ref_path, "given (--reference)" if reference is not None else "shipped training set")
    if not is_periodic(ref.frames):
        raise MapSuiteError("the reference must be periodic frames (MD), not open boxes", ref_path)
    source = WindowSource(frames=given, path=path, identity=sha256_file(path), coder=coder)
    geometry = source.geometry(prof)
    _check_box_sizes(given, ref, geometry, prof, path)
    thresholds = dict(prof["thresholds"]) if coder is not None else {**prof["thresholds"], **prof["thresholds.continuous"]}
    return GateInputs(prof, ref, source, geometry, thresholds, calibration_match(prof, coder))


def _check_box_sizes(given, ref: Reference, geometry, prof, path) -> None:
    """Refuse reference boxes smaller than the MD box and open given boxes smaller than the analysed cube."""
    region = geometry.n * geometry.voxel_nm
    if np.any(ref.frames.box.min(axis=1) < prof["md"]["box_nm"]):
        raise MapSuiteError(f"reference boxes are smaller than the {prof['md']['box_nm']} nm MD box", ref.path)
    if is_periodic(given):  # windows hold every periodic image of the box that may fall in them
        window = max(float(np.max(geometry.box_nm)), prof["md"]["box_nm"] + 2 * WINDOW_MARGIN_NM)
        check_memory_budget(window_images_bytes(given, np.full(3, window)), f"the periodic images that fill "
                            f"{window:.3g} nm windows of boxes of {float(np.min(given.box)):.3g} nm", path)
        return
    small = np.min(given.box, axis=1) < region - 1e-9
    if small.all():
        raise MapSuiteError(f"every box is smaller than the {region:g} nm cube the {prof.name} profile analyses", path)
    if small.any():
        raise MapSuiteError(f"{int(small.sum())} of {len(given)} boxes are smaller than the {region:g} nm cube the "
                            f"{prof.name} profile analyses", path)
    if prof["md"]["enabled"] and np.min(given.box) < prof["md"]["box_nm"] + 2 * WINDOW_MARGIN_NM:
        raise MapSuiteError(f"open boxes of {np.min(given.box):.3g} nm cannot hold the {prof['md']['box_nm']} nm MD "
                            "seed box with its margins", path)


def calibration_match(profile, coder) -> dict:
    """Whether the profile's thresholds were calibrated for the judging mode of `coder` (None:
    continuous positions, judged by [thresholds.continuous]): {"profile", "model", "matches", "note"}."""
    cal = profile["calibration"]
    if coder is None:
        return {"profile": dict(cal), "model": {"encoding": "continuous"}, "matches": True,
                "note": "continuous positions: judged by [thresholds.continuous]"}
    model = {"encoding": coder.name, "voxel_nm": coder.voxel_nm}
    matches = cal["encoding"] == coder.name and abs(cal["voxel_nm"] - coder.voxel_nm) <= 1e-6 * coder.voxel_nm
    note = "" if matches else (
        f"the profile's thresholds were calibrated for {cal['encoding']} classes at {cal['voxel_nm']:g} nm voxels, this model "
        f"uses {coder.name} classes at {coder.voxel_nm:g} nm; calibrate them for it with python -m validation.gate.calibrate "
        f"{profile.name} --encoding {coder.name} --voxel {coder.voxel_nm:g} and a profile that extends this one")
    return {"profile": dict(cal), "model": model, "matches": matches, "note": note}


def _find_reference(reference, payload, model_path: Path) -> tuple:
    """(path, how it was found) of the reference frames."""
    if reference is not None:
        path = Path(reference)
        if not path.exists():
            raise MapSuiteError("no such reference frames file", path)
        return path, "given (--reference)"
    prov = payload.get("provenance") or {}
    want = prov.get("data_sha256")
    recorded = prov.get("data_path")
    candidates = []
    if recorded:
        p = Path(recorded)
        candidates += [(p, "checkpoint provenance"), (model_path.parent / p, "checkpoint provenance, beside the model"),
                       (PACKAGE_ROOT / p, "checkpoint provenance, package root"),
                       (model_path.parent / p.name, "checkpoint provenance, beside the model")]
    candidates.append((SHIPPED_TRAINING_SET, "shipped training set"))
    mismatched = []
    for path, how in candidates:
        if path.is_file():
            if want is None or sha256_file(path) == want:
                return path, how
            mismatched.append(str(path))
    if mismatched:
        raise MapSuiteError(f"the model's training data was not found: {', '.join(dict.fromkeys(mismatched))} "
                            "differ(s) from the checkpoint's data_sha256; pass --reference FRAMES.npz", model_path)
    raise MapSuiteError(f"the model's training data {recorded!r} was not found and no shipped training set exists; "
                        "pass --reference FRAMES.npz", model_path)

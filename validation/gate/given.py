"""The gate on boxes from any generator: ``map-suite validate --boxes FILE`` (issue 14).

Boxes written by another program (or by this one, exported) are judged against a reference,
the shipped training set unless ``--reference`` names other frames, with the structure and MD
checks of the profile. The Markov-chain checks need a model and are reported as not
applicable, never as passed.

Windows: the judged boxes and the reference are cut into windows of the same geometry as the
profile's calibration (the analysed cube of ``[sampling] region_nm`` inside margins), by the
same function (`validation.gate.boxes.window_origins`): periodic boxes anywhere, with periodic
images; open boxes (``meta["periodic"] = False``: generated boxes, class grids) only where the
analysed cube lies inside them. Then either

- **continuous**: positions as they are, judged by ``[thresholds.continuous]`` (calibrated on
  held-out reference windows without voxels), or
- **voxelised** (``--voxel NM``): both sides put through the same encoding (``--encoding``,
  default the profile's calibration encoding; atom classes for ``.npy`` class grids) and
  decoded, so that an off-grid generator and a MAP model are compared on equal terms; judged
  by ``[thresholds]``, with the gate's warning when the profile was calibrated for another
  encoding or voxel.

The report and results.json say which (``judging``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import load_frames
from map_core.errors import MapSuiteError
from map_core.files import sha256_file
from map_core.training.crops import split_frames
from validation.gate.boxes import is_periodic, judging_geometry, window_ensemble
from validation.gate.cache import key
from validation.gate.error_rates import mode_name
from validation.gate.inputs import SHIPPED_TRAINING_SET, check_water, resolve_inputs
from validation.gate.md import WINDOW_MARGIN_NM, window_seed_box
from validation.gate.profile import load_profile
from validation.gate.session import GateSession, calibration_match
from validation.md.imports import SEED_CLASSES, read_boxes

HELDOUT_FRACTION = 0.2


@dataclass
class BoxInputs:
    """Judged boxes and a reference, checked before any work."""

    boxes_path: Path
    boxes_sha256: str
    boxes: object                 # map_core Frames
    coder: Encoding | None        # None: continuous positions
    profile: object
    reference_path: Path
    reference_sha256: str
    reference_source: str
    frames: object
    train_indices: list
    heldout_indices: list

    @property
    def judging(self) -> str:
        if self.coder is None:
            return "continuous positions (no voxels), both sides"
        return f"voxelised, both sides: {self.coder.name} classes at {self.coder.voxel_nm:g} nm"


def resolve_box_inputs(boxes, profile="quick", reference=None, seed=None, voxel=None, encoding=None,
                       classes=SEED_CLASSES, top=None) -> BoxInputs:
    """Read and check the judged boxes and the reference; one MapSuiteError line on any problem.

    boxes: any format of validation.md.imports.read_boxes; voxel: judge voxelised at this voxel
    (nm; for .npy class grids also the grids' voxel, default 0.025) or None for continuous
    positions; encoding: 'atoms' or 'water' (default: atoms for class grids, else the profile's
    calibration encoding); classes: class order of .npy grids; top: topology of DCD/XTC/LAMMPS.
    """
    prof = load_profile(profile).with_seed(seed)
    if voxel is not None and not (np.isfinite(voxel) and voxel > 0):
        raise MapSuiteError(f"--voxel must be a positive number of nm, not {voxel}")
    path = Path(boxes)
    given = read_boxes(path, top=top, voxel_nm=voxel, classes=classes)
    grid_voxel = given.meta.get("voxel_nm")
    if voxel is not None and grid_voxel is not None and abs(float(grid_voxel) - voxel) > 1e-9 * voxel:
        raise MapSuiteError(f"the boxes were made on {float(grid_voxel):g} nm voxels, not the --voxel {voxel:g} nm given; "
                            "judge them at their own voxel or as continuous positions (no --voxel)", path)
    if encoding is None:
        encoding = "atoms" if given.meta.get("classes") is not None else prof["calibration"]["encoding"]
    coder = Encoding(encoding, float(voxel)) if voxel is not None else None
    ref_path = Path(reference) if reference is not None else SHIPPED_TRAINING_SET
    if not ref_path.is_file():
        raise MapSuiteError("no such reference frames file", ref_path)
    frames = load_frames(ref_path)
    check_water(frames, ref_path)
    if not is_periodic(frames):
        raise MapSuiteError("the reference must be periodic frames (MD), not open boxes", ref_path)
    geo = judging_geometry(coder.voxel_nm if coder else prof["calibration"]["voxel_nm"], encoding, prof["sampling"])
    region = geo.n * geo.voxel_nm
    if np.any(frames.box.min(axis=1) < prof["md"]["box_nm"]):
        raise MapSuiteError(f"reference boxes are smaller than the {prof['md']['box_nm']} nm MD box", ref_path)
    if not is_periodic(given):
        small = np.min(given.box, axis=1) < region - 1e-9
        if small.all():
            raise MapSuiteError(f"every box is smaller than the {region:g} nm cube the {prof.name} profile analyses", path)
        if small.any():
            raise MapSuiteError(f"{int(small.sum())} of {len(given)} boxes are smaller than the {region:g} nm cube the "
                                f"{prof.name} profile analyses", path)
        if prof["md"]["enabled"] and np.min(given.box) < prof["md"]["box_nm"] + 2 * WINDOW_MARGIN_NM:
            raise MapSuiteError(f"open boxes of {np.min(given.box):.3g} nm cannot hold the {prof['md']['box_nm']} nm MD "
                                "seed box with its margins", path)
    train_idx, held_idx = split_frames(len(frames), HELDOUT_FRACTION)
    return BoxInputs(boxes_path=path, boxes_sha256=sha256_file(path), boxes=given, coder=coder, profile=prof,
                     reference_path=ref_path, reference_sha256=sha256_file(ref_path),
                     reference_source="given (--reference)" if reference is not None else "shipped training set",
                     frames=frames, train_indices=train_idx, heldout_indices=held_idx)


class BoxesSession(GateSession):
    """A GateSession over given boxes (BoxInputs) instead of a model's samples."""

    def __init__(self, inputs: BoxInputs, cache_dir, progress: bool = False, log=None):
        self.inp = inputs
        self.profile = inputs.profile
        self.model = None
        self.coder = inputs.coder
        voxel = inputs.coder.voxel_nm if inputs.coder else self.profile["calibration"]["voxel_nm"]
        encoding = inputs.coder.name if inputs.coder else self.profile["calibration"]["encoding"]
        self.geometry = judging_geometry(voxel, encoding, self.profile["sampling"])
        self._init_common(cache_dir, progress, log)
        if inputs.coder is None:
            self.calibration = {"profile": dict(self.profile["calibration"]), "model": {"encoding": "continuous"},
                                "matches": True, "note": "continuous positions: judged by [thresholds.continuous]"}
        else:
            self.calibration = calibration_match(self.profile, inputs.coder)
        if not self.calibration["matches"]:
            self.log(f"warning: {self.calibration['note']}")
        self._given = None

    def _check_fits(self) -> None:
        self._check_md_fits()

    def _gen_key(self) -> str:
        return key("given-boxes", self.inp.boxes_sha256, mode_name(self.coder), self.geometry.as_dict(),
                   self.profile["sampling"]["n_boxes"], self.seed)

    def _ens_key(self, which: str) -> str:
        if which == "generated":
            return self._gen_key()
        return key(which, self.inp.reference_sha256, self.geometry.as_dict(), mode_name(self.coder), self.profile["reference"],
                   self.profile["sampling"]["n_boxes"], self.seed)

    def whole_boxes(self, which: str):
        """Windows of the judged boxes (generated) or of the reference (training, heldout)."""
        if which == "generated":
            frames, idx, n, tag = self.inp.boxes, range(len(self.inp.boxes)), self.profile["sampling"]["n_boxes"], 23
        else:
            frames, tag = self.inp.frames, 11 if which == "training" else 13
            idx = self.inp.train_indices if which == "training" else self.inp.heldout_indices
            n = self.profile["reference"]["windows"] if which == "training" else self.profile["sampling"]["n_boxes"]
        return window_ensemble(frames, idx, self.geometry, self.coder, n, np.random.default_rng([self.seed, tag]))

    def generated(self):
        raise MapSuiteError("given boxes are judged as windows of atoms, not as voxel grids")

    def structure_thresholds(self) -> dict:
        if self.coder is None:
            return {**self.profile["thresholds"], **self.profile["thresholds.continuous"]}
        return self.profile["thresholds"]

    def _check_markov_blocks(self) -> None:
        pass  # not applicable here: no model, no blocks

    def _markov(self) -> dict:
        return {"checks": [], "skipped": "not applicable: the Markov-chain checks need the model that made the boxes"}

    def _md_seed_mode(self) -> tuple:
        return (mode_name(self.coder),)

    def md_seed_box(self, box_nm: float) -> tuple:
        _, seeded = window_seed_box(self.inp.boxes, range(len(self.inp.boxes)), box_nm, self.coder,
                                    np.random.default_rng([self.seed, 29]))
        return seeded

    def results(self, command: str | None = None) -> dict:
        self.group("markov")  # not applicable, always: a run is complete without it
        out = super().results(command)
        out["judged"] = f"boxes from {self.inp.boxes_path.name} ({self.inp.judging})"
        out["judging"] = {"mode": "continuous" if self.coder is None else "voxelised",
                          "encoding": None if self.coder is None else self.coder.name,
                          "voxel_nm": None if self.coder is None else self.coder.voxel_nm,
                          "boxes": len(self.inp.boxes), "periodic": is_periodic(self.inp.boxes)}
        if "markov" in self._groups:
            out["not_applicable"] = {"markov": self._groups["markov"]["skipped"]}
        return out


def open_session(inputs, cache_dir, progress: bool = False, log=None) -> GateSession:
    """The session for `inputs`: a model's (GateInputs) or given boxes' (BoxInputs)."""
    if isinstance(inputs, BoxInputs):
        return BoxesSession(inputs, cache_dir, progress, log)
    return GateSession(inputs, cache_dir, progress, log)


def resolve_gate_inputs(model=None, boxes=None, profile="quick", reference=None, seed=None, voxel=None, encoding=None,
                        classes="empty,H,O", top=None):
    """GateInputs of a model, or BoxInputs of given boxes (`boxes`), for the CLI and the pytest gate;
    classes: comma-separated class order of .npy grids. Options of the other kind are refused."""
    if boxes is None:
        for flag, value in (("voxel", voxel), ("encoding", encoding), ("top", top)):
            if value is not None:
                raise MapSuiteError(f"--{flag} belongs to --boxes")
        return resolve_inputs(model, profile, reference, seed)
    if model is not None:
        raise MapSuiteError("give --model or --boxes, not both")
    return resolve_box_inputs(boxes, profile, reference, seed, voxel, encoding,
                              [c.strip() for c in classes.split(",")], top)

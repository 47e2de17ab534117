"""The gate's error rates, measured through its own judging path: how often it fails good water,
how often it catches bad water.

Every draw is judged by ``GateSession.judge_structure``, the method that gives the verdict of
``map-suite validate``, with the run's own geometry, thresholds, training windows and per-draw
seeding; a draw fails when any structure check fails by ``Check.passed``.

- **False-failure rate**: fresh draws of held-out reference windows (draw d seeded
  ``DRAW_SEED + d`` for d from ``FRESH_FROM`` on, never the draws the thresholds were calibrated
  on: those are d < FRESH_FROM, validation.gate.null_draws), each as many windows as the profile
  judges; ``ERROR_RATE_DRAWS`` of them by default (100: a 95 % Clopper-Pearson interval of about
  +/- 4 % around a 5 % rate).
- **Power**: the same for windows of named foreign ensembles (validation.gate.foreign: molecules
  re-oriented, expanded 3 %, TIP3P, TIP4P-Ew, q-TIP4P/F at 330 K), seeded ``FOREIGN_SEED + d``:
  the fraction of draws rejected.

The judged windows are cut as the run's own boxes are (``BoxSource.draw``): voxel grids of the
model's geometry for a model (``water@0.05``: the shipped model's), windows of atoms for
continuous positions (as ``--boxes``).

    python -m validation.gate.calibrate quick --error-rates [--encoding continuous] [--foreign DIR] [--write]

Results go to ``validation/gate/profiles/error_rates.json`` (``validation.gate.rates``) with
``--write``, with the fingerprint of what they were measured under; every gate run whose
fingerprint matches copies its entry into results.json and the report's header.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import load_frames
from map_core.model.checkpoint import load_checkpoint
from map_core.model.default import default_model_path
from map_core.model.kinds import kind_of
from map_core.model.pixelcnn import ModelConfig
from validation.gate.boxes import CALIBRATION_LAYERS
from validation.gate.detectable import minimum_detectable
from validation.gate.inputs import GateInputs, calibration_match, resolve_inputs
from validation.gate.profile import load_profile
from validation.gate.rates import fingerprint, measured_under
from validation.gate.reference import SHIPPED_TRAINING_SET, load_reference
from validation.gate.session import GateSession
from validation.gate.sources import ModelSource, WindowSource

FRESH_FROM = 5000     # calibration (null) draws are d < FRESH_FROM; error-rate draws start here
ERROR_RATE_DRAWS = 100
MDD_POWER = 0.8       # power at which a check's minimum detectable difference is stated
DRAW_SEED = 1000      # draw d of held-out windows: windows seeded DRAW_SEED + d
FOREIGN_SEED = 2000   # draw d of a foreign ensemble: windows seeded FOREIGN_SEED + d


def judging_inputs(profile: str, data=SHIPPED_TRAINING_SET, coder: Encoding | None = None, model=None) -> GateInputs:
    """GateInputs whose judging path calibration and error rates go through; profile: a shipped name or TOML path.

    coder None: continuous positions, windows of atoms as ``--boxes`` cuts them. A coder: the
    voxelised judging of `model` (a checkpoint path; default: the shipped model when its encoding
    and voxel are `coder`'s, else an untrained model of CALIBRATION_LAYERS, whose geometry is the
    one ``--boxes --voxel`` judges at). data: the reference frames (default: the shipped set).
    """
    if coder is not None and (model is not None or _is_shipped(coder)):
        return resolve_inputs(model, profile, data)
    prof = load_profile(profile)
    ref = load_reference(data, "calibration reference")
    if coder is None:
        source = WindowSource(frames=ref.frames, path=Path(data), identity=ref.sha256, coder=None,
                              indices=ref.heldout_indices)
        thresholds = {**prof["thresholds"], **prof["thresholds.continuous"]}
    else:
        config = ModelConfig(layers=CALIBRATION_LAYERS, filters=16, voxel_nm=coder.voxel_nm, encoding=coder.name,
                             n_classes=coder.n_classes)
        torch.manual_seed(0)
        source = ModelSource(model=kind_of(config).build(config).eval(), path=Path("untrained"), sha256="untrained-"
                             f"{CALIBRATION_LAYERS}-layers", payload={})
        thresholds = dict(prof["thresholds"])
    return GateInputs(prof, ref, source, source.geometry(prof), thresholds, calibration_match(prof, coder))


def _is_shipped(coder: Encoding) -> bool:
    shipped = shipped_encoding()
    return shipped.name == coder.name and abs(shipped.voxel_nm - coder.voxel_nm) < 1e-9


def shipped_encoding() -> Encoding:
    """The shipped default model's encoding and voxel: what the shipped profiles are calibrated for."""
    config = load_checkpoint(default_model_path())["config"]
    return Encoding(config.get("encoding", "atoms"), float(config["voxel_nm"]))


class Drawer:
    """Judges draws of windows through the gate's session (one cache for the fixed training windows)."""

    def __init__(self, inputs: GateInputs, cache_dir=None):
        self.inputs = inputs
        self._tmp = tempfile.TemporaryDirectory(prefix="map-suite-error-rates-") if cache_dir is None else None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(self._tmp.name)
        self.session = GateSession(inputs, self.cache_dir, groups=("structure",))

    def judged(self, frames, indices, seed: int, identity: str) -> dict:
        """``judge_structure`` of one draw (windows of `frames` at `indices`, stream `seed`)."""
        source = self.inputs.source.draw(self.session, frames, indices, seed, identity)
        return GateSession(self.inputs.with_source(source), self.cache_dir, groups=()).judge_structure()

    def checks(self, frames, indices, seed: int, identity: str) -> list:
        """The structure checks of one draw (windows of `frames` at `indices`, stream `seed`)."""
        return self.judged(frames, indices, seed, identity)["checks"]

    def heldout(self, seed: int) -> list:
        ref = self.inputs.reference
        return self.checks(ref.frames, ref.heldout_indices, seed, f"{ref.sha256}:heldout")

    def rate(self, frames, indices, seeds, identity: str, log=print, label="", keep=None) -> dict:
        """{'draws', 'failed', 'rate', 'per_check': {check: failures}} over draws seeded `seeds`;
        keep: a list that receives each draw's (generated, training) measurements."""
        per_check, failed = {}, 0
        for k, seed in enumerate(seeds):
            judged = self.judged(frames, indices, seed, identity)
            if keep is not None:
                keep.append((judged["generated"], judged["training"]))
            bad = [c.name for c in judged["checks"] if not c.passed]
            failed += bool(bad)
            for name in bad:
                per_check[name] = per_check.get(name, 0) + 1
            log(f"{label} draw {k + 1}/{len(seeds)}: " + (f"FAIL ({', '.join(bad)})" if bad else "pass"))
        return {"draws": len(seeds), "failed": failed, "rate": failed / len(seeds), "per_check": per_check}


def measure_error_rates(inputs: GateInputs, draws: int = ERROR_RATE_DRAWS, foreign: dict | None = None, power_draws: int = 20,
                        log=print, cache_dir=None) -> dict:
    """False-failure rate over `draws` fresh held-out draws and power against each foreign
    ensemble (name -> frames path) over `power_draws` draws, for one profile and judging mode.

    cache_dir: where each draw's measurements are kept (keyed by the draw's windows), so that a run
    killed part way resumes from its last measured draw; default a temporary folder."""
    drawer = Drawer(inputs, cache_dir)
    ref, pairs = inputs.reference, []
    seeds = [DRAW_SEED + d for d in range(FRESH_FROM, FRESH_FROM + draws)]
    out = {"profile": inputs.profile.name, "mode": inputs.mode, "geometry": inputs.geometry.as_dict(),
           "fingerprint": fingerprint(inputs), "measured_under": measured_under(inputs),
           "judged_by": "validation.gate.session.GateSession.judge_structure",
           "windows_per_draw": inputs.profile["sampling"]["n_boxes"], "rule": "a draw fails when any structure check fails",
           "false_failure": drawer.rate(ref.frames, ref.heldout_indices, seeds, f"{ref.sha256}:heldout", log, "held-out",
                                        pairs),
           "power": {}}
    # what each check cannot see: its minimum detectable difference over the same held-out draws
    out["detectable"] = {"power": MDD_POWER, "draws": len(pairs),
                         "checks": minimum_detectable(pairs, inputs.thresholds, inputs.profile["structure"], MDD_POWER)}
    for name, path in (foreign or {}).items():
        other = load_frames(path)
        result = drawer.rate(other, range(len(other)), [FOREIGN_SEED + d for d in range(power_draws)],
                             f"foreign:{name}:{Path(path).name}", log, name)
        result["source"] = {"path": Path(path).name, "frames": len(other),
                            "description": other.meta.get("description", other.meta.get("source"))}
        out["power"][name] = result
    return out


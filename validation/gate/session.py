"""The whole gate: sample, measure, compare, decide; with every expensive stage cached.

``GateSession`` computes the three groups of checks lazily (the pytest gate asks for them one
test at a time; ``validation.report.run.run_gate`` asks for all) and assembles ``results.json``:

- structure: generated boxes (empty boundary, profile temperature) against windows of the
  training split of the reference frames; the same checks on windows of the held-out split
  are the control (``Check.control``), the noise floor of each check at this scale;
- markov: class probabilities, per-plane log-probability and boundary dependence;
- md: classical and RPMD runs seeded from a repaired generated box against the same protocol
  seeded from a training window.

Caching (``validation.gate.cache``): sampled boxes per batch, every measurement, each MD run
directory; keys hold the model and reference sha256, the profile sections a stage reads and
the seed, never thresholds.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from map_core.cluster import map_tasks
from map_core.errors import MapSuiteError
from map_core.model.device import resolve_device
from map_core.model.receptive_field import receptive_field
from map_core.sampling.canvas import halo_for
from map_core.sampling.generate import check_fits
from validation.gate.boxes import (
    WATER_NUMBER_DENSITY,
    boundary_windows,
    box_geometry,
    decode_grids,
    region_frames,
    sample_boxes,
    window_ensemble,
    window_grids,
)
from validation.gate.cache import Cache, key
from validation.gate.checks import Check, verdict
from validation.gate.classifier import classifier_test, molecule_features
from validation.gate.error_rates import load_error_rates, mode_name
from validation.gate.markov import markov_checks, measure_chain
from validation.gate.md import density_not_judged, md_checks, md_settings, run_methods_locked, seed_box, window_seed_box
from validation.gate.profile import SHIPPED, shipped_path
from validation.gate.provenance import provenance
from validation.gate.results import FORMAT, FORMAT_VERSION
from validation.gate.significance import BOOTSTRAP_DRAWS, POOL_FACTOR, bootstrap_null, null_summary, p_value, z_score
from validation.gate.structure import measure_structure, structure_checks, structure_values
from validation.gate.table1 import table1
from validation.md.run import check_md_fits

GROUPS = ("structure", "markov", "md")


class GateSession:
    """One gate run over `inputs` (validation.gate.inputs.GateInputs)."""

    def __init__(self, inputs, cache_dir, progress: bool = False, log=None, generated=None):
        """generated: optional (K, Z, Y, X) boxes to judge instead of sampling the model (controls:
        e.g. held-out training windows); the Markov checks still sample the model."""
        self.inp = inputs
        self.profile = inputs.profile
        self.model = inputs.model
        self.coder = self.model.config.coder()
        self.geometry = box_geometry(self.model.config, self.profile["sampling"])
        resolve_device(self.profile["sampling"]["device"])  # a CUDA profile on a machine without one: refused now
        self._init_common(cache_dir, progress, log)
        self.calibration = calibration_match(self.profile, self.coder)
        if not self.calibration["matches"]:
            self.log(f"warning: {self.calibration['note']}")
        self._given = None if generated is None else np.ascontiguousarray(generated, dtype=np.uint8)
        if self._given is not None and self._given.shape[1:] != self.geometry.shape:
            raise MapSuiteError(f"given boxes of shape {self._given.shape[1:]} do not match the profile's {self.geometry.shape}")

    def _init_common(self, cache_dir, progress: bool, log) -> None:
        self.cache = Cache(cache_dir)
        self.client = None  # a distributed.Client: sampling batches and MD runs become Dask tasks (run_gate sets it)
        self.progress = progress
        self.log = log or (lambda msg: None)
        self.seed = self.profile.seed
        self._groups = {}
        self._timing = {}
        self._check_fits()

    def _check_fits(self) -> None:
        """Refuse, before any work, a run whose sampling or MD needs more memory or disk than is free."""
        p = self.profile
        boxes = p["sampling"]["n_boxes"] + p["markov"]["seeded_boxes"]
        check_fits(self.geometry.shape, p["sampling"]["batch"], boxes, self.cache.root / "sampled.npz")
        self._check_md_fits()

    def _check_md_fits(self) -> None:
        p = self.profile
        if p["md"]["enabled"]:
            box = np.full(3, float(p["md"]["box_nm"]))
            waters = int(round(WATER_NUMBER_DENSITY * float(np.prod(box))))
            for method in ("classical", "rpmd") if p["md.rpmd"]["enabled"] else ("classical",):
                check_md_fits(waters, md_settings(p, method, self.seed, box), self.cache.root)

    # --- ensembles -----------------------------------------------------------------------
    def _model_key(self) -> str:
        """Cache key of the model's own samples."""
        return key("generated", self.inp.model_sha256, sampling_key(self.profile), self.geometry.as_dict(), self.seed)

    def _gen_key(self) -> str:
        """Cache key of the boxes judged by the structure and MD checks."""
        if self._given is not None:
            return key("given", hashlib.sha256(self._given.tobytes()).hexdigest(), self._given.shape)
        return self._model_key()

    def generated(self) -> np.ndarray:
        """(n_boxes, Z, Y, X) boxes judged by the structure and MD checks: the model's samples
        (empty or outside boundary), or the boxes given to the session."""
        return self._given if self._given is not None else self.sampled()

    def sampled(self) -> np.ndarray:
        """(n_boxes, Z, Y, X) boxes sampled from the model, cached per batch."""
        s = self.profile["sampling"]
        return sample_boxes(self.model, self.geometry.shape, s["n_boxes"], s["temperature"], self.seed, s["boundary"],
                            s["batch"], self.cache.dir(self._model_key()), self.progress, self.log, self.client, s["device"])

    def _windows(self, which: str, n: int) -> np.ndarray:
        idx = self.inp.train_indices if which == "training" else self.inp.heldout_indices
        rng = np.random.default_rng([self.seed, 11 if which == "training" else 13])
        return window_grids(self.inp.frames, idx, self.geometry.shape, self.coder, n, rng)

    def training(self) -> np.ndarray:
        return self._windows("training", self.profile["reference"]["windows"])

    def heldout(self) -> np.ndarray:
        return self._windows("heldout", self.profile["sampling"]["n_boxes"])

    def _ens_key(self, which: str) -> str:
        if which == "generated":
            return self._gen_key()
        return key(which, self.inp.reference_sha256, self.geometry.as_dict(), self.coder.name, self.profile["reference"],
                   self.profile["sampling"]["n_boxes"], self.seed)

    # --- structure -------------------------------------------------------------------------
    def measure(self, which: str) -> tuple:
        """(structure measurement dict, classifier features dict) of one ensemble, cached."""
        name = key("structure", self._ens_key(which), self.profile["structure"])
        state = {}

        def frames():
            if "region" not in state:
                whole = self.whole_boxes(which)
                state["whole"], state["region"] = whole, region_frames(whole, self.geometry)
            return state

        meas = self.cache.json(name, lambda: measure_structure(frames()["region"], frames()["whole"],
                                                               self.profile["structure"], self.geometry))

        def features():
            x, b = molecule_features(frames()["region"], self.profile["structure"]["classifier_max_samples"], self.seed)
            return {"x": x, "box": b}

        return meas, self.cache.arrays(name + "-features", features)

    def whole_boxes(self, which: str):
        """Frames (open boxes of decoded atoms) of the ensemble `which`: generated, training or heldout."""
        return decode_grids(getattr(self, which)(), self.coder)

    def structure_thresholds(self) -> dict:
        """The thresholds the structure checks are judged by."""
        return self.profile["thresholds"]

    def _structure(self) -> dict:
        st, th = self.profile["structure"], self.structure_thresholds()
        gen, fg = self.measure("generated")
        self.log("measuring training and held-out windows")
        ref, fr = self.measure("training")
        held, fh = self.measure("heldout")
        values = structure_values(gen, ref, st)
        control = structure_values(held, ref, st)
        clf = self._classifier("generated", fg, fr)
        clf_ctrl = self._classifier("heldout", fh, fr)
        values["classifier"] = _classifier_value(clf)
        control["classifier"] = _classifier_value(clf_ctrl)
        checks = structure_checks(values, th, control)
        null = self._null(ref)
        for c in checks:
            if c.name == "classifier":
                c.extra.update(p_value=_finite(clf.get("p_value")), statistic="exact binomial test of out-of-fold accuracy "
                               f"({clf.get('correct')} of {clf.get('scored')} right)")
            elif c.name in null:
                c.extra.update(p_value=p_value(c.value, null[c.name]), z_score=z_score(c.value, null[c.name]),
                               null=null_summary(null[c.name]),
                               statistic=f"bootstrap over {len(self._pool_measurements())} held-out windows")
        return {"checks": checks, "generated": gen, "training": ref, "heldout": held,
                "classifier": {"generated": clf, "heldout": clf_ctrl}}

    def pool_boxes(self, n: int):
        """Frames of `n` held-out windows (decoded) for the bootstrap null (validation.gate.significance)."""
        rng = np.random.default_rng([self.seed, 37])
        return window_ensemble(self.inp.frames, self.inp.heldout_indices, self.geometry, self.coder, n, rng)

    def _pool_measurements(self) -> list:
        """measure_structure of each window of the bootstrap pool, one at a time, cached."""
        st = self.profile["structure"]
        n = POOL_FACTOR * self.profile["sampling"]["n_boxes"]
        name = key("pool", self._ens_key("heldout"), n, st)

        def measure():
            whole = self.pool_boxes(n)
            region = region_frames(whole, self.geometry)
            return [measure_structure(region.select([i]), whole.select([i]), st, self.geometry) for i in range(n)]

        return self.cache.json(name, measure)

    def _null(self, ref: dict) -> dict:
        """{check: null sample} of the structure checks at this profile's sizes, cached."""
        st, n = self.profile["structure"], self.profile["sampling"]["n_boxes"]
        name = key("null", self._ens_key("heldout"), self._ens_key("training"), POOL_FACTOR, BOOTSTRAP_DRAWS, st)
        return self.cache.json(name, lambda: bootstrap_null(self._pool_measurements(), ref, st, n, BOOTSTRAP_DRAWS,
                                                            self.seed))

    def _classifier(self, which: str, feats, ref_feats) -> dict:
        st = self.profile["structure"]
        name = key("classifier-v2", self._ens_key(which), self._ens_key("training"), st)
        return self.cache.json(name, lambda: classifier_test(
            feats["x"], feats["box"], ref_feats["x"], ref_feats["box"], hidden=st["classifier_hidden"],
            epochs=st["classifier_epochs"], folds=st["classifier_folds"], max_samples=st["classifier_max_samples"],
            seed=self.seed))

    # --- markov ----------------------------------------------------------------------------
    def check_groups(self, groups) -> None:
        """Refuse, before any work, groups this profile and model cannot judge."""
        if "markov" in groups:
            self._check_markov_blocks()

    def _check_markov_blocks(self) -> None:
        """The boundary test compares blocks of planes one receptive field thick from the analysed region."""
        thick = max(receptive_field(self.model.config).planes_back, 1)
        if self.geometry.n < thick:
            raise MapSuiteError(
                f"{self.profile.source}: [sampling] region_nm = {self.profile['sampling']['region_nm']} is "
                f"{self.geometry.n} planes, under one block of {thick} planes (the model's receptive-field depth) "
                f"that the Markov boundary test compares; raise region_nm or leave out the markov group")

    def _markov(self) -> dict:
        self._check_markov_blocks()
        s, mk = self.profile["sampling"], self.profile["markov"]
        T = s["temperature"]
        empty = self.cache.json(key("chain", self._model_key(), T),
                                lambda: measure_chain(self.model, self.sampled(), T, self.geometry, s["boundary"]))
        n = mk["seeded_boxes"]
        halo = halo_for(receptive_field(self.model.config))
        seeded_key = key("seeded", self.inp.model_sha256, self.inp.reference_sha256, sampling_key(self.profile),
                         self.geometry.as_dict(), n, self.seed)

        def seeded_chain():
            rng = np.random.default_rng([self.seed, 17])
            bnd = boundary_windows(self.inp.frames, self.inp.train_indices, self.geometry.shape, halo, self.coder, n, rng)
            grids = sample_boxes(self.model, self.geometry.shape, n, T, self.seed + 1, bnd, min(s["batch"], n),
                                 self.cache.dir(seeded_key), self.progress, self.log, self.client, s["device"])
            return measure_chain(self.model, grids, T, self.geometry, bnd)

        seeded = self.cache.json(key("chain", seeded_key, T), seeded_chain)
        checks, summary = markov_checks(empty, seeded, mk, self.profile["thresholds"])
        return {"checks": checks, "empty": empty, "seeded": seeded, "summary": summary}

    # --- md --------------------------------------------------------------------------------
    def _md(self) -> dict:
        p = self.profile
        if not p["md"]["enabled"]:
            return {"checks": [], "skipped": "disabled in the profile"}
        box_nm = p["md"]["box_nm"]
        md_sections = {k: p[k] for k in ("md", "md.classical", "md.rpmd")}
        gen_dir = self.cache.dir(key("md-generated", self._gen_key(), md_sections, self.seed))
        ref_dir = self.cache.dir(key("md-training", self.inp.reference_sha256, *self._md_seed_mode(), md_sections, self.seed))
        pos, box, rep = self.md_seed_box(box_nm)
        _, (pos_r, box_r, rep_r) = window_seed_box(self.inp.frames, self.inp.train_indices, box_nm, self.coder,
                                                   np.random.default_rng([self.seed, 19]))
        self.log(f"MD from a repaired generated box ({len(pos) // 3} waters, {box_nm} nm) and from a training window "
                 f"({len(pos_r) // 3} waters)" + ("" if self.client is None else ", as two Dask tasks"))
        # each run holds its folder's lock: another gate run on this cache waits, then reuses the finished runs
        gen, ref = map_tasks(self.client, run_methods_locked, [(pos, box, gen_dir, rep), (pos_r, box_r, ref_dir, rep_r)],
                             shared={"profile": p, "progress": self.progress and self.client is None})
        thresholds = {**p["thresholds"], "md_tolerance": p["thresholds.md_tolerance"]}
        not_judged = density_not_judged(p)
        checks = []
        for method in gen:
            checks += md_checks(gen[method], ref[method], thresholds, method, not_judged)
        return {"checks": checks, "generated": gen, "training": ref, "not_judged": not_judged}

    def _md_seed_mode(self) -> tuple:
        """(voxel nm, encoding name) of the training-seeded MD run's cache key."""
        return self.coder.voxel_nm, self.coder.name

    def md_seed_box(self, box_nm: float) -> tuple:
        """(positions, box, repair report) of the MD run seeded from the judged boxes."""
        return seed_box(self.generated()[0], self.coder, self.geometry.region_lower_nm, box_nm)

    # --- results ---------------------------------------------------------------------------
    def error_rates(self) -> dict | None:
        """The measured false-failure rate and power of this profile in this judging mode
        (validation.gate.error_rates), for shipped profiles that were measured; else None."""
        if self.profile.name not in SHIPPED or Path(self.profile.source) != shipped_path(self.profile.name):
            return None
        return load_error_rates(self.profile.name, mode_name(self.coder))

    def group(self, name: str) -> dict:
        """One group's checks and measurements ('structure', 'markov' or 'md'), computed once and timed."""
        if name not in self._groups:
            compute = {"structure": self._structure, "markov": self._markov, "md": self._md}[name]
            t0 = time.perf_counter()
            self._groups[name] = compute()
            self._timing[name] = time.perf_counter() - t0
        return self._groups[name]

    def check(self, group: str, name: str) -> Check:
        for c in self.group(group)["checks"]:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r} in group {group!r} (is it disabled in the profile?)")

    def results(self, command: str | None = None) -> dict:
        """results.json content for the groups computed so far."""
        checks = [c for g in GROUPS if g in self._groups for c in self._groups[g]["checks"]]
        complete = all(g in self._groups for g in GROUPS)
        out = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "verdict": ("pass" if verdict(checks) else "fail") if complete or not verdict(checks) else "incomplete",
            "groups": [g for g in GROUPS if g in self._groups],
            "checks": [c.as_dict() for c in checks],
            "geometry": self.geometry.as_dict(),
            "profile": self.profile.as_dict(),
            "timing_s": {k: round(v, 1) for k, v in self._timing.items()},
            "provenance": provenance(self.inp, command),
            "judged": "model samples" if self._given is None else "given boxes (control), not the model's samples",
            "calibration": self.calibration,
            "error_rates": self.error_rates(),
        }
        for g in self._groups:
            out[g] = {k: v for k, v in self._groups[g].items() if k != "checks"}
        out["table1"] = table1(out.get("md"))
        return out


def sampling_key(profile) -> dict:
    """The [sampling] settings the sampled boxes depend on: all but the device (CPU and CUDA draw the same boxes)."""
    return {k: v for k, v in profile["sampling"].items() if k != "device"}


def calibration_match(profile, coder) -> dict:
    """Whether the profile's thresholds were calibrated for the model's encoding and voxel:
    {"profile": {...}, "model": {...}, "matches": bool, "note": str}."""
    cal = profile["calibration"]
    model = {"encoding": coder.name, "voxel_nm": coder.voxel_nm}
    matches = cal["encoding"] == coder.name and abs(cal["voxel_nm"] - coder.voxel_nm) <= 1e-6 * coder.voxel_nm
    note = "" if matches else (
        f"the profile's thresholds were calibrated for {cal['encoding']} classes at {cal['voxel_nm']:g} nm voxels, this model "
        f"uses {coder.name} classes at {coder.voxel_nm:g} nm; calibrate them for it with python -m validation.gate.calibrate "
        f"{profile.name} --encoding {coder.name} --voxel {coder.voxel_nm:g} and a profile that extends this one")
    return {"profile": dict(cal), "model": model, "matches": matches, "note": note}


def _finite(x):
    return float(x) if x is not None and np.isfinite(x) else None


def _classifier_value(clf: dict) -> tuple:
    if not np.isfinite(clf.get("auc", float("nan"))):
        return float("nan"), clf.get("reason", "classifier could not run")
    return clf["auc"], (f"out-of-fold ROC AUC over {clf['n']} generated and {clf['n']} training molecules; "
                        f"an uninformative classifier scatters by {clf['null_sd']:.3f}")

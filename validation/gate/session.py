"""The whole gate: sample, measure, compare, decide; with every expensive stage cached.

``GateSession`` computes the three groups of checks lazily (the pytest gate asks for them one
test at a time; ``validation.report.run.run_gate`` asks for all) and assembles ``results.json``.
What it judges comes from its box source (``validation.gate.sources``), resolved with the
profile, reference and geometry by ``validation.gate.inputs``; the session never asks what kind
of source it has, only what the source can provide:

- structure: the judged boxes against windows of the training split of the reference frames;
  the same checks on windows of the held-out split are the control (``Check.control``), the
  noise floor of each check at this scale. ``judge_structure`` gives the verdict's checks; the
  error-rate measurement (``validation.gate.error_rates``) calls the same method;
- markov: class probabilities, per-plane log-probability and boundary dependence (sources
  with a model only);
- md: classical and RPMD runs seeded from a repaired judged box against the same protocol
  seeded from a training window.

Caching (``validation.gate.cache``): sampled boxes per batch, every measurement, each MD run
directory; keys hold the model and reference sha256, the profile sections a stage reads and
the seed, never thresholds.
"""

from __future__ import annotations

import time

import numpy as np

from map_core.cluster import map_tasks
from map_core.model.kinds import kind_of
from map_core.sampling.canvas import halo_for
from map_core.sampling.generate import SamplingJob
from validation.gate import streams
from validation.gate.boxes import boundary_windows, region_frames, sample_boxes
from validation.gate.cache import Cache, key
from validation.gate.checks import Check, verdict
from validation.gate.classifier import FEATURES_VERSION, classifier_test, molecule_features
from validation.gate.markov import markov_checks, measure_chain
from validation.gate.md import density_not_judged, md_checks, run_methods_locked, window_seed_box
from validation.gate.provenance import provenance
from validation.gate.rates import rates_for
from validation.gate.registry import GROUPS
from validation.gate.results import FORMAT, FORMAT_VERSION
from validation.gate.significance import BOOTSTRAP_DRAWS, POOL_FACTOR, bootstrap_null, null_summary, p_value, z_score
from validation.gate.sources import GridSource, sampling_key
from validation.gate.structure import MEASUREMENT_VERSION, measure_structure, structure_checks, structure_values
from validation.gate.table1 import table1
from validation.gate.thresholds import COMBINED, combined_value, null_record_for

__all__ = ["GROUPS", "GateSession", "open_session"]


class GateSession:
    """One gate run over `inputs` (validation.gate.inputs.GateInputs)."""

    def __init__(self, inputs, cache_dir, progress: bool = False, log=None, generated=None, groups=GROUPS):
        """generated: optional (K, Z, Y, X) grids of the model's geometry to judge instead of its
        samples (controls: e.g. held-out training windows); the Markov checks still sample the model.
        groups: the groups this run will compute (their pre-flight checks run now)."""
        if generated is not None:
            inputs = inputs.with_source(GridSource.of(inputs.source, generated))
        self.inp = inputs
        self.profile = inputs.profile
        self.reference = inputs.reference
        self.source = inputs.source
        self.geometry = inputs.geometry
        self.calibration = inputs.calibration
        self.coder = self.source.coder
        self.model = self.source.model
        self.cache = Cache(cache_dir)
        self.client = None  # a distributed.Client: sampling batches and MD runs become Dask tasks (run_gate sets it)
        self.progress = progress
        self.log = log or (lambda msg: None)
        self.seed = self.profile.seed
        self._groups = {}
        self._timing = {}
        inputs.preflight(self.cache.root, groups)
        if not self.calibration["matches"]:
            self.log(f"warning: {self.calibration['note']}")

    # --- ensembles -----------------------------------------------------------------------
    def whole_boxes(self, which: str):
        """Frames (open boxes of decoded atoms) of the ensemble `which`: generated, training or heldout."""
        if which == "generated":
            return self.source.whole_boxes(self)
        if which == "training":
            return self.source.reference_windows(self, "training", self.profile["reference"]["windows"],
                                                 streams.TRAINING_WINDOWS)
        return self.source.reference_windows(self, "heldout", self.profile["sampling"]["n_boxes"], streams.HELDOUT_WINDOWS)

    def _ens_key(self, which: str) -> str:
        if which == "generated":
            return self.source.key(self)
        return key(which, self.reference.sha256, self.geometry.as_dict(), self.source.mode_token(), self.profile["reference"],
                   self.profile["sampling"]["n_boxes"], self.seed)

    # --- structure -------------------------------------------------------------------------
    def measure(self, which: str) -> tuple:
        """(structure measurement dict, classifier features dict) of one ensemble, cached."""
        name = key("structure", MEASUREMENT_VERSION, self._ens_key(which), self.profile["structure"])
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

        return meas, self.cache.arrays(f"{name}-features-v{FEATURES_VERSION}", features)

    def judge_structure(self) -> dict:
        """The structure group's checks, without p-values: the judging path of the verdict and of the
        error-rate measurement. {"checks", "generated", "training", "heldout", "classifier"}."""
        st = self.profile["structure"]
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
        thresholds, (record, note) = dict(self.inp.thresholds), self._combined_null()
        if record is not None:
            values[COMBINED] = combined_value({n: v for n, (v, _) in values.items()}, record)
            control[COMBINED] = combined_value({n: v for n, (v, _) in control.items()}, record)
            thresholds[COMBINED] = record["thresholds"]["null-quantile"][COMBINED]
        return {"checks": structure_checks(values, thresholds, control, self.coder), "generated": gen, "training": ref,
                "heldout": held, "classifier": {"generated": clf, "heldout": clf_ctrl},
                "combined": {"judged": record is not None, "note": note},
                "not_judged": {} if record is not None else {COMBINED: note}}

    def _combined_null(self) -> tuple:
        """(the null record the combined test is judged against, or None; why, in words)."""
        if self.inp.threshold_rule != "null-quantile":
            return None, f"not judged: thresholds by the {self.inp.threshold_rule} rule"
        record = null_record_for(self.inp)
        if record is None:
            return None, (f"not judged: no null draws recorded for the {self.profile.name} profile in the {self.inp.mode} "
                          f"judging mode at these sizes; record them with python -m validation.gate.calibrate "
                          f"{self.profile.name} --null --write")
        return record, f"against {record['draws']} recorded held-out draws"

    def _structure(self) -> dict:
        out = self.judge_structure()
        clf = out["classifier"]["generated"]
        null = self._null(out["training"])
        for c in out["checks"]:
            if c.name == "classifier":
                c.extra.update(p_value=_finite(clf.get("p_value")), statistic="exact binomial test of out-of-fold accuracy "
                               f"({clf.get('correct')} of {clf.get('scored')} right)")
            elif c.name in null:
                c.extra.update(p_value=p_value(c.value, null[c.name]), z_score=z_score(c.value, null[c.name]),
                               null=null_summary(null[c.name]),
                               statistic=f"bootstrap over {len(self._pool_measurements())} held-out windows")
        return out

    def pool_boxes(self, n: int):
        """Frames of `n` held-out windows (decoded) for the bootstrap null (validation.gate.significance)."""
        return self.reference.windows("heldout", self.geometry, self.coder, n, streams.rng(self.seed, streams.NULL_POOL))

    def _pool_measurements(self) -> list:
        """measure_structure of each window of the bootstrap pool, one at a time, cached."""
        st = self.profile["structure"]
        n = POOL_FACTOR * self.profile["sampling"]["n_boxes"]
        name = key("pool", MEASUREMENT_VERSION, self._ens_key("heldout"), n, st)

        def measure():
            whole = self.pool_boxes(n)
            region = region_frames(whole, self.geometry)
            return [measure_structure(region.select([i]), whole.select([i]), st, self.geometry) for i in range(n)]

        return self.cache.json(name, measure)

    def _null(self, ref: dict) -> dict:
        """{check: null sample} of the structure checks at this profile's sizes, cached."""
        st, n = self.profile["structure"], self.profile["sampling"]["n_boxes"]
        name = key("null", MEASUREMENT_VERSION, self._ens_key("heldout"), self._ens_key("training"), POOL_FACTOR,
                   BOOTSTRAP_DRAWS, st)
        return self.cache.json(name, lambda: bootstrap_null(self._pool_measurements(), ref, st, n, BOOTSTRAP_DRAWS,
                                                            self.seed))

    def _classifier(self, which: str, feats, ref_feats) -> dict:
        st = self.profile["structure"]
        name = key("classifier-v2", FEATURES_VERSION, self._ens_key(which), self._ens_key("training"), st)
        return self.cache.json(name, lambda: classifier_test(
            feats["x"], feats["box"], ref_feats["x"], ref_feats["box"], hidden=st["classifier_hidden"],
            epochs=st["classifier_epochs"], folds=st["classifier_folds"], max_samples=st["classifier_max_samples"],
            seed=self.seed))

    # --- markov ----------------------------------------------------------------------------
    def _markov(self) -> dict:
        if self.source.markov is not None:
            return {"checks": [], "skipped": self.source.markov}
        s, mk = self.profile["sampling"], self.profile["markov"]
        T = s["temperature"]
        model_key = self.source.sample_key(self)
        empty = self.cache.json(key("chain", model_key, T),
                                lambda: measure_chain(self.model, self.source.sampled(self), T, self.geometry, s["boundary"]))
        n = mk["seeded_boxes"]
        halo = halo_for(kind_of(self.model.config).receptive_field(self.model.config))
        seeded_key = key("seeded", self.source.sha256, self.reference.sha256, sampling_key(self.profile),
                         self.geometry.as_dict(), n, self.seed)

        def seeded_chain():
            rng = streams.rng(self.seed, streams.SEEDED_BOUNDARY)
            bnd = boundary_windows(self.reference.frames, self.reference.train_indices, self.geometry.shape, halo,
                                   self.coder, n, rng)
            job = SamplingJob(self.geometry.shape, n, T, self.seed + 1, bnd, min(s["batch"], n), device=s["device"])
            grids = sample_boxes(self.model, job, self.cache.dir(seeded_key), self.progress, self.log, self.client)
            return measure_chain(self.model, grids, T, self.geometry, bnd)

        seeded = self.cache.json(key("chain", seeded_key, T), seeded_chain)
        checks, summary = markov_checks(empty, seeded, mk, self.profile["thresholds"])
        return {"checks": checks, "empty": empty, "seeded": seeded, "summary": summary}

    # --- md --------------------------------------------------------------------------------
    def _md(self) -> dict:
        p = self.profile
        if not p["md"]["enabled"]:
            return {"checks": [], "skipped": "disabled in the profile", "not_judged": {}}
        box_nm = p["md"]["box_nm"]
        md_sections = {k: p[k] for k in ("md", "md.classical", "md.rpmd")}
        gen_dir = self.cache.dir(key("md-generated", self.source.key(self), md_sections, self.seed))
        ref_dir = self.cache.dir(key("md-training", self.reference.sha256, *self.source.md_mode(), md_sections, self.seed))
        pos, box, rep = self.source.md_seed_box(self, box_nm)
        _, (pos_r, box_r, rep_r) = window_seed_box(self.reference.frames, self.reference.train_indices, box_nm, self.coder,
                                                   streams.rng(self.seed, streams.MD_TRAINING_SEED))
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

    # --- results ---------------------------------------------------------------------------
    def error_rates(self) -> dict | None:
        """The measured false-failure rate and power of this profile in this judging mode
        (validation.gate.error_rates), or why they do not apply to this run; None if never measured."""
        return rates_for(self.inp)

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
        if self.source.markov is not None:
            self.group("markov")  # not applicable, always: a run is complete without it
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
            "judged": self.source.judged(),
            "calibration": self.calibration,
            "error_rates": self.error_rates(),
            **self.source.describe(),
        }
        for g in self._groups:
            out[g] = {k: v for k, v in self._groups[g].items() if k != "checks"}
        if self.source.markov is not None:
            out["not_applicable"] = {"markov": self.source.markov}
        out["table1"] = table1(out.get("md"))
        return out


def open_session(inputs, cache_dir, progress: bool = False, log=None, groups=GROUPS) -> GateSession:
    """The session of resolved `inputs` (validation.gate.inputs.GateInputs)."""
    return GateSession(inputs, cache_dir, progress, log, groups=groups)


def _finite(x):
    return float(x) if x is not None and np.isfinite(x) else None


def _classifier_value(clf: dict) -> tuple:
    if not np.isfinite(clf.get("auc", float("nan"))):
        return float("nan"), clf.get("reason", "classifier could not run")
    return clf["auc"], (f"out-of-fold ROC AUC over {clf['n']} generated and {clf['n']} training molecules; "
                        f"an uninformative classifier scatters by {clf['null_sd']:.3f}")

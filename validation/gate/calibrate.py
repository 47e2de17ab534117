"""Calibrate a profile's structure thresholds: held-out scatter and negative controls.

    python -m validation.gate.calibrate PROFILE [--data FRAMES.npz] [--encoding atoms|water|continuous] [--voxel NM] [--draws 20]
    python -m validation.gate.calibrate PROFILE --null [--draws 1000] [--encoding continuous] [--write]
    python -m validation.gate.calibrate PROFILE --error-rates [--draws 100] [--foreign DIR] [--rule max-heldout] [--write]
    python -m validation.gate.calibrate --table

Draws `draws` ensembles of held-out training windows (the reference's held-out split,
validation.gate.reference), each the profile's n_boxes, and judges every structure check against
windows of the training split through the gate's own judging path
(``GateSession.judge_structure``); then does the same for negative controls: ideal
gases of rigid water molecules (3 seeds), a random-weight model, and voxels drawn independently
with the training class frequencies at T = 1, 2 and 0.5. Prints the held-out median, 90th
percentile and maximum, the profile's thresholds, the rule's suggestion, and each control's
verdicts.

With ``--null``, measures the null distribution of every structure check instead
(validation.gate.null_draws: fresh held-out draws through the gate's judging path, resumable) and
prints both threshold rules of validation.gate.thresholds from it: the (1 - alpha/k) null
quantile of ``rule = "null-quantile"`` profiles and the earlier 1.5 x largest-of-20 rule;
``--write`` records the draws in validation/gate/profiles/null_draws.json and sets the profile's
thresholds by its rule. The orphan rate is the exception: held-out windows have almost none, so
its threshold comes from seed 000's published model instead (see the profiles).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from map_core.arguments import POSITIVE, OneLineParser, count
from map_core.atoms.encoding import ENCODINGS, Encoding
from map_core.errors import MapSuiteError, run_one_line
from map_core.model.kinds import kind_of
from map_core.model.pixelcnn import ModelConfig
from map_core.sampling.generate import SamplingJob
from map_core.training.crops import class_frequencies, voxelise
from validation.gate.boxes import ideal_gas_grids, sample_boxes
from validation.gate.cache import default_cache_dir
from validation.gate.error_rates import (DRAW_SEED, ERROR_RATE_DRAWS, Drawer, judging_inputs, measure_error_rates,
                                         shipped_encoding)
from validation.gate.md import density_not_judged, md_checks, run_methods, window_seed_box
from validation.gate.null_draws import measure_null
from validation.gate.profile import load_profile, shipped_path
from validation.gate.rates import (ERROR_RATES_PATH, checks_table, detectable_sentence, detectable_table, markdown_table,
                                   write_error_rates)
from validation.gate.reference import SHIPPED_TRAINING_SET, load_reference
from validation.gate.registry import CHECKS, MD_METHODS, passed, spec
from validation.gate.session import GateSession
from validation.gate.sources import GridSource
from validation.gate.thresholds import (COMBINED, NULL_DRAWS, NULL_PATH, RULES, combined_null, level, max_heldout,
                                        null_record_for, write_null, write_profile_thresholds)


def marginal_model(config, freq, random_weights: bool, seed: int = 0):
    """A network of the config's model kind (negative control) whose output gives the class frequencies `freq` (C,).

    random_weights=True: PyTorch's random initialisation elsewhere (the random-weight control);
    False: every other weight zero, i.e. voxels drawn independently with the frequencies `freq`
    (at T = 1, an ideal gas of atoms at the training density).
    """
    kind = kind_of(config)
    torch.manual_seed(seed)
    model = kind.build(config)
    if not random_weights:
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
    kind.start_from_frequencies(model, np.asarray(freq))
    return model.eval()


def control_config(coder: Encoding, **arch) -> ModelConfig:
    """ModelConfig of a small model (`arch`: layers, filters, ...) with the classes of `coder`."""
    return ModelConfig(voxel_nm=coder.voxel_nm, encoding=coder.name, n_classes=coder.n_classes, **arch)


def calibrate(profile, data, coder: Encoding | None, draws: int = 20, controls: bool = True, log=print,
              first_draw: int = 0, model=None) -> dict:
    """{'heldout': {check: [values]}, 'controls': {label: {check: value}}} for one profile (a shipped
    name or TOML path), with the voxel encoding `coder` (map_core.atoms.encoding.Encoding), or
    continuous positions (`coder` None: windows of atoms, as ``--boxes`` judges them; no controls).
    Every draw goes through the gate's judging path (validation.gate.error_rates.Drawer); draw d
    uses held-out windows of stream DRAW_SEED + d, d from `first_draw`; model: see judging_inputs."""
    inputs = judging_inputs(profile, data, coder, model)
    drawer = Drawer(inputs)
    geo, n = inputs.geometry, inputs.profile["sampling"]["n_boxes"]
    log(f"geometry {geo.as_dict()}")
    heldout = {}
    for d in range(first_draw, first_draw + draws):
        for c in drawer.heldout(DRAW_SEED + d):
            heldout.setdefault(c.name, []).append(c.value)
    out = {"geometry": geo.as_dict(), "heldout": heldout, "controls": {}}
    if not controls or coder is None:
        return out
    boxes = {f"ideal gas {s}": ideal_gas_grids(geo.shape, coder, n, s) for s in range(3)}
    grids = voxelise(inputs.reference.frames, coder)
    freq = class_frequencies(grids, range(len(grids)), coder.n_classes)
    small = control_config(coder, layers=1, filters=4, dropout=0.0)
    for label, random_weights, temperature in (("random weights", True, 1.0), ("independent voxels T=1", False, 1.0),
                                               ("independent voxels T=2", False, 2.0),
                                               ("independent voxels T=0.5", False, 0.5)):
        model = marginal_model(small, freq, random_weights, seed=3)
        boxes[label] = sample_boxes(model, SamplingJob(geo.shape, 2, temperature, 0, "empty", 2))
    for label, g in boxes.items():
        source = GridSource.of(inputs.source, g)
        checks = GateSession(inputs.with_source(source), drawer.cache_dir, groups=()).judge_structure()["checks"]
        out["controls"][label] = {c.name: c.value for c in checks}
    return out


def calibrate_md(profile, data, coder: Encoding, pairs: int, workdir, log=print) -> dict:
    """{check: [values]} of the MD checks of held-out-seeded against training-seeded runs.

    Each pair cuts a cube of [md] box_nm from a training frame and from a held-out frame with
    `validation.gate.md.window_seed_box`, as the gate seeds its training run, and runs the profile's
    classical and RPMD protocol in `workdir`.
    """
    ref = load_reference(data, "calibration reference")
    thresholds = {**profile["thresholds"], "md_tolerance": profile["thresholds.md_tolerance"]}

    def run(which, seed, label):
        _, (pos, cell, rep) = window_seed_box(ref.frames, ref.indices(which), profile["md"]["box_nm"], coder,
                                              np.random.default_rng(seed))
        return run_methods(pos, cell, profile, Path(workdir) / f"{label}_{seed}", rep)

    out = {}
    for k in range(pairs):
        train_run, held_run = run("training", 100 + k, "training"), run("heldout", 200 + k, "heldout")
        for method in held_run:
            for c in md_checks(held_run[method], train_run[method], thresholds, method, density_not_judged(profile)):
                out.setdefault(c.name, []).append(c.value)
                log(f"pair {k}: {c.line()}")
    return out


def main(argv=None) -> int:
    p = OneLineParser(prog="python -m validation.gate.calibrate", description=__doc__.splitlines()[0])
    p.add_argument("profile", nargs="?", help="smoke, quick, paper or a profile .toml")
    p.add_argument("--table", action="store_true", help="print the recorded error rates as GATE.md's table and stop")
    p.add_argument("--data", default=str(SHIPPED_TRAINING_SET), help="training frames (default: the shipped set)")
    p.add_argument("--encoding", choices=[*ENCODINGS, "continuous"], default=None,
                   help="voxel classes (default: the shipped model's); continuous: positions without voxels, "
                        "for [thresholds.continuous] (map-suite validate --boxes without --voxel)")
    p.add_argument("--voxel", type=POSITIVE, default=None, help="voxel side, nm (default: the shipped model's)")
    p.add_argument("--model", default=None, help="judge voxelised at this checkpoint's geometry (default: the shipped "
                   "model where its encoding and voxel are the ones calibrated, else an untrained model's, as --boxes)")
    p.add_argument("--draws", type=count(1), default=None, help="held-out draws (default: 20; with --null "
                   f"{NULL_DRAWS}; with --error-rates {ERROR_RATE_DRAWS})")
    p.add_argument("--no-controls", action="store_true")
    p.add_argument("--md-pairs", type=count(0), default=0, help="also run this many held-out/training MD pairs")
    p.add_argument("--md-workdir", default="gate-calibration-md", help="folder for those MD runs (resumable)")
    p.add_argument("--error-rates", action="store_true", help="measure the gate's false-failure rate on fresh held-out "
                   "draws (--draws, at least 50 recommended) and its power against --foreign ensembles instead")
    p.add_argument("--foreign", default=None, help="with --error-rates: folder of foreign ensembles (frames files; "
                   "python -m validation.gate.foreign DIR makes them)")
    p.add_argument("--power-draws", type=count(1), default=20, help="with --error-rates: draws per foreign ensemble")
    p.add_argument("--rule", choices=RULES, default=None, help="with --error-rates: judge by this rule's thresholds, "
                   "recomputed from the recorded null draws (default: the profile's own thresholds); with --null --write: "
                   "set the profile's thresholds and [calibration] rule by this rule (default: the profile's rule)")
    p.add_argument("--null", action="store_true", help="measure the null distribution of every structure check on "
                   "fresh held-out draws and both threshold rules from it (resumable; see validation.gate.thresholds)")
    p.add_argument("--work", default=None, help="with --null: folder of the resumable draw files; with --error-rates: "
                   "folder of the draws' cached measurements, so a killed run resumes (default: the gate cache, "
                   "$MAP_SUITE_CACHE or ~/.cache/map-suite/gate, under null-draws/ or error-rates/)")
    p.add_argument("--write", action="store_true", help="with --error-rates: record the result in "
                   "validation/gate/profiles/error_rates.json (shown in every report of the profile); with --null: record "
                   "the draws in validation/gate/profiles/null_draws.json and set the profile's thresholds by its rule")
    args = p.parse_args(argv)
    return run_one_line("python -m validation.gate.calibrate", lambda: _report(args))


def _report(args) -> int:
    if args.table:
        recorded = json.loads(ERROR_RATES_PATH.read_text()) if ERROR_RATES_PATH.is_file() else {}
        print(markdown_table(recorded))
        print(checks_table(recorded))
        print(detectable_table(recorded))
        return 0
    if args.profile is None:
        raise MapSuiteError("name a profile (smoke, quick, paper or a .toml file)")
    profile = load_profile(args.profile)
    shipped = shipped_encoding()
    if args.encoding == "continuous":
        coder = None
        print("continuous positions (no voxels)")
    else:
        coder = Encoding(args.encoding or shipped.name, args.voxel if args.voxel is not None else shipped.voxel_nm)
        print(f"encoding {coder.name}, {coder.voxel_nm:g} nm voxels")
    if args.error_rates:
        return _error_rates(profile, args, coder)
    if args.null:
        return _null(profile, args, coder)
    args.draws = args.draws or 20
    if args.md_pairs:
        md = calibrate_md(profile, args.data, coder, args.md_pairs, args.md_workdir)
        tol = profile["thresholds.md_tolerance"]
        for row in (r for r in CHECKS if r.group == "md" and r.threshold_key and "_classical_" in r.name):
            obs = row.name.removeprefix("md_classical_")
            worst = max(max(md.get(f"md_{m}_{obs}", [0.0])) for m in MD_METHODS)
            print(f"md {obs:10s} largest held-out difference {worst:9.4g}  profile {tol[row.threshold_key]:9.4g}  "
                  f"rule {max_heldout(obs, [worst]):9.4g}")
    res = calibrate(args.profile, args.data, coder, args.draws, not args.no_controls, model=args.model)
    th = profile["thresholds"] if coder is not None else {**profile["thresholds"], **profile["thresholds.continuous"]}
    print(f"{'check':12s} {'median':>9s} {'p90':>9s} {'max':>9s} {'profile':>9s} {'rule':>9s}")
    for name, vals in res["heldout"].items():
        v = np.asarray(vals, dtype=float)
        key = spec(name).threshold_key
        print(f"{name:12s} {np.nanmedian(v):9.4g} {np.nanpercentile(v, 90):9.4g} {np.nanmax(v):9.4g} "
              f"{th[key]:9.4g} {max_heldout(name, v):9.4g}")
    for label, vals in res["controls"].items():
        failed = [k for k, x in vals.items() if not passed(k, x, th[spec(k).threshold_key])]
        print(f"{label}: fails {len(failed)} of {len(vals)}: " + ", ".join(
            f"{k} {vals[k]:.3g}" for k in failed) + ("" if len(failed) == len(vals) else
                                                      "; passes " + ", ".join(k for k in vals if k not in failed)))
    return 0


def _error_rates(profile, args, coder) -> int:
    foreign = {}
    if args.foreign:
        folder = Path(args.foreign)
        if not folder.is_dir():
            raise MapSuiteError("no such folder of foreign ensembles", folder)
        foreign = {p.stem: p for p in sorted(folder.glob("*.npz"))}
        if not foreign:
            raise MapSuiteError("no frames files (*.npz) in the folder", folder)
    inputs = judging_inputs(args.profile, args.data, coder, args.model)
    if args.rule is not None:
        record = null_record_for(inputs)
        if record is None:
            raise MapSuiteError(f"no recorded null draws of {profile.name} ({inputs.mode}) to take --rule {args.rule} "
                                f"thresholds from: run python -m validation.gate.calibrate {profile.name} --null --write first")
        inputs = inputs.with_thresholds(record, args.rule)
    work = Path(args.work) if args.work else default_cache_dir() / "error-rates"
    res = measure_error_rates(inputs, args.draws or ERROR_RATE_DRAWS, foreign, args.power_draws, cache_dir=work)
    ff = res["false_failure"]
    print(f"false-failure rate ({res['profile']}, {res['mode']}): {ff['failed']} of {ff['draws']} held-out draws "
          f"failed ({100 * ff['rate']:.1f} %); by check: {ff['per_check'] or 'none'}")
    for name, pw in res["power"].items():
        print(f"power against {name}: {pw['failed']} of {pw['draws']} draws rejected ({100 * pw['rate']:.0f} %); "
              f"by check: {pw['per_check'] or 'none'}")
    print(detectable_sentence(res))
    if args.write:
        write_error_rates(res)
        print(f"written to {ERROR_RATES_PATH}")
    return 0


def _null(profile, args, coder) -> int:
    inputs = judging_inputs(args.profile, args.data, coder, args.model)
    work = Path(args.work) if args.work else default_cache_dir() / "null-draws"
    alpha = profile["calibration"]["alpha"]
    record = measure_null(inputs, args.draws or NULL_DRAWS, work, alpha)
    rules = record["thresholds"]
    print(f"{record['draws']} held-out draws ({inputs.mode}); k = {len(record['counted'])} checks, alpha = {alpha}: "
          f"null quantile at {level(alpha, len(record['counted'])):.5f}")
    th = inputs.thresholds
    print(f"{'check':12s} {'median':>9s} {'max':>9s} {'profile':>9s} {'null-q':>9s} {'max-20':>9s}")
    for name in record["counted"]:
        v = combined_null(record["values"], record["counted"]) if name == COMBINED else np.asarray(
            record["values"][name], dtype=float)
        now = th.get(spec(name).threshold_key or "", float("nan"))
        print(f"{name:12s} {np.nanmedian(v):9.4g} {np.nanmax(v):9.4g} {now:9.4g} {rules['null-quantile'][name]:9.4g} "
              f"{rules['max-heldout'].get(name, float('nan')):9.4g}")
    if args.write:
        write_null(record)
        print(f"draws written to {NULL_PATH}")
        rule = args.rule or profile["calibration"]["rule"]
        if profile.source != str(shipped_path(profile.name)) or args.data != str(SHIPPED_TRAINING_SET):
            print("thresholds not written: only a shipped profile on the shipped training set is set here")
        else:
            section = "thresholds" if coder is not None else "thresholds.continuous"
            keyed = {spec(n).threshold_key: t for n, t in rules[rule].items() if spec(n).threshold_key}
            write_profile_thresholds(profile.source, section, keyed)
            write_profile_thresholds(profile.source, "calibration", {"rule": rule})
            print(f"[{section}] of {profile.source} set by the {rule} rule")
    return 0


if __name__ == "__main__":
    sys.exit(main())

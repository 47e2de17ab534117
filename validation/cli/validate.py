"""`map-suite validate`: run the release gate on a model and write the report; the exit code is the verdict.

Exit codes: 0 every check passed, 1 some check failed, 2 bad input (refused before any work).
With ``--groups`` naming only some groups the report says INCOMPLETE and the exit code tells
whether every check that ran passed.
"""

from __future__ import annotations

import sys
import time

from map_core.arguments import POSITIVE, SEED, count
from map_core.atoms.encoding import ENCODINGS
from map_core.cluster import dask_client
from map_core.errors import MapSuiteError
from map_core.files import check_output_path
from validation.gate.inputs import resolve_gate_inputs
from validation.gate.profile import SHIPPED
from validation.gate.registry import GROUPS
from validation.md.imports import SEED_CLASSES
from validation.report.run import run_gate


def add_arguments(p) -> None:
    p.add_argument("--model", default=None,
                   help="checkpoint (.pt) written by `map-suite train`; default: the shipped default model")
    p.add_argument("--boxes", default=None, help="judge boxes from another generator instead of a model: a frames file, "
                   "PDB, GRO, DCD/XTC/LAMMPS dump (with --top), extxyz or .npy class grids; the Markov checks are "
                   "then not applicable")
    p.add_argument("--voxel", type=POSITIVE, default=None, help="with --boxes: voxelise both sides at this voxel (nm; "
                   "for .npy class grids also the grids' voxel, default 0.025); without it positions are judged as they are")
    p.add_argument("--encoding", choices=ENCODINGS, default=None, help="with --boxes --voxel: the classes to voxelise "
                   "into (default: atoms for .npy grids, else the profile's calibration encoding)")
    p.add_argument("--classes", default=",".join(SEED_CLASSES), help="with .npy class grids: class order "
                   "(default: %(default)s, that of the grids of the 3D water MAP paper's authors, seed 000)")
    p.add_argument("--top", default=None, help="with DCD, XTC or LAMMPS dump boxes: topology file (PDB)")
    p.add_argument("--types", default=None, metavar="T=EL,...", help="with LAMMPS data files or dumps without an element "
                   "column: element of each atom type, O, H or a virtual site such as M (e.g. 1=O,2=H; default: a data "
                   "file's Masses section)")
    p.add_argument("--frames", type=count(1), default=None, metavar="N", help="with --boxes: judge N frames of the file, "
                   "evenly spaced from the first to the last (default: every frame)")
    p.add_argument("--profile", default="quick",
                   help=f"sizes, run lengths and thresholds of the gate: a shipped profile ({', '.join(SHIPPED)}; "
                        "validation/gate/profiles/NAME.toml) or the path of a profile .toml file (default: %(default)s)")
    p.add_argument("--reference", default=None,
                   help="frames file to compare with; default: the model's training data (checkpoint provenance)")
    p.add_argument("--out", required=True, help="report folder: report.html, results.json, figures/")
    p.add_argument("--cache", default=None, help="cache of sampled boxes, measurements and MD runs, keyed by model sha256 "
                   "and profile (default: $MAP_SUITE_CACHE or ~/.cache/map-suite/gate)")
    p.add_argument("--groups", default="structure,markov,md", help="comma-separated groups to run (default: %(default)s)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|local:N",
                   help="run the sampling batches and MD runs as Dask tasks: a scheduler address (tcp://host:8786), a "
                        "scheduler file, or local:N for N worker processes here; workers must share the cache's file system "
                        "(default: none, one process)")
    p.add_argument("--seed", type=SEED, default=None,
                   help="random seed of the gate run, in place of the profile's seed (default: the profile's)")
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")


def run(args) -> int:
    check_output_path(args.out, "folder")  # before the model is loaded and anything sampled or simulated
    if args.cache is not None:
        check_output_path(args.cache, "folder")
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise MapSuiteError(f"--groups must name some of {', '.join(GROUPS)}, got {args.groups!r}")
    inputs = resolve_gate_inputs(args.model, args.boxes, args.profile, args.reference, args.seed, args.voxel,
                                 args.encoding, args.classes, args.top, args.types, args.frames)
    t0 = time.time()

    def log(msg):
        if not args.no_progress:
            print(f"[validate {time.time() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    command = "map-suite " + " ".join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("map-suite") else None
    with dask_client(args.scheduler) as client:
        results = run_gate(inputs, args.out, args.cache, groups, progress=not args.no_progress, log=log, command=command,
                           client=client)
    for c in results["checks"]:
        print(("PASS " if c["passed"] else "FAIL ") + c["name"], flush=True)
    print(f"verdict: {results['verdict'].upper()} ({sum(c['passed'] for c in results['checks'])} of "
          f"{len(results['checks'])} checks passed); report: {args.out}/report.html")
    return 0 if results["verdict"] in ("pass", "incomplete") else 1

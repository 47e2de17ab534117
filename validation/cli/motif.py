"""`map-suite motif scan|generate`: rare low-density motifs of the training data, and water generated
around one of them (the 3D water MAP paper, seed 000, Results 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from map_core.arguments import FRACTION, POSITIVE, SEED, count
from map_core.atoms.frames import load_frames
from map_core.errors import MapSuiteError
from map_core.files import atomic_path, check_output_path, find_shown, partial_folder, sha256_file, shown_path, write_text_atomic
from map_core.model.checkpoint import load_model
from map_core.model.default import default_model_path
from validation.gate.reference import SHIPPED_TRAINING_SET
from validation.motif.run import run_motif_job
from validation.motif.scan import default_probe_nm, load_scan, probe_counts, scan_frames, write_scan
from validation.report.motif import render_motif_report

CHUNK = 50  # frames per resumable piece of a scan


SCAN = ("scan the training frames for the local density of water in probe cubes and list the low-density "
        "sites, rare motifs (the 3D water MAP paper, seed 000: Results 2, Fig. 4)")
GENERATE = ("generate water around the motif of one site of a scan, then turn the box and regenerate it in "
            "generative iterations (the 3D water MAP paper, seed 000: Results 2, Fig. 4-5); resumable")


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="motif_command", required=True, metavar="{scan,generate}")
    s = sub.add_parser("scan", help=SCAN, description=SCAN)
    s.add_argument("--data", default=None, help="periodic training frames, frames file (.npz) (default: the shipped "
                   "training set)")
    s.add_argument("--out", required=True, help="scan file to write (.json); resumable from OUT.partial/")
    s.add_argument("--model", default=None, help="checkpoint (.pt) whose voxel sets the default probe (default: the "
                   "shipped model)")
    s.add_argument("--probe-nm", type=POSITIVE, default=None,
                   help="probe cube edge, nm (default: the 3D water MAP paper's 0.625 nm (seed 000) rounded to whole "
                        "voxels of the model: 0.60 nm at 0.05 nm voxels)")
    s.add_argument("--stride-nm", type=POSITIVE, default=None,
                   help="spacing of probe centres, nm (default: the probe edge / 4)")
    s.add_argument("--quantile", type=FRACTION, default=0.045,
                   help="sites at or below this quantile of the density, in (0, 1) (default: %(default)s, the 4.5 %% "
                        "of the 3D water MAP paper, seed 000)")
    s.add_argument("--threshold", type=POSITIVE, default=None,
                   help="sites at or below this density, g/cm3, in place of --quantile (default: none, --quantile "
                        "decides)")
    s.add_argument("--max-sites", type=count(1), default=50,
                   help="most sites listed, at most one per frame, densest first (default: %(default)s)")
    s.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    g = sub.add_parser("generate", help=GENERATE, description=GENERATE)
    g.add_argument("--model", default=None,
                   help="checkpoint (.pt) written by `map-suite train`; default: the shipped default model")
    g.add_argument("--scan", required=True, help="scan file (.json) written by `map-suite motif scan`")
    g.add_argument("--data", default=None, help="the frames file the scan was made on (default: the file the scan "
                   "names)")
    g.add_argument("--site", type=count(0), default=0,
                   help="index of the site in the scan's list (default: %(default)s, the first listed)")
    g.add_argument("--shape", type=count(1), nargs=3, metavar=("NZ", "NY", "NX"), default=[40, 40, 40],
                   help="box edges in voxels of the model (default: 40 40 40: 2 nm at 0.05 nm voxels, the size of "
                        "the training samples of the 3D water MAP paper, seed 000)")
    g.add_argument("--iterations", type=count(1), default=4,
                   help="generative iterations: each turns the box and regenerates all but the region kept "
                        "(default: %(default)s)")
    g.add_argument("--seed", type=SEED, default=0,
                   help="random seed of the sampling; the same seed gives the same boxes (default: %(default)s)")
    g.add_argument("--temperature", type=POSITIVE, default=1.0, help="softmax temperature, > 0 (default: %(default)s)")
    g.add_argument("--out", required=True, help="folder for the iterations, motif.json and motif.html; a rerun "
                   "resumes there")
    g.add_argument("--threads", type=count(1), default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")


def run(args) -> int:
    return _scan(args) if args.motif_command == "scan" else _generate(args)


def _log(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def _scan(args) -> int:
    check_output_path(args.out, "file")  # before the frames are read and anything is scanned
    data = Path(args.data) if args.data else SHIPPED_TRAINING_SET
    log = _log(args.no_progress)
    frames = load_frames(data)
    if args.probe_nm is None:
        model, _ = load_model(args.model or default_model_path())
        args.probe_nm = default_probe_nm(model.config.voxel_nm)
    stride = args.stride_nm or args.probe_nm / 4
    digest = sha256_file(data)
    # Resumable in pieces of CHUNK frames: OUT.partial/ keeps the finished ones (after Ctrl-C or a kill; a
    # refusal, which a rerun would meet again, removes the folder it made).
    key = {"data_sha256": digest, "probe_nm": args.probe_nm, "stride_nm": stride}
    with partial_folder(args.out) as (partial, created):
        job = partial / "job.json"
        if not created and (not job.is_file() or job.read_text(errors="replace") != json.dumps(key, sort_keys=True)):
            raise MapSuiteError(f"{partial} holds a scan with other settings; remove it", args.out)
        write_text_atomic(job, json.dumps(key, sort_keys=True))
        counts = []
        for start in range(0, len(frames), CHUNK):
            piece = partial / f"counts_{start:06d}.npz"
            if not piece.exists():
                got = probe_counts(frames.select(range(start, min(start + CHUNK, len(frames)))), args.probe_nm, stride,
                                   first=start, source=data)
                with atomic_path(piece) as tmp, open(tmp, "wb") as fh:
                    np.savez(fh, centres=np.stack([c for c, _ in got]), counts=np.stack([n for _, n in got]))
            with np.load(piece) as z:
                counts += list(zip(z["centres"], z["counts"]))
            log(f"scanned frames {min(start + CHUNK, len(frames))}/{len(frames)}")
        scan = scan_frames(frames, args.probe_nm, stride, args.quantile, args.threshold, args.max_sites, counts=counts)
        scan["data"] = {"path": shown_path(data), "sha256": digest}  # no one's home folder in a committed scan
        write_scan(args.out, scan)
    d = scan["density_g_cm3"]
    print(f"wrote {args.out}: {scan['probes']} probes of {args.probe_nm:.3g} nm in {scan['frames']} frames; "
          f"dominant {d['dominant']:.3f} g/cm3, mean {d['mean']:.3f} +- {d['std']:.3f}; "
          f"{100 * scan['tail_probability']:.1f} % at or below {scan['threshold_g_cm3']:.3f} g/cm3; "
          f"{len(scan['sites'])} sites (seed 000: 0.996, and 0.614 g/cm3 at about 4.5 %)")
    return 0


def _generate(args) -> int:
    check_output_path(args.out, "folder")  # before the model is loaded and anything sampled
    if args.threads:
        torch.set_num_threads(args.threads)
    scan = load_scan(args.scan)
    model_path = args.model or default_model_path()
    model, _ = load_model(model_path)
    data = Path(args.data) if args.data else find_shown(scan["data"]["path"])
    result = run_motif_job(model, sha256_file(model_path), data, scan, args.site, args.shape, args.iterations,
                           args.seed, args.out, args.temperature, progress=not args.no_progress,
                           log=_log(args.no_progress))
    path = render_motif_report(result, args.out)
    rows = result["convergence"]["iterations"]
    kl = ", ".join(f"{r['kl_q4_frame']:.3f}/{r['kl_q6_frame']:.3f}" for r in rows)
    print(f"wrote {args.out}: {len(rows)} iterations around a {result['motif']['molecules']}-molecule motif "
          f"(site {args.site}, {result['site_detail']['density_g_cm3']:.3f} g/cm3); KL q4/q6 vs its frame per iteration: "
          f"{kl}; report {path}")
    return 0

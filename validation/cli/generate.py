"""`map-suite generate`: sample boxes from a trained model and decode them to atoms."""

from __future__ import annotations

import numpy as np
import torch

from map_core.arguments import NONNEGATIVE, SEED, count
from map_core.cluster import dask_client
from map_core.errors import MapSuiteError
from map_core.files import check_output_path, sha256_file
from map_core.model.checkpoint import load_model
from map_core.model.default import default_model_path
from map_core.sampling.generate import SAMPLER_FUNCTIONS, SamplingJob, generate_to_file
from validation.md.engine import density_g_cm3

SHAPE = [48, 48, 48]  # default box, voxels
SHIPPED_VOXEL_NM = 0.05  # voxel of the shipped default model (map_core/data/default_model.pt), for the help text


def add_arguments(p) -> None:
    p.add_argument("--model", default=None,
                   help="checkpoint (.pt) written by `map-suite train`; default: the shipped default model")
    p.add_argument("--shape", type=count(1), nargs=3, metavar=("NZ", "NY", "NX"), default=list(SHAPE),
                   help="box edges in voxels of the model, whose checkpoint sets the voxel size (the shipped model's "
                        f"is {SHIPPED_VOXEL_NM} nm, so the default {' '.join(map(str, SHAPE))} is a "
                        f"{SHAPE[0] * SHIPPED_VOXEL_NM:g} nm box)")
    p.add_argument("--n-boxes", type=count(1), default=1, help="number of boxes to generate (default: %(default)s)")
    p.add_argument("--temperature", type=NONNEGATIVE, default=1.0,
                   help="softmax temperature, >= 0; 0: argmax (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="random seed of the sampling; the same seed gives the same boxes (default: %(default)s)")
    p.add_argument("--boundary", choices=["outside", "empty", "wrap"], default="outside",
                   help="what surrounds the box: outside: nothing (as training crops saw); empty: empty voxels; "
                        "wrap: periodic in x and y where raster order allows (voxels near the +x and +y faces see "
                        "the opposite faces' earlier rows and planes; burn-in below the box only; one-stage models; "
                        "measured: no fewer molecules lost at the seam than the default, validation/GATE.md) "
                        "(default: %(default)s)")
    p.add_argument("--sampler", choices=list(SAMPLER_FUNCTIONS), default="fast",
                   help="fast: cached exact sampler; reference: slow window-per-voxel sampler, same result "
                        "(default: %(default)s)")
    p.add_argument("--batch", type=count(1), default=1,
                   help="boxes generated together, each batch kept on disk when done (default: %(default)s)")
    p.add_argument("--burn-in", type=NONNEGATIVE, default=1.0, metavar="FIELDS",
                   help="margin generated around each box and discarded, in receptive fields (default: %(default)s; "
                        "0: the raw canvas, every atom)")
    p.add_argument("--repair", action="store_true",
                   help="periodic, MD-ready boxes: orphans and molecules clashing across the seam removed (counts in meta)")
    p.add_argument("--device", default="cpu",
                   help="where the fast sampler runs: cpu, cuda, cuda:N (default: %(default)s)")
    p.add_argument("--out", required=True, help="frames file to write (.npz)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS|local:N",
                   help="sample the batches as Dask tasks: a scheduler address (tcp://host:8786), a scheduler file, or "
                        "local:N for N worker processes here; the output equals a single-process run's (default: "
                        "none, one process)")
    p.add_argument("--threads", type=count(1), default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args) -> int:
    check_output_path(args.out, "file")  # before the model is loaded and anything sampled
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model is None:
        args.model = default_model_path()
    if min(args.shape) < 1:
        raise MapSuiteError(f"--shape must be positive, got {args.shape}")
    model, _ = load_model(args.model)
    job = SamplingJob(args.shape, args.n_boxes, args.temperature, args.seed, args.boundary, args.batch, args.sampler,
                      args.device)
    with dask_client(args.scheduler) as client:
        frames = generate_to_file(model, args.out, job, burn_in=args.burn_in, repair_boxes=args.repair,
                                  progress=not args.no_progress, model_sha256=sha256_file(args.model), client=client)
    defects = frames.meta["defects"]
    mols = sum(d["molecules"] for d in defects)
    orphans = sum(d["orphans"] for d in defects)
    line = (f"wrote {args.out}: {len(frames)} boxes, {mols} molecules, {orphans} orphan atoms "
            f"({100 * orphans / max(1, orphans + 3 * mols):.1f} % of atoms), mean log p {np.mean(frames.extra['log_prob']):.1f} nats")
    if args.repair:
        fixed = [d["repair"] for d in defects]
        line += (f"; repaired for periodic MD: {sum(r['molecules_out'] for r in fixed)} molecules kept, "
                 f"{sum(r['clash_molecules_removed'] + r['seam_molecules_removed'] for r in fixed)} clashing removed")
    print(line)
    for k, (defect, edges) in enumerate(zip(defects, frames.box)):
        n = defect["repair"]["molecules_out"] if args.repair else defect["molecules"]
        print(f"box {k}: {' x '.join(f'{e:.2f}' for e in edges)} nm, {n} molecules, "
              f"{density_g_cm3(n, float(np.prod(edges))):.3f} g/cm3")
    return 0

"""`map-suite simulate`: OpenMM q-TIP4P/F water (classical or RPMD) -> a frames file.

Builds a fresh box, minimises, equilibrates in NPT, then writes one frame every --stride-ps
from NVT at the mean NPT volume (see validation/md/simulate.py and validation/PROTOCOLS.md).
A killed run resumes from its --workdir (default: <out>.partial/) without redoing frames.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from map_core.arguments import NONNEGATIVE, POSITIVE, SEED, count
from map_core.errors import MapSuiteError
from map_core.files import check_output_path
from validation.md.settings import MDSettings
from validation.md.simulate import simulate_frames


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", choices=("classical", "rpmd"), default="classical",
                        help="classical MD or ring-polymer MD (default: %(default)s)")
    parser.add_argument("--waters", type=count(1), required=True, help="number of water molecules")
    parser.add_argument("--frames", type=count(1), required=True, help="number of frames to write")
    parser.add_argument("--stride-ps", type=POSITIVE, required=True, help="time between frames written (NVT), ps")
    parser.add_argument("--equilibrate-ps", type=NONNEGATIVE, required=True, help="NPT equilibration before the frames, ps")
    parser.add_argument("--out", required=True, help="frames file to write (.npz)")
    parser.add_argument("--seed", type=SEED, required=True, help="random seed (initial box, velocities, thermostat)")
    parser.add_argument("--beads", type=count(1), default=None,
                        help="RPMD beads (default: 32, as the 3D water MAP paper, seed 000; classical: 1)")
    parser.add_argument("--contract", action="store_true",
                        help="RPMD: evaluate PME reciprocal space on the centroid only (default: on every bead)")
    parser.add_argument("--platform", default=None,
                        help="OpenMM platform: CUDA, OpenCL, CPU or Reference (default: the first available of "
                             "CUDA > OpenCL > CPU)")
    parser.add_argument("--threads", type=count(1), default=None, help="CPU platform threads (default: OpenMM's choice)")
    parser.add_argument("--timestep-fs", type=POSITIVE, default=0.5, help="time step, fs (default: %(default)s)")
    parser.add_argument("--intra-substeps", type=count(1), default=1,
                        help="classical: bonded forces this many times per step (default: %(default)s; 5 with "
                             "0.5 fs steps gives the 0.1 fs inner step of the 3D water MAP paper, seed 000)")
    parser.add_argument("--temperature", type=POSITIVE, default=300.0, help="temperature, K (default: %(default)s)")
    parser.add_argument("--pressure", type=POSITIVE, default=1.0, help="NPT pressure, bar (default: %(default)s)")
    parser.add_argument("--workdir", default=None,
                        help="run directory (checkpoint, logs, trajectory); a killed run resumes from it "
                             "(default: OUT.partial/)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def settings_from_args(args):
    """MDSettings from parsed arguments (raises MapSuiteError on bad values)."""
    for name in ("stride_ps", "equilibrate_ps", "timestep_fs", "temperature", "pressure"):
        value = getattr(args, name)
        if not math.isfinite(value):
            raise MapSuiteError(f"--{name.replace('_', '-')} must be finite, got {value}")
    if args.waters < 1:
        raise MapSuiteError(f"--waters must be at least 1, got {args.waters}")
    if args.frames < 1:
        raise MapSuiteError(f"--frames must be at least 1, got {args.frames}")
    if args.stride_ps <= 0:
        raise MapSuiteError(f"--stride-ps must be positive, got {args.stride_ps}")
    if args.equilibrate_ps < 0:
        raise MapSuiteError(f"--equilibrate-ps must be zero or positive, got {args.equilibrate_ps}")
    beads = args.beads if args.beads is not None else (32 if args.method == "rpmd" else 1)
    if beads < 1:
        raise MapSuiteError(f"--beads must be at least 1, got {beads}")
    if args.method == "classical" and beads != 1:
        raise MapSuiteError("--beads needs --method rpmd")
    return MDSettings(method=args.method, temperature_k=args.temperature, pressure_bar=args.pressure,
                      timestep_fs=args.timestep_fs, intra_substeps=args.intra_substeps, beads=beads,
                      contract_reciprocal=args.contract, platform=args.platform, threads=args.threads,
                      seed=args.seed).check()


def run(args) -> int:
    check_output_path(args.out, "file")  # before the box is built and any MD is run
    if args.workdir is not None:
        check_output_path(args.workdir, "folder")
    settings = settings_from_args(args)
    summary = simulate_frames(args.out, args.waters, args.frames, args.stride_ps, args.equilibrate_ps,
                              settings, workdir=args.workdir, progress=not args.quiet)
    nvt = summary["stages"]["nvt"]
    npt = summary["stages"]["npt"]
    density = npt.get("density_g_cm3") or nvt.get("density_g_cm3") or {}
    print(json.dumps(dict(frames_file=summary["frames_file"], frames=args.frames, method=args.method,
                          npt_density_g_cm3=density.get("mean"), platform=summary["platform"],
                          ns_per_day_nvt=nvt.get("ns_per_day"))), file=sys.stdout)
    return 0

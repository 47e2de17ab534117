"""Training data: simulate a fresh box of q-TIP4P/F water and write its frames file.

Protocol (see validation/PROTOCOLS.md): a fresh box at 1 g/cm3 -> energy minimisation ->
NPT for `equilibrate_ps` -> the box is set to the mean NPT volume (second half of NPT) ->
NVT, one frame every `stride_ps`, `n_frames` frames. So every frame is from **NVT** at the
equilibrated density and all frames share one box.

Frames hold O, H, H per molecule (molecule ids 0..n-1; no M site), positions float32 nm,
every atom wrapped into [0, L) on each axis (**per-atom** wrapping: a molecule may straddle a
face; the voxel encoder wraps again anyway). For RPMD each frame is **one bead chosen at
random** (uniformly, seeded) from the ring polymer: every bead samples the quantum distribution of
positions, the centroid does not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import openmm

from map_core.atoms.frames import save_frames
from map_core.errors import MapSuiteError
from map_core.files import write_text_atomic
from validation.md.boxes import make_water_box
from validation.md.budget import check_md_fits
from validation.md.checkpoints import trajectory_name
from validation.md.files import read_dcd
from validation.md.run import run_md
from validation.md.settings import MDSettings
from validation.md.trajectory import WRAPPING, positions_to_frames


def default_workdir(out) -> Path:
    """Work directory of a `simulate` run writing `out`: ``<out>.partial/`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def simulate_frames(out, n_waters: int, n_frames: int, stride_ps: float, equilibrate_ps: float,
                    settings: MDSettings, workdir=None, progress: bool = True) -> dict:
    """Run the training-data protocol and write `n_frames` frames to `out` (via save_frames).

    settings: method, beads, temperature, time step, platform and seed (its npt_ps, nvt_ps,
    traj_ps and chunk_ps are overwritten from the arguments). Resumes from `workdir`
    (default :func:`default_workdir`) if a killed run left a checkpoint there.
    Returns the run summary with the frames file added.
    """
    if n_waters < 1:
        raise MapSuiteError(f"--waters must be at least 1, got {n_waters}")
    if n_frames < 1:
        raise MapSuiteError(f"--frames must be at least 1, got {n_frames}")
    if not (stride_ps > 0 and np.isfinite(stride_ps)):
        raise MapSuiteError(f"--stride-ps must be positive, got {stride_ps}")
    if not (equilibrate_ps >= 0 and np.isfinite(equilibrate_ps)):
        raise MapSuiteError(f"--equilibrate-ps must be zero or positive, got {equilibrate_ps}")
    stride_steps = stride_ps * 1000.0 / settings.timestep_fs
    if abs(stride_steps - round(stride_steps)) > 1e-6 or round(stride_steps) < 1:
        raise MapSuiteError(f"--stride-ps {stride_ps} is not a whole number of {settings.timestep_fs} fs steps")
    settings.npt_ps = float(equilibrate_ps)
    settings.nvt_ps = float(n_frames * stride_ps)
    settings.traj_ps = float(stride_ps)
    settings.chunk_ps = float(stride_ps)
    settings.report_ps = min(settings.report_ps, float(stride_ps))
    settings.check()
    out = Path(out)
    if out.suffix != ".npz":
        raise MapSuiteError("the frames file must end in .npz", out)
    workdir = Path(workdir) if workdir is not None else default_workdir(out)
    check_md_fits(n_waters, settings, out, extra_frames=n_frames)  # before building the box: refuse what cannot fit
    positions, box = make_water_box(n_waters, settings.seed)
    t0 = time.time()
    summary = run_md(positions, box, settings, workdir, progress=progress)
    xyz, boxes = read_dcd(workdir / trajectory_name("nvt"))
    if len(xyz) != n_frames:
        raise MapSuiteError(f"NVT trajectory has {len(xyz)} frames, expected {n_frames}", workdir)

    meta = dict(
        method=settings.method, temperature=settings.temperature_k, pressure_bar=settings.pressure_bar,
        beads=settings.n_copies, seed=settings.seed, water_model="q-TIP4P/F",
        source=f"map-suite simulate (OpenMM {openmm.__version__}, {summary['platform']})",
        n_waters=n_waters, n_frames=n_frames, stride_ps=stride_ps, equilibrate_ps=equilibrate_ps,
        ensemble="NVT at the mean NPT volume", timestep_fs=settings.timestep_fs,
        intra_substeps=settings.intra_substeps, contract_reciprocal=settings.contract_reciprocal,
        bead_selection="one random bead per frame" if settings.method == "rpmd" else "n/a",
        wrapping=WRAPPING, units="nm",
        nvt_density_g_cm3=summary["stages"]["nvt"].get("density_g_cm3", {}).get("mean"),
        npt_density_g_cm3=summary["stages"]["npt"].get("density_g_cm3", {}).get("mean"),
    )
    frames = positions_to_frames(xyz, boxes, meta)
    save_frames(out, frames)
    summary = dict(summary, frames_file=str(out), session_wall_s=round(time.time() - t0, 1))
    write_text_atomic(workdir / "frames_meta.json", json.dumps(meta, indent=1, sort_keys=True))
    return summary

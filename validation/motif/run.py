"""`map-suite motif generate` as a resumable job: every step written as it finishes, the numbers
and the report at the end.

Folder layout (``out_dir``):
- ``job.json``: the settings; a rerun with other settings is refused;
- ``step_i.npz``: step (i), the motif with the water generated in the first region only;
- ``iteration_NN.npz``: iteration NN, a full open box (frames file, one frame; extra arrays
  ``grid`` (Z, Y, X) uint8, ``generated`` bool, ``fixed`` int16, ``log_prob``, ``turns``);
- ``motif.json``: scan site, motif, per-step log-probabilities, convergence numbers (written last);
- ``motif.html``: the self-contained report (``validation.report.motif``).
Each file is written atomically, so a killed run (even kill -9) resumes after its last finished
step; ``motif.json`` exists only when every step is done.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.errors import MapSuiteError
from map_core.files import sha256_file, write_text_atomic
from map_core.sampling.generate import decode_boxes
from map_core.sampling.motif import MotifStep, check_room, motif_origin, protocol_steps
from validation.motif.convergence import convergence
from validation.motif.scan import motif_atoms, voxelise_motif

FORMAT = "map-suite motif generate"


def step_path(out_dir, step: int) -> Path:
    return Path(out_dir) / ("step_i.npz" if step == 0 else f"iteration_{step:02d}.npz")


def step_frames(s: MotifStep, coder, meta: dict) -> Frames:
    """One step as a frames file: its open box decoded to atoms, with the state to resume from."""
    positions, elements, molecule, reports = decode_boxes(s.grid[None], coder)
    nz, ny, nx = s.grid.shape
    v = coder.voxel_nm
    return Frames.from_arrays(positions, elements, molecule, np.array([[nx * v, ny * v, nz * v]]),
                              {**meta, "step": s.step, "log_prob": s.log_prob, "turns": s.turns, "defects": reports},
                              {"grid": s.grid, "generated": s.generated, "fixed": s.fixed,
                               "log_prob": np.array([s.log_prob]), "turns": np.array([s.turns])})


def read_step(path, step: int) -> MotifStep:
    f = load_frames(path, allow_empty_frames=True)
    try:
        return MotifStep(step, np.asarray(f.extra["grid"], np.uint8), np.asarray(f.extra["generated"], bool),
                         float(f.extra["log_prob"][0]), int(f.extra["turns"][0]), np.asarray(f.extra["fixed"], np.int16))
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise MapSuiteError(f"not a step of a motif run ({exc.__class__.__name__}); remove it to regenerate it", path) from None


def check_job(scan: dict, site: int, shape, iterations: int) -> dict:
    """The chosen site, after checking the arguments against the scan (MapSuiteError otherwise)."""
    sites = scan["sites"]
    if not sites:
        raise MapSuiteError("the scan found no low-density site: rerun it with a larger --quantile or --threshold")
    if any(int(n) < 1 for n in shape) or len(shape) != 3:
        raise MapSuiteError(f"--shape needs three positive voxel counts, got {list(shape)}")
    if not 0 <= site < len(sites):
        raise MapSuiteError(f"--site {site} is out of range: the scan holds sites 0..{len(sites) - 1}")
    if iterations < 1:
        raise MapSuiteError(f"--iterations must be at least 1, got {iterations}")
    return sites[site]


def run_motif_job(model, model_sha256: str, data_path, scan: dict, site: int, shape, iterations: int, seed: int,
                  out_dir, temperature: float = 1.0, progress: bool = False, log=print) -> dict:
    """Run (or resume) the protocol and write the folder above; returns motif.json's content."""
    chosen = check_job(scan, site, shape, iterations)
    frames = load_frames(data_path)
    if sha256_file(data_path) != scan["data"]["sha256"]:
        raise MapSuiteError(f"is not the file the scan was made on ({scan['data']['path']}); pass that file as --data",
                            data_path)
    coder = model.config.coder()
    probe = scan["probe_nm"]
    pos, el = motif_atoms(frames, chosen, probe)
    motif, offset_nm = voxelise_motif(pos, el, coder, probe, shape)
    origin = motif_origin(shape, motif.shape)
    check_room(shape, motif.shape, model.config)  # both refuse before anything is written
    job = {"format": FORMAT, "model_sha256": model_sha256, "data_sha256": scan["data"]["sha256"], "site": site,
           "site_detail": chosen, "probe_nm": probe, "shape": [int(s) for s in shape], "iterations": iterations,
           "seed": seed, "temperature": temperature, "encoding": coder.name, "voxel_nm": coder.voxel_nm}
    out_dir = Path(out_dir)
    job_file = out_dir / "job.json"
    if job_file.exists():
        try:
            old = json.loads(job_file.read_text())
        except (ValueError, UnicodeDecodeError, OSError):
            old = None
        if old != job:
            raise MapSuiteError("holds a motif run with other settings; choose another --out or remove it", out_dir)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(job_file, json.dumps(job, indent=1, sort_keys=True))
    meta = {"method": "map-motif", "source": "map-suite motif generate", **{k: job[k] for k in ("site", "seed", "shape")}}
    steps, last = [], None
    for k in range(iterations + 1):
        if not step_path(out_dir, k).exists():
            break
        last = read_step(step_path(out_dir, k), k)
        if last.grid.shape != tuple(job["shape"]) or last.generated.shape != last.grid.shape:
            raise MapSuiteError(f"holds a {list(last.grid.shape)} grid, not this run's {job['shape']}; remove it",
                                step_path(out_dir, k))
        steps.append(last)
    if steps:
        log(f"resuming after {'step (i)' if last.step == 0 else f'iteration {last.step}'}")
    t0 = time.perf_counter()
    if len(steps) < iterations + 1:
        for s in protocol_steps(model, motif, shape, iterations, seed, temperature, start=last, progress=progress):
            save_frames(step_path(out_dir, s.step), step_frames(s, coder, meta))
            steps.append(s)
            log(f"{'step (i)' if s.step == 0 else f'iteration {s.step}/{iterations}'}: {int(s.generated.sum())} voxels "
                f"sampled, log p {s.log_prob:.1f} nats, {time.perf_counter() - t0:.0f} s")
    centre_zyx = origin * coder.voxel_nm + offset_nm
    boxes = [load_frames(step_path(out_dir, k)) for k in range(1, iterations + 1)]
    source = frames.select([chosen["frame"]])
    numbers = convergence(boxes, source, frames, centre_zyx[::-1], np.asarray(chosen["centre_nm"]))
    result = {**job, "motif": {"molecules": len(pos) // 3, "voxels": list(motif.shape), "origin_zyx": origin.tolist(),
                               "centre_nm": centre_zyx[::-1].tolist(), "occupied_voxels": int((motif > 0).sum())},
              "steps": [{"step": s.step, "voxels_sampled": int(s.generated.sum()), "log_prob": s.log_prob,
                         "turns": s.turns, "file": step_path(out_dir, s.step).name} for s in steps],
              "convergence": numbers, "scan": {k: scan[k] for k in ("probe_nm", "density_g_cm3", "tail_probability",
                                                                     "threshold_g_cm3", "seed_000")}}
    write_text_atomic(out_dir / "motif.json", json.dumps(result, indent=1, sort_keys=True))
    return result

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
import math
import time
from pathlib import Path

import numpy as np

from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.errors import MapSuiteError
from map_core.files import sha256_file, write_text_atomic
from map_core.sampling.generate import decode_boxes
from map_core.sampling.motif import MotifStep, check_room, motif_origin, protocol_steps
from map_core.values import shown_value
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


def read_step(path, step: int, shape=None, n_classes: int | None = None) -> MotifStep:
    """Step `step` of a motif run from its file, every field checked (MapSuiteError naming the file otherwise).

    The extra arrays as `step_frames` writes them: ``grid`` (Z, Y, X) uint8 classes, ``generated`` bool of the
    grid's shape with at least one voxel sampled, ``fixed`` int16 in the frame the sampler ran in (the grid
    turned: the same edges in some order), -1 (sampled) or a class; ``log_prob`` (1,) a finite float <= 0
    and ``turns`` (1,) the step number; meta's step, turns, log_prob and shape the same. shape: the run's
    box (Z, Y, X) voxels; n_classes: the model's classes (grid and fixed below it).
    """
    f = load_frames(path, allow_empty_frames=True)
    try:
        return _step_of(f, step, shape, n_classes)
    except (KeyError, IndexError, ValueError, TypeError, OverflowError) as exc:
        text = str(exc) if isinstance(exc, ValueError) else f"{exc.__class__.__name__}: {exc}"
        raise MapSuiteError(f"not step {step} of a motif run ({text}); remove it to regenerate it", path) from None


def _step_of(f: Frames, step: int, shape, n_classes: int | None) -> MotifStep:
    """The MotifStep of a step file's frames `f`; ValueError (or KeyError) at the first field out of place."""
    extra, meta = f.extra, f.meta
    grid, generated, fixed = extra["grid"], extra["generated"], extra["fixed"]
    log_prob, turns = extra["log_prob"], extra["turns"]
    classes = 256 if n_classes is None else int(n_classes)
    if grid.dtype != np.uint8 or grid.ndim != 3 or grid.size == 0:
        raise ValueError(f"grid is {grid.dtype} of shape {grid.shape}, not a 3D uint8 grid of classes")
    if shape is not None and grid.shape != tuple(int(n) for n in shape):
        raise ValueError(f"a {list(grid.shape)} grid, not this run's {[int(n) for n in shape]}")
    if int(grid.max()) >= classes:
        raise ValueError(f"grid class {int(grid.max())}: the model has classes 0..{classes - 1}")
    if generated.dtype != np.bool_ or generated.shape != grid.shape or not generated.any():
        raise ValueError("generated is not a boolean grid of the grid's shape with any voxel sampled")
    if fixed.dtype != np.int16 or sorted(fixed.shape) != sorted(grid.shape):
        raise ValueError(f"fixed is {fixed.dtype} of shape {fixed.shape}, not an int16 grid of the turned box")
    if int(fixed.min()) < -1 or int(fixed.max()) >= classes:
        raise ValueError(f"fixed holds {int(fixed.min())}..{int(fixed.max())}: -1 (sampled) or a class 0..{classes - 1}")
    sampled = int((fixed == -1).sum())
    if sampled < int(generated.sum()) or (step > 0 and sampled != int(generated.sum())):
        raise ValueError(f"{sampled} voxels left to the sampler in fixed, {int(generated.sum())} marked generated")
    if log_prob.shape != (1,) or log_prob.dtype.kind != "f" or not (np.isfinite(log_prob[0]) and log_prob[0] <= 0):
        raise ValueError(f"log_prob {log_prob.tolist()[:3]} is not one finite log-probability (<= 0)")
    if turns.shape != (1,) or turns.dtype.kind not in "iu" or int(turns[0]) != step:
        raise ValueError(f"turns {turns.tolist()[:3]} is not this step's number of turns ({step})")
    expected = {"step": step, "turns": step, "shape": list(grid.shape), "log_prob": float(log_prob[0])}
    for key, value in expected.items():
        got = meta.get(key)
        same = (isinstance(got, (int, float)) and not isinstance(got, bool) and math.isclose(got, value, rel_tol=1e-12)
                if key == "log_prob" else type(got) is type(value) and got == value)
        if not same:
            raise ValueError(f"meta {key} {shown_value(got)} is not the arrays' {value}")
    return MotifStep(step, grid, generated, float(log_prob[0]), step, fixed)


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
    """Run (or resume) the protocol and write the folder above; returns motif.json's content.

    Every input is checked before anything is written: the arguments against the scan, a folder's
    earlier job and step files (each field, and the motif in each step's grid), the data file
    against the scan (its sha256, the site's frame, the probe inside that frame's box)."""
    chosen = check_job(scan, site, shape, iterations)
    coder = model.config.coder()
    probe = scan["probe_nm"]
    job = {"format": FORMAT, "model_sha256": model_sha256, "data_sha256": scan["data"]["sha256"], "site": site,
           "site_detail": chosen, "probe_nm": probe, "shape": [int(s) for s in shape], "iterations": iterations,
           "seed": seed, "temperature": temperature, "encoding": coder.name, "voxel_nm": coder.voxel_nm}
    out_dir = Path(out_dir)
    job_file = out_dir / "job.json"
    steps = []
    if job_file.exists():
        try:
            old = json.loads(job_file.read_text())
        except (ValueError, UnicodeDecodeError, OSError, RecursionError):
            old = None
        if old != job:
            raise MapSuiteError("holds a motif run with other settings; choose another --out or remove it", out_dir)
    for k in range(iterations + 1):  # the finished steps, read (and checked) before the data
        if not step_path(out_dir, k).exists():
            break
        steps.append(read_step(step_path(out_dir, k), k, job["shape"], model.config.n_classes))
    frames = load_frames(data_path)
    if sha256_file(data_path) != scan["data"]["sha256"]:
        raise MapSuiteError(f"is not the file the scan was made on ({scan['data']['path']}); pass that file as --data",
                            data_path)
    pos, el = motif_atoms(frames, chosen, probe)
    edges = np.asarray(frames.box[chosen["frame"]], dtype=np.float64)
    if probe >= edges.min():  # as the scan itself refuses: the motif would be more than its frame
        raise MapSuiteError(f"frame {chosen['frame']}'s box of {edges.min():.3g} nm cannot hold the scan's probe of "
                            f"{probe:g} nm", data_path)
    motif, offset_nm = voxelise_motif(pos, el, coder, probe, shape)
    origin = motif_origin(shape, motif.shape)
    check_room(shape, motif.shape, model.config)  # both refuse before anything is written
    cube = tuple(slice(o, o + m) for o, m in zip(origin, motif.shape))
    for s in steps:  # the motif's voxels are fixed in every step: a step that changed them is not of this run
        if not np.array_equal(s.grid[cube], motif):
            raise MapSuiteError("does not hold this run's motif at the centre of its grid; remove it to regenerate it",
                                step_path(out_dir, s.step))
    if not job_file.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(job_file, json.dumps(job, indent=1, sort_keys=True))
    meta = {"method": "map-motif", "source": "map-suite motif generate", **{k: job[k] for k in ("site", "seed", "shape")}}
    last = steps[-1] if steps else None
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

"""Generation as a long job: boxes in batches, each finished batch kept on disk, then one output file.

The output is a frames file (ragged layout) of the decoded boxes, with molecule ids from
`group_waters`, defect counts per box in meta, and the raw voxel grids and log-probabilities as
extra arrays `grids` (K, Z, Y, X) uint8 and `log_prob` (K,) float64. An interrupted run resumes
from `OUT.partial/` when called again with the same arguments.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from map_core.atoms.frames import Frames, save_frames
from map_core.atoms.molecules import decoded_water_limits, group_waters
from map_core.atoms.voxels import decode
from map_core.errors import MapSuiteError
from map_core.files import atomic_path, write_text_atomic
from map_core.model.device import resolve_device
from map_core.sampling.fast import sample_fast
from map_core.sampling.reference import sample_reference

SAMPLERS = ("fast", "reference")


def decode_boxes(grids: np.ndarray, voxel: float) -> tuple:
    """Decode (K, Z, Y, X) grids into per-box atom lists; returns (positions, elements, molecule, reports)."""
    positions, elements, molecule, reports = [], [], [], []
    for grid in grids:
        pos, elem = decode(grid, voxel)
        max_oh, angle_range = decoded_water_limits(voxel)
        mol, report = group_waters(pos, elem, box=None, max_oh=max_oh, angle_range=angle_range)
        positions.append(pos)
        elements.append(elem)
        molecule.append(mol)
        reports.append(report.as_dict())
    return positions, elements, molecule, reports


def sampler_function(name: str):
    if name == "reference":
        return sample_reference
    if name == "fast":
        return sample_fast
    raise MapSuiteError(f"unknown sampler {name!r}")


def _check_device(device: str, sampler: str) -> str:
    if sampler != "fast" and not str(device).startswith("cpu"):
        raise MapSuiteError(f"the {sampler} sampler runs on the CPU only, not on {device}")
    return str(resolve_device(device))


def generate_to_file(model, out_path, shape, n_boxes: int, temperature: float = 1.0, seed: int = 0,
                     boundary: str = "outside", sampler: str = "fast", batch: int = 1,
                     progress: bool = True, model_sha256: str | None = None, device: str = "cpu") -> Frames:
    """Generate `n_boxes` boxes of `shape` (Z, Y, X) voxels into the frames file `out_path`.

    device: where the fast sampler runs ("cpu", "cuda", "cuda:1"); the reference sampler is CPU only.
    Finished batches are kept under `out_path`.partial/, so an interrupted run resumes where it stopped.
    """
    out_path = Path(out_path)
    if n_boxes < 1 or batch < 1:
        raise MapSuiteError("n-boxes and batch must be >= 1")
    if temperature < 0:
        raise MapSuiteError(f"temperature must be >= 0, got {temperature}")
    device = _check_device(device, sampler)
    voxel = model.config.voxel_nm
    job = {"shape": [int(s) for s in shape], "n_boxes": n_boxes, "temperature": temperature, "seed": seed,
           "boundary": boundary, "sampler": sampler, "model_sha256": model_sha256, "voxel_nm": voxel}
    partial = out_path.with_name(out_path.name + ".partial")
    job_file = partial / "job.json"
    if partial.exists():
        if not job_file.exists() or json.loads(job_file.read_text()) != job:
            raise MapSuiteError(f"{partial} holds an unfinished run with other settings; remove it or rerun those settings", out_path)
    else:
        partial.mkdir(parents=True)
        write_text_atomic(job_file, json.dumps(job, sort_keys=True))
    sample = sampler_function(sampler)
    extra = {"device": device} if device != "cpu" else {}  # only the fast sampler runs elsewhere
    for first in range(0, n_boxes, batch):
        count = min(batch, n_boxes - first)
        piece = partial / f"boxes_{first:06d}_{count:06d}.npz"
        if piece.exists():
            continue
        grids, logp = sample(model, shape, n_boxes=count, temperature=temperature, seed=seed, boundary=boundary,
                             progress=progress, first_box=first, **extra)
        with atomic_path(piece) as tmp:
            np.savez(tmp, grids=grids.numpy(), log_prob=logp.numpy())
    pieces = sorted(partial.glob("boxes_*.npz"))
    grids = np.concatenate([np.load(p)["grids"] for p in pieces])
    logp = np.concatenate([np.load(p)["log_prob"] for p in pieces])
    positions, elements, molecule, reports = decode_boxes(grids, voxel)
    nz, ny, nx = job["shape"]
    meta = {**job, "method": "map", "source": "map-suite generate", "defects": reports}
    frames = Frames.from_arrays(positions, elements, molecule, np.tile([nx * voxel, ny * voxel, nz * voxel], (n_boxes, 1)),
                                meta, {"grids": grids, "log_prob": logp})
    save_frames(out_path, frames)
    shutil.rmtree(partial)
    return frames

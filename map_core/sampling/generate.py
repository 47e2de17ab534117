"""Generation as a long job: boxes in batches, each finished batch kept on disk, then one output file.

Each box of the requested (Z, Y, X) voxels is generated inside a larger canvas with a burn-in
margin (``map_core.sampling.margins``, default one receptive field; below the box only where it
wraps around in y and x, boundary "wrap") and cut out of it: the
output holds the whole molecules whose oxygen lies in the box (their hydrogens may reach up to
a bond length past its faces) and the orphan atoms inside it (molecule id -1), positions
relative to the box's corner. With ``repair`` the box is made periodic and MD-ready instead:
orphans and molecules that clash across the periodic seam are removed
(``map_core.atoms.molecules.repair``). With ``burn_in=0`` and no repair the box is the raw
canvas, every atom decoded.

The output is a frames file (ragged layout) with molecule ids from `group_waters`, defect (and
repair) counts per box in meta, the sampled canvases and their log-probabilities as extra
arrays `grids` (K, Z', Y', X') uint8 and `log_prob` (K,) float64, and the box's place in the
canvas in ``meta["region"]``. An interrupted run resumes from `OUT.partial/` when called again
with the same arguments.

What to sample is one `SamplingJob` (shape, number of boxes, temperature, seed, boundary, batch,
sampler, device), which the gate's sampling (``validation.gate.boxes``) takes too; its batches are
sampled by `SamplingJob.sample`, through the model's kind.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import Frames, save_frames
from map_core.atoms.molecules import GroupReport, decoded_water_limits, group_waters, repair, water_indices
from map_core.cluster import map_tasks
from map_core.errors import MapSuiteError
from map_core.files import (
    atomic_path,
    available_memory_bytes,
    check_output_path,
    free_disk_bytes,
    partial_folder,
    write_text_atomic,
)
from map_core.model.device import resolve_device
from map_core.model.kind_base import JobBar
from map_core.sampling.fast import sample_fast
from map_core.sampling.margins import box_origin, burn_in_voxels, canvas_shape, face_voxels
from map_core.sampling.reference import sample_reference

SAMPLER_FUNCTIONS = {"fast": sample_fast, "reference": sample_reference}  # the choices of --sampler
SAMPLER_BYTES_PER_VOXEL = 40  # uniforms (float64, twice while stacked), canvas values (int64), output (uint8) and more
RING_BYTES = 1 << 30  # the fast sampler's default cap on its per-layer storage (memory_mb = 1024)


def check_fits(canvas, batch: int, n_boxes: int, out_path) -> None:
    """Refuse, before any work, a generation whose memory or disk estimate exceeds what is free."""
    voxels = math.prod(int(s) for s in canvas)
    memory = min(batch, n_boxes) * voxels * SAMPLER_BYTES_PER_VOXEL + RING_BYTES + 2 * n_boxes * voxels
    free = available_memory_bytes()
    if free is not None and memory > free:
        raise MapSuiteError(f"{n_boxes} boxes of {'x'.join(map(str, canvas))} voxels (burn-in included) need about "
                            f"{memory / 1e9:.3g} GB of memory, {free / 1e9:.3g} GB are available", out_path)
    disk = n_boxes * voxels * 2  # the kept batches and the output file, both holding every canvas
    free_disk = free_disk_bytes(Path(out_path).resolve().parent)
    if disk > free_disk:
        raise MapSuiteError(f"{n_boxes} boxes need about {disk / 1e9:.3g} GB of disk, {free_disk / 1e9:.3g} GB are free", out_path)


def decode_grouped(grid, coder: Encoding) -> tuple:
    """Atoms of one (Z, Y, X) grid in waters: (positions (N, 3) nm, elements (N,), molecule (N,), GroupReport).

    Atom classes are grouped with the limits of decoded atoms; fragment classes decode to whole
    molecules, which are kept as they are."""
    pos, elem, mol = coder.decode(grid)
    if mol is not None:
        return pos, elem, mol, GroupReport(molecules=len(pos) // 3, orphan_o=0, orphan_h=0)
    max_oh, angle_range = decoded_water_limits(coder.voxel_nm)
    mol, report = group_waters(pos, elem, box=None, max_oh=max_oh, angle_range=angle_range)
    return pos, elem, mol, report


def decode_boxes(grids: np.ndarray, coder: Encoding) -> tuple:
    """Decode (K, Z, Y, X) grids into per-box atom lists; returns (positions, elements, molecule, reports)."""
    positions, elements, molecule, reports = [], [], [], []
    for grid in grids:
        pos, elem, mol, report = decode_grouped(grid, coder)
        positions.append(pos)
        elements.append(elem)
        molecule.append(mol)
        reports.append(report.as_dict())
    return positions, elements, molecule, reports


def cut_box(grid, coder: Encoding, origin, shape, periodic: bool = False) -> tuple:
    """The box [origin, origin + shape) (voxels, z y x) of a sampled canvas, as atoms.

    Keeps the whole molecules whose O lies in the box and the orphan atoms inside it; positions
    nm relative to the box's corner. periodic: repair the box for periodic MD instead (orphans
    and clashing molecules removed). Returns (positions (N, 3), elements (N,), molecule (N,),
    box (3,) x y z nm, report dict: molecules, orphan_o, orphan_h, orphans [, repair]).
    """
    voxel = coder.voxel_nm
    pos, elem, mol, _ = decode_grouped(grid, coder)
    lower = np.asarray(origin, dtype=np.float64)[::-1] * voxel
    size = np.asarray(shape, dtype=np.float64)[::-1] * voxel
    pos = pos - lower
    inside = np.all((pos >= 0) & (pos < size), axis=1)
    waters = water_indices(elem, mol)
    waters = waters[inside[waters[:, 0]]] if len(waters) else waters
    orphans = np.flatnonzero((mol < 0) & inside)
    n_orphan_o = int(np.count_nonzero(elem[orphans] == "O"))
    report = {"molecules": len(waters), "orphan_o": n_orphan_o, "orphan_h": len(orphans) - n_orphan_o,
              "orphans": len(orphans)}
    if periodic:
        atoms = waters.reshape(-1)
        known = np.repeat(np.arange(len(waters)), 3) if coder.whole_molecules else None
        positions, elements, molecule, fixed = repair(pos[atoms], elem[atoms], size, voxel=coder.voxel_nm, molecule=known)
        return positions, elements, molecule, size, {**report, "repair": fixed.as_dict()}
    atoms = np.concatenate([waters.reshape(-1), orphans])
    molecule = np.concatenate([np.repeat(np.arange(len(waters)), 3), np.full(len(orphans), -1)]).astype(np.int32)
    return pos[atoms], elem[atoms], molecule, size, report


def sampler_function(name: str):
    """The sampling function (map_core.sampling.fast.sample_fast or reference.sample_reference) called `name`."""
    try:
        return SAMPLER_FUNCTIONS[name]
    except KeyError:
        raise MapSuiteError(f"unknown sampler {name!r}") from None


@dataclass(frozen=True)
class SamplingJob:
    """What to sample: `n_boxes` boxes of `shape` (Z, Y, X) voxels.

    temperature: softmax temperature (0: argmax); seed: box k draws from the stream (seed, k), so
    batching never changes a box; boundary: "outside", "empty", "wrap" or an integer array (n_boxes, Z + 2hz,
    Y + 2hy, X + 2hx) of classes around each box (map_core.sampling.canvas.make_canvas); batch: boxes
    sampled together (one kept piece, one task on a cluster); sampler: a key of SAMPLER_FUNCTIONS;
    device: where the sampler runs ("cpu", "cuda", "cuda:N"; the reference sampler runs on the CPU only).
    """

    shape: tuple
    n_boxes: int = 1
    temperature: float = 1.0
    seed: int = 0
    boundary: object = "outside"
    batch: int = 1
    sampler: str = "fast"
    device: str = "cpu"

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.n_boxes < 1 or self.batch < 1:
            raise MapSuiteError("n-boxes and batch must be >= 1")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise MapSuiteError(f"temperature must be finite and >= 0, got {self.temperature}")
        sampler_function(self.sampler)  # a known sampler

    def batches(self) -> list:
        """[(first box, count)] of the batches, in order."""
        return [(first, min(self.batch, self.n_boxes - first)) for first in range(0, self.n_boxes, self.batch)]

    def boundary_of(self, first: int, count: int):
        """The boundary of boxes [first, first + count): the same string, or their rows of the array."""
        return self.boundary if isinstance(self.boundary, str) else np.asarray(self.boundary)[first:first + count]

    def sample(self, model, first: int, count: int, progress: bool = False) -> tuple:
        """Boxes [first, first + count) as (grids (count, Z, Y, X) uint8 tensor, log_prob (count,) float64 tensor)."""
        extra = {"device": self.device} if self.device != "cpu" else {}  # only the fast sampler runs elsewhere
        return sampler_function(self.sampler)(model, self.shape, n_boxes=count, temperature=self.temperature,
                                              seed=self.seed, boundary=self.boundary_of(first, count),
                                              progress=progress, first_box=first, **extra)


def _check_device(device: str, sampler: str) -> str:
    if sampler != "fast" and not str(device).startswith("cpu"):
        raise MapSuiteError(f"the {sampler} sampler runs on the CPU only, not on {device}")
    return str(resolve_device(device))


def sample_piece(first: int, count: int, piece: Path, model, job: SamplingJob, progress) -> str:
    """Sample boxes [first, first + count) of a generation `job` (its shape: the canvas) and write them to
    `piece` (atomically). progress: the job's `JobBar`, or False."""
    if progress:
        progress.start_batch(first // job.batch + 1)
    grids, logp = job.sample(model, first, count, progress)
    if progress:
        progress.finish_batch()
    with atomic_path(piece) as tmp:
        np.savez(tmp, grids=grids.numpy(), log_prob=logp.numpy())
    return str(piece)


def generate_to_file(model, out_path, job: SamplingJob, *, burn_in: float = 1.0, repair_boxes: bool = False,
                     progress: bool = True, model_sha256: str | None = None, client=None) -> Frames:
    """Generate the boxes of `job` (``job.shape``: (Z, Y, X) voxels of each box) into the frames file `out_path`.

    burn_in: margin in receptive fields generated around each box and discarded (0: none);
    repair_boxes: periodic, MD-ready boxes (see the module docstring).
    `out_path` is checked before any work (map_core.files.check_output_path). Finished batches are kept under
    `out_path`.partial/, so an interrupted run resumes where it stopped; a run that fails before finishing a
    batch leaves no such folder.
    client: a `distributed.Client` (map_core.cluster): batches are sampled as tasks on its workers,
    which write them into `out_path`.partial/ on the shared file system. Each box draws from its own
    seed stream, so the file equals a single-process run's, whatever the workers.
    """
    out_path = check_output_path(out_path, "file")  # before any work: not a folder, not below a file, writable
    device = _check_device(job.device, job.sampler)
    voxel, coder = model.config.voxel_nm, model.config.coder()
    b = burn_in_voxels(model.config, burn_in)
    face = face_voxels(model.config) if b else 0
    wrap = isinstance(job.boundary, str) and job.boundary == "wrap"
    canvas = canvas_shape(job.shape, b, face, wrap)
    check_fits(canvas, job.batch, job.n_boxes, out_path)
    n_boxes = job.n_boxes
    record = {"shape": list(job.shape), "n_boxes": n_boxes, "temperature": job.temperature, "seed": job.seed,
              "boundary": job.boundary, "sampler": job.sampler, "model_sha256": model_sha256, "voxel_nm": voxel,
              "burn_in_fields": burn_in, "repair": repair_boxes, "encoding": coder.name}
    # finished batches are kept for a rerun; a refusal before the first leaves no OUT.partial/ behind
    with partial_folder(out_path, keep="boxes_*.npz") as (partial, created):
        job_file = partial / "job.json"
        if not created:
            if not job_file.is_file() or _json_or_none(job_file) != record:
                raise MapSuiteError(f"{partial} holds an unfinished run with other settings; remove it or rerun those "
                                    "settings", out_path)
        else:
            write_text_atomic(job_file, json.dumps(record, sort_keys=True))
        todo = [(first, count, partial / f"boxes_{first:06d}_{count:06d}.npz") for first, count in job.batches()]
        todo = [t for t in todo if not t[2].exists()]
        if progress and len(todo) < len(job.batches()):
            print(f"generate: resuming from {partial}: {n_boxes - sum(t[1] for t in todo)} of {n_boxes} boxes done",
                  file=sys.stderr, flush=True)
        done = None
        if client is not None and progress:
            done = lambda k, n: print(f"generate: {k} of {n} batches done on the cluster", flush=True)  # noqa: E731
        work = dataclasses.replace(job, shape=canvas, device=device)
        bar = JobBar(len(job.batches()), len(job.batches()) - len(todo)) if progress and client is None and todo else False
        try:
            map_tasks(client, sample_piece, todo, shared={"model": model, "job": work, "progress": bar}, done=done)
        finally:
            if bar:
                bar.close()
        pieces = sorted(partial.glob("boxes_*.npz"))
        grids = np.concatenate([np.load(p)["grids"] for p in pieces])
        logp = np.concatenate([np.load(p)["log_prob"] for p in pieces])
        region = {"origin_zyx": box_origin(b, wrap), "shape_zyx": record["shape"], "burn_in_voxels": b, "face_voxels": face}
        if b == 0 and not repair_boxes:
            positions, elements, molecule, reports = decode_boxes(grids, coder)
            nz, ny, nx = record["shape"]
            boxes = np.tile([nx * voxel, ny * voxel, nz * voxel], (n_boxes, 1))
        else:
            cut = [cut_box(g, coder, region["origin_zyx"], record["shape"], periodic=repair_boxes) for g in grids]
            positions, elements, molecule, boxes, reports = (list(x) for x in zip(*cut))
        meta = {**record, "method": "map", "source": "map-suite generate", "defects": reports, "region": region,
                "periodic": repair_boxes}
        frames = Frames.from_arrays(positions, elements, molecule, np.asarray(boxes).reshape(n_boxes, 3), meta,
                                    {"grids": grids, "log_prob": logp})
        save_frames(out_path, frames)
    return frames


def _json_or_none(path: Path):
    """The JSON content of `path`, or None where it is not readable JSON (a damaged job record)."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None

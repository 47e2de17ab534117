"""The voxel boxes the gate compares: generated ones, training windows, ideal-gas controls.

Every ensemble is a (K, Z, Y, X) uint8 class array of boxes with the same shape and voxel,
decoded and grouped into molecules by the same functions, and cropped to the same analysed
region, so generated boxes and training frames are treated identically (both pass through the
voxel encode/decode).

Box geometry (``BoxGeometry``, voxels, grid axes z, y, x): a generated box is the analysed
cube of ``n`` voxels plus a burned-in margin ``b`` on the faces the empty boundary touches
(low z, low and high y, low and high x: a voxel sees ``rows_ahead``/``cols`` voxels ahead in
earlier rows and planes) and a thin ``face`` layer on the high-z face, where molecules begun
in the last planes are never completed (seed 000: "the majority found at the boundaries").
Shape = (b + n + face, n + 2b, n + 2b); region = [b, b + n) on every axis.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import Frames
from map_core.atoms.molecules import make_whole
from map_core.cluster import map_tasks
from map_core.errors import MapSuiteError
from map_core.files import atomic_path
from map_core.model.pixelcnn import ModelConfig
from map_core.sampling.generate import SamplingJob, decode_boxes
from map_core.sampling.margins import burn_in_voxels, canvas_shape, face_voxels
from validation.gate.cache import load_verified_npz, lock, seal
from validation.md.boxes import ideal_molecule, random_rotation
from validation.observables.frame_tools import crop_frames

WATER_NUMBER_DENSITY = 33.4  # molecules per nm^3 at 1.0 g/cm3 (18.015 g/mol)


@dataclass(frozen=True)
class BoxGeometry:
    """voxel_nm; n: analysed cube edge, b: burn-in margin, face: top-z layer, all in voxels."""

    voxel_nm: float
    n: int
    b: int
    face: int

    @property
    def shape(self) -> tuple:
        """(Z, Y, X) voxels of one generated box."""
        return canvas_shape((self.n, self.n, self.n), self.b, self.face)

    @property
    def region_lower_nm(self) -> np.ndarray:
        """(3,) x, y, z lower corner of the analysed region, nm."""
        return np.full(3, self.b * self.voxel_nm)

    @property
    def region_upper_nm(self) -> np.ndarray:
        return np.full(3, (self.b + self.n) * self.voxel_nm)

    @property
    def box_nm(self) -> np.ndarray:
        """(3,) x, y, z edge lengths of a generated box, nm."""
        z, y, x = self.shape
        return np.array([x, y, z], dtype=np.float64) * self.voxel_nm

    def as_dict(self) -> dict:
        return {"voxel_nm": self.voxel_nm, "region_voxels": self.n, "burn_in_voxels": self.b,
                "face_voxels": self.face, "shape_zyx": list(self.shape),
                "region_nm": self.n * self.voxel_nm, "burn_in_nm": self.b * self.voxel_nm}


def box_geometry(config, sampling: dict) -> BoxGeometry:
    """Geometry for a model `config` (map_core ModelConfig) and a profile's [sampling] section.

    The burn-in is the larger of burn_in_nm and burn_in_fields receptive-field depths
    (planes_back), so a model that sees farther gets a longer burn-in.
    """
    voxel = config.voxel_nm
    n = int(round(sampling["region_nm"] / voxel))
    b = burn_in_voxels(config, sampling["burn_in_fields"], sampling["burn_in_nm"])
    face = face_voxels(config)
    if n < 4:
        raise MapSuiteError(f"region_nm = {sampling['region_nm']} is under 4 voxels of {voxel} nm")
    return BoxGeometry(voxel_nm=voxel, n=n, b=b, face=face)


# The geometry of the calibration windows: margins of an 8-layer model's burn-in around the
# analysed cube (validation.gate.calibrate), so that given boxes are cut exactly as calibrated.
CALIBRATION_LAYERS = 8


def judging_geometry(voxel_nm: float, encoding: str, sampling: dict):
    """The calibration's window geometry (validation.gate.boxes.BoxGeometry) at `voxel_nm`."""
    config = ModelConfig(layers=CALIBRATION_LAYERS, filters=16, voxel_nm=voxel_nm, encoding=encoding,
                         n_classes=Encoding(encoding, voxel_nm).n_classes)
    return box_geometry(config, sampling)


# --- ensembles -------------------------------------------------------------------------------

def sample_boxes(model, job: SamplingJob, cache_dir=None, progress: bool = False, log=None, client=None) -> np.ndarray:
    """(job.n_boxes, Z, Y, X) uint8 boxes of a map_core `SamplingJob` (the gate's: the fast exact sampler).

    job.boundary: 'empty', 'outside' or an integer array (n_boxes, Z + 2hz, ...) of classes around
    each box. With `cache_dir`, every finished batch is kept there (``boxes_FIRST_COUNT.npz``)
    and reused, so an interrupted run resumes; the caller makes `cache_dir` unique to the
    model and the job. log: optional callable(str) told about each batch sampled.
    client: a `distributed.Client`: the missing batches are sampled as tasks on its workers, which
    write them into `cache_dir` (a shared file system; required then); per-box seed streams keep
    the boxes those of a single-process run. job.device: where the sampler runs (the boxes are the same).
    """
    if client is not None and cache_dir is None:
        raise ValueError("sampling on a Dask cluster needs a cache_dir that its workers write into")
    with lock(cache_dir) if cache_dir else contextlib.nullcontext():
        return _sample_boxes(model, job, cache_dir, progress, log, client)


def _sample_boxes(model, job: SamplingJob, cache_dir, progress, log, client) -> np.ndarray:
    pieces, todo = {}, []
    for first, count in job.batches():
        path = Path(cache_dir) / f"boxes_{first:06d}_{count:06d}.npz" if cache_dir else None
        kept = load_verified_npz(path) if path is not None else None
        if kept is not None and "grids" in kept:
            pieces[first] = kept["grids"]
            continue
        todo.append((first, count, path))
    if todo and log is not None:
        kind = job.boundary if isinstance(job.boundary, str) else "training voxels"
        where = "" if client is None else f" as {len(todo)} Dask tasks"
        log(f"sampling {sum(t[1] for t in todo)} of {job.n_boxes} boxes{where}, {job.shape} voxels, T = {job.temperature}, "
            f"boundary: {kind}")
    done = None if log is None else lambda k, n: log(f"sampled batch {k} of {n}")  # noqa: E731
    shared = {"model": model, "job": job, "progress": progress and client is None}
    for (first, *_), grids in zip(todo, map_tasks(client, sample_batch, todo, shared=shared, done=done)):
        pieces[first] = grids
    return np.concatenate([pieces[first] for first in sorted(pieces)])


def sample_batch(first: int, count: int, path, model, job: SamplingJob, progress: bool = False) -> np.ndarray:
    """Boxes [first, first + count) of a `sample_boxes` job, (count, Z, Y, X) uint8; kept (sealed) at `path` if given."""
    grids, _ = job.sample(model, first, count, progress)
    grids = grids.numpy().astype(np.uint8)
    if path is not None:
        with atomic_path(path) as tmp:
            np.savez(tmp, grids=grids)
        seal(path)
    return grids


def is_periodic(frames: Frames) -> bool:
    """Whether `frames` are periodic boxes (MD frames, repaired boxes) rather than open ones
    (``meta["periodic"] = False``: generated boxes, decoded class grids)."""
    return frames.meta.get("periodic", True) is not False


def window_origins(frames: Frames, indices, size_nm, n: int, rng: np.random.Generator, region=None) -> list:
    """[(frame index, origin (3,) nm)] of `n` windows of edges `size_nm` (3,) x, y, z.

    Frames are taken from `indices` in a random order, cycling. Periodic frames: the origin is
    uniform in the box (a window may exceed the box: periodic images fill it). Open frames:
    `region` = (lower (3,) nm, edge nm) of the analysed cube inside a window, which is placed
    uniformly where it lies inside the box (the window's margins may reach past the box's
    faces, where there are no atoms); a box smaller than the cube is refused.
    """
    indices = list(indices)
    if not indices:
        raise MapSuiteError("no frames to cut windows from")
    periodic = is_periodic(frames)
    if not periodic:
        if region is None:
            raise MapSuiteError("open boxes need the analysed region to place windows in")
        small = np.flatnonzero(np.min(np.asarray(frames.box)[indices], axis=1) < region[1] - 1e-9)
        if len(small):
            raise MapSuiteError(f"open box {indices[small[0]]} is {np.asarray(frames.box)[indices[small[0]]].round(3).tolist()} "
                                f"nm, smaller than the {region[1]:g} nm region the gate analyses")
    order = rng.permutation(indices)
    out = []
    for k in range(n):
        f = int(order[k % len(order)])
        box = np.asarray(frames.box[f], dtype=np.float64)
        u = rng.uniform(0.0, 1.0, 3)
        origin = u * box if periodic else u * (box - region[1]) - np.asarray(region[0], dtype=np.float64)
        out.append((f, origin))
    return out


def window_atoms(frames: Frames, f: int, origin, size_nm, whole_molecules: bool) -> tuple:
    """(positions (N, 3) nm relative to `origin`, elements (N,), molecule ids (N,)) of frame `f`
    around the window [origin, origin + size_nm): every periodic image of every atom of a
    periodic frame that may fall in it (molecules made whole around their O first when
    `whole_molecules`), or the atoms of an open frame. Atoms outside are not yet removed."""
    box = np.asarray(frames.box[f], dtype=np.float64)
    mol = np.asarray(frames.molecule[f])
    elem = np.asarray(frames.elements[f])
    if not is_periodic(frames):
        return np.asarray(frames.positions[f], dtype=np.float64) - origin, elem, mol
    if whole_molecules:  # molecules stay whole around their O, which decides where they are
        pos = make_whole(frames.positions[f], frames.elements[f], mol, box)
    else:
        pos = np.mod(np.asarray(frames.positions[f], dtype=np.float64), box)
    reach = np.ceil((origin + np.asarray(size_nm)) / box).astype(int)
    shifts = np.stack(np.meshgrid(*[np.arange(r) for r in reach], indexing="ij"), -1).reshape(-1, 3) * box
    images = (pos[None, :, :] + shifts[:, None, :]).reshape(-1, 3) - origin
    span = int(mol.max()) + 1 if len(mol) else 0
    mols = np.where(mol >= 0, mol + span * np.arange(len(shifts))[:, None], -1).reshape(-1)
    return images, np.tile(elem, len(shifts)), mols


IMAGE_ATOM_BYTES = 96  # window_atoms, per atom image: positions and their shifted copy (2 x 24), element, id, masks


def window_images_bytes(frames: Frames, size_nm) -> float:
    """Bytes of the largest `window_atoms` result for windows of `size_nm` ((3,) nm) of periodic `frames`:
    every image of every atom that may fall in a window (ceil(size / box) + 1 images per axis)."""
    box = np.asarray(frames.box, dtype=np.float64)
    images = np.prod(np.ceil(np.asarray(size_nm, dtype=np.float64) / box) + 1, axis=1)
    return float(np.max(images * frames.counts)) * IMAGE_ATOM_BYTES


def window_grids(frames: Frames, indices, shape, coder: Encoding, n: int, rng: np.random.Generator,
                 region=None) -> np.ndarray:
    """(n, Z, Y, X) uint8 voxel windows of frames, encoded as open boxes.

    Windows are placed by `window_origins` (periodic frames: anywhere, with periodic images;
    open frames: the analysed `region` inside the box) and their atoms encoded with `coder`
    and no wrapping, like a generated box. With fragment classes, a molecule is in the window
    when its O is, its hydrogens wherever they lie.
    """
    size = np.array(shape[::-1], dtype=np.float64) * coder.voxel_nm  # x, y, z
    out = np.zeros((n, *shape), dtype=np.uint8)
    for k, (f, origin) in enumerate(window_origins(frames, indices, size, n, rng, region)):
        pos, elem, mols = window_atoms(frames, f, origin, size, coder.whole_molecules)
        whole = coder.whole_molecules and len(mols) and mols.max() >= 0
        out[k], _ = coder.encode(pos, elem, size, periodic=False, clip=True, molecule=mols if whole else None)
    return out


def window_frames(frames: Frames, indices, size_nm, n: int, rng: np.random.Generator, region=None) -> Frames:
    """Open boxes (Frames, periodic=False) of the atoms of `n` windows, positions as they are
    (no voxels): molecules whose O lies in the window, whole; atoms of no molecule that lie in
    it. The continuous counterpart of ``decode_grids(window_grids(...))``, with the same
    window placement for the same `rng`."""
    size = np.asarray(size_nm, dtype=np.float64)
    positions, elements, molecules = [], [], []
    for f, origin in window_origins(frames, indices, size, n, rng, region):
        pos, elem, mols = window_atoms(frames, f, origin, size, True)
        inside = np.all((pos >= 0) & (pos < size), axis=1)
        keep_mol = np.unique(mols[inside & (elem == "O") & (mols >= 0)])
        keep = np.isin(mols, keep_mol) | (inside & (mols < 0))
        _, renumbered = np.unique(mols[keep], return_inverse=True)
        mol = np.where(mols[keep] >= 0, renumbered.astype(np.int32) - int(np.any(mols[keep] < 0)), -1)
        positions.append(pos[keep])
        elements.append(elem[keep])
        molecules.append(mol.astype(np.int32))
    return Frames.from_arrays(positions, elements, molecules, np.tile(size, (len(positions), 1)),
                              {"periodic": False, "source": "windows, continuous positions"})


def window_ensemble(frames, indices, geometry, coder: Encoding | None, n: int, rng):
    """Frames (open boxes) of `n` windows of `geometry`'s shape cut from `frames`: voxelised by
    `coder` and decoded, or continuous positions with `coder` None."""
    region = (geometry.region_lower_nm, geometry.n * geometry.voxel_nm)
    if coder is None:
        return window_frames(frames, indices, geometry.box_nm, n, rng, region)
    return decode_grids(window_grids(frames, indices, geometry.shape, coder, n, rng, region), coder)


def ideal_gas_grids(shape, coder: Encoding, n: int, seed: int, number_density: float = WATER_NUMBER_DENSITY) -> np.ndarray:
    """(n, Z, Y, X) uint8 boxes of an ideal gas of rigid water molecules (negative control).

    Oxygens uniform in the box at `number_density` molecules/nm^3 (liquid water by default),
    orientations uniform, q-TIP4P/F equilibrium geometry, overlaps allowed; atoms beyond a face
    are dropped and a voxel hit twice keeps its first atom.
    """
    rng = np.random.default_rng([seed, 7])
    size = np.array(shape[::-1], dtype=np.float64) * coder.voxel_nm
    template = ideal_molecule()
    out = np.zeros((n, *shape), dtype=np.uint8)
    for k in range(n):
        m = rng.poisson(number_density * np.prod(size))
        oxy = rng.uniform(0.0, 1.0, (m, 3)) * size
        mols = np.stack([template @ random_rotation(rng).T for _ in range(m)]) + oxy[:, None, :] if m else np.zeros((0, 3, 3))
        pos = mols.reshape(-1, 3)
        elem = np.tile(["O", "H", "H"], m)
        out[k], _ = coder.encode(pos, elem, size, periodic=False, clip=True, molecule=np.repeat(np.arange(m), 3))
    return out


def boundary_windows(frames: Frames, indices, shape, halo, coder: Encoding, n: int, rng) -> np.ndarray:
    """(n, Z + 2hz, Y + 2hy, X + 2hx) training windows to seed the sampler's boundary with."""
    hz, hy, hx = halo
    big = (shape[0] + 2 * hz, shape[1] + 2 * hy, shape[2] + 2 * hx)
    return window_grids(frames, indices, big, coder, n, rng)


# --- decoding ------------------------------------------------------------------------------

def decode_grids(grids: np.ndarray, coder: Encoding) -> Frames:
    """Open boxes (periodic=False) of decoded atoms with molecule ids from map_core's grouping."""
    positions, elements, molecule, reports = decode_boxes(np.asarray(grids), coder)
    z, y, x = grids.shape[1:]
    box = np.tile(np.array([x, y, z], dtype=np.float64) * coder.voxel_nm, (len(grids), 1))
    return Frames.from_arrays(positions, elements, molecule, box, {"defects": reports})


def region_frames(boxes: Frames, geometry: BoxGeometry) -> Frames:
    """The analysed region of every box, shifted to start at 0 (to be analysed with periodic=False).

    Molecule ids come from grouping the whole box, so a molecule cut by the region keeps its id
    (and drops out of per-molecule observables) instead of turning into orphans.
    """
    return crop_frames(boxes, geometry.region_lower_nm, geometry.region_upper_nm)

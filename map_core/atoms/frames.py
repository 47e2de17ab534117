"""The frames file: atoms of one or more boxes, as written by MD and by the sampler.

On disk (`.npz`, read with ``allow_pickle=False``) every writer uses the *ragged* layout:

=========== =============== ==================================================
key         shape, dtype    meaning
=========== =============== ==================================================
positions   (sum N, 3) f4   atom positions, nm, frame after frame
elements    (sum N,) str    element symbols ('O', 'H')
molecule    (sum N,) i4     molecule index within its frame (-1: none, e.g. an orphan)
counts      (F,) i8         atoms per frame
box         (F, 3) f8       orthorhombic box edge lengths, nm
meta        () str          JSON: method, temperature, beads, seed, source, ...
=========== =============== ==================================================

Readers also accept the *fixed* layout of trajectories with one composition:
positions (F, N, 3), elements (N,), molecule (N,), no counts. Any other array in the file
(for example the raw voxel ``grids`` of generated boxes) is kept in ``Frames.extra``.

Values are checked on every read and write (`check_frames`, in ``map_core.atoms.frames_check``):
dtypes and shapes, counts that add up exactly, finite positions near their box, element symbols
(case exact), molecule ids that can be one water's, box edges from 0.001 to 1000 nm, meta a JSON
object with typed known keys. Any defect is one MapSuiteError line naming the file.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from map_core.atoms.frames_check import check_arrays, check_frames_values, parse_meta
from map_core.errors import MapSuiteError
from map_core.files import atomic_path

REQUIRED = ("positions", "elements", "box")


@dataclass
class Frames:
    """Atoms of F boxes. Lists hold one array per frame; lengths in nm.

    positions[f]: (N_f, 3) float32; elements[f]: (N_f,) str; molecule[f]: (N_f,) int32;
    box: (F, 3) float64 edge lengths; meta: JSON-serialisable dict; extra: other arrays.
    """

    positions: list
    elements: list
    molecule: list
    box: np.ndarray
    meta: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.positions)

    @property
    def counts(self) -> np.ndarray:
        """(F,) atoms per frame."""
        return np.array([len(p) for p in self.positions], dtype=np.int64)

    @classmethod
    def from_arrays(cls, positions, elements, molecule=None, box=None, meta=None, extra=None):
        """Build from per-frame lists, or from fixed-layout arrays (F, N, 3) with (N,) elements."""
        if isinstance(positions, np.ndarray) and positions.ndim == 3:
            n_frames = positions.shape[0]
            elements = [np.asarray(elements)] * n_frames
            molecule = [np.asarray(molecule if molecule is not None else -np.ones(positions.shape[1]))] * n_frames
            positions = list(positions)
        if molecule is None:
            molecule = [-np.ones(len(p), dtype=np.int32) for p in positions]
        with np.errstate(over="ignore", invalid="ignore"):  # a value past float32 becomes inf, which check_frames refuses
            return cls(
                positions=[np.asarray(p, dtype=np.float32).reshape(-1, 3) for p in positions],
                elements=[np.asarray(e).astype("<U2") for e in elements],
                molecule=[np.asarray(m, dtype=np.int32) for m in molecule],
                box=np.asarray(box, dtype=np.float64).reshape(-1, 3),
                meta=dict(meta) if isinstance(meta, dict) else ({} if meta is None else meta),  # not a dict: refused by check_frames
                extra=dict(extra or {}),
            )

    def select(self, indices) -> "Frames":
        """A new Frames holding the frames at `indices` (extra arrays are dropped)."""
        idx = list(indices)
        return Frames(
            [self.positions[i] for i in idx],
            [self.elements[i] for i in idx],
            [self.molecule[i] for i in idx],
            self.box[idx],
            dict(self.meta),
        )


def save_frames(path, frames: Frames) -> None:
    """Write `frames` to `path` atomically in the ragged layout."""
    check_frames(frames, path, allow_empty_frames=True)
    arrays = dict(
        positions=np.concatenate(frames.positions).astype(np.float32) if len(frames) else np.zeros((0, 3), np.float32),
        elements=np.concatenate(frames.elements).astype("<U2") if len(frames) else np.zeros(0, "<U2"),
        molecule=np.concatenate(frames.molecule).astype(np.int32) if len(frames) else np.zeros(0, np.int32),
        counts=frames.counts,
        box=np.asarray(frames.box, dtype=np.float64),
        meta=np.array(json.dumps(frames.meta, sort_keys=True)),
    )
    for key, value in frames.extra.items():
        if key in arrays:
            raise MapSuiteError(f"extra array name {key!r} clashes with a frames key", path)
        arrays[key] = np.asarray(value)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_frames(path, allow_empty_frames: bool = False) -> Frames:
    """Read a frames file in either layout; raise MapSuiteError naming the file on any defect.

    Any bytes: whatever numpy's readers raise on a damaged file (zlib, zip, format errors) ends as
    one MapSuiteError naming the file."""
    path = Path(path)
    if not path.exists():
        raise MapSuiteError("no such file", path)
    try:
        return _load_frames(path, allow_empty_frames)
    except MapSuiteError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file may fail anywhere in numpy's readers
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise MapSuiteError(f"not a readable frames .npz file ({exc.__class__.__name__}: {first})", path) from None


def _load_frames(path: Path, allow_empty_frames: bool) -> Frames:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise MapSuiteError(f"not a readable frames .npz file ({exc.__class__.__name__}: {exc})", path) from None
    missing = [key for key in REQUIRED if key not in arrays]
    if missing:
        raise MapSuiteError(f"not a frames file: missing arrays {', '.join(missing)}", path)
    meta = parse_meta(arrays.pop("meta", None), path)
    read = {key: arrays.pop(key) for key in ("positions", "elements", "molecule", "box", "counts") if key in arrays}
    counts = check_arrays(read, path)  # dtypes, shapes and counts, before any conversion could hide a defect
    positions, elements, molecule = read["positions"], read["elements"], read.get("molecule")
    box = read["box"].reshape(-1, 3)
    if positions.ndim == 3:  # fixed layout
        frames = Frames.from_arrays(positions, elements, molecule, box, meta, arrays)
    else:  # ragged layout
        if molecule is None:
            molecule = -np.ones(len(positions), np.int32)
        splits = np.cumsum(counts)[:-1]
        frames = Frames.from_arrays(np.split(positions, splits), np.split(elements, splits), np.split(molecule, splits),
                                    box, meta, arrays)
    check_frames(frames, path, allow_empty_frames)
    return frames


def check_frames(frames: Frames, path=None, allow_empty_frames: bool = False) -> None:
    """Raise MapSuiteError (one line naming `path`) unless every field of `frames` and their relations
    hold values a frames file may hold (map_core.atoms.frames_check): the check of every reader and writer."""
    check_frames_values(frames, path, allow_empty_frames)

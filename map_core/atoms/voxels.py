"""Voxel encoding of atom boxes into integer class grids, and decoding back to atoms.

Grids are indexed [z, y, x] (raster order: planes, then rows, then columns) with
x = position[..., 0], y = position[..., 1], z = position[..., 2]. Class ids: 0 empty, 1 O, 2 H.
A voxel of side `voxel` nm covers [i*voxel, (i+1)*voxel) on each axis; decoding puts the atom
at the voxel centre, so the round trip moves an atom by at most sqrt(3)/2 * voxel.
`AtomClasses` is this encoding behind the `Encoding` interface (``"atoms"``).

Memory: a grid holds one byte per voxel, (L / voxel)^3 of them per box; `check_voxel_budget`
refuses, before any grid is allocated, boxes whose grids would not fit in the memory available
(readers call it with the file's path; `place` keeps a last guard for callers that do not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from map_core.atoms.encoding_base import Encoding
from map_core.errors import MapSuiteError
from map_core.files import available_memory_bytes

DEFAULT_VOXEL_NM = 0.025  # seed 000: 0.25 Å voxels (80 voxels x 0.25 Å = 20 Å box)
CLASSES = ("empty", "O", "H")
ELEMENT_CLASS = {"O": 1, "H": 2}
CLASS_ELEMENT = {1: "O", 2: "H"}
N_CLASSES = len(CLASSES)
BYTES_PER_VOXEL = 1  # class grids are uint8
GUARDED_GRID_VOXELS = 1 << 27  # `place` asks the system for free memory only for grids past 128 MiB


@dataclass
class EncodeReport:
    """What encoding lost: atoms (molecules, for fragment classes) sharing a voxel with an earlier
    one (kept: the first), and atoms in no whole molecule (fragment classes only)."""

    collisions: int
    atoms: int
    dropped: int = 0


def grid_shape(box_nm, voxel: float) -> tuple:
    """(nz, ny, nx) voxels covering an orthorhombic box (x, y, z edge lengths in nm).

    The last layer on an axis is partial when the box is not a multiple of `voxel`;
    `full_voxels` gives the count of complete layers, which crops should stay inside.
    """
    n = np.ceil(np.asarray(box_nm, dtype=np.float64) / voxel - 1e-9).astype(int)
    return (int(n[2]), int(n[1]), int(n[0]))


def full_voxels(box_nm, voxel: float) -> tuple:
    """(nz, ny, nx) complete voxel layers inside the box (no partial last layer)."""
    n = np.floor(np.asarray(box_nm, dtype=np.float64) / voxel + 1e-9).astype(int)
    return (int(n[2]), int(n[1]), int(n[0]))


def check_memory_budget(need_bytes: float, what: str, path=None, budget: int | None = None) -> None:
    """Refuse work that needs `need_bytes` of memory when `budget` bytes (default: the memory the system
    has available now; no check where it does not say) are fewer; `what` says what needs it."""
    budget = available_memory_bytes() if budget is None else budget
    if budget is not None and not need_bytes <= budget:  # NaN needs are refused too
        raise MapSuiteError(f"{what} would need {_gib(need_bytes)} of memory; {_gib(budget)} is available", path)


def check_voxel_budget(boxes_nm, voxel: float, path=None, bytes_per_voxel: int = BYTES_PER_VOXEL,
                       budget: int | None = None) -> float:
    """Refuse, before any allocation, the voxel grids of `boxes_nm` ((F, 3) or (3,) edge lengths, nm) at
    `voxel` nm when they need more memory than `budget` (bytes; default: the memory available now).

    Counts in floats (a box of 1e30 nm is 1e93 voxels, past any integer type): the grids kept, one
    per box, and one more while a box is encoded. Returns the bytes needed."""
    if not (np.isfinite(voxel) and voxel > 0):
        raise MapSuiteError(f"voxel size must be a positive number of nm, not {voxel}", path)
    boxes = np.asarray(boxes_nm, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(boxes) & (boxes > 0)):
        raise MapSuiteError("box lengths must be finite and positive", path)
    with np.errstate(over="ignore"):  # overflow to inf is refused as too big
        per_box = np.prod(np.ceil(boxes / voxel - 1e-9), axis=1) * float(bytes_per_voxel)
    if len(per_box) == 0:
        return 0.0
    need = float(per_box.sum() + per_box.max())
    largest = boxes[int(np.argmax(per_box))]
    check_memory_budget(need, f"voxel grids of {len(boxes)} box(es) of up to {' x '.join(f'{x:.4g}' for x in largest)} nm "
                        f"at {voxel:g} nm voxels ({per_box.max() / bytes_per_voxel:.3g} voxels each)", path, budget)
    return need


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB" if math.isfinite(n_bytes) else "unbounded"


def encode(positions, elements, box_nm, voxel: float = DEFAULT_VOXEL_NM, periodic: bool = True):
    """Encode one box of atoms into a class grid.

    positions: (N, 3) nm; elements: (N,) 'O'/'H'; box_nm: (3,) edge lengths nm.
    periodic: wrap positions into [0, L) first; otherwise atoms outside the box are an error.
    Returns (grid (nz, ny, nx) uint8, EncodeReport).
    """
    if voxel <= 0:
        raise MapSuiteError(f"voxel size must be positive, got {voxel}")
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    box = np.asarray(box_nm, dtype=np.float64)
    if not np.all(np.isfinite(positions)):
        raise MapSuiteError("positions contain NaN or inf")
    elements = np.asarray(elements)
    unknown = set(np.unique(elements)) - set(ELEMENT_CLASS)
    if unknown:
        raise MapSuiteError(f"elements {sorted(unknown)} have no voxel class (known: {sorted(ELEMENT_CLASS)})")
    shape = grid_shape(box, voxel)
    if periodic:
        positions = np.mod(positions, box)
    elif np.any(positions < 0) or np.any(positions >= box):
        raise MapSuiteError("atoms outside a non-periodic box")
    classes = np.array([ELEMENT_CLASS[e] for e in elements], dtype=np.uint8)
    grid, collisions = place(positions, classes, shape, voxel)
    return grid, EncodeReport(collisions=collisions, atoms=len(positions))


def place(positions, classes, shape, voxel: float) -> tuple:
    """(grid `shape` uint8, collisions): `classes` (N,) at the voxels of `positions` (N, 3) nm, all
    inside [0, shape * voxel); where several share a voxel the first is kept, the rest counted."""
    n_voxels = math.prod(int(s) for s in shape)  # Python ints: no overflow
    if n_voxels > GUARDED_GRID_VOXELS:  # the last guard, for callers that did not check the budget with their file
        check_memory_budget(n_voxels * BYTES_PER_VOXEL, f"a voxel grid of {' x '.join(map(str, shape))} voxels")
    grid = np.zeros(n_voxels, dtype=np.uint8)
    if len(positions) == 0:
        return grid.reshape(shape), 0
    idx = np.floor(np.asarray(positions) / voxel).astype(np.int64)
    idx = np.minimum(idx, np.array(shape[::-1]) - 1)  # float round-off at x == L - tiny
    flat = np.ravel_multi_index((idx[:, 2], idx[:, 1], idx[:, 0]), shape)
    _, first = np.unique(flat, return_index=True)
    grid[flat[first]] = np.asarray(classes)[first]
    return grid.reshape(shape), len(flat) - len(first)


def occupied_centres(grid, voxel: float) -> tuple:
    """(centres (N, 3) float64 nm, classes (N,)) of the occupied voxels of a class grid, in raster order."""
    grid = np.asarray(grid)
    z, y, x = np.nonzero(grid)
    return (np.stack([x, y, z], axis=1).astype(np.float64) + 0.5) * voxel, grid[z, y, x]


def decode(grid, voxel: float = DEFAULT_VOXEL_NM):
    """Atoms at the centres of the occupied voxels of a class grid.

    grid: (nz, ny, nx) ints. Returns (positions (N, 3) float64 nm, elements (N,) str),
    atoms in raster order.
    """
    positions, classes = occupied_centres(grid, voxel)
    elements = np.array([CLASS_ELEMENT[int(c)] for c in classes], dtype="<U2")
    return positions, elements


class AtomClasses(Encoding):
    """Atom classes (``"atoms"``): 0 empty, 1 O, 2 H, one-hot network inputs; a decoded box is atoms,
    grouped into molecules afterwards. Models of other class counts (the toy lattices' 2) use it too."""

    name = "atoms"
    label = "atom"
    summary = "empty, O, H"
    whole_molecules = False
    rigid_molecules = False

    @property
    def n_classes(self) -> int:
        return N_CLASSES

    def fits(self, n_classes: int) -> bool:
        return True  # one-hot inputs of any number of classes

    def describe_classes(self, n_classes: int) -> str:
        return f"{n_classes} atom classes (empty, O, H)"

    def input_features(self) -> None:
        return None

    def encode(self, positions, elements, box_nm, periodic: bool = True, clip: bool = False, molecule=None):
        if clip and not periodic:
            pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
            inside = np.all((pos >= 0) & (pos < np.asarray(box_nm, dtype=np.float64)), axis=1)
            positions, elements = pos[inside], np.asarray(elements)[inside]
        return encode(positions, elements, box_nm, self.voxel_nm, periodic)

    def decode(self, grid) -> tuple:
        return (*decode(grid, self.voxel_nm), None)

    def class_permutation(self, matrix) -> None:
        return None  # atom classes carry no orientation

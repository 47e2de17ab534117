"""Molecular fragment classes for water: one voxel class per oxygen orientation.

Seed 000 (Eq. 1) lets voxel classes be "atomistic or otherwise". Here a voxel is empty (class 0)
or holds the oxygen of a whole water molecule whose two hydrogens point along one of K
orientations (classes 1..K). A molecule is placed in one draw, so a generated box can never hold
a half molecule: no orphan atoms by construction.

Orientations. A water orientation is the pair of unit O->H vectors (a, b), unordered (the
molecule's C2 axis swaps its hydrogens). The codebook is built deterministically, by greedy
farthest-point selection from a super-Fibonacci spiral of rotations (Alexa, CVPR 2022), one
whole orbit of the 24 proper rotations of the cube at a time. It is therefore closed under those
rotations, so rotating a voxel grid by 90 degrees maps classes onto classes exactly
(`class_permutation`) and training can use the cube rotations as augmentation.

Geometry. Decoding puts the O at the voxel centre and the H atoms at `R_OH_NM` along the class's
directions, with the q-TIP4P/F equilibrium bond length and angle (Habershon, Markland and
Manolopoulos, J. Chem. Phys. 131, 024501 (2009): r_eq = 0.9419 Å, theta_eq = 107.4 degrees).
Encoding keeps each molecule's O voxel and the nearest orientation class of its two O-H
directions (minimising the summed squared distance of the unit vectors, over both H orders).

`WaterClasses` is this encoding behind the `Encoding` interface (``"water"``).
Positions nm, grids (Z, Y, X) with x = position[..., 0] (as map_core.atoms.voxels).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from map_core.atoms import voxels
from map_core.atoms.encoding_base import Encoding
from map_core.atoms.molecules import group_waters, water_indices
from map_core.atoms.neighbors import minimum_image
from map_core.errors import MapSuiteError

R_OH_NM = 0.09419
THETA_RAD = math.radians(107.4)
ORBITS = 10  # K = 24 * ORBITS = 240 orientations (classes fit uint8); rms H-direction error 12.9 degrees
_CANDIDATES = 6000


def _super_fibonacci_quaternions(n: int) -> np.ndarray:
    """(n, 4) unit quaternions (w, x, y, z) spread evenly over SO(3) (Alexa 2022, Algorithm 1)."""
    phi, psi = math.sqrt(2.0), 1.533751168755204288118041
    s = np.arange(n, dtype=np.float64) + 0.5
    r, big_r = np.sqrt(s / n), np.sqrt(1.0 - s / n)
    alpha, beta = 2.0 * np.pi * s / phi, 2.0 * np.pi * s / psi
    return np.stack([r * np.sin(alpha), r * np.cos(alpha), big_r * np.sin(beta), big_r * np.cos(beta)], axis=1)


def _quaternion_matrices(q: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotation matrices of (n, 4) unit quaternions (w, x, y, z)."""
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


@functools.lru_cache(maxsize=None)
def cube_rotations() -> np.ndarray:
    """(24, 3, 3) integer matrices of the proper rotations of the cube, identity first."""
    mats = []
    for perm in ((0, 1, 2), (1, 2, 0), (2, 0, 1), (1, 0, 2), (0, 2, 1), (2, 1, 0)):
        for signs in np.ndindex(2, 2, 2):
            m = np.zeros((3, 3), dtype=np.int64)
            m[np.arange(3), perm] = 1 - 2 * np.array(signs)
            if round(np.linalg.det(m)) == 1:
                mats.append(m)
    return np.array(mats)


def template_directions() -> np.ndarray:
    """(2, 3) unit O->H vectors of a molecule in its own frame: bisector +z, in the xz plane."""
    half = THETA_RAD / 2.0
    return np.array([[np.sin(half), 0.0, np.cos(half)], [-np.sin(half), 0.0, np.cos(half)]])


def pair_distance2(u: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """(n, K) squared distance between (n, 2, 3) direction pairs and (K, 2, 3) codebook pairs,
    the smaller over the two H orders."""
    same = -2.0 * (u[:, None, 0] * codebook[None, :, 0] + u[:, None, 1] * codebook[None, :, 1]).sum(-1)
    swap = -2.0 * (u[:, None, 0] * codebook[None, :, 1] + u[:, None, 1] * codebook[None, :, 0]).sum(-1)
    norms = (u ** 2).sum((1, 2))[:, None] + (codebook ** 2).sum((1, 2))[None, :]
    return norms + np.minimum(same, swap)


@functools.lru_cache(maxsize=None)
def codebook(orbits: int = ORBITS) -> np.ndarray:
    """(24 * orbits, 2, 3) unit O->H direction pairs, closed under `cube_rotations` (read-only)."""
    rots = cube_rotations().astype(np.float64)
    cand = _quaternion_matrices(_super_fibonacci_quaternions(_CANDIDATES)) @ template_directions().T  # (n, 3, 2)
    cand = cand.transpose(0, 2, 1)  # (n, 2, 3)
    # a candidate close to a symmetry axis would bring near-copies of itself in its orbit
    images = np.einsum("gij,npj->ngpi", rots[1:], cand)
    spread = np.min(((images - cand[:, None]) ** 2).sum((2, 3)), axis=1)
    spread = np.minimum(spread, np.min(((images - cand[:, None, ::-1]) ** 2).sum((2, 3)), axis=1))
    chosen = []
    nearest = np.full(len(cand), np.inf)
    pick = int(np.argmax(spread))
    for _ in range(orbits):
        orbit = np.einsum("gij,pj->gpi", rots, cand[pick])  # (24, 2, 3)
        chosen.append(orbit)
        nearest = np.minimum(nearest, pair_distance2(cand, orbit).min(1))
        pick = int(np.argmax(np.minimum(nearest, spread)))
    book = np.concatenate(chosen)
    book.setflags(write=False)
    return book


def n_classes(orbits: int = ORBITS) -> int:
    return 24 * orbits + 1


def nearest_class(directions: np.ndarray, orbits: int = ORBITS) -> np.ndarray:
    """(n,) classes 1..K of (n, 2, 3) O->H direction pairs (any lengths; they are normalised)."""
    u = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    book = codebook(orbits)
    out = np.empty(len(u), dtype=np.int64)
    for start in range(0, len(u), 4096):  # bounded (chunk, K) distance blocks
        out[start:start + 4096] = pair_distance2(u[start:start + 4096], book).argmin(1) + 1
    return out


def hydrogen_offsets(classes: np.ndarray, orbits: int = ORBITS) -> np.ndarray:
    """(n, 2, 3) nm O->H vectors of classes 1..K."""
    return codebook(orbits)[np.asarray(classes, dtype=np.int64) - 1] * R_OH_NM


@functools.lru_cache(maxsize=None)
def class_permutation(matrix_key: tuple, orbits: int = ORBITS) -> np.ndarray:
    """(K + 1,) class map of a rotation of space: class c of a molecule becomes perm[c] when the
    molecule is turned by the 3x3 integer matrix given row by row in `matrix_key`; 0 stays 0."""
    m = np.array(matrix_key, dtype=np.float64).reshape(3, 3)
    book = codebook(orbits)
    turned = np.einsum("ij,kpj->kpi", m, book)
    perm = np.concatenate([[0], nearest_class(turned, orbits)])
    if len(np.unique(perm)) != len(perm):
        raise ValueError("rotation is not a symmetry of the orientation codebook")
    perm.setflags(write=False)
    return perm


def input_features(orbits: int = ORBITS) -> np.ndarray:
    """(K + 1, 11) float32 network inputs per class: [empty, occupied, bisector (3), the symmetric
    tensor a a^T + b b^T of the H directions (6: xx yy zz xy xz yz)].

    Geometric features let the network share what it learns between neighbouring orientations;
    the all-zero vector stays free for "outside the sample". Invariant to swapping the hydrogens.
    """
    book = codebook(orbits)
    a, b = book[:, 0], book[:, 1]
    bis = (a + b) / np.linalg.norm(a + b, axis=1, keepdims=True)
    t = np.einsum("ki,kj->kij", a, a) + np.einsum("ki,kj->kij", b, b)
    sym = np.stack([t[:, 0, 0], t[:, 1, 1], t[:, 2, 2], t[:, 0, 1], t[:, 0, 2], t[:, 1, 2]], axis=1)
    occupied = np.concatenate([np.zeros((len(book), 1)), np.ones((len(book), 1)), bis, sym], axis=1)
    empty = np.zeros((1, occupied.shape[1]))
    empty[0, 0] = 1.0
    return np.concatenate([empty, occupied]).astype(np.float32)


class WaterClasses(Encoding):
    """Water fragment classes (``"water"``): 0 empty, 1..K an O with its two H in one of K orientations;
    the network sees `input_features`, and a decoded box is whole molecules only."""

    name = "water"
    label = "water fragment"
    summary = f"empty, O with one of {n_classes() - 1} H orientations: whole molecules only"
    whole_molecules = True
    rigid_molecules = True

    @property
    def n_classes(self) -> int:
        return n_classes()

    def describe_classes(self, n_classes: int) -> str:
        return f"{n_classes} fragment classes (empty, or an O with its two H in one of {n_classes - 1} orientations)"

    def input_features(self) -> np.ndarray:
        return input_features()

    def encode(self, positions, elements, box_nm, periodic: bool = True, clip: bool = False, molecule=None):
        return _encode_waters(positions, elements, box_nm, self.voxel_nm, periodic, clip, molecule)

    def decode(self, grid) -> tuple:
        oxygen, classes = voxels.occupied_centres(grid, self.voxel_nm)
        hydrogens = oxygen[:, None, :] + hydrogen_offsets(classes)
        positions = np.concatenate([oxygen[:, None, :], hydrogens], axis=1).reshape(-1, 3)
        elements = np.tile(np.array(["O", "H", "H"], dtype="<U2"), len(oxygen))
        return positions, elements, np.repeat(np.arange(len(oxygen), dtype=np.int32), 3)

    def orientations(self) -> np.ndarray:
        return codebook()

    def class_permutation(self, matrix) -> np.ndarray:
        return class_permutation(tuple(int(v) for v in np.asarray(matrix).ravel()))


def _encode_waters(positions, elements, box_nm, voxel: float, periodic: bool, clip: bool, molecule):
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    elements = np.asarray(elements)
    box = np.asarray(box_nm, dtype=np.float64)
    if not np.all(np.isfinite(positions)):
        raise MapSuiteError("positions contain NaN or inf")
    unknown = set(np.unique(elements)) - {"O", "H"}
    if unknown:
        raise MapSuiteError(f"elements {sorted(unknown)} have no water class (known: H, O)")
    if molecule is None:
        molecule, _ = group_waters(positions, elements, box if periodic else None)
    waters = water_indices(elements, molecule, strict=False)
    oxygen = positions[waters[:, 0]]
    bonds = positions[waters[:, 1:]] - oxygen[:, None, :]
    if periodic:
        bonds = minimum_image(bonds, box)
        oxygen = np.mod(oxygen, box)
    else:
        inside = np.all((oxygen >= 0) & (oxygen < box), axis=1)
        if not clip and not inside.all():
            raise MapSuiteError("atoms outside a non-periodic box")
        oxygen, bonds = oxygen[inside], bonds[inside]
    grid, collisions = voxels.place(oxygen, nearest_class(bonds), voxels.grid_shape(box, voxel), voxel)
    return grid, voxels.EncodeReport(collisions=collisions, atoms=len(positions), dropped=len(positions) - 3 * len(waters))

"""Stage 2 of the two-stage kind: how each molecule is turned, given every oxygen and the turns before it.

A molecule on voxel i (an oxygen placed by stage 1) takes one of the K orientation classes of its
encoding (``Encoding.orientations``: the two O->H directions of each class). Its logits are

    l_i(k) = c_k + sum_{j != i, |d_ij| <= reach} F(d_ij, k) + sum_{j < i, |d_ij| <= reach} G(d_ij, k, k_j)

- F is a non-causal convolution of the oxygen field: every oxygen j within `reach` of i, before or
  after it in raster order, adds a term that depends on where j sits relative to i and on how
  orientation k points its arms (two hydrogens, two lone pairs) at it;
- G is a causal convolution of the orientation field: only molecules j before i in raster order,
  whose orientation k_j is drawn already, add a term that depends also on how j points its own
  arms back at i (whether j already donates a hydrogen to i, or offers it a lone pair).

Both kernels are built from fixed geometric bases, so they are equivariant to rotations of the
molecule and the offset together (the cube rotations of training exactly, up to the codebook):
Gaussian radial functions of the O-O distance (nm) with a smooth cutoff at `reach`, times
Gaussian angular functions of the angle between an arm and the direction to the neighbour. The
learned weights are tables over (arm type, angle basis, radial basis) for F and over those and
the neighbour's (arm type, angle basis) for G; with zero weights every orientation is equally
likely (ln K nats), which is where training starts.

Evaluation is sparse: sums over the occupied voxels (pairs found by looking up each fixed neighbour
offset), which equals the dense convolution of the fields at those voxels (a submanifold
convolution), at about 1 in 240 voxels' cost. Every evaluator here calls `logits_at`, so training,
log-probabilities and both samplers see the same function.
Shapes: canvases (B, Z, Y, X); offsets (dz, dy, dx) voxels; directions x, y, z (x = grid axis 2).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

N_ANGLES = 12  # Gaussian angular bases over [0, pi]: 16 degrees apart, to resolve an arm aimed within ~13 degrees
N_RADII = 6  # Gaussian radial bases over the first shell (0.21-0.35 nm) and what sits closer
ARM_TYPES = 2  # hydrogen, lone pair
TETRAHEDRAL_HALF_RAD = math.acos(-1.0 / 3.0) / 2.0  # half the ideal lone-pair angle, 54.7 degrees
SITE_CHUNK = 4096  # query sites per logits block, to bound memory on whole canvases
PAIR_CHUNK = 512  # query sites per neighbour lookup ((512, M, 3) offsets), pairs per kernel block ((512, K, 24))


def arm_directions(orientations: np.ndarray) -> np.ndarray:
    """(K, 4, 3) unit arms of (K, 2, 3) O->H direction pairs: the two hydrogens, then the two ideal
    tetrahedral lone pairs (opposite the bisector, in the plane normal to the molecule's)."""
    h = orientations / np.linalg.norm(orientations, axis=-1, keepdims=True)
    bis = h[:, 0] + h[:, 1]
    bis /= np.linalg.norm(bis, axis=-1, keepdims=True)
    normal = np.cross(h[:, 0], h[:, 1])
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    c, s = math.cos(TETRAHEDRAL_HALF_RAD), math.sin(TETRAHEDRAL_HALF_RAD)
    lone = np.stack([-c * bis + s * normal, -c * bis - s * normal], axis=1)
    return np.concatenate([h, lone], axis=1)


def neighbour_offsets(reach_voxels: float) -> np.ndarray:
    """(M, 3) int64 offsets (dz, dy, dx), 0 < |d| < reach_voxels (the kernels' cutoff is 0 at the reach),
    in raster order."""
    r = int(math.ceil(reach_voxels))
    grid = np.stack(np.meshgrid(*(np.arange(-r, r + 1),) * 3, indexing="ij"), -1).reshape(-1, 3)
    d2 = (grid ** 2).sum(1)
    return grid[(d2 > 0) & (d2 < reach_voxels ** 2 - 1e-9)].astype(np.int64)


def reach_voxels(config) -> float:
    return config.reach_nm / config.voxel_nm


def reach_extent(config) -> int:
    """Largest |dz|, |dy| or |dx| of stage 2's offsets: how many planes, rows and columns it sees on each side."""
    offsets = neighbour_offsets(reach_voxels(config))
    return int(np.abs(offsets).max()) if len(offsets) else 0


class Lattice:
    """The oxygens of a batch of canvases and what stage 2 knows of them.

    occupied: (B, Z, Y, X) bool; classes: (B, Z, Y, X) int64 orientation classes 1..K where known
    (anything where not: never read before it is drawn, because only earlier molecules are read).
    `sites` (N, 4) (b, z, y, x) are the occupied voxels, box by box in raster order; `ids` maps a
    voxel to its row in `sites` (-1: empty or outside).
    """

    def __init__(self, occupied: torch.Tensor, classes: torch.Tensor):
        self.shape = tuple(occupied.shape)
        self.sites = occupied.nonzero()
        self.ids = torch.full(self.shape, -1, dtype=torch.int64, device=occupied.device)
        self.ids[tuple(self.sites.T)] = torch.arange(len(self.sites), device=occupied.device)
        self.classes = classes

    def raster_key(self, sites: torch.Tensor) -> torch.Tensor:
        _, nz, ny, nx = self.shape
        return ((sites[:, 0] * nz + sites[:, 1]) * ny + sites[:, 2]) * nx + sites[:, 3]


class Turner(nn.Module):
    """Stage-2 network of a two-stage model: orientation logits (K) at any voxel, given a `Lattice`.

    config: the model's ``ModelConfig`` (voxel_nm, reach_nm); orientations: (K, 2, 3) O->H unit
    directions of classes 1..K (the encoding's)."""

    def __init__(self, config, orientations: np.ndarray):
        super().__init__()
        voxel, reach = config.voxel_nm, config.reach_nm
        offsets = neighbour_offsets(reach / voxel)
        vec = offsets[:, ::-1] * voxel  # (M, 3) x, y, z nm
        dist = np.linalg.norm(vec, axis=1)
        unit = vec / dist[:, None]
        arms = arm_directions(np.asarray(orientations, dtype=np.float64))  # (K, 4, 3)
        angle = np.arccos(np.clip(np.einsum("kan,mn->mka", arms, unit), -1.0, 1.0))  # (M, K, 4)
        centres = np.linspace(0.0, math.pi, N_ANGLES)
        width = 0.6 * (centres[1] - centres[0])
        basis = np.exp(-0.5 * ((angle[..., None] - centres) / width) ** 2)  # (M, K, 4, N_ANGLES)
        by_type = np.stack([basis[:, :, :2].sum(2), basis[:, :, 2:].sum(2)], axis=2)  # (M, K, 2, N_ANGLES)
        radii = np.linspace(0.21, 0.35, N_RADII)
        cutoff = 0.5 * (np.cos(np.pi * np.minimum(dist / reach, 1.0)) + 1.0)
        radial = np.exp(-0.5 * ((dist[:, None] - radii) / 0.028) ** 2) * cutoff[:, None]  # (M, N_RADII)
        index = {tuple(o): m for m, o in enumerate(offsets.tolist())}
        reverse = np.array([index[tuple((-o).tolist())] for o in offsets])
        # fixed geometry, not learned and not saved: it follows from the config and the encoding
        self.register_buffer("offsets", torch.from_numpy(offsets), persistent=False)
        self.register_buffer("reverse", torch.from_numpy(reverse), persistent=False)
        self.register_buffer("arm_basis", torch.from_numpy(by_type.astype(np.float32)), persistent=False)
        self.register_buffer("radial", torch.from_numpy(radial.astype(np.float32)), persistent=False)
        k = len(orientations)
        self.field = nn.Parameter(torch.zeros(ARM_TYPES, N_ANGLES, N_RADII))
        self.pair = nn.Parameter(torch.zeros(ARM_TYPES, N_ANGLES, N_RADII, ARM_TYPES, N_ANGLES))
        self.bias = nn.Parameter(torch.zeros(k))

    @property
    def n_orientations(self) -> int:
        return self.bias.shape[0]

    def field_table(self) -> torch.Tensor:
        """(M, K) F(d_m, k): what an oxygen at offset m adds to orientation k's logit."""
        weights = torch.einsum("str,mr->mst", self.field, self.radial)
        return torch.einsum("mkst,mst->mk", self.arm_basis, weights)

    def pair_terms(self, m: torch.Tensor, neighbour_class: torch.Tensor) -> torch.Tensor:
        """(P, K) G(d_m, k, k_j) of P (offset index, neighbour class 1..K) pairs."""
        out = []
        for mc, nc in zip(m.split(PAIR_CHUNK), neighbour_class.split(PAIR_CHUNK)):  # (chunk, K, 2, N_ANGLES) at a time
            seen_from_j = self.arm_basis[self.reverse[mc], nc - 1]  # (P, 2, N_ANGLES): j's arms towards i
            weights = torch.einsum("pr,strqu->pstqu", self.radial[mc], self.pair)
            weights = torch.einsum("pstqu,pqu->pst", weights, seen_from_j)
            out.append(torch.einsum("pkst,pst->pk", self.arm_basis[mc], weights))
        return torch.cat(out) if out else self.bias.new_zeros((0, self.n_orientations))

    def pairs(self, lattice: Lattice, sites: torch.Tensor) -> tuple:
        """(site row, neighbour row in lattice.sites, offset index) of every oxygen within reach of each
        of (S, 4) `sites`, the site itself excluded."""
        _, nz, ny, nx = lattice.shape
        upper = torch.tensor([nz, ny, nx], device=sites.device)
        found = []
        for start in range(0, len(sites), PAIR_CHUNK):
            at = sites[start:start + PAIR_CHUNK, None, 1:] + self.offsets[None]  # (S, M, 3)
            s, m = ((at >= 0) & (at < upper)).all(-1).nonzero(as_tuple=True)
            z, y, x = at[s, m].unbind(-1)
            j = lattice.ids[sites[start + s, 0], z, y, x]
            keep = j >= 0
            found.append((start + s[keep], j[keep], m[keep]))
        if not found:
            empty = torch.zeros(0, dtype=torch.int64, device=sites.device)
            return empty, empty, empty
        return tuple(torch.cat(parts) for parts in zip(*found))

    def field_logits(self, n_sites: int, pairs: tuple, table: torch.Tensor) -> torch.Tensor:
        """(n_sites, K) c_k + the F sum over `pairs` (of `pairs()`): every oxygen within reach, before or after."""
        s, _, m = pairs
        return self.bias.expand(n_sites, -1).clone().index_add_(0, s, table[m])

    @staticmethod
    def earlier_pairs(lattice: Lattice, sites: torch.Tensor, pairs: tuple) -> tuple:
        """The `pairs` of `sites` whose neighbour comes before the site in raster order (the causal mask)."""
        s, j, m = pairs
        earlier = lattice.raster_key(lattice.sites[j]) < lattice.raster_key(sites[s])
        return s[earlier], j[earlier], m[earlier]

    def causal_logits(self, lattice: Lattice, sites: torch.Tensor, pairs: tuple) -> torch.Tensor:
        """(S, K) the G sum at (S, 4) `sites` over their `pairs`: the molecules before each site in raster order."""
        s, j, m = self.earlier_pairs(lattice, sites, pairs)
        neighbour = lattice.classes[tuple(lattice.sites[j].T)]
        return self.bias.new_zeros((len(sites), self.n_orientations)).index_add_(0, s, self.pair_terms(m, neighbour))

    def logits_at(self, lattice: Lattice, sites: torch.Tensor) -> torch.Tensor:
        """(S, K) orientation logits at (S, 4) `sites` (b, z, y, x), occupied or not: every oxygen within
        reach through F, and the orientations of the molecules before each site in raster order through G."""
        table, out = self.field_table(), []
        for chunk in sites.split(SITE_CHUNK):
            pairs = self.pairs(lattice, chunk)
            out.append(self.field_logits(len(chunk), pairs, table) + self.causal_logits(lattice, chunk, pairs))
        return torch.cat(out) if out else self.bias.new_zeros((0, self.n_orientations))

    def causal_edges(self, lattice: Lattice, pairs: tuple) -> tuple:
        """(from row j, to row i, offset index of j seen from i) of the `pairs` of all of lattice.sites with j
        before i in raster order: the edges along which a drawn orientation is pushed (fast sampler)."""
        i, j, m = self.earlier_pairs(lattice, lattice.sites, pairs)
        return j, i, m


def orientation_loss(turner: Turner, occupied: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy (nats) of the orientations of every molecule of (B, Z, Y, X) crops, each given
    all oxygens and the orientations before it (teacher forcing)."""
    lattice = Lattice(occupied, classes)
    logits = turner.logits_at(lattice, lattice.sites)
    target = classes[tuple(lattice.sites.T)] - 1
    return F.cross_entropy(logits, target, reduction="sum")

"""Intermolecular RDFs of open (non-periodic) boxes with an edge correction.

``validation.obs_rdf.compute_rdf(periodic=False)`` counts only reference atoms farther than
r_max from every face, which leaves few references in the small analysed regions of the
smoke and quick profiles. Here every atom of the region is a reference and the expected
count of each shell is reduced to the part of the shell inside the box (the isotropic edge
correction of B. D. Ripley, J. Appl. Prob. 13, 255 (1976)): for reference i and shell k,

    E[n_ik] = rho_b * V_k * f_i(r_k),

with rho_b = P_ab / (N_a V) (allowed pairs per reference over the volume, as in
obs_rdf), V_k the shell volume and f_i(r) the fraction of the sphere of radius r (bin centre)
around atom i that lies inside the box, estimated on ``N_DIRECTIONS`` Fibonacci-sphere points.
An uncorrelated (ideal-gas) box gives g = 1 at all r. Same-molecule pairs and self pairs are
left out. Lengths nm.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .obs_frames import as_frames, frame

N_DIRECTIONS = 256


def fibonacci_sphere(n: int = N_DIRECTIONS) -> np.ndarray:
    """(n, 3) unit vectors spread evenly over the sphere."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1.0 - 2.0 * i / n)
    theta = np.pi * (1.0 + 5.0 ** 0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def inside_fraction(points, box, radii, directions=None) -> np.ndarray:
    """(N, B) fraction of the sphere of radius radii[k] around points[i] inside [0, box)."""
    directions = fibonacci_sphere() if directions is None else directions
    points = np.asarray(points, dtype=np.float64)
    out = np.empty((len(points), len(radii)))
    for k, r in enumerate(radii):
        probe = points[:, None, :] + r * directions[None, :, :]
        out[:, k] = np.all((probe >= 0) & (probe < box), axis=2).mean(axis=1)
    return out


def open_rdf_counts(data, pair=("O", "O"), r_max: float = 0.5, bin_width: float = 0.0125):
    """Edge-corrected pair counts of open boxes, summed over frames.

    Returns (r (B,) bin centres nm, counts (B,), expected (B,) ideal-gas counts); g = counts /
    expected. Counts and expectations of several ensembles or frames add up.
    """
    frames = as_frames(data)
    n_bins = int(round(r_max / bin_width))
    edges = np.arange(n_bins + 1) * bin_width
    centres = 0.5 * (edges[1:] + edges[:-1])
    shells = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    counts = np.zeros(n_bins)
    expected = np.zeros(n_bins)
    directions = fibonacci_sphere()
    a_el, b_el = pair
    for f in range(len(frames)):
        pos, el, mol, box = frame(frames, f)
        a = np.flatnonzero(el == a_el)
        b = np.flatnonzero(el == b_el)
        if len(a) == 0 or len(b) == 0:
            continue
        found = cKDTree(pos[a]).sparse_distance_matrix(cKDTree(pos[b]), r_max, output_type="ndarray")
        ia, ib, d = a[found["i"]], b[found["j"]], found["v"]
        keep = (ia != ib) & ~((mol[ia] == mol[ib]) & (mol[ia] >= 0))
        counts += np.histogram(d[keep], bins=edges)[0]
        rho = allowed_pairs(a, b, mol) / len(a) / np.prod(box)
        expected += rho * shells * inside_fraction(pos[a], box, centres, directions).sum(axis=0)
    return centres, counts, expected


def allowed_pairs(a, b, mol) -> int:
    """Number of (a, b) index combinations that are neither one atom nor inside one molecule."""
    same_atom = len(np.intersect1d(a, b))
    ma, mb = mol[a], mol[b]
    ids_a, n_a = np.unique(ma[ma >= 0], return_counts=True)
    ids_b, n_b = np.unique(mb[mb >= 0], return_counts=True)
    _, ia, ib = np.intersect1d(ids_a, ids_b, return_indices=True)
    both = np.intersect1d(a, b)
    same_molecule = int(np.sum(n_a[ia] * n_b[ib])) - int(np.count_nonzero(mol[both] >= 0))
    return int(len(a) * len(b) - same_atom - same_molecule)


def g_from_counts(counts, expected) -> np.ndarray:
    """g(r) = counts / expected, NaN where nothing was expected."""
    counts, expected = np.asarray(counts, float), np.asarray(expected, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, counts / np.where(expected > 0, expected, 1.0), np.nan)

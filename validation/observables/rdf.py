"""Intermolecular radial distribution functions g_OO, g_OH, g_HH.

g_ab(r) counts b atoms at distance r from a atoms, leaving out pairs within one molecule
(same molecule id >= 0) and an atom with itself, normalised so that an uncorrelated (ideal-gas)
system gives g = 1 at all r:

    g(r) = n_ab(r) / [ (P_ab / V) * 4/3 pi (r_hi^3 - r_lo^3) ]

with n_ab(r) the pair count in the shell and P_ab the number of (reference a, partner b)
combinations that could be counted (all allowed pairs), summed over frames.

* ``periodic=True``: every a atom is a reference, distances use the minimum image,
  r_max must stay below half the shortest box edge.
* ``periodic=False`` (generated boxes): only a atoms farther than r_max from every face are
  references, so their shells lie wholly inside the box; partners come from the whole box and
  the density is that of the whole box, P_ab / V. This assumes the box is homogeneous: crop a
  burned-in edge first (:func:`validation.observables.frame_tools.crop_frames`).

Open boxes of the gate (``open_rdf_counts``): ``compute_rdf(periodic=False)`` counts only
reference atoms farther than r_max from every face, which leaves few references in the small
analysed regions of the smoke and quick profiles. In ``open_rdf_counts`` every atom of the
region is a reference and the expected count of each shell is reduced to the part of the shell
inside the box (the isotropic edge correction of B. D. Ripley, J. Appl. Prob. 13, 255 (1976)): for reference i and shell k,

    E[n_ik] = rho_b * V_k * f_i(r_k),

with rho_b = P_ab / (N_a V) (allowed pairs per reference over the volume, as
above), V_k the shell volume and f_i(r) the fraction of the sphere of radius r (bin centre)
around atom i that lies inside the box, estimated on ``N_DIRECTIONS`` Fibonacci-sphere points.
An uncorrelated (ideal-gas) box gives g = 1 at all r. Same-molecule pairs and self pairs are
left out.

Lengths nm. Seed 000 uses 0.125 Å bins = 0.0125 nm for voxelised data.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from map_core.errors import MapSuiteError
from validation.observables.frame_tools import as_frames, distance_to_faces, frame, wrap

N_DIRECTIONS = 256  # Fibonacci-sphere points of the open-box edge correction


def compute_rdf(data, pair=("O", "O"), r_max: float = 0.8, bin_width: float = 0.0125,
                periodic: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Intermolecular g(r) of element pair `pair` averaged over frames.

    Returns (r (B,) bin centres nm, g (B,) dimensionless), B = round(r_max / bin_width).
    Raises MapSuiteError if r_max does not fit the box or no reference atom qualifies.
    """
    frames = as_frames(data)
    n_bins = int(round(r_max / bin_width))
    if n_bins < 1 or bin_width <= 0:
        raise MapSuiteError(f"r_max {r_max} nm and bin width {bin_width} nm give no bins")
    edges = np.arange(n_bins + 1) * bin_width
    shells = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    hist = np.zeros(n_bins)
    norm = 0.0  # sum over frames of P_ab / V, nm^-3
    a_el, b_el = pair
    for f in range(len(frames)):
        pos, el, mol, box = frame(frames, f)
        if periodic and r_max >= 0.5 * box.min():
            raise MapSuiteError(f"r_max {r_max} nm must be below half the box edge ({box.min():.3f} nm) "
                                "for a periodic RDF")
        a = np.flatnonzero(el == a_el)
        b = np.flatnonzero(el == b_el)
        if periodic:
            pos = wrap(pos, box)
        else:
            a = a[distance_to_faces(pos[a], box) >= r_max]
        if len(a) == 0 or len(b) == 0:
            continue
        tree_a = cKDTree(pos[a], boxsize=box if periodic else None)
        tree_b = cKDTree(pos[b], boxsize=box if periodic else None)
        found = tree_a.sparse_distance_matrix(tree_b, r_max, output_type="ndarray")
        ia, ib, d = a[found["i"]], b[found["j"]], found["v"]
        keep = (ia != ib) & ~((mol[ia] == mol[ib]) & (mol[ia] >= 0))
        hist += np.histogram(d[keep], bins=edges)[0]
        norm += allowed_pairs(a, b, mol) / np.prod(box)
    if norm == 0:
        raise MapSuiteError(f"no {a_el} reference atoms for the {a_el}-{b_el} RDF"
                            + ("" if periodic else f" at least {r_max} nm from every face"))
    return 0.5 * (edges[1:] + edges[:-1]), hist / (norm * shells)


def allowed_pairs(a, b, mol) -> int:
    """Number of (a, b) combinations that are neither the same atom nor in one molecule."""
    both = np.intersect1d(a, b)
    ids_a, counts_a = np.unique(mol[a][mol[a] >= 0], return_counts=True)
    ids_b, counts_b = np.unique(mol[b][mol[b] >= 0], return_counts=True)
    _, ia, ib = np.intersect1d(ids_a, ids_b, return_indices=True)
    same_molecule = np.sum(counts_a[ia] * counts_b[ib]) - np.count_nonzero(mol[both] >= 0)
    return int(len(a) * len(b) - len(both) - same_molecule)



def fibonacci_sphere(n: int = N_DIRECTIONS) -> np.ndarray:
    """(n, 3) unit vectors spread evenly over the sphere."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1.0 - 2.0 * i / n)
    theta = np.pi * (1.0 + 5.0 ** 0.5) * i
    return np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], axis=1)


def inside_fraction(points, box, radii, directions=None) -> np.ndarray:
    """(N, B) fraction of the sphere of radius radii[k] around points[i] inside [0, box).

    Exactly the fraction of `directions` (D, 3) (default: N_DIRECTIONS Fibonacci points) whose probe
    points[i] + radii[k] * direction lies in [0, box) in float64 (``_probes_inside``). Rounding is
    monotone, so for a point inside the box and radii >= 0 the probes inside form a prefix of the
    sorted radii: one length per (point, direction), estimated from the distance to the faces along
    the direction and then corrected with the probe test itself. That is N * D probe tests instead of
    N * D * B (the cost of the gate's g(r) and S(q) edge correction), with the same result bit for bit.
    Points outside the box, or radii < 0, take the direct probe test.
    """
    directions = fibonacci_sphere() if directions is None else np.asarray(directions, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    box = np.broadcast_to(np.asarray(box, dtype=np.float64), (3,))
    radii = np.asarray(radii, dtype=np.float64)
    out = np.empty((len(points), len(radii)))
    inside = np.all(np.isfinite(points) & (points >= 0) & (points < box), axis=1)
    if not np.all(np.isfinite(radii) & (radii >= 0)):
        inside[:] = False
    for row in np.flatnonzero(~inside):
        out[row] = [_probes_inside(points[row][None, None, :], box, r, directions).mean() for r in radii]
    if inside.any():
        order = np.argsort(radii, kind="stable")
        lengths = _inside_prefix(points[inside], box, radii[order], directions)    # (n, D) in 0..B
        out[np.ix_(inside, order)] = _count_above(lengths, len(radii)) / len(directions)
    return out


def _probes_inside(points, box, r, directions) -> np.ndarray:
    """Whether points + r * directions lies in [0, box); points (..., 3), r broadcast against (...)."""
    probe = points + np.asarray(r)[..., None] * directions
    return np.all((probe >= 0) & (probe < box), axis=-1)


def _inside_prefix(points, box, radii, directions) -> np.ndarray:
    """(N, D) number of the sorted radii whose probe along each direction lies in the box."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ahead = np.where(directions > 0, (box - points[:, None, :]) / directions,          # probe < box: r < t
                         np.where(directions < 0, points[:, None, :] / -directions, np.inf))  # probe >= 0: r <= t
    side_left = np.searchsorted(radii, ahead, side="left")     # radii < t
    side_right = np.searchsorted(radii, ahead, side="right")   # radii <= t
    k = np.min(np.where(directions > 0, side_left, side_right), axis=2)
    last = len(radii)
    pts = points[:, None, :]
    while True:  # the estimate is off by a rounding at most; the probe test decides
        down = (k > 0) & ~_probes_inside(pts, box, radii[np.maximum(k - 1, 0)], directions)
        if not down.any():
            break
        k[down] -= 1
    while True:
        up = (k < last) & _probes_inside(pts, box, radii[np.minimum(k, last - 1)], directions)
        if not up.any():
            break
        k[up] += 1
    return k


def _count_above(lengths, n_radii: int) -> np.ndarray:
    """(N, B) number of directions of each row whose prefix length exceeds b, for b in 0..B-1."""
    n = len(lengths)
    flat = (np.arange(n)[:, None] * (n_radii + 1) + lengths).ravel()
    per_length = np.bincount(flat, minlength=n * (n_radii + 1)).reshape(n, n_radii + 1)
    return np.cumsum(per_length[:, ::-1], axis=1)[:, ::-1][:, 1:]


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


def g_from_counts(counts, expected) -> np.ndarray:
    """g(r) = counts / expected, NaN where nothing was expected."""
    counts, expected = np.asarray(counts, float), np.asarray(expected, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(expected > 0, counts / np.where(expected > 0, expected, 1.0), np.nan)


def first_peak(r, g, min_height: float = 0.5, window: int = 3) -> tuple[float, float]:
    """(position nm, height) of the first local maximum of g(r) that exceeds `min_height`.

    A bin is a local maximum if no bin within `window` bins on either side is higher.
    Returns (nan, nan) if there is none.
    """
    r = np.asarray(r)
    g = np.asarray(g)
    for i in range(len(g)):
        if g[i] < min_height:
            continue
        lo, hi = max(0, i - window), min(len(g), i + window + 1)
        if g[i] >= g[lo:hi].max():
            return float(r[i]), float(g[i])
    return float("nan"), float("nan")

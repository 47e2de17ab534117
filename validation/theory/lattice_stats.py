"""Structure of 2D lattice samples: pair correlation, neighbour counts, and distances between ensembles.

Used to compare generated toy-system samples with their training data (seed 001, Fig. 10 g-l,
Fig. 11c). Grids: (B, H, W) 0/1 occupations. Both statistics are computed without periodic
wrap, so periodic Monte Carlo samples and bounded generated samples are measured alike.
Distances are in lattice units. numpy only.
"""

from __future__ import annotations

import numpy as np

from map_core.errors import MapSuiteError


def _grids(grids) -> np.ndarray:
    g = np.asarray(grids)
    if g.ndim == 2:
        g = g[None]
    if g.ndim != 3 or g.size == 0:
        raise MapSuiteError(f"expected (B, H, W) grids, got shape {g.shape}")
    return (g > 0).astype(np.float64)


def pair_correlation(grids, r_max: float = 4.0) -> tuple:
    """Radial pair correlation g(r) of occupied sites, r = distinct lattice distances 0 < r <= r_max.

    g(d) = <n_i n_{i+d}> / rho^2 over all pairs of sites with displacement d inside the grids (no
    wrap), then averaged over the displacements of each distance shell weighted by their pair
    counts. Returns (r (K,) float, g (K,) float); g = 1 for an ideal gas, 0 inside a hard core.
    """
    g = _grids(grids)
    b, h, w = g.shape
    rho = g.mean()
    if rho == 0:
        raise MapSuiteError("pair correlation of empty grids")
    f = np.fft.rfft2(g, s=(2 * h, 2 * w))  # zero padding: linear, not circular, correlation
    corr = np.fft.irfft2(np.abs(f) ** 2, s=(2 * h, 2 * w)).sum(0)  # sum_i n_i n_{i+d} over grids
    r_int = int(np.floor(r_max))
    dys, dxs = np.meshgrid(np.arange(-r_int, r_int + 1), np.arange(-r_int, r_int + 1), indexing="ij")
    dist2 = dys ** 2 + dxs ** 2
    keep = (dist2 > 0) & (dist2 <= r_max ** 2)
    pairs = b * (h - np.abs(dys)) * (w - np.abs(dxs))
    counts = np.rint(corr[dys % (2 * h), dxs % (2 * w)])
    shells = np.unique(dist2[keep])
    r = np.sqrt(shells.astype(np.float64))
    gr = np.array([counts[keep & (dist2 == s)].sum() / pairs[keep & (dist2 == s)].sum() for s in shells]) / rho ** 2
    return r, gr


def neighbour_count_distribution(grids, radius: int = 1) -> np.ndarray:
    """Distribution (K+1,) of the number of occupied sites within max-norm `radius` of occupied sites
    (K = (2 radius + 1)^2 - 1: 8 nearest neighbours at radius 1, the contacts of the Moore lattice fluids).

    Only sites at least `radius` from the grid edge are centres, so every neighbourhood is whole.
    """
    g = _grids(grids)
    r = int(radius)
    if r < 1 or min(g.shape[1:]) < 2 * r + 1:
        raise MapSuiteError(f"neighbour counts need radius >= 1 and grids of at least {2 * r + 1} sites a side")
    h, w = g.shape[1:]
    centre = g[:, r : h - r, r : w - r]
    counts = sum(g[:, r + dy : h - r + dy, r + dx : w - r + dx]
                 for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0))
    hist = np.bincount(counts[centre > 0].astype(np.int64), minlength=(2 * r + 1) ** 2)
    total = hist.sum()
    return hist / total if total else hist.astype(np.float64)


def pair_correlation_distance(g_ref, g_test) -> float:
    """RMS over shells of (g_test - g_ref) / max(g_ref, 1): absolute where g is small (hard core), relative where
    strong clustering makes g large."""
    g_ref, g_test = np.asarray(g_ref), np.asarray(g_test)
    return float(np.sqrt(np.mean(((g_test - g_ref) / np.maximum(g_ref, 1.0)) ** 2)))


def structure_distances(reference, test, r_max: float = 4.0, radius: int = 1) -> dict:
    """Distances of `test` grids from `reference` grids: pair correlation up to r_max (see
    pair_correlation_distance), neighbour counts within `radius` (total variation), density (relative)."""
    _, g_ref = pair_correlation(reference, r_max)
    _, g_test = pair_correlation(test, r_max)
    n_ref = neighbour_count_distribution(reference, radius)
    n_test = neighbour_count_distribution(test, radius)
    rho_ref, rho_test = _grids(reference).mean(), _grids(test).mean()
    return {
        "pair_correlation": pair_correlation_distance(g_ref, g_test),
        "neighbour_counts": 0.5 * float(np.abs(n_ref - n_test).sum()),
        "density": float(abs(rho_test - rho_ref) / rho_ref),
    }

"""The truncated correlation expansion of seed 001 (Eq. 21), fitted by brute force, and MAP sampling with it.

For two classes (1 occupied, 0 empty) the expansion gives the softmax argument a of the
occupied class from the causal context {X_j, j in L_c}:

    a = c_rho + sum over clusters {x} of context sites, 1 <= |{x}| <= order - 1, of c_{x} prod_j X_{x_j}

and p(X_i = 1) = e^{beta a} / (e^{beta a} + e^{-beta a}) (Eq. 4 with logits (+a, -a), as in Eq. 7:
the ideal gas has a = c_rho = 1/2 ln(rho / (1 - rho))). "Order" counts the target site too, so
order 2 means pair correlations; seed 001 Table 1 counts 5, 79 and 301 coefficients for
(L_c, order) = (1, 2), (2, 3), (3, 3) on a 2D square grid (`n_coefficients` reproduces them).

Context window within range L_c of the target at (0, 0) in raster order (dy, dx):
previous rows dy = -L_c..-1 with |dx| <= L_c, then the current row dx = -L_c..-1; in 1D only
the current row. numpy only.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import scipy.special

from map_core.errors import MapSuiteError


def causal_offsets(context: int, dims: int = 2) -> np.ndarray:
    """(n_sites, 2) int (dy, dx) offsets of the context sites within range `context`, raster order."""
    if context < 1 or dims not in (1, 2):
        raise MapSuiteError(f"need context >= 1 and dims 1 or 2, got {context}, {dims}")
    above = [(dy, dx) for dy in range(-context, 0) for dx in range(-context, context + 1)] if dims == 2 else []
    return np.array(above + [(0, dx) for dx in range(-context, 0)], dtype=np.int64)


def cluster_list(n_sites: int, order: int) -> list:
    """All clusters (tuples of context-site indices) of 1..order-1 sites: the terms of Eq. 21."""
    if order < 1:
        raise MapSuiteError(f"order must be >= 1, got {order}")
    return [c for size in range(1, order) for c in itertools.combinations(range(n_sites), size)]


def n_coefficients(context: int, order: int, dims: int = 2) -> int:
    """Number of coefficients of Eq. 21 (bias included); seed 001 Table 1: 5, 79, 301."""
    return 1 + len(cluster_list(len(causal_offsets(context, dims)), order))


def cluster_features(contexts, clusters) -> np.ndarray:
    """(N, n_sites) 0/1 contexts -> (N, n_clusters) bool: prod_j X_{x_j} for every cluster."""
    ctx = np.asarray(contexts).astype(bool)
    out = np.ones((len(ctx), len(clusters)), dtype=bool)
    for k, cluster in enumerate(clusters):
        for site in cluster:
            out[:, k] &= ctx[:, site]
    return out


@dataclass
class CorrelationExpansion:
    """offsets: (n_sites, 2) context sites; clusters: tuples of site indices; coefficients:
    (1 + n_clusters,) float, c_rho first then one c_{x} per cluster (may be -inf, Eq. 16)."""

    offsets: np.ndarray
    clusters: list
    coefficients: np.ndarray

    @property
    def context(self) -> int:
        return int(np.abs(self.offsets).max())

    def field(self, contexts) -> np.ndarray:
        """(N, n_sites) 0/1 contexts -> (N,) softmax argument a of the occupied class."""
        feats = cluster_features(contexts, self.clusters)
        terms = np.where(feats, self.coefficients[None, 1:], 0.0)  # -inf * 0 must stay 0
        return self.coefficients[0] + terms.sum(1)

    def prob_occupied(self, contexts, beta: float = 1.0) -> np.ndarray:
        """(N,) p(X_i = 1 | context) = e^{beta a} / (e^{beta a} + e^{-beta a}) (Eq. 4, 21); beta = inf: a > 0."""
        return self.class_probabilities(contexts, beta)[:, 1]

    def class_probabilities(self, contexts, beta: float = 1.0) -> np.ndarray:
        """(N, 2) [p(X_i = 0 | context), p(X_i = 1 | context)], each from its own logistic so that a tiny
        probability stays positive (1 - p would round it to 0, and a finite-beta chain would look reducible)."""
        a = self.field(contexts)
        if np.isinf(beta):
            return np.stack([a <= 0, a > 0], axis=1).astype(np.float64)
        x = 2.0 * beta * a
        return np.stack([scipy.special.expit(-x), scipy.special.expit(x)], axis=1)

    def as_dict(self) -> dict:
        """JSON-ready: bias and one entry per cluster with its (dy, dx) sites."""
        def num(c):
            return None if not np.isfinite(c) else float(c)  # JSON has no -inf
        return {
            "c_rho": num(self.coefficients[0]),
            "clusters": [{"sites": self.offsets[list(c)].tolist(), "c": num(v)} for c, v in zip(self.clusters, self.coefficients[1:])],
        }


def expansion_for(context: int, order: int, coefficients=None, dims: int = 2) -> CorrelationExpansion:
    """An expansion on the standard window; coefficients default to zero (ideal gas at rho = 1/2)."""
    offsets = causal_offsets(context, dims)
    clusters = cluster_list(len(offsets), order)
    coef = np.zeros(1 + len(clusters)) if coefficients is None else np.asarray(coefficients, dtype=np.float64)
    if coef.shape != (1 + len(clusters),):
        raise MapSuiteError(f"expected {1 + len(clusters)} coefficients, got {coef.shape}")
    return CorrelationExpansion(offsets, clusters, coef)


def site_contexts(grids, offsets) -> tuple:
    """Contexts and targets of every site of (B, H, W) 0/1 grids whose whole context lies inside the grid.

    Returns (contexts (N, n_sites) uint8, targets (N,) uint8).
    """
    g = np.asarray(grids)
    if g.ndim == 2:
        g = g[None]
    b, h, w = g.shape
    up, left, right = -offsets[:, 0].min(), -offsets[:, 1].min(), max(0, offsets[:, 1].max())
    if h <= up or w <= left + right:
        raise MapSuiteError(f"grids {h}x{w} are too small for a context of range {int(np.abs(offsets).max())}")
    ys, xs = np.arange(up, h), np.arange(left, w - right)
    cols = [g[:, ys[0] + dy : ys[-1] + dy + 1, xs[0] + dx : xs[-1] + dx + 1].reshape(-1) for dy, dx in offsets]
    targets = g[:, ys[0] :, xs[0] : xs[-1] + 1].reshape(-1)
    return np.stack(cols, axis=1).astype(np.uint8), targets.astype(np.uint8)


def fit_expansion(grids, context: int, order: int, dims: int = 2, ridge: float = 1e-2, max_iter: int = 100) -> CorrelationExpansion:
    """Brute-force maximum-likelihood fit of all coefficients of Eq. 21 to (B, H, W) 0/1 grids.

    Newton's method on the exact log-likelihood of every site (contexts grouped by pattern), with a
    small L2 penalty `ridge` (per coefficient, nats) on the cluster terms so that correlations never
    seen, or never seen occupied (hard core, Eq. 16: c = -inf), stay finite. For dims=1 every row
    of the grids is a 1D sequence.
    """
    offsets = causal_offsets(context, dims)
    if len(offsets) > 62:
        raise MapSuiteError(f"{len(offsets)} context sites: too many to enumerate patterns")
    clusters = cluster_list(len(offsets), order)
    ctx, target = site_contexts(grids, offsets)
    keys = ctx.astype(np.int64) @ (np.int64(1) << np.arange(len(offsets), dtype=np.int64))
    uniq, inverse = np.unique(keys, return_inverse=True)
    n = np.bincount(inverse).astype(np.float64)
    k = np.bincount(inverse, weights=target.astype(np.float64))
    patterns = ((uniq[:, None] >> np.arange(len(offsets))) & 1).astype(np.uint8)
    X = np.concatenate([np.ones((len(uniq), 1)), cluster_features(patterns, clusters)], axis=1)
    penalty = np.full(X.shape[1], ridge)
    penalty[0] = 0.0

    def loss(c):
        z = 2.0 * X @ c  # logit of p(1): a - (-a)
        return float((n * np.logaddexp(0.0, z) - k * z).sum() + 0.5 * (penalty * c * c).sum())

    rho = np.clip(k.sum() / n.sum(), 1e-6, 1 - 1e-6)
    coef = np.zeros(X.shape[1])
    coef[0] = 0.5 * np.log(rho / (1 - rho))  # Eq. 7 start
    current = loss(coef)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-2.0 * X @ coef))
        grad = 2.0 * X.T @ (n * p - k) + penalty * coef
        hess = 4.0 * (X * (n * p * (1 - p))[:, None]).T @ X + np.diag(penalty + 1e-12)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-8 and loss(coef - t * step) > current:
            t *= 0.5
        coef = coef - t * step
        new = loss(coef)
        if current - new < 1e-10 * max(1.0, abs(current)):
            current = new
            break
        current = new
    return CorrelationExpansion(offsets, clusters, coef)


def sample_expansion(expansion: CorrelationExpansion, shape, n_samples: int, seed: int = 0, beta: float = 1.0) -> np.ndarray:
    """MAP generation with Eq. 21: (n_samples, H, W) uint8 grids in raster order, empty boundary.

    Sites outside the grid read as empty (0), the 'empty' boundary of the samplers.
    """
    h, w = (int(s) for s in shape)
    r = expansion.context
    canvas = np.zeros((n_samples, h + r, w + 2 * r), dtype=np.uint8)
    u = np.random.default_rng(seed).random((h, w, n_samples))
    dy, dx = expansion.offsets[:, 0], expansion.offsets[:, 1]
    for y in range(h):
        for x in range(w):
            ctx = canvas[:, r + y + dy, r + x + dx]
            canvas[:, r + y, r + x] = u[y, x] < expansion.prob_occupied(ctx, beta)
    return canvas[:, r:, r : r + w].copy()

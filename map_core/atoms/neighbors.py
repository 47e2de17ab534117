"""Pairs of points closer than a cutoff, with or without periodic boundaries (numpy cell lists).

Written when map_core depended on numpy and torch only; scipy's cKDTree (now a dependency) could
replace the cell list.
"""

from __future__ import annotations

import itertools

import numpy as np

_BRUTE_FORCE_PAIRS = 4_000_000


def minimum_image(delta, box):
    """Apply the minimum-image convention to displacement vectors (..., 3) in an orthorhombic box (3,)."""
    if box is None:
        return delta
    box = np.asarray(box, dtype=np.float64)
    return delta - box * np.round(delta / box)


def pairs_within(a, b, cutoff: float, box=None):
    """All pairs (i, j) with |a_i - b_j| < cutoff.

    a: (Na, 3), b: (Nb, 3) nm; box: (3,) edge lengths for periodic boundaries (minimum image),
    or None for open boundaries. Returns (i (P,), j (P,), distance (P,) nm), sorted by i then j.
    When a and b are the same array the pair (i, i) is included; drop it if unwanted.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 3)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 3)
    if len(a) == 0 or len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    if box is not None:
        box = np.asarray(box, dtype=np.float64)
        a, b = np.mod(a, box), np.mod(b, box)
        ncell = np.floor(box / cutoff).astype(np.int64)
        if np.any(ncell < 3):
            return _brute_force(a, b, cutoff, box)
        origin = np.zeros(3)
    else:
        lo = np.minimum(a.min(0), b.min(0))
        hi = np.maximum(a.max(0), b.max(0))
        origin = lo
        ncell = np.maximum(1, np.floor((hi - lo) / cutoff).astype(np.int64) + 1)
    if len(a) * len(b) <= _BRUTE_FORCE_PAIRS:
        return _brute_force(a, b, cutoff, box)
    cell_size = (box / ncell) if box is not None else np.full(3, cutoff)
    ca = np.minimum(((a - origin) // cell_size).astype(np.int64), ncell - 1)
    cb = np.minimum(((b - origin) // cell_size).astype(np.int64), ncell - 1)
    lin_b = np.ravel_multi_index(cb.T, ncell)
    order = np.argsort(lin_b, kind="stable")
    sorted_lin = lin_b[order]
    out_i, out_j = [], []
    for off in itertools.product((-1, 0, 1), repeat=3):
        c = ca + np.array(off)
        if box is not None:
            c = np.mod(c, ncell)
            keep = np.arange(len(a))
        else:
            inside = np.all((c >= 0) & (c < ncell), axis=1)
            keep = np.nonzero(inside)[0]
            c = c[inside]
        lin = np.ravel_multi_index(c.T, ncell)
        start = np.searchsorted(sorted_lin, lin, side="left")
        end = np.searchsorted(sorted_lin, lin, side="right")
        n = end - start
        total = int(n.sum())
        if total == 0:
            continue
        ii = np.repeat(keep, n)
        first = np.repeat(start - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
        jj = order[first + np.arange(total)]
        out_i.append(ii)
        out_j.append(jj)
    if not out_i:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    i = np.concatenate(out_i)
    j = np.concatenate(out_j)
    d = np.linalg.norm(minimum_image(a[i] - b[j], box), axis=1)
    sel = d < cutoff
    i, j, d = i[sel], j[sel], d[sel]
    o = np.lexsort((j, i))
    return i[o], j[o], d[o]


def _brute_force(a, b, cutoff, box):
    out_i, out_j, out_d = [], [], []
    chunk = max(1, _BRUTE_FORCE_PAIRS // max(1, len(b)))
    for s in range(0, len(a), chunk):
        delta = minimum_image(a[s : s + chunk, None, :] - b[None, :, :], box)
        d = np.linalg.norm(delta, axis=2)
        ii, jj = np.nonzero(d < cutoff)
        out_i.append(ii + s)
        out_j.append(jj)
        out_d.append(d[ii, jj])
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_d)

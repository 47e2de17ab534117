"""Block averaging: means and standard errors of correlated time series."""

from __future__ import annotations

import numpy as np


def block_average(series, n_blocks: int = 10) -> tuple[float, float]:
    """(mean, standard error) of a correlated series by block averaging.

    The series (1-D, in time order) is cut into `n_blocks` equal contiguous blocks (a few
    leading samples are dropped so the blocks are equal); the error is the sample standard
    deviation (ddof=1) of the block means over sqrt(n_blocks). Blocks must be longer than the correlation
    time for the error to be honest. Returns (mean, nan) if fewer than 2 blocks fit.
    """
    x = np.asarray(series, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    n_blocks = min(int(n_blocks), len(x))
    if n_blocks < 2:
        return float(x.mean()), float("nan")
    size = len(x) // n_blocks
    blocks = x[len(x) - size * n_blocks:].reshape(n_blocks, size).mean(axis=1)
    return float(x.mean()), float(blocks.std(ddof=1) / np.sqrt(n_blocks))

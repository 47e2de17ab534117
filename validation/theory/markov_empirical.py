"""Generated MAP chains against the exact analysis of validation.theory.markov_chain (seed 001, Sec. III).

Runs the 1D chain of an emission table, counts the context states a sequence visits, and bounds how
far those empirical frequencies may lie from the exact stationary distribution after n steps
(a bound that shrinks like n^-1/2), so that a sampler can be checked against the exact answer and a
wrong answer is rejected. State encoding as in validation.theory.markov_chain. numpy only.
"""

from __future__ import annotations

import math

import numpy as np

from map_core.errors import MapSuiteError
from validation.theory.markov_chain import context_length, encode_contexts, stationary_distribution


def sample_chain(conditional, n_steps: int, seed: int = 0, start_state: int = 0, n_chains: int = 1) -> np.ndarray:
    """Run the 1D MAP chain of an emission table; (n_chains, n_steps) int64 emitted classes.

    conditional: (N_c^L, N_c) p(theta | state); start_state: initial context (e.g. 0 = all class 0,
    the 'empty' boundary). Inverse-CDF sampling against uniforms, as map_core.sampling.canvas.choose does.
    """
    cond = np.asarray(conditional, dtype=np.float64)
    n_states, n_classes = cond.shape
    context = context_length(n_states, n_classes)
    cdf = np.cumsum(cond, axis=1)
    u = np.random.default_rng(seed).random((n_steps, n_chains))
    keep = n_classes ** (context - 1)
    state = np.full(n_chains, start_state, dtype=np.int64)
    out = np.empty((n_chains, n_steps), dtype=np.int64)
    for i in range(n_steps):
        theta = np.minimum((cdf[state] < u[i][:, None]).sum(1), n_classes - 1)
        out[:, i] = theta
        state = (state % keep) * n_classes + theta
    return out


def context_frequencies(sequences, n_classes: int, context: int) -> np.ndarray:
    """(N_c^L,) empirical frequencies of the context states along (n_chains, n) or (n,) sequences.

    Every window of `context` consecutive elements is one visit (the chain's state after each step
    from step L on); windows are taken within each sequence only.
    """
    seq = np.atleast_2d(np.asarray(sequences, dtype=np.int64))
    if seq.shape[1] < context:
        raise MapSuiteError(f"sequences of length {seq.shape[1]} are shorter than the context {context}")
    windows = np.lib.stride_tricks.sliding_window_view(seq, context, axis=1)
    counts = np.bincount(encode_contexts(windows, n_classes).ravel(), minlength=n_classes ** context)
    return counts / counts.sum()


def total_variation(p, q) -> float:
    """TV distance 1/2 sum |p - q| between two distributions on the same states."""
    return 0.5 * float(np.abs(np.asarray(p, dtype=np.float64) - np.asarray(q, dtype=np.float64)).sum())


def asymptotic_variances(P, pi=None) -> np.ndarray:
    """(S,) CLT variances sigma_s^2 of the state indicators: n Var(empirical frequency of s) -> sigma_s^2.

    From the fundamental matrix Z = (I - P + 1 pi)^-1: sigma^2(f) = <f, (2Z - I) f>_pi for centred f.
    """
    P = np.asarray(P, dtype=np.float64)
    pi = stationary_distribution(P) if pi is None else pi
    n = len(P)
    Z = np.linalg.inv(np.eye(n) - P + np.outer(np.ones(n), pi))
    F = np.eye(n) - pi[None, :]  # column s: indicator of s minus its mean
    ZF = Z @ F
    return np.maximum((pi[:, None] * F * (2 * ZF - F)).sum(0), 0.0)


def tv_bound(P, n_steps: int, n_chains: int = 1, z: float = 5.0) -> float:
    """Bound on TV(empirical context frequencies, pi) for n_chains chains of n_steps visits each.

    Fluctuation: every state's frequency within z CLT standard deviations (failure probability
    below S * 2 Phi(-z), 3e-5 for S = 64 at z = 5), i.e. 1/2 z sum_s sigma_s / sqrt(n_chains n_steps);
    start-up bias: at most sum_t d(t) / n_steps for any initial state. Shrinks like n^-1/2.
    """
    P = np.asarray(P, dtype=np.float64)
    pi = stationary_distribution(P)
    sigma = np.sqrt(asymptotic_variances(P, pi))
    bias, M = 0.0, np.eye(len(P))
    for _ in range(n_steps):
        d = 0.5 * np.abs(M - pi[None, :]).sum(1).max()
        if d < 1e-12:
            break
        bias += d
        M = M @ P
    return float(0.5 * z * sigma.sum() / math.sqrt(n_chains * n_steps) + bias / n_steps)

"""Exact analysis of small MAP Markov chains (seed 001, Sec. III, Eq. 19-20, Fig. 4-5).

A 1D MAP sequence with N_c classes and context length L_c is a Markov chain on the
N_c^L_c context states C_i = (X_{i-L_c+1}, ..., X_i) (Eq. 19): emitting class theta moves
C_{i-1} -> C_i by dropping the oldest element and appending theta. A 2D/3D sequence is the
same kind of chain with rows/planes as super-states (Eq. 20, see validation.theory.markov_models).

State encoding used everywhere here: a context (x_0 oldest, ..., x_{L-1} newest) with classes
0..N_c-1 is the integer s = sum_k x_k N_c^(L-1-k) (oldest most significant), so the successor
of s after theta is (s mod N_c^(L-1)) N_c + theta.

Everything works on a dense (S, S) row-stochastic transition matrix P, P[s, t] = p(t | s);
S is kept small (enumerable), so the exact answers are cheap. Generated chains are held against
these answers in validation.theory.markov_empirical. numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from map_core.errors import MapSuiteError

MAX_STATES = 4096  # largest chain the exact analysis accepts (dense S x S matrices)


# ---------------------------------------------------------------- state space of a 1D MAP chain

def context_states(n_classes: int, context: int) -> np.ndarray:
    """(N_c^L, L) int64 table of all contexts; row s is the context encoded as state s."""
    if n_classes < 1 or context < 1:
        raise MapSuiteError(f"need n_classes >= 1 and context >= 1, got {n_classes}, {context}")
    s = np.arange(n_classes ** context, dtype=np.int64)
    powers = n_classes ** np.arange(context - 1, -1, -1, dtype=np.int64)
    return (s[:, None] // powers[None, :]) % n_classes


def encode_contexts(contexts, n_classes: int) -> np.ndarray:
    """(..., L) class arrays (oldest first) -> (...) int64 state indices."""
    contexts = np.asarray(contexts, dtype=np.int64)
    powers = n_classes ** np.arange(contexts.shape[-1] - 1, -1, -1, dtype=np.int64)
    return contexts @ powers


def context_length(n_states: int, n_classes: int) -> int:
    """L with N_c^L = n_states; MapSuiteError if n_states is not such a power."""
    length = round(math.log(n_states) / math.log(n_classes)) if n_classes > 1 else 1
    if n_classes ** length != n_states:
        raise MapSuiteError(f"{n_states} states is not a power of {n_classes} classes")
    return length


def transition_matrix(conditional) -> np.ndarray:
    """(S, S) transition matrix of the 1D MAP chain whose emission table is `conditional`.

    conditional: (S, N_c) probabilities p(X_i = theta | C_{i-1} = s), rows summing to 1, with
    S = N_c^L_c. P[s, (s mod N_c^(L-1)) N_c + theta] = conditional[s, theta] (Eq. 19).
    """
    cond = np.asarray(conditional, dtype=np.float64)
    if cond.ndim != 2:
        raise MapSuiteError(f"conditional must be (states, classes), got shape {cond.shape}")
    n_states, n_classes = cond.shape
    if n_states > MAX_STATES:
        raise MapSuiteError(f"{n_states} states exceed the enumerable limit {MAX_STATES}")
    if (cond < 0).any() or not np.allclose(cond.sum(1), 1.0, atol=1e-9):
        raise MapSuiteError("conditional rows must be probabilities summing to 1")
    context = context_length(n_states, n_classes)
    base = (np.arange(n_states) % (n_classes ** (context - 1))) * n_classes
    P = np.zeros((n_states, n_states))
    for theta in range(n_classes):
        P[np.arange(n_states), base + theta] += cond[:, theta]
    return P


# ---------------------------------------------------------------- graph structure

def _successors(P: np.ndarray) -> list:
    return [np.flatnonzero(row > 0) for row in P]


def communicating_classes(P) -> list:
    """Strongly connected components of the graph P > 0 (Kosaraju), each a sorted int array."""
    P = np.asarray(P)
    n = len(P)
    succ = _successors(P)
    pred = _successors(P.T)
    seen = np.zeros(n, dtype=bool)
    order = []
    for root in range(n):  # iterative DFS, recording finishing order
        if seen[root]:
            continue
        seen[root] = True
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if not seen[child]:
                    seen[child] = True
                    stack.append((child, iter(succ[child])))
                    break
            else:
                stack.pop()
                order.append(node)
    label = np.full(n, -1)
    classes = []
    for root in reversed(order):  # DFS on the reversed graph in reverse finishing order
        if label[root] >= 0:
            continue
        label[root] = len(classes)
        members, stack = [root], [root]
        while stack:
            for child in pred[stack.pop()]:
                if label[child] < 0:
                    label[child] = len(classes)
                    members.append(child)
                    stack.append(child)
        classes.append(np.array(sorted(members)))
    return classes


def closed_classes(P, classes=None) -> list:
    """The communicating classes no transition leaves (the recurrent classes of a finite chain)."""
    P = np.asarray(P)
    classes = communicating_classes(P) if classes is None else classes
    closed = []
    for members in classes:
        outside = np.ones(len(P), dtype=bool)
        outside[members] = False
        if not (P[np.ix_(members, np.flatnonzero(outside))] > 0).any():
            closed.append(members)
    return closed


def class_period(P, members) -> int:
    """Period of a communicating class: gcd of its cycle lengths (BFS levels, gcd of level gaps)."""
    P = np.asarray(P)
    inside = np.zeros(len(P), dtype=bool)
    inside[members] = True
    level = {int(members[0]): 0}
    frontier, period = [int(members[0])], 0
    while frontier:
        nxt = []
        for u in frontier:
            for v in np.flatnonzero((P[u] > 0) & inside):
                v = int(v)
                if v in level:
                    period = math.gcd(period, level[u] + 1 - level[v])
                else:
                    level[v] = level[u] + 1
                    nxt.append(v)
        frontier = nxt
    return abs(period)  # 0 only for a single state without a self-loop (transient, no cycle)


def shortest_paths(P, max_steps=None) -> np.ndarray:
    """(S, S) number of steps of the shortest directed path s -> t (inf where t is unreachable).

    Breadth-first for all sources at once: reachable-within-k sets grow by one matrix product per step.
    """
    A = (np.asarray(P) > 0).astype(np.float64)
    n = len(A)
    dist = np.full((n, n), np.inf)
    np.fill_diagonal(dist, 0)
    reached = np.eye(n, dtype=bool)
    frontier = np.eye(n)
    for step in range(1, (max_steps or n) + 1):
        nxt = (frontier @ A > 0) & ~reached
        if not nxt.any():
            break
        dist[nxt] = step
        reached |= nxt
        frontier = nxt.astype(np.float64)
    return dist


def diameter(P) -> float:
    """Longest shortest path between any two states (seed 001: at most L_c at finite beta); inf if reducible."""
    return float(shortest_paths(P).max())


# ---------------------------------------------------------------- stationary state and mixing

def stationary_distribution(P) -> np.ndarray:
    """The unique stationary distribution pi (S,) with pi P = pi.

    Exists whenever the chain has exactly one closed class (it is zero on transient states);
    MapSuiteError otherwise (e.g. an argmax chain split into several cycles).
    """
    P = np.asarray(P, dtype=np.float64)
    closed = closed_classes(P)
    if len(closed) != 1:
        raise MapSuiteError(f"no unique stationary distribution: {len(closed)} closed classes")
    members = closed[0]
    # Grassmann-Taksar-Heyman state reduction: no subtractions, so probabilities of 1e-30 keep their
    # relative accuracy and stay > 0 (a linear solve can return 0 or negative values for them).
    A = P[np.ix_(members, members)].copy()
    m = len(members)
    for k in range(m - 1, 0, -1):
        A[:k, k] /= A[k, :k].sum()  # > 0: the censored chain on states 0..k stays irreducible
        A[:k, :k] += np.outer(A[:k, k], A[k, :k])
    sub = np.zeros(m)
    sub[0] = 1.0
    for k in range(1, m):
        sub[k] = sub[:k] @ A[:k, k]
    pi = np.zeros(len(P))
    pi[members] = sub / sub.sum()
    return pi


def eigenvalue_moduli(P) -> np.ndarray:
    """Moduli |lambda| of the eigenvalues of P, largest first."""
    return np.sort(np.abs(np.linalg.eigvals(np.asarray(P, dtype=np.float64))))[::-1]


def spectral_gap(P) -> float:
    """Absolute spectral gap 1 - |lambda_2| (0 for periodic or reducible-with-several-closed-classes chains)."""
    moduli = eigenvalue_moduli(P)
    return float(1.0 - moduli[1]) if len(moduli) > 1 else 1.0


def mixing_time(P, eps: float = 0.25, max_steps: int = 10_000):
    """Smallest t with d(t) <= eps (Levin-Peres-Wilmer definition); None if not reached by max_steps."""
    P = np.asarray(P, dtype=np.float64)
    pi = stationary_distribution(P)
    M = np.eye(len(P))
    for t in range(max_steps + 1):
        if 0.5 * np.abs(M - pi[None, :]).sum(1).max() <= eps:
            return t
        M = M @ P
    return None


@dataclass
class ChainReport:
    """Exact properties of a chain. period: of the chain if irreducible, else the largest over closed
    classes; stationary: None unless unique; mixing_time and spectral_gap: None unless ergodic."""

    n_states: int
    irreducible: bool
    n_communicating_classes: int
    n_closed_classes: int
    period: int
    aperiodic: bool
    diameter: float
    stationary: np.ndarray | None
    spectral_gap: float | None
    mixing_time: int | None

    @property
    def ergodic(self) -> bool:
        """Irreducible and aperiodic: a unique stationary distribution that every start converges to."""
        return self.irreducible and self.aperiodic

    def as_dict(self) -> dict:
        return {
            "n_states": self.n_states, "irreducible": self.irreducible, "aperiodic": self.aperiodic,
            "ergodic": self.ergodic, "n_communicating_classes": self.n_communicating_classes,
            "n_closed_classes": self.n_closed_classes, "period": self.period,
            "diameter": None if math.isinf(self.diameter) else int(self.diameter),
            "spectral_gap": self.spectral_gap, "mixing_time": self.mixing_time,
        }


def analyse_chain(P, eps: float = 0.25, max_steps: int = 10_000) -> ChainReport:
    """Irreducibility, period, diameter, stationary distribution, spectral gap and mixing time of P."""
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or len(P) > MAX_STATES:
        raise MapSuiteError(f"transition matrix must be square with at most {MAX_STATES} states, got {P.shape}")
    if (P < 0).any() or not np.allclose(P.sum(1), 1.0, atol=1e-9):
        raise MapSuiteError("transition matrix rows must be probabilities summing to 1")
    classes = communicating_classes(P)
    closed = closed_classes(P, classes)
    periods = [class_period(P, c) for c in closed]
    irreducible = len(classes) == 1
    aperiodic = all(p == 1 for p in periods)
    ergodic = irreducible and aperiodic
    pi = stationary_distribution(P) if len(closed) == 1 else None
    return ChainReport(
        n_states=len(P), irreducible=irreducible, n_communicating_classes=len(classes),
        n_closed_classes=len(closed), period=max(periods), aperiodic=aperiodic,
        diameter=diameter(P) if irreducible else math.inf,  # some state is unreachable from another
        stationary=pi, spectral_gap=spectral_gap(P) if ergodic else None,
        mixing_time=mixing_time(P, eps, max_steps) if ergodic else None,
    )

"""Metropolis Monte Carlo of multi-species lattice gases on periodic 2D square grids (seed 001, App. A, Eq. 22).

State: (B, H, W) int8 species ids, e.g. 0 empty (or vapour), 1 particle, 2 liquid. Energy
(dimensionless, units of k_B T at T = 1):

    E = sum over nearest-neighbour bonds <ij> of J[s_i, s_j] + sum_i h[s_i]

with each bond counted once and "nearest neighbour" = range 1: the 8 sites of the Moore
neighbourhood by default (range 1 in the max-norm, the square context windows of Eq. 21), or
the 4 of the von Neumann neighbourhood.

Moves, vectorised over samples and over non-interacting sites (detailed balance holds: every
update is its own reverse and simultaneous updates never touch each other's neighbourhoods):
- hop (Kawasaki, canonical): a `mover` exchanges with an adjacent `into` site, bond by bond;
  per sub-step the bonds (a, a + e) for a on one of 16 sublattices of stride 4 and e one of the
  two axes, drawn at random, so H and W must be multiples of 4;
- flip (grand canonical): a site changes between two species; 4 sublattices of stride 2.
Temperature 0 accepts exactly the moves with dE <= 0.
"""

from __future__ import annotations

import numpy as np

from map_core.errors import MapSuiteError

NEIGHBOURHOODS = {
    "moore": ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)),
    "von_neumann": ((-1, 0), (0, -1), (0, 1), (1, 0)),
}
BONDS = ((0, 1), (1, 0))  # bond orientations of hops: along x, along y


def neighbour_offsets(neighbourhood: str) -> tuple:
    if neighbourhood not in NEIGHBOURHOODS:
        raise MapSuiteError(f"neighbourhood must be one of {sorted(NEIGHBOURHOODS)}, not {neighbourhood!r}")
    return NEIGHBOURHOODS[neighbourhood]


def check_lattice(shape, stride: int = 4) -> None:
    h, w = shape
    if h % stride or w % stride or min(h, w) < 4:
        raise MapSuiteError(f"Metropolis lattices need sides that are multiples of {stride} (>= 4), got {h}x{w}")


def lattice_energy(state, J, h=None, neighbourhood: str = "moore") -> np.ndarray:
    """(B,) total energy of (B, H, W) periodic states; J (n_species, n_species) symmetric, h (n_species,)."""
    s = np.asarray(state).astype(np.int64)
    J = np.asarray(J, dtype=np.float64)
    energy = np.zeros(len(s))
    for dy, dx in neighbour_offsets(neighbourhood):
        if (dy, dx) > (0, 0):  # each bond once
            energy += J[s, np.roll(s, (-dy, -dx), axis=(1, 2))].sum((1, 2))
    if h is not None:
        energy += np.asarray(h, dtype=np.float64)[s].sum((1, 2))
    return energy


def _at(state, ys, xs, dy, dx):
    """Values at sites (ys + dy, xs + dx) (periodic), (B, len(ys), len(xs))."""
    h, w = state.shape[1:]
    return state[:, ((ys + dy) % h)[:, None], ((xs + dx) % w)[None, :]]


def _counts(state, ys, xs, shift, offsets, n_species):
    """(n_species, B, ny, nx) neighbour counts of each species around sites (ys, xs) + shift."""
    counts = np.zeros((n_species, len(state), len(ys), len(xs)), dtype=np.int64)
    for dy, dx in offsets:
        v = _at(state, ys, xs, shift[0] + dy, shift[1] + dx)
        for t in range(n_species):
            counts[t] += v == t
    return counts


def _accept(dE, temperature, rng):
    if temperature == 0:
        return dE <= 0
    return rng.random(dE.shape) < np.exp(-np.clip(dE, 0, None) / temperature)


def hop_substep(state, J, temperature, rng, mover: int, into: int, offset, direction, offsets) -> int:
    """One parallel Kawasaki sub-step: the bonds (a, a + direction), a on the stride-4 sublattice at
    `offset`; a bond holding one `mover` and one `into` swaps them with Metropolis acceptance.
    Returns the number of accepted swaps.

    Swapping a bond is its own reverse, so each bond update is reversible and so is the sub-step
    (its bonds never share a neighbourhood). dE of swapping a (species s_a) with its neighbour b
    (s_b), N' = neighbour counts without the partner: sum_t (J[s_b, t] - J[s_a, t]) (N'_t(a) - N'_t(b)).
    """
    J = np.asarray(J, dtype=np.float64)
    n_species = len(J)
    h, w = state.shape[1:]
    ys, xs = np.arange(offset[0], h, 4), np.arange(offset[1], w, 4)
    sa, sb = _at(state, ys, xs, 0, 0), _at(state, ys, xs, *direction)
    valid = ((sa == mover) & (sb == into)) | ((sa == into) & (sb == mover))
    if not valid.any():
        return 0
    na = _counts(state, ys, xs, (0, 0), offsets, n_species)
    nb = _counts(state, ys, xs, direction, offsets, n_species)
    onehot = np.eye(n_species, dtype=np.int64)
    na -= np.moveaxis(onehot[sb], -1, 0)  # the partner is not a neighbour that stays
    nb -= np.moveaxis(onehot[sa], -1, 0)
    dJ = np.moveaxis(J[sb] - J[sa], -1, 0)  # (n_species, B, ny, nx)
    dE = (dJ * (na - nb)).sum(0)
    ok = valid & _accept(dE, temperature, rng)
    state[:, ys[:, None], xs[None, :]] = np.where(ok, sb, sa)
    state[:, ((ys + direction[0]) % h)[:, None], ((xs + direction[1]) % w)[None, :]] = np.where(ok, sa, sb)
    return int(ok.sum())


def hop_sweep(state, J, temperature, rng, mover: int = 1, into: int = 0, neighbourhood: str = "moore") -> int:
    """8 sub-steps, each on one of the 32 bond sets (16 sublattices x 2 axes) drawn at random: on
    average one proposed exchange per site. Modifies `state` in place; returns accepted swaps."""
    check_lattice(state.shape[1:])
    offsets = neighbour_offsets(neighbourhood)
    accepted = 0
    for _ in range(8):
        k = int(rng.integers(32))
        accepted += hop_substep(state, J, temperature, rng, mover, into, ((k // 4) % 4, k % 4), BONDS[k // 16], offsets)
    return accepted


def flip_sweep(state, J, h, temperature, rng, pair=(0, 2), neighbourhood: str = "moore") -> int:
    """Metropolis flips s <-> s' for the two species in `pair` at every site holding one of them.

    dE = h[s'] - h[s] + sum_t (J[s', t] - J[s, t]) N_t. Four stride-2 sublattices in random order.
    Modifies `state` in place; returns accepted flips.
    """
    check_lattice(state.shape[1:], 2)
    J = np.asarray(J, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    offsets = neighbour_offsets(neighbourhood)
    a, b = pair
    rows, cols = state.shape[1:]
    accepted = 0
    for k in rng.permutation(4):
        ys, xs = np.arange(k // 2, rows, 2), np.arange(k % 2, cols, 2)
        s = _at(state, ys, xs, 0, 0)
        valid = (s == a) | (s == b)
        new = np.where(s == a, b, a)
        counts = _counts(state, ys, xs, (0, 0), offsets, len(J)).astype(np.float64)
        dE = h[new] - h[s] + np.einsum("bijt,tbij->bij", J[new] - J[s], counts)
        ok = valid & _accept(dE, temperature, rng)
        state[:, ys[:, None], xs[None, :]] = np.where(ok, new, s)
        accepted += int(ok.sum())
    return accepted

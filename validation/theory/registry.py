"""The toy systems `map-suite toy` knows: how to make their data and what is known about them exactly.

Each entry gives the data maker, its defaults (seed 001 Tables 2-3), the truncated correlation
expansion to fit (Table 1 where the seed gives it) and, where known, the exact expansion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from validation.theory import lattice_systems as ts
from validation.theory.correlation_expansion import CorrelationExpansion, expansion_for


@dataclass(frozen=True)
class ToySystem:
    """make(n, size, density, sweeps, seed, progress) -> (n, size, size) uint8 grids.

    density: rho (for hard_core: rho_eff of Eq. 10); sweeps: Monte Carlo sweeps (None if not MC);
    expansion: (L_c, order) of Eq. 21 to fit; exact(density) -> the exact expansion or None;
    neighbour_radius: max-norm radius of the neighbour counts compared (1: contacts);
    beta_eps: beta eps_nn of a Metropolis pair fluid (inf at T = 0), None otherwise."""

    name: str
    description: str
    make: Callable
    density: float
    sweeps: int | None
    expansion: tuple
    exact: Callable = lambda density: None
    neighbour_radius: int = 1
    beta_eps: float | None = None


def _ideal_exact(density: float) -> CorrelationExpansion:
    exp = expansion_for(1, 2)
    exp.coefficients[0] = ts.ideal_gas_bias(density)  # Eq. 7; no correlations
    return exp


def _metropolis(params: dict) -> Callable:
    def make(n, size, density, sweeps, seed, progress=None):
        return ts.lattice_fluid(n, (size, size), density, params["eps_nn"], params["temperature"], sweeps, seed,
                                progress=progress)
    return make


def _drying(n, size, density, sweeps, seed, progress=None):
    params = {k: v for k, v in ts.TABLE3.items() if k not in ("density", "sweeps")}
    return ts.drying_nanoparticles(n, (size, size), density, sweeps=sweeps, seed=seed, progress=progress, **params)[0]


SYSTEMS = {
    "ideal_gas": ToySystem(
        "ideal_gas", "ideal lattice gas, independent sites (Eq. 6-7)",
        lambda n, size, density, sweeps, seed, progress=None: ts.ideal_gas(n, (size, size), density, seed),
        0.05, None, (1, 2), _ideal_exact),
    "hard_core": ToySystem(
        "hard_core", "hard-core fluid from its exact MAP conditional, R_c = 1 (Eq. 10-16); density = rho_eff",
        lambda n, size, density, sweeps, seed, progress=None: ts.hard_core_fluid(n, (size, size), density, 1, seed),
        0.10, None, (1, 2), lambda density: ts.hard_core_expansion(density, 1)),
    **{
        name: ToySystem(
            name, f"Metropolis lattice fluid, seed 001 Table 2 system {i + 1} (eps_nn {p['eps_nn']:g}, T {p['temperature']:g})",
            _metropolis(p), p["density"], p["sweeps"], ts.TABLE1[name][:2],
            beta_eps=p["eps_nn"] / p["temperature"] if p["temperature"] > 0 else float("inf") * p["eps_nn"])
        for i, (name, p) in enumerate(ts.TABLE2.items())
    },
    "drying": ToySystem(
        "drying", "drying-mediated nanoparticle assembly (Rabani et al.), seed 001 Table 3, Eq. 22",
        _drying, ts.TABLE3["density"], ts.TABLE3["sweeps"], (2, 3),
        neighbour_radius=2),  # particles never touch (liquid shells): count the second shell too
}


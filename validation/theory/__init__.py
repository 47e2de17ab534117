"""Seed 001 (MAP as a Markov chain): exact chain analysis and the lattice toy systems of `map-suite toy`.

Imports only map_core. The chain:

- ``markov_chain``: exact transition matrices over context states, stationarity, mixing;
- ``markov_models``: transition matrices of conditional models (PixelCNN, correlation expansion);
- ``markov_empirical``: generated chains against the exact analysis;
- ``row_convergence``: row-wise log-probability saturation (Fig. 11d).

The lattice systems and the toy pipeline:

- ``lattice_systems``, ``lattice_mc``, ``lattice_stats``: training data (ideal gas, hard core,
  Tables 2-3 Monte Carlo) and its structure;
- ``correlation_expansion``: the truncated expansion of Eq. 21;
- ``lattice_training``: a PixelCNN on 2D lattice grids;
- ``registry``, ``checks``, ``figures``, ``pipeline``: what `map-suite toy` runs and reports.
"""

from validation.theory.markov_chain import analyse_chain, stationary_distribution, transition_matrix
from validation.theory.pipeline import ToySettings, run_toy
from validation.theory.registry import SYSTEMS
from validation.theory.row_convergence import row_convergence

__all__ = ["SYSTEMS", "ToySettings", "analyse_chain", "row_convergence", "run_toy", "stationary_distribution",
           "transition_matrix"]

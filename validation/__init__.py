"""validation: OpenMM simulation of q-TIP4P/F water, water observables, and the MAP release gate.

Imports map_core; map_core never imports this package. Subpackages, each importing only those
listed before it (and map_core):

- ``validation.md``: q-TIP4P/F in OpenMM, starting boxes, settings, platform, engine, resumable runs;
- ``validation.observables``: density, geometry, RDF, order, H-bonds, energy (``compute_*``);
- ``validation.gate``: profiles, inputs, boxes, cache, the checks, the session, results.json;
- ``validation.report``: the HTML report, its figures, data and model cards, a whole gate run;
- ``validation.cli``: ``map-suite`` and one module per command.

``validation.theory`` (seed 001: exact Markov-chain analysis and the lattice toy systems)
imports only map_core. ``conftest.py`` and ``test_gate_*.py`` are the pytest face of the gate.
"""

__all__ = []

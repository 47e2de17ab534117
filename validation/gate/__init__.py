"""The release gate: a model's boxes against its training data, in three groups of checks.

- ``profile`` (+ ``profiles/*.toml``): sizes, run lengths and thresholds of a run;
- ``inputs``: model, profile and reference, checked before any work;
- ``boxes``: generated boxes, training and held-out windows, ideal-gas controls;
- ``cache``: the on-disk cache of expensive stages;
- ``checks``: one check (value, threshold, verdict) and the distances it uses;
- ``structure``, ``classifier``, ``markov``, ``md``: the groups of checks;
- ``calibrate``: held-out scatter and negative controls behind the thresholds;
- ``expected``: a model's known failures (pytest xfail);
- ``session``: one run, groups computed lazily; ``results``: the results.json format;
- ``table1``, ``provenance``: seed 000's Table 1 and where a run came from.
"""

from validation.gate.checks import Check, verdict
from validation.gate.inputs import resolve_inputs
from validation.gate.profile import SHIPPED, load_profile
from validation.gate.results import load_results, write_results
from validation.gate.session import GROUPS, GateSession

__all__ = ["GROUPS", "SHIPPED", "Check", "GateSession", "load_profile", "load_results", "resolve_inputs",
           "verdict", "write_results"]

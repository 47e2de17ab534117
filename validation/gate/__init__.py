"""The release gate: a model's boxes against its training data, in three groups of checks.

- ``profile`` (+ ``profiles/*.toml``): sizes, run lengths and thresholds of a run;
- ``inputs``: model, profile and reference, checked before any work;
- ``boxes``: generated boxes, training and held-out windows, ideal-gas controls;
- ``cache``: the on-disk cache of expensive stages;
- ``checks``: one check (value, threshold, verdict) and the distances it uses;
- ``structure``, ``classifier``, ``markov``, ``md``: the groups of checks;
- ``given``: boxes from any generator judged instead of a model's samples (``--boxes``);
- ``significance``: bootstrap null distributions, p-values and z-scores of the checks;
- ``calibrate``: held-out scatter and negative controls behind the thresholds;
- ``error_rates``: the gate's measured false-failure rate and power; ``foreign``: the foreign
  water ensembles the power is measured against;
- ``expected``: a model's known failures (pytest xfail);
- ``session``: one run, groups computed lazily; ``results``: the results.json format;
- ``table1``, ``provenance``: seed 000's Table 1 and where a run came from.
"""

from validation.gate.checks import Check, verdict
from validation.gate.given import BoxesSession, open_session, resolve_box_inputs
from validation.gate.inputs import resolve_inputs
from validation.gate.profile import SHIPPED, load_profile
from validation.gate.results import load_results, write_results
from validation.gate.session import GROUPS, GateSession

__all__ = ["GROUPS", "SHIPPED", "BoxesSession", "Check", "GateSession", "load_profile", "load_results", "open_session",
           "resolve_box_inputs", "resolve_inputs", "verdict", "write_results"]

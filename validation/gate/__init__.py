"""The release gate: a model's boxes against its training data, in three groups of checks.

- ``profile`` (+ ``profiles/*.toml``): sizes, run lengths and thresholds of a run; ``profile_budget``: the memory and
  time a profile's numbers imply, refused at load when impossible;
- ``inputs``: the one resolve step: profile, reference, box source and geometry, checked before any work;
- ``reference``: the reference frames, their train/held-out split and windows;
- ``sources``: where the judged boxes come from (a model's samples, given grids, given boxes);
- ``boxes``: generated boxes, training and held-out windows, ideal-gas controls;
- ``cache``: the on-disk cache of expensive stages;
- ``registry``: one row per check (name, group, title, unit, threshold key, relation, measure);
- ``checks``: one check (value, threshold, verdict) and the distances it uses; ``values``: profile value validators;
- ``measures``, ``structure``, ``classifier``, ``markov``, ``md``: the groups of checks;
- ``streams``: the random-stream tags of a run;
- ``significance``: bootstrap null distributions, p-values and z-scores of the checks;
- ``calibrate``: held-out scatter and negative controls behind the thresholds;
- ``error_rates``: the gate's false-failure rate and power, measured through the session; ``rates``:
  where they are recorded, with the fingerprint of what they were measured under; ``foreign``: the foreign
  water ensembles the power is measured against;
- ``expected``: a model's known failures (pytest xfail);
- ``session``: one run, groups computed lazily; ``results``: the results.json format;
- ``table1``, ``provenance``: seed 000's Table 1 and where a run came from.
"""

from validation.gate.checks import Check, verdict
from validation.gate.inputs import GateInputs, resolve_box_inputs, resolve_gate_inputs, resolve_inputs
from validation.gate.profile import SHIPPED, load_profile
from validation.gate.registry import CHECKS, GROUPS, CheckSpec
from validation.gate.results import load_results, write_results
from validation.gate.session import GateSession, open_session

__all__ = ["CHECKS", "GROUPS", "SHIPPED", "Check", "CheckSpec", "GateInputs", "GateSession", "load_profile", "load_results",
           "open_session", "resolve_box_inputs", "resolve_gate_inputs", "resolve_inputs", "verdict", "write_results"]

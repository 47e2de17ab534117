"""A whole gate run as one function: the session's groups, results.json and the HTML report.

It sits in the report layer because it renders; the gate itself (``validation.gate``) never
imports the report.
"""

from __future__ import annotations

from pathlib import Path

from validation.gate.cache import default_cache_dir
from validation.gate.registry import GROUPS
from validation.gate.results import write_results
from validation.gate.session import open_session
from validation.report.html import render_report


def run_gate(inputs, out_dir, cache_dir=None, groups=GROUPS, progress: bool = False, log=None,
             command: str | None = None, client=None) -> dict:
    """Run the chosen groups, write results.json and the report into `out_dir`; return the results.

    client: a `distributed.Client` (map_core.cluster): the sampling batches and MD runs become Dask
    tasks; its workers must share the cache's file system."""
    out_dir = Path(out_dir)
    session = open_session(inputs, cache_dir or default_cache_dir(), progress, log, groups)
    session.client = client
    for g in groups:
        session.group(g)
    results = session.results(command)
    write_results(results, out_dir)
    render_report(results, out_dir)
    return results

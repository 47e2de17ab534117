"""The release gate as a pytest session: ``pytest validation [--model M.pt | --boxes FILE [--voxel NM]] [--profile P]
[--reference R.npz] [--out DIR]``.

Options are checked in ``pytest_configure``, before collection and before any work: a bad
profile, a missing model or a reference whose voxel size does not match the model is a pytest
usage error (one line, exit code 4). Each check is one test (``test_gate_*.py``) that shows its
measured value, threshold and verdict; the groups are computed once per session, lazily, with
every expensive stage cached under ``--gate-cache`` (default ~/.cache/map-suite/gate). At the end of the
session results.json and report.html are written to ``--out`` (default reports/gate-PROFILE).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from map_core.errors import MapSuiteError
from validation.gate.cache import default_cache_dir
from validation.gate.expected import load_expected_failures
from validation.gate.inputs import resolve_gate_inputs
from validation.gate.session import open_session
from validation.gate.results import write_results
from validation.report.html import render_report

GATE = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("map-suite gate")
    group.addoption("--model", default=None, help="checkpoint under test (default: the shipped default model)")
    group.addoption("--profile", default="quick", help="smoke, quick, paper or a profile .toml (default: quick)")
    group.addoption("--reference", default=None, help="frames file to compare with (default: the model's training data)")
    group.addoption("--out", default=None, help="report folder (default: reports/gate-PROFILE)")
    group.addoption("--gate-cache", default=None, help="cache folder (default: $MAP_SUITE_CACHE or ~/.cache/map-suite/gate)")
    group.addoption("--gate-seed", type=int, default=None, help="override the profile's seed")
    group.addoption("--boxes", default=None, help="judge boxes from another generator instead of a model (formats: see "
                    "map-suite validate --help); Markov checks are then skipped as not applicable")
    group.addoption("--voxel", type=float, default=None, help="with --boxes: voxelise both sides at this voxel, nm")
    group.addoption("--encoding", default=None, help="with --boxes --voxel: atoms or water classes")
    group.addoption("--classes", default="empty,H,O", help="with .npy class grids: class order (default: empty,H,O)")
    group.addoption("--top", default=None, help="with DCD, XTC or LAMMPS dump boxes: topology (PDB)")
    group.addoption("--types", default=None, help="with LAMMPS data files or dumps without an element column: "
                    "element of each atom type (e.g. 1=O,2=H)")
    group.addoption("--frames", type=int, default=None, help="with --boxes: judge N frames, evenly spaced")
    group.addoption("--expected-failures", default=None,
                    help="TOML file of checks this model is known to fail, per profile (marked xfail; see "
                         "validation/gate/expected.py); the verdict still counts them")


def pytest_configure(config):
    if config.option.help:
        return

    opt = config.option
    try:
        inputs = resolve_gate_inputs(opt.model, opt.boxes, opt.profile, opt.reference, opt.gate_seed, opt.voxel,
                                     opt.encoding, opt.classes, opt.top, opt.types, opt.frames)
        expected = load_expected_failures(opt.expected_failures, inputs.profile.name) if opt.expected_failures else {}
    except MapSuiteError as exc:
        raise pytest.UsageError(f"map-suite gate: {exc}") from None
    out = Path(opt.out) if opt.out else Path("reports") / f"gate-{inputs.profile.name}"
    t0 = time.time()
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def log(msg):
        if reporter is not None:
            reporter.write_line(f"[gate {time.time() - t0:6.0f} s] {msg}")

    config.stash[GATE] = {"session": open_session(inputs, Path(opt.gate_cache) if opt.gate_cache else default_cache_dir(),
                                                  progress=False, log=log), "out": out, "expected": expected}


def pytest_collection_modifyitems(config, items):
    entry = config.stash.get(GATE, None)
    if not entry or not entry["expected"]:
        return
    for item in items:
        name = getattr(getattr(item, "callspec", None), "params", {}).get("name")
        if name in entry["expected"]:
            item.add_marker(pytest.mark.xfail(reason=f"known failure of this model: {entry['expected'][name]}",
                                              raises=AssertionError, strict=False))


@pytest.fixture(scope="session")
def gate(request):
    """The GateSession of this pytest run."""
    return request.config.stash[GATE]["session"]


def run_check(gate, group: str, name: str, record_property):
    """Fetch one check, record its numbers on the test, and fail with its line if it failed."""
    skipped = gate.group(group).get("skipped", "")
    if skipped.startswith("not applicable"):
        pytest.skip(skipped)
    if name in gate.group(group).get("not_judged", {}):
        pytest.skip(gate.group(group)["not_judged"][name])
    check = gate.check(group, name)
    for field in ("value", "threshold", "relation", "unit", "control"):
        record_property(field, getattr(check, field))
    print(check.line())
    assert check.passed, check.line()


def pytest_sessionfinish(session, exitstatus):
    entry = session.config.stash.get(GATE, None)
    if entry is None or not entry["session"]._groups:
        return

    results = entry["session"].results(command="pytest validation " + " ".join(session.config.invocation_params.args))
    results["expected_failures"] = entry["expected"]
    write_results(results, entry["out"])
    path = render_report(results, entry["out"])
    entry["written"] = (path, results["verdict"])


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    entry = config.stash.get(GATE, None)
    if entry is None or "written" not in entry:
        return
    path, verdict = entry["written"]
    known = f" ({len(entry['expected'])} checks listed as known failures of this model)" if entry["expected"] else ""
    terminalreporter.write_sep("=", f"map-suite gate: {verdict.upper()}{known}; report {path}")

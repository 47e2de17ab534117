"""The gate end to end at a tiny scale: results.json, the self-contained HTML report (rendered by headless
Chromium), `map-suite report` re-rendering without recomputing, `map-suite validate` exit codes and its cache.

Two real runs: (1) the whole gate judging held-out training windows in place of generated boxes
(a control that should pass structure and MD), with a tiny real model for the Markov checks;
(2) `map-suite validate` on a random-weight model (which must fail, exit code 1).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from gate_helpers import CODER, DATA, class_frequencies, control_config, marginal_model, save_model

from map_core.atoms.frames import load_frames
from validation.cli.main import main
from validation.gate.boxes import window_grids
from validation.gate.inputs import resolve_inputs
from validation.gate.registry import CHECKS
from validation.gate.results import load_results, write_results
from validation.gate.session import GateSession
from validation.report.html import render_html, render_report

pytestmark = pytest.mark.slow  # subprocesses, OpenMM or whole gate runs: `pytest -m 'not slow' tests` skips them

TINY = control_config(CODER, layers=1, filters=4, dropout=0.0)
# A pipeline test, not a calibration (tests/test_gate_controls.py and test_gate_md_controls.py
# cover the thresholds at smoke scale): the smoke profile's boxes, very short MD.
PROFILE = """extends = "smoke"
[profile]
name = "tiny"
description = "pipeline test: smoke-scale structure, very short MD"
[structure]
classifier_epochs = 100
[markov]
seeded_boxes = 2
[md]
box_nm = 0.8
traj_ps = 0.02
min_waters = 6
[md.classical]
npt_ps = 1.0
nvt_ps = 0.5
[md.rpmd]
beads = 2
npt_ps = 0.02
nvt_ps = 0.02
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    profile = root / "tiny.toml"
    profile.write_text(PROFILE)
    freq = class_frequencies(load_frames(DATA), CODER)
    model = save_model(root / "random.pt", marginal_model(TINY, freq, random_weights=True, seed=1))
    return root, profile, model


@pytest.fixture(scope="module")
def heldout_run(setup):
    root, profile, model = setup
    inputs = resolve_inputs(model, profile)
    probe = GateSession(inputs, root / "cache")
    held = window_grids(inputs.frames, inputs.heldout_indices, probe.geometry.shape, probe.coder,
                        inputs.profile["sampling"]["n_boxes"], np.random.default_rng(5))
    session = GateSession(inputs, root / "cache", generated=held)
    for group in ("structure", "markov", "md"):
        session.group(group)
    results = session.results(command="tests/test_report.py")
    out = root / "heldout"
    write_results(results, out)
    render_report(results, out)
    return out, results


def test_heldout_boxes_pass_structure_and_md_runs_end_to_end(heldout_run):
    """Structure thresholds are the smoke profile's; MD here is far too short for its agreement checks
    (tests/test_gate_md_controls.py covers those at smoke scale), so only completion is asserted."""
    _, results = heldout_run
    assert results["judged"].startswith("given boxes")
    failed = [c for c in results["checks"] if (c["group"] == "structure" or c["name"].endswith("_stable"))
              and not c["passed"]]
    assert not failed, [(c["name"], c["value"], c["threshold"], c["detail"]) for c in failed]
    names = {c["name"] for c in results["checks"]}
    assert {"g_OO", "classifier", "markov_boundary", "md_rpmd_dipole"} <= names
    rows = [r["run"] for r in results["table1"]]
    assert "this run: classical (generated-seeded)" in rows and "seed 000: PIMD" in rows


def test_results_json_is_strict_json_with_every_number(heldout_run):
    out, results = heldout_run

    def refuse(token):
        raise ValueError(f"non-standard JSON constant {token}")

    on_disk = json.loads((out / "results.json").read_text(), parse_constant=refuse)
    judged = len(CHECKS) - len(results["structure"]["not_judged"])  # the combined test needs recorded null draws
    assert on_disk["verdict"] == results["verdict"] and len(on_disk["checks"]) == judged
    for c in on_disk["checks"]:
        assert {"name", "value", "threshold", "relation", "passed", "unit", "detail"} <= set(c)
    assert on_disk["provenance"]["model"]["sha256"] and on_disk["provenance"]["reference"]["is_training_data"]
    assert on_disk["structure"]["generated"]["rdf"]["g_OO"]["counts"]
    assert on_disk["md"]["generated"]["classical"]["series"]["temperature_k"]
    assert on_disk["structure"]["generated"]["sq"]["counts"] and on_disk["structure"]["generated"]["rings"]["molecules"]
    for name in ("rdf", "medium", "geometry", "order", "defects", "md", "markov"):
        for ext in ("pdf", "png"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 1000


def test_report_is_self_contained_and_escaped(heldout_run):
    out, results = heldout_run
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 7 and "<script" not in html.lower()
    assert "Against experiment (shown, not judged)" in html and "Skinner" in html  # g_OO and S_OO against experiment
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html) and "url(http" not in html
    assert "1.0003" in html and "0.9958" in html and results["provenance"]["model"]["sha256"] in html  # Table 1, provenance
    evil = json.loads(json.dumps(results))
    evil["provenance"]["model"]["path"] = "<script>alert(1)</script>"
    rendered = render_html(evil, {})
    assert "<script>alert(1)</script>" not in rendered and "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered


def test_report_command_rerenders_without_recomputing(heldout_run, tmp_path, capsys):
    out, results = heldout_run
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(out / "results.json", copy / "results.json")
    t0 = time.perf_counter()
    assert main(["report", str(copy / "results.json"), "--markdown"]) == 0
    elapsed = time.perf_counter() - t0
    table = capsys.readouterr().out
    assert f"Verdict: **{results['verdict'].upper()}**" in table and table.count("\n| ") == len(results["checks"]) + 1  # header + the checks
    assert (copy / "report.html").exists() and (copy / "figures" / "rdf.pdf").exists()
    assert not (copy / "cache").exists()  # nothing was sampled or simulated
    assert load_results(copy / "results.json")["verdict"] == results["verdict"]
    print(f"re-render: {elapsed:.1f} s")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _render_in_chromium(path: Path) -> tuple:
    """(DOM text, console lines) of a page opened by headless Chromium."""
    binary = _chromium()
    with tempfile.TemporaryDirectory() as profile_dir:
        run = subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--dump-dom",
                              path.resolve().as_uri()], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return run.stdout, console


def test_report_renders_in_headless_chromium_without_console_errors(heldout_run, tmp_path):
    """Skipped only where no chromium is installed and MAP_SUITE_REQUIRE_CHROMIUM is unset (CI sets it)."""
    if _chromium() is None:
        if os.environ.get("MAP_SUITE_REQUIRE_CHROMIUM"):
            pytest.fail("MAP_SUITE_REQUIRE_CHROMIUM is set but no chromium is on PATH (Debian: apt-get install -y chromium)")
        pytest.skip("no chromium binary on PATH (Debian: apt-get install -y chromium)")
    out, _ = heldout_run
    dom, console = _render_in_chromium(out / "report.html")
    assert "MAP suite release gate" in dom and dom.count("<svg") == 7
    assert console == [], console
    broken = tmp_path / "broken.html"  # the console check itself can fail
    broken.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    _, console = _render_in_chromium(broken)
    assert any("undefinedFunction" in line for line in console), console


def test_validate_exit_code_is_the_verdict_and_a_rerun_is_cached(setup, heldout_run, tmp_path, capsys):
    root, profile, model = setup
    out = tmp_path / "report"
    # the cache of the held-out run: the Markov checks there already sampled this model
    args = ["validate", "--model", str(model), "--profile", str(profile), "--out", str(out), "--no-progress",
            "--cache", str(root / "cache")]
    t0 = time.perf_counter()
    assert main(args) == 1  # a random-weight model fails
    first = time.perf_counter() - t0
    stdout = capsys.readouterr().out
    assert "verdict: FAIL" in stdout and "FAIL g_OO" in stdout
    cache_files = sorted(p.relative_to(root) for p in (root / "cache").rglob("*"))
    (out / "report.html").unlink()
    t0 = time.perf_counter()
    assert main(args) == 1
    second = time.perf_counter() - t0
    assert (out / "report.html").exists()
    assert sorted(p.relative_to(root) for p in (root / "cache").rglob("*")) == cache_files  # nothing recomputed
    print(f"validate: first run {first:.1f} s, cached re-run {second:.1f} s")
    results = load_results(out / "results.json")
    assert results["verdict"] == "fail" and results["judged"] == "model samples"
    assert results["groups"] == ["structure", "markov", "md"]


def test_pytest_gate_expected_failures_turn_known_failures_into_xfail(setup, tmp_path, capsys):
    """`pytest validation --expected-failures FILE`: the checks listed there fail as expected (exit 0),
    one failing check left off the list fails the run (exit 1); the verdict stays FAIL either way."""
    root, profile, model = setup
    out = tmp_path / "report"
    args = ["validate", "--model", str(model), "--profile", str(profile), "--out", str(out), "--no-progress",
            "--cache", str(root / "cache")]
    assert main(args) == 1  # cached by the previous test when run in order
    failed = [c["name"] for c in load_results(out / "results.json")["checks"] if not c["passed"]]
    assert failed
    listed = tmp_path / "known.toml"

    def gate(names):
        listed.write_text("[tiny]\n" + "".join(f'{n} = "random weights"\n' for n in names))
        return subprocess.run([sys.executable, "-m", "pytest", "validation", "-q", "-p", "no:cacheprovider",
                               "--model", str(model), "--profile", str(profile), "--gate-cache", str(root / "cache"),
                               "--out", str(tmp_path / "gate"), "--expected-failures", str(listed)],
                              cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=600)

    run = gate(failed)
    assert run.returncode == 0, run.stdout[-3000:]
    assert f"{len(failed)} xfailed" in run.stdout and "map-suite gate: FAIL" in run.stdout
    assert load_results(tmp_path / "gate" / "results.json")["expected_failures"] == {n: "random weights" for n in failed}
    run = gate(failed[1:])
    assert run.returncode == 1 and "FAILED validation/" in run.stdout, run.stdout[-3000:]
    listed.write_text('[tiny]\nno_such_check = "x"\n')
    run = subprocess.run([sys.executable, "-m", "pytest", "validation", "-q", "-p", "no:cacheprovider", "--model", str(model),
                          "--profile", str(profile), "--expected-failures", str(listed)],
                         cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=300)
    assert run.returncode == 4 and "unknown check 'no_such_check'" in run.stderr

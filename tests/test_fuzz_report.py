"""The report renderer on results files that load but hold anything (issue 16): a value replaced
by another JSON value or removed anywhere in a real results.json. `map-suite report` either
renders or ends in one line naming the file with exit 2, and then writes nothing.

A refusal is a pass only where the file is broken: every committed results.json, every earlier
format version that has shipped, and files whose free text and check values were edited to other
valid values must render (issue 26)."""

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validation.cli.main import main
from validation.gate.results import FORMAT_VERSION, UPGRADES, load_results
from validation.report.html import render_html

REPORTS = Path(__file__).resolve().parents[1] / "reports"
RESULTS = REPORTS / "default-quick" / "results.json"
ORIGINAL = json.loads(RESULTS.read_text())
EXAMPLES = int(os.environ.get("MAP_SUITE_FUZZ_EXAMPLES", "12")) // 2


def _paths(x, prefix=(), depth=0):
    out = [prefix] if prefix else []
    if depth < 6 and isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, prefix + (k,), depth + 1)
    elif depth < 6 and isinstance(x, list):
        for i, v in enumerate(x[:3]):  # the first few items stand for the rest
            out += _paths(v, prefix + (i,), depth + 1)
    return out


PATHS = _paths(ORIGINAL)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                   st.text(max_size=8), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                   st.just("REMOVE"))


def _mutated(path, value):
    data = copy.deepcopy(ORIGINAL)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value == "REMOVE":
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def _check(tmp_path, capsys, data, n):
    src = tmp_path / f"r{n}.json"
    src.write_text(json.dumps(data))
    out = tmp_path / f"out{n}"
    rc = main(["report", str(src), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    if rc == 2:
        assert str(src) in err and "\n" not in err, err
        assert not out.exists() or not any(p.is_file() for p in out.rglob("*")), list(out.rglob("*"))
    else:
        assert rc == 0 and (out / "report.html").is_file(), err
    return rc


@pytest.mark.slow
def test_mutated_results_render_or_end_in_one_line(tmp_path_factory, capsys):
    work = tmp_path_factory.mktemp("fuzz_report")
    counter = iter(range(10**6))

    @settings(max_examples=max(EXAMPLES, 3), deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(i=st.integers(0, len(PATHS) - 1), value=VALUES)
    def run(i, value):
        _check(work, capsys, _mutated(PATHS[i], value), next(counter))

    run()


@pytest.mark.parametrize("path, value", [
    (("checks", 0, "value"), "high"),  # caught by load_results' shape check
    (("geometry",), "nowhere"),  # loads, and only the renderer finds out
    (("checks",), {"a": 1}),
])
def test_known_bad_content_is_refused_in_one_line(tmp_path, capsys, path, value):
    assert _check(tmp_path, capsys, _mutated(path, value), 0) == 2


@pytest.mark.parametrize("results", sorted(REPORTS.glob("*/results.json")), ids=lambda p: p.parent.name)
def test_every_committed_results_file_renders(tmp_path, capsys, results):
    data = json.loads(results.read_text())
    assert _check(tmp_path, capsys, data, 0) == 0, capsys.readouterr().err


def test_version_1_results_render(tmp_path):
    """A version-1 file (before md.not_judged) is brought up to the current layout, not refused
    (the HTML only: the committed-file test above draws the figures through `map-suite report`)."""
    data = copy.deepcopy(ORIGINAL)
    data["format_version"] = 1
    data.get("md", {}).pop("not_judged", None)
    assert 1 in UPGRADES and FORMAT_VERSION > 1
    src = tmp_path / "v1.json"
    src.write_text(json.dumps(data))
    results = load_results(src)
    assert results["format_version"] == FORMAT_VERSION and results["md"]["not_judged"] == {}
    assert "</html>" in render_html(results, {})


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 0, True, 1.0, "1", None])
def test_unknown_versions_are_refused_saying_which_are_read(tmp_path, capsys, version):
    data = _mutated(("format_version",), version)
    src = tmp_path / "r.json"
    src.write_text(json.dumps(data))
    assert main(["report", str(src), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"versions {min(UPGRADES)} to {FORMAT_VERSION}" in err and str(src) in err
    assert not (tmp_path / "out" / "report.html").exists()


# Edits that keep a results file valid: free text, and a check's measured value and control as any
# finite number (a verdict is data, not something the renderer recomputes). Refusing one is a failure.
VALID_EDITS = [(("checks", k, key), st.text(max_size=40)) for k in range(3) for key in ("detail", "title")] + \
              [(("checks", k, key), st.floats(-1e6, 1e6)) for k in range(3) for key in ("value", "control")] + \
              [(("provenance", "command"), st.text(max_size=40))]


@pytest.mark.slow
def test_valid_edits_render(tmp_path_factory, capsys):
    work = tmp_path_factory.mktemp("valid_edits")
    counter = iter(range(10**6))

    @settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(data=st.data())
    def run(data):
        path, values = data.draw(st.sampled_from(VALID_EDITS))
        rc = _check(work, capsys, _mutated(path, data.draw(values)), next(counter))
        assert rc == 0, f"a valid edit at {path} was refused"

    run()

"""The report renderer on results files that load but hold anything (issue 16): a value replaced
by another JSON value or removed anywhere in a real results.json. `map-suite report` either
renders or ends in one line naming the file with exit 2, and then writes nothing."""

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from validation.cli.main import main

RESULTS = Path(__file__).resolve().parents[1] / "reports" / "default-quick" / "results.json"
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

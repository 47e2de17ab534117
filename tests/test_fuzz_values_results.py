"""Well-formed results.json files with hostile values (issue 29): the committed quick report's results
with one field (one the report reads: a check's value, a geometry number, a curve, a count, the format
version...) set to NaN, +-inf, 0, a negative, huge or overflowing number, a 5,000-digit integer, arrays
nested 100,000 deep, or a value of the wrong JSON type. `load_results` either returns results that the
report renders (HTML and Markdown, in process) or raises one MapSuiteError line naming the file;
`map-suite report` then exits 2 with one line and writes nothing.
"""

import copy
import json
import math
import sys
import time
from pathlib import Path

import pytest
from hostile import DEEP_JSON, FUZZ, HOSTILE_NUMBER, HUGE_DIGITS, WRONG_JSON_TYPE
from hypothesis import given
from hypothesis import strategies as st

from map_core.errors import MapSuiteError
from validation.cli.main import main
from validation.gate.rates import detectable_sentence, load_error_rates
from validation.gate.results import load_results
from validation.report.html import markdown_table, render_html

RESULTS = Path(__file__).resolve().parents[1] / "reports" / "default-quick" / "results.json"


def with_quoted_rates(results: dict) -> dict:
    """`results` quoting its profile's recorded error rates, as a run measured under them does
    (``validation.gate.rates.rates_for``): the committed report's may be a note instead (rates measured
    at other sizes), and the fields the report reads from quoted rates are fuzzed too."""
    rates = results.get("error_rates") or {}
    if rates.get("applies"):
        return results
    entry = load_error_rates(results["profile"]["profile"]["name"], rates.get("mode", "water@0.05"))
    return {**results, "error_rates": {**entry, "applies": True, "detectable_sentence": detectable_sentence(entry)}}


ORIGINAL = with_quoted_rates(json.loads(RESULTS.read_text()))

# Fields the report reads (validation/report: the HTML template, the Markdown table, the figures), one
# or two of each kind; a number in each of them is what a reader formats, divides or plots.
NUMBER_FIELDS = [("checks", 0, "value"), ("checks", 0, "threshold"), ("checks", 0, "control"), ("checks", 3, "value"),
                 ("checks", 0, "extra", "p_value"), ("checks", 0, "extra", "z_score"), ("geometry", "voxel_nm"),
                 ("geometry", "region_nm"), ("geometry", "burn_in_nm"), ("profile", "md", "box_nm"),
                 ("profile", "md.classical", "npt_ps"), ("profile", "structure", "sq_r_max_nm"),
                 ("structure", "generated", "rdf", "g_OO", "r", 0), ("structure", "generated", "sq", "references"),
                 ("markov", "empty", "burn_in"), ("error_rates", "false_failure", "rate"),
                 ("table1", 0, "density_g_cm3")]
COUNT_FIELDS = [("provenance", "seed"), ("provenance", "reference", "train_frames"), ("geometry", "shape_zyx", 1),
                ("structure", "generated", "boxes"), ("structure", "training", "molecules"),
                ("structure", "generated", "defects", "orphans"), ("error_rates", "false_failure", "draws"),
                ("profile", "md.rpmd", "beads"), ("table1", 0, "waters")]
TEXT_FIELDS = [("checks", 1, "name"), ("checks", 1, "unit"), ("checks", 1, "detail"), ("profile", "profile", "name"),
               ("provenance", "model", "sha256"), ("provenance", "date_utc"), ("calibration", "note"), ("judged",),
               ("table1", 0, "run")]
SHAPE_FIELDS = [("checks",), ("checks", 2), ("groups",), ("groups", 0), ("verdict",), ("checks", 0, "relation"),
                ("checks", 0, "passed"), ("checks", 0, "group"), ("geometry",), ("geometry", "shape_zyx"),
                ("structure", "generated", "rdf", "g_OO", "counts"), ("structure", "training", "hist", "q4"),
                ("markov", "empty", "plane_logp"), ("markov", "empty", "plane_logp", 0), ("provenance", "model"),
                ("provenance", "machine", "openmm_platforms"), ("calibration", "matches"), ("format_version",),
                ("md", "generated", "classical", "series", "time_ps")]
FIELDS = NUMBER_FIELDS + COUNT_FIELDS + TEXT_FIELDS + SHAPE_FIELDS
HUGE, DEEP, REMOVE = "<huge integer>", "<deep nesting>", "<removed>"


def mutated(path: tuple, value) -> dict:
    data = copy.deepcopy(ORIGINAL)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value == REMOVE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


def write(path, data) -> None:
    """JSON as Python writes it (NaN and Infinity as those tokens, which Python's reader accepts), with
    the markers replaced by a 5,000-digit integer and by arrays nested 100,000 deep."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # HOSTILE_NUMBER's 10**5000 is written out too
    try:
        text = json.dumps(data)
    finally:
        sys.set_int_max_str_digits(old)
    path.write_text(text.replace(json.dumps(HUGE), HUGE_DIGITS).replace(json.dumps(DEEP), DEEP_JSON))


def must_refuse(where: tuple, value) -> bool:
    """What no reader can use: the markers, non-finite numbers, the wrong JSON type where a number, a count,
    a string, a list or an object is read, and a format version other than those read."""
    if value in (HUGE, DEEP) or (isinstance(value, float) and not math.isfinite(value)):
        return True
    if value == REMOVE:  # some fields are optional (test_values_the_readers_cannot_use_are_refused_at_load: required ones)
        return False
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if where in NUMBER_FIELDS:
        return not number and not (value is None and where[-1] in ("value", "threshold", "control", "p_value", "z_score",
                                                                   "density_g_cm3"))
    if where in COUNT_FIELDS:
        return not (isinstance(value, int) and not isinstance(value, bool) and value >= 0) and \
            not (value is None and where[-1] == "waters")
    if where in TEXT_FIELDS:
        return not isinstance(value, str)
    if where == ("format_version",):
        return value not in (1, 2) or not isinstance(value, int) or isinstance(value, bool)
    return False  # a shape field: some values are fine (an empty check list, another relation is not)


def check_one(path, where, value):
    try:
        results = load_results(path)
    except MapSuiteError as exc:
        message = str(exc)
        assert str(path) in message and "\n" not in message, message
        return
    assert not must_refuse(where, value), f"{where} = {str(value)[:40]} was accepted"
    try:  # what loads, renders; or the observables refuse a value they compute with (the report command
        # turns that into one line naming the file: test_report_refuses_in_one_line_and_writes_nothing)
        assert "</html>" in render_html(results, {}) and markdown_table(results)
    except MapSuiteError:
        pass


HOSTILE = st.one_of(HOSTILE_NUMBER, WRONG_JSON_TYPE, st.sampled_from([HUGE, DEEP, REMOVE, 10**30, -(2**63), 2**64]))


@FUZZ
@given(where=st.sampled_from(FIELDS), value=HOSTILE)
def test_hostile_values_load_and_render_or_end_in_one_line(tmp_path_factory, where, value):
    path = tmp_path_factory.mktemp("results") / "results.json"
    write(path, mutated(where, value))
    check_one(path, where, value)


# The values of the issue and the readers' own failures: each is refused at load, in one line.
SEEN = [(("provenance", "seed"), HUGE), (("checks", 0, "value"), DEEP), (("checks", 0, "value"), "high"),
        (("checks", 0, "value"), float("nan")), (("checks", 0, "threshold"), 10**400), (("format_version",), "2"),
        (("format_version",), True), (("format_version",), 2.0), (("checks",), {"a": 1}), (("geometry",), "nowhere"),
        (("geometry", "shape_zyx"), [28, 28]), (("checks", 0, "extra"), ["p"]), (("checks", 5, "threshold"), None),
        (("structure", "generated", "rdf", "g_OO", "counts"), [1, 2]), (("markov", "empty", "plane_logp", 0), "x"),
        (("provenance", "model"), REMOVE), (("calibration",), REMOVE), (("error_rates", "false_failure", "rate"), "4 %"),
        (("table1", 0, "density_g_cm3"), "1.0")]


@pytest.mark.parametrize("where, value", SEEN, ids=[f"{'.'.join(map(str, w))}-{i}" for i, (w, _) in enumerate(SEEN)])
def test_values_the_readers_cannot_use_are_refused_at_load(tmp_path, where, value):
    path = tmp_path / "results.json"
    write(path, mutated(where, value))
    t0 = time.perf_counter()
    with pytest.raises(MapSuiteError) as info:
        load_results(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert time.perf_counter() - t0 < 10


def test_the_committed_results_load_and_render():
    results = load_results(RESULTS)
    assert "</html>" in render_html(results, {}) and markdown_table(results)


@pytest.mark.parametrize("where, value", [(("provenance", "seed"), HUGE), (("checks", 0, "value"), DEEP),
                                          (("geometry", "shape_zyx"), "28x28"),
                                          (("profile", "structure", "sq_r_max_nm"), 1e-12)],
                         ids=["huge", "deep", "wrong-type", "loads-but-S(q)-has-no-bins"])
def test_report_refuses_in_one_line_and_writes_nothing(tmp_path, capsys, where, value):
    path = tmp_path / "results.json"
    write(path, mutated(where, value))
    out = tmp_path / "out"
    assert main(["report", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))

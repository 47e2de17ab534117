"""The stated error rates carry the fingerprint of what they were measured under: a run quotes them
only when its profile sections, thresholds, geometry, mode and reference are the same."""

import json

import pytest

import validation.gate.rates as rates
from validation.gate.error_rates import judging_inputs, measure_error_rates
from validation.gate.inputs import resolve_inputs
from validation.gate.reference import SHIPPED_TRAINING_SET
from validation.gate.session import GateSession
from validation.report.html import render_html

QUOTED = "the structure group fails\nheld-out training water in"


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """One held-out draw of the smoke profile, measured through the session and recorded in a file of its own."""
    root = tmp_path_factory.mktemp("rates")
    result = measure_error_rates(judging_inputs("smoke", SHIPPED_TRAINING_SET, None), draws=1, log=lambda m: None,
                                 cache_dir=root / "cache")
    path = root / "error_rates.json"
    rates.write_error_rates(result, path)
    return root, path, result


def _header(inputs, cache, monkeypatch, path) -> str:
    monkeypatch.setattr(rates, "ERROR_RATES_PATH", path)
    return render_html(GateSession(inputs, cache, groups=()).results("test"), {})


def test_the_entry_records_what_it_was_measured_under(measured):
    _, path, result = measured
    entry = json.loads(path.read_text())["smoke"]["continuous"]
    assert entry["fingerprint"] == result["fingerprint"] and entry["judged_by"].endswith("judge_structure")
    assert entry["measured_under"]["mode"] == "continuous" and entry["false_failure"]["draws"] == 1


def test_a_run_under_the_same_fingerprint_quotes_the_rates(measured, monkeypatch):
    root, path, result = measured
    inputs = judging_inputs("smoke", SHIPPED_TRAINING_SET, None)
    assert rates.rates_for(inputs, path)["applies"] is True
    html = _header(inputs, root / "cache", monkeypatch, path)
    assert QUOTED in html and "under other thresholds" not in html


def test_a_changed_threshold_stops_the_header_quoting_the_old_rates(measured, monkeypatch, tmp_path):
    root, path, _ = measured
    profile = tmp_path / "tighter.toml"
    profile.write_text('extends = "smoke"\n[thresholds.continuous]\nhbonds_w1 = 0.01\n')
    inputs = judging_inputs(str(profile), SHIPPED_TRAINING_SET, None)
    assert inputs.profile.name == "smoke"  # same profile name and mode: only the fingerprint tells them apart
    assert rates.rates_for(inputs, path)["applies"] is False
    html = _header(inputs, root / "cache", monkeypatch, path)
    assert QUOTED not in html and "under other thresholds" in html


def test_a_model_run_is_not_quoted_rates_of_the_continuous_mode(measured, monkeypatch):
    _, path, _ = measured
    assert rates.rates_for(resolve_inputs(None, "smoke"), path) is None  # water@0.05 was never measured in this file

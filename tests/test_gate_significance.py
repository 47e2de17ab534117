"""The gate's statistics (issue 14): measurements add up over windows, bootstrap p-values and
z-scores on hand-made cases, the classifier's exact binomial p-value, and a small run of the
error-rate measurement (false failures on fresh held-out draws, power against re-oriented water)."""

import math

import numpy as np
import pytest
from scipy.stats import binom

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import load_frames, save_frames
from map_core.training.crops import split_frames
from validation.gate.boxes import judging_geometry, region_frames, window_ensemble
from validation.gate.classifier import accuracy_p_value
from validation.gate.error_rates import judging_inputs, measure_error_rates
from validation.gate.foreign import reoriented
from validation.gate.profile import load_profile
from validation.gate.reference import SHIPPED_TRAINING_SET
from validation.gate.significance import bootstrap_null, combine_measurements, p_value, z_score
from validation.gate import session as session_module
from validation.gate.structure import measure_structure, structure_values

SMOKE = load_profile("smoke")


@pytest.fixture(scope="module")
def shipped():
    frames = load_frames(SHIPPED_TRAINING_SET)
    return frames, *split_frames(len(frames), 0.2)


@pytest.fixture(scope="module")
def windows(shipped):
    frames, _, held = shipped
    geo = judging_geometry(0.05, "water", SMOKE["sampling"])
    whole = window_ensemble(frames, held, geo, None, 3, np.random.default_rng(5))
    return geo, whole, region_frames(whole, geo)


def test_measurements_of_single_windows_add_up_to_the_whole(windows):
    geo, whole, region = windows
    st = SMOKE["structure"]
    together = measure_structure(region, whole, st, geo)
    parts = [measure_structure(region.select([i]), whole.select([i]), st, geo) for i in range(len(region))]
    combined = combine_measurements(parts)
    for name in together["hist"]:
        np.testing.assert_array_equal(combined["hist"][name], together["hist"][name])
    for name in together["rdf"]:
        np.testing.assert_array_equal(combined["rdf"][name]["counts"], together["rdf"][name]["counts"])
        np.testing.assert_allclose(combined["rdf"][name]["expected"], together["rdf"][name]["expected"], rtol=1e-12)
    np.testing.assert_allclose(combined["energy_per_box"], together["energy_per_box"], rtol=1e-9)
    assert combined["density_per_box"] == together["density_per_box"] and combined["boxes"] == 3
    # the combined measurement is judged exactly like the whole one
    a, b = structure_values(combined, together, st), structure_values(together, together, st)
    assert all(a[k][0] == pytest.approx(b[k][0], abs=1e-12) for k in a)


def test_bootstrap_null_of_identical_windows_is_zero_where_the_distance_is_exact(windows):
    geo, whole, region = windows
    st = SMOKE["structure"]
    one = measure_structure(region.select([0]), whole.select([0]), st, geo)
    null = bootstrap_null([one], one, st, n_boxes=2, draws=5, seed=0)
    for name in ("density", "g_OO", "oh_bond", "hbonds", "energy", "tetrahedral"):
        assert max(null[name]) == pytest.approx(0.0, abs=1e-12), name


def test_p_value_and_z_score_on_hand_made_nulls():
    null = [0.0, 1.0, 2.0, 3.0]
    assert p_value(2.5, null) == pytest.approx(2 / 5)      # one null value >= 2.5, plus one
    assert p_value(3.0, null) == pytest.approx(2 / 5)      # ties count as at least as large
    assert p_value(-1.0, null) == 1.0
    assert p_value(10.0, null) == pytest.approx(1 / 5)     # the smallest reachable: 1 / (draws + 1)
    assert p_value(float("nan"), null) is None
    assert z_score(3.0, null) == pytest.approx((3.0 - 1.5) / np.std(null, ddof=1))
    assert z_score(1.0, [2.0, 2.0]) is None                # no spread, no z


def test_classifier_p_value_is_the_exact_binomial_tail():
    assert accuracy_p_value(10, 10) == pytest.approx(0.5 ** 10)
    assert accuracy_p_value(60, 100) == pytest.approx(binom.sf(59, 100, 0.5))
    assert accuracy_p_value(50, 100) > 0.5
    assert math.isnan(accuracy_p_value(0, 0))


def test_error_rate_draws_are_judged_by_the_modes_thresholds():
    th = judging_inputs("smoke", SHIPPED_TRAINING_SET, None).thresholds
    assert th["oh_bond_w1_nm"] == SMOKE["thresholds.continuous"]["oh_bond_w1_nm"] != SMOKE["thresholds"]["oh_bond_w1_nm"]
    assert judging_inputs("smoke", SHIPPED_TRAINING_SET, Encoding("water", 0.05)).thresholds == SMOKE["thresholds"]


def test_error_rates_small(shipped, tmp_path, monkeypatch):
    """The measurement behind GATE.md's table, at two draws: held-out water passes, re-oriented water fails."""
    frames, _, held = shipped
    path = tmp_path / "reoriented.npz"
    save_frames(path, reoriented(frames.select(held[::8]), seed=1))
    res = measure_error_rates(judging_inputs("smoke", SHIPPED_TRAINING_SET, None), draws=2, foreign={"reoriented": path},
                              power_draws=2, log=lambda msg: None, cache_dir=tmp_path / "work")
    assert res["mode"] == "continuous" and res["false_failure"]["draws"] == 2
    assert res["false_failure"]["failed"] == 0
    assert res["power"]["reoriented"]["rate"] == 1.0 and res["power"]["reoriented"]["per_check"]["hbonds"] == 2
    # a rerun on the same work folder (as after a kill) measures nothing again and gives the same rates
    measured = []
    monkeypatch.setattr(session_module, "measure_structure", lambda *a: measured.append(a) or measure_structure(*a))
    again = measure_error_rates(judging_inputs("smoke", SHIPPED_TRAINING_SET, None), draws=2, foreign={"reoriented": path},
                                power_draws=2, log=lambda msg: None, cache_dir=tmp_path / "work")
    assert measured == [] and again["false_failure"] == res["false_failure"] and again["power"] == res["power"]

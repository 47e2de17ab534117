"""Null-quantile thresholds and the combined test (validation.gate.thresholds, issue 28)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from map_core.atoms.encoding import Encoding
from validation.gate.registry import names, spec
from validation.gate.thresholds import (COMBINED, combined_null, combined_value, counted, fisher, level, max_heldout,
                                        null_quantile, thresholds_from, write_profile_thresholds)


def test_counted_checks_leave_out_what_cannot_fail_good_water():
    voxel, continuous = counted(Encoding("water", 0.05)), counted(None)
    assert voxel[-1] == continuous[-1] == COMBINED
    assert "orphan_rate" not in voxel and "orphan_rate" not in continuous   # seed 000's threshold
    assert "oh_bond" not in voxel and "hoh_angle" not in voxel              # rigid voxel molecules
    assert {"oh_bond", "hoh_angle"} <= set(continuous)
    assert set(continuous) == set(names("structure")) - {"orphan_rate"}


def test_null_quantile_is_the_draw_above_the_level_rounded_up():
    values = np.arange(1, 1001) / 1000.0                      # 0.001 .. 1.000
    q = level(0.05, 13)
    t = null_quantile(values, q)
    exceed = np.count_nonzero(values > t)
    assert exceed <= (1 - q) * len(values)                    # at most alpha/k of the draws above
    assert t >= np.quantile(values, q)
    assert t == pytest.approx(0.997, abs=1e-12)


def test_max_heldout_rule_reads_the_first_20_draws():
    values = [0.1] * 20 + [5.0]
    assert max_heldout("g_OO", values) == pytest.approx(0.15)
    assert max_heldout("classifier", [0.55] * 20) == pytest.approx(0.575)


def test_fisher_of_independent_uniform_p_values_is_chi2():
    rng = np.random.default_rng(0)
    f = [fisher(rng.uniform(size=4)) for _ in range(4000)]
    assert np.mean(np.asarray(f) > chi2.ppf(0.95, 8)) == pytest.approx(0.05, abs=0.012)


def _record(values: dict, alpha=0.05) -> dict:
    names_ = [*values, COMBINED]
    return {"values": values, "counted": names_, "alpha": alpha, "draws": len(next(iter(values.values())))}


def test_combined_null_is_leave_one_out_and_controls_its_own_rate():
    """The combined threshold, from the leave-one-out null, fails fresh null draws at about alpha/k."""
    rng = np.random.default_rng(1)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.0], [0.0, 0.0, 1.0]])   # two correlated checks
    draws = np.abs(rng.multivariate_normal(np.zeros(3), cov, size=1500))
    record = _record({f"c{i}": draws[:, i].tolist() for i in range(3)}, alpha=0.4)   # level 0.9: rate measurable
    t = thresholds_from(record)["null-quantile"][COMBINED]
    loo = combined_null(record["values"], record["counted"])
    assert loo.shape == (1500,)
    # draw 0 against the others, by hand
    p0 = [(1 + np.count_nonzero(draws[1:, i] >= draws[0, i])) / 1500 for i in range(3)]
    assert loo[0] == pytest.approx(fisher(p0))
    fresh = np.abs(rng.multivariate_normal(np.zeros(3), cov, size=2000))
    rate = np.mean([combined_value({f"c{i}": x[i] for i in range(3)}, record)[0] > t for x in fresh])
    assert rate == pytest.approx(1 - level(0.4, 4), abs=0.03)


def test_combined_test_sees_small_consistent_shifts_that_no_single_check_sees():
    """Twelve checks, each shifted by 1.2 null standard deviations: the per-check thresholds at alpha/k
    catch about 60 % of the draws, the combined test about 90 %; without the shift it fails about alpha/k."""
    rng = np.random.default_rng(2)
    k = 12
    record = _record({f"c{i}": rng.normal(size=1000).tolist() for i in range(k)})
    th = thresholds_from(record)["null-quantile"]
    shifted = rng.normal(size=(300, k)) + 1.2
    single = np.mean([(x > np.array([th[f"c{i}"] for i in range(k)])).any() for x in shifted])
    pooled = np.mean([combined_value({f"c{i}": x[i] for i in range(k)}, record)[0] > th[COMBINED] for x in shifted])
    null = np.mean([combined_value({f"c{i}": x[i] for i in range(k)}, record)[0] > th[COMBINED]
                    for x in rng.normal(size=(300, k))])
    assert pooled > 0.8 and single < 0.7
    assert null < 0.03


def test_a_check_that_could_not_be_measured_is_as_surprising_as_the_draws_allow():
    record = _record({"a": [0.1, 0.2, 0.3], "b": [0.1, 0.2, 0.3]})
    value, detail = combined_value({"a": float("nan"), "b": 0.0}, record)
    assert value == pytest.approx(fisher([1 / 4, 1.0]))
    assert "a 0.25" in detail


def test_profile_thresholds_are_written_in_place(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text("[thresholds]\n# note\ng_OO = 0.17   # why\nenergy_kj_mol = 2.8\n\n[thresholds.continuous]\ng_OO = 0.18\n")
    write_profile_thresholds(path, "thresholds.continuous", {"g_OO": 0.125})
    write_profile_thresholds(path, "thresholds", {"energy_kj_mol": 1.5})
    assert path.read_text() == ("[thresholds]\n# note\ng_OO = 0.17   # why\nenergy_kj_mol = 1.5\n\n"
                                "[thresholds.continuous]\ng_OO = 0.125\n")
    with pytest.raises(ValueError, match="no key 'q4_kl'"):
        write_profile_thresholds(path, "thresholds", {"q4_kl": 0.1})


def test_the_combined_row_has_no_profile_key():
    assert spec(COMBINED).threshold_key is None and spec(COMBINED).group == "structure"

"""The shipped experimental water curves (validation/observables/data/water_experiment.npz): units and
published peak values, measured on the curves themselves so that a wrong Å -> nm conversion fails."""

from __future__ import annotations

import numpy as np
import pytest

from validation.observables.experiment import WATER_EXPERIMENT, compare_g_oo, water_experiment

CURVES = {  # r key -> g keys on that grid
    "r_nm": ("g_OO", "g_OO_err"),
    "r_nm_soper": ("g_OO_soper", "g_OO_soper_err", "g_OH_soper", "g_OH_soper_err", "g_HH_soper", "g_HH_soper_err"),
}


@pytest.fixture(scope="module")
def exp():
    return water_experiment()


def extremum(r, g, lo, hi, kind=np.argmax):
    """(r, g) of the highest (or, with np.argmin, lowest) point with lo <= r <= hi."""
    inside = np.flatnonzero((r >= lo) & (r <= hi))
    i = inside[kind(g[inside])]
    return r[i], g[i]


def test_file_is_packaged_and_read_without_pickle(exp):
    assert WATER_EXPERIMENT.is_file()
    with np.load(WATER_EXPERIMENT, allow_pickle=False) as f:
        assert all(f[k].dtype != object for k in f.files)
    assert exp["S_kind"] == "none" and exp["q_nm_inv"] is None and exp["S_q"] is None
    for key in ("citation_skinner2013", "citation_skinner2014", "citation_soper2013", "g_OO_source", "soper_source"):
        assert isinstance(exp[key], str) and len(exp[key]) > 20


@pytest.mark.parametrize("r_key", sorted(CURVES))
def test_curves_are_finite_sorted_and_in_nm(exp, r_key):
    r = exp[r_key]
    assert r.ndim == 1 and np.all(np.isfinite(r)) and np.all(np.diff(r) > 0)
    assert r[0] >= 0 and 0.9 < r[-1] < 3.0  # nm: the tables reach 10 and 25 Å
    for g_key in CURVES[r_key]:
        assert exp[g_key].shape == r.shape and np.all(np.isfinite(exp[g_key])), g_key
    g = exp[CURVES[r_key][0]]
    assert np.all(g[r < 0.23] == 0.0) and abs(g[r > 0.9].mean() - 1.0) < 0.02


def test_xray_g_oo_first_peak_matches_skinner_2013(exp):
    r, g = extremum(exp["r_nm"], exp["g_OO"], 0.23, 0.32)
    assert r == pytest.approx(0.280, abs=0.002) and g == pytest.approx(2.57, abs=0.1)


def test_soper_curve_matches_the_paper(exp):
    r, g = exp["r_nm_soper"], exp["g_OO_soper"]
    for lo, hi, kind, r_pub, g_pub in [(0.23, 0.32, np.argmax, 0.279, 2.50),
                                       (0.30, 0.40, np.argmin, 0.339, 0.80),
                                       (0.40, 0.52, np.argmax, 0.453, 1.125)]:
        r_at, g_at = extremum(r, g, lo, hi, kind)
        assert r_at == pytest.approx(r_pub, abs=0.002) and g_at == pytest.approx(g_pub, abs=0.02)
    r_oh, g_oh = extremum(r, exp["g_OH_soper"], 0.15, 0.22)
    r_hh, g_hh = extremum(r, exp["g_HH_soper"], 0.21, 0.28)
    assert (r_oh, g_oh) == pytest.approx((0.186, 1.04), abs=0.01) and (r_hh, g_hh) == pytest.approx((0.243, 1.34), abs=0.01)


def test_published_points(exp):
    labels = list(exp["points_label"])
    n = len(labels)
    assert all(exp[k].shape == (n,) for k in ("points_r_nm", "points_r_err_nm", "points_g", "points_g_err"))
    i = labels.index("skinner2013 g_OO first peak")
    assert exp["points_r_nm"][i] == pytest.approx(0.280, abs=0.002) and exp["points_g"][i] == pytest.approx(2.57, abs=0.1)
    assert exp["points_r_err_nm"][i] == pytest.approx(0.001) and exp["points_g_err"][i] == pytest.approx(0.05)
    assert np.all((exp["points_r_nm"] > 0.2) & (exp["points_r_nm"] < 0.6))  # nm, not Å


def test_compare_g_oo_scores_the_xray_curve_against_itself_and_a_shifted_copy():
    """MLIPAudit-style score: zero RMSE and a peak in 2.8-3.0 Å for the X-ray curve itself; a curve
    moved out by 0.1 Å (or a g(r) given in Å by mistake) is scored off."""
    exp = water_experiment()
    same = compare_g_oo(exp["r_nm"], exp["g_OO"])
    assert same["rmse"] < 1e-12 and same["peak_in_window"] and same["range_nm"] == [0.25, 1.0]
    moved = compare_g_oo(exp["r_nm"] + 0.01, exp["g_OO"])
    assert moved["rmse"] > 0.1 and abs(moved["peak_nm"] - same["peak_nm"] - 0.01) < 1e-9
    angstrom = compare_g_oo(exp["r_nm"] * 10, exp["g_OO"])
    assert not angstrom["peak_in_window"]

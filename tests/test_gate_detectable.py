"""What the gate cannot see (issue 28): each structure check's perturbation family moves the
generated observable by delta, judged through the check's own compare, and the minimum detectable
difference is the smallest delta the check fails 80 % of held-out draws at."""

import copy
import math

import numpy as np
import pytest

from validation.gate.detectable import (check_value, heldout_draws, minimum_detectable, perturbable, perturbed_value,
                                        power_at)
from validation.gate.error_rates import Drawer, judging_inputs
from validation.gate.measures import hist_mean, pooled_energy, rdf_curve, rings_per_molecule, shift_histogram
from validation.gate.registry import spec, structure_rows
from validation.gate.structure import structure_values
from validation.observables.rdf import g_from_counts

HISTOGRAMS = ("oh_bond", "hoh_angle", "q4", "q6", "tetrahedral", "hbonds")


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """Four held-out draws of the smoke profile (continuous positions), judged by the session."""
    inputs = judging_inputs("smoke", coder=None)
    draws = heldout_draws(Drawer(inputs, tmp_path_factory.mktemp("detectable")), [7000 + d for d in range(4)])
    return inputs, draws, inputs.profile["structure"]


def _same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_every_check_but_orphans_and_the_classifier_has_a_family():
    assert set(perturbable()) == {"density", "g_OO", "g_OH", "g_HH", "S_OO", "rings", "energy", *HISTOGRAMS}
    assert set(perturbable()) <= {r.name for r in structure_rows()}
    assert spec("orphan_rate").measure.perturbation is None and spec("classifier").measure.perturbation is None
    assert spec("hbonds").measure.perturbation[1] == "per molecule" and spec("q4").measure.perturbation[1] == "dimensionless"


def test_perturbing_by_zero_leaves_every_value_unchanged(judged):
    _, draws, st = judged
    for gen, ref in draws:
        values = structure_values(gen, ref, st)
        for name in perturbable():
            assert _same(check_value(name, gen, ref, st), values[name][0]), name
            assert _same(perturbed_value(name, gen, ref, st, 0.0), values[name][0]), name


def test_perturb_never_changes_its_input(judged):
    _, draws, st = judged
    gen, ref = draws[0]
    before = copy.deepcopy(gen)
    for name in perturbable():
        moved = spec(name).measure.perturb(name, gen, 0.2)
        assert moved is not gen and moved != gen, name
    assert gen == before


@pytest.mark.parametrize("name", perturbable())
def test_perturb_moves_the_observable_by_delta(judged, name):
    """Each family does what its `perturbation` says, read back through the measure's own readout."""
    _, draws, st = judged
    gen, ref = draws[0]
    measure = spec(name).measure
    for delta in (0.13 * measure.perturb_limit(st), -0.07 * measure.perturb_limit(st)):
        moved = measure.perturb(name, gen, delta)
        if name == "density":
            assert np.allclose(moved["density_per_box"], np.asarray(gen["density_per_box"]) * (1 + delta))
        elif name == "energy":
            assert pooled_energy(moved["energy_per_box"])[0] == pytest.approx(pooled_energy(gen["energy_per_box"])[0] + delta)
        elif name == "rings":
            assert np.allclose(rings_per_molecule(moved), (1 + delta) * rings_per_molecule(gen))
        elif name in HISTOGRAMS:
            lo, hi, bins = measure.grid(st)
            h, h0 = np.asarray(moved["hist"][name]), np.asarray(gen["hist"][name])
            assert h.sum() == pytest.approx(h0.sum()) and (h >= 0).all()
            assert abs(hist_mean(h, lo, hi) - hist_mean(h0, lo, hi) - delta) <= 0.5 * (hi - lo) / bins
        else:
            entry, entry0 = (moved["sq"], gen["sq"]) if name == "S_OO" else (moved["rdf"][name], gen["rdf"][name])
            g, g0 = g_from_counts(entry["counts"], entry["expected"]), g_from_counts(entry0["counts"], entry0["expected"])
            ok = np.isfinite(g0)
            assert np.allclose(g[ok] - 1, (1 + delta) * (g0[ok] - 1))


def test_a_histogram_shift_is_a_shift_on_the_grid():
    counts = np.array([0.0, 4.0, 0.0, 0.0, 0.0])  # on [0, 5]: 4 values in [1, 2)
    assert shift_histogram(counts, 0.0, 5.0, 0.0).tolist() == counts.tolist()
    assert np.allclose(shift_histogram(counts, 0.0, 5.0, 1.0), [0, 0, 4, 0, 0])
    assert np.allclose(shift_histogram(counts, 0.0, 5.0, 0.25), [0, 3, 1, 0, 0])
    assert np.allclose(shift_histogram(counts, 0.0, 5.0, -1.5), [4, 0, 0, 0, 0])  # clipped into the end bin
    assert np.allclose(shift_histogram(counts, 0.0, 5.0, 10.0), [0, 0, 0, 0, 4])


def test_shifting_a_measured_histogram_by_zero_keeps_its_counts_exactly(judged):
    _, draws, _ = judged
    gen, _ = draws[0]
    for name in HISTOGRAMS:
        assert spec(name).measure.perturb(name, gen, 0.0)["hist"][name] == gen["hist"][name]


@pytest.mark.parametrize("name", ["g_OO", "g_OH", "g_HH"])
def test_amplitude_minus_one_leaves_an_ideal_gas(judged, name):
    _, draws, _ = judged
    gen, _ = draws[0]
    moved = spec(name).measure.perturb(name, gen, -1.0)
    _, g = rdf_curve(moved, name)
    expected = np.asarray(gen["rdf"][name]["expected"])
    assert np.allclose(g[expected > 0], 1.0)
    sq = spec("S_OO").measure.perturb("S_OO", gen, -1.0)["sq"]
    assert np.allclose(g_from_counts(sq["counts"], sq["expected"])[np.asarray(sq["expected"]) > 0], 1.0)


def _above_all(draws, st) -> dict:
    """Thresholds 1 % above every draw's value of every perturbable check."""
    out = {}
    for name in perturbable():
        top = max(check_value(name, gen, ref, st) for gen, ref in draws)
        out[spec(name).threshold_key] = 1.01 * top if top > 0 else 1e-9
    return out


def test_power_is_zero_unperturbed_and_one_far_away(judged):
    _, draws, st = judged
    thresholds = _above_all(draws, st)
    for name in perturbable():
        far = 3.0 * spec(name).measure.perturb_limit(st)
        assert power_at(draws, name, 0.0, thresholds, st) == 0.0, name
        assert power_at(draws, name, far, thresholds, st) == 1.0, name
        assert power_at(draws, name, -far, thresholds, st) == 1.0, name


def test_the_energy_mdd_is_the_analytic_one(judged):
    """Energy value |b + delta| (b: generated - training pooled mean): with 4 draws, 80 % power needs
    every draw to fail, first reached at delta = max(T - b)."""
    inputs, draws, st = judged
    threshold = inputs.thresholds["energy_kj_mol"]
    b = np.array([pooled_energy(g["energy_per_box"])[0] - pooled_energy(r["energy_per_box"])[0] for g, r in draws])
    assert (np.abs(b) <= threshold).all()
    table = minimum_detectable(draws, inputs.thresholds, st)
    assert table["energy"]["increase"] == pytest.approx(max(threshold - b), rel=0.02)
    assert table["energy"]["decrease"] == pytest.approx(max(threshold + b), rel=0.02)
    assert table["energy"]["unit"] == "kJ/mol" and table["energy"]["power_at_zero"] == 0.0


def test_a_lower_threshold_detects_smaller_changes(judged):
    inputs, draws, st = judged
    loose = minimum_detectable(draws, inputs.thresholds, st)
    tight = minimum_detectable(draws, {k: 0.5 * v for k, v in inputs.thresholds.items()}, st)
    compared = 0
    for name, row in loose.items():
        for side in ("increase", "decrease"):
            if row[side] is None:  # not detectable within the family's limit (rings in smoke's tiny windows)
                continue
            assert tight[name][side] is not None and tight[name][side] < row[side], (name, side, tight[name][side], row[side])
            compared += 1
    assert compared >= 20

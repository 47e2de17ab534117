"""Toy systems of seed 001: exact facts of the lattice models, the Metropolis engine, the correlation
expansion (Eq. 21) and its brute-force fit, lattice statistics, and (slow) small PixelCNNs trained on them."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.model.receptive_field import receptive_field
from map_core.sampling.reference import sample_reference
from validation.theory.checks import compare_structure, dilute_pair_check, site_probabilities, structure_thresholds
from validation.theory.correlation_expansion import (
    causal_offsets,
    expansion_for,
    fit_expansion,
    n_coefficients,
    sample_expansion,
    site_contexts,
)
from validation.theory.lattice_mc import flip_sweep, hop_sweep, lattice_energy
from validation.theory.lattice_stats import neighbour_count_distribution, pair_correlation, structure_distances
from validation.theory.lattice_systems import (
    TABLE1,
    TABLE2,
    drying_nanoparticles,
    hard_core_expansion,
    hard_core_fluid,
    ideal_gas,
    ideal_gas_bias,
    lattice_fluid,
    random_particles,
)
from validation.theory.lattice_training import lattice_cross_entropy, train_lattice_model
from validation.theory.row_convergence import block_log_prob, converged_row, row_convergence


def contacts(grids) -> int:
    """Occupied nearest-neighbour (Moore) pairs, periodic."""
    g = np.asarray(grids).astype(np.int64)
    return int(sum((g * np.roll(g, (dy, dx), (1, 2))).sum() for dy, dx in [(0, 1), (1, 0), (1, 1), (1, -1)]))


# ---------------------------------------------------------------- ideal gas and hard core: exact statements

@given(rho=st.floats(0.001, 0.999))
@settings(max_examples=30, deadline=None)
def test_eq7_bias_gives_the_density(rho):
    c = ideal_gas_bias(rho)
    assert math.exp(c) / (math.exp(c) + math.exp(-c)) == pytest.approx(rho, rel=1e-9)
    exp = expansion_for(2, 3)
    exp.coefficients[0] = c
    ctx = np.random.default_rng(0).integers(0, 2, size=(5, len(exp.offsets)))
    np.testing.assert_allclose(exp.prob_occupied(ctx), rho, rtol=1e-9)  # no correlations: p = rho everywhere (Eq. 6)


def test_table1_coefficient_counts():
    """Seed 001 Table 1: 5, 79 and 301 fitting coefficients."""
    for name, (context, order, count) in TABLE1.items():
        assert n_coefficients(context, order) == count, name
    assert len(causal_offsets(3, dims=1)) == 3 and n_coefficients(3, 3, dims=1) == 7


def test_fit_recovers_the_ideal_gas_bias_and_no_correlations():
    rho = 0.2
    data = ideal_gas(48, (32, 32), rho, seed=1)
    exp = fit_expansion(data, 1, 2)
    n_sites = len(site_contexts(data, exp.offsets)[1])
    se = 0.5 / math.sqrt(n_sites * rho * (1 - rho))  # standard error of c_rho = logit / 2
    assert abs(exp.coefficients[0] - ideal_gas_bias(rho)) < 4 * se
    assert abs(exp.coefficients[0] - ideal_gas_bias(0.22)) > 4 * se  # a 10 % wrong density is resolved
    assert np.abs(exp.coefficients[1:]).max() < 0.1


def test_hard_core_fluid_is_its_exact_expansion():
    """Eq. 10-11 sampled site by site == Eq. 21 with the coefficients of Eq. 15-16 (same uniforms)."""
    rho_eff = 0.3
    direct = hard_core_fluid(6, (12, 16), rho_eff, 1, seed=4)
    via_expansion = sample_expansion(hard_core_expansion(rho_eff, 1), (12, 16), 6, seed=4)
    assert np.array_equal(direct, via_expansion)
    # no two particles within R_c = 1 (max norm) anywhere, boundaries included
    padded = np.pad(direct, ((0, 0), (1, 1), (1, 1)))
    for dy, dx in [(0, 1), (1, -1), (1, 0), (1, 1)]:
        assert not (padded[:, 1:-1, 1:-1] & padded[:, 1 + dy : padded.shape[1] - 1 + dy, 1 + dx : padded.shape[2] - 1 + dx]).any()
    assert direct.mean() < rho_eff  # the excluded volume lowers the density (Eq. 10, rho_eff > rho)


def test_fit_recovers_the_hard_core_coefficients():
    rho_eff = 0.25
    data = hard_core_fluid(40, (32, 32), rho_eff, 1, seed=2)
    exp = fit_expansion(data, 1, 2)
    ctx, target = site_contexts(data, exp.offsets)
    free = ctx.sum(1) == 0
    se = 0.5 / math.sqrt(free.sum() * rho_eff * (1 - rho_eff))
    assert abs(exp.coefficients[0] - hard_core_expansion(rho_eff).coefficients[0]) < 4 * se  # Eq. 15
    assert np.all(exp.coefficients[1:] < -3.0)  # Eq. 16: -inf, held finite by the ridge
    assert target[~free].max() == 0


@pytest.mark.parametrize("eps", [1.0, -1.0])
def test_fit_recovers_the_dilute_pair_coefficient(eps):
    """A dilute Metropolis fluid at T = 1: each causal nearest neighbour shifts the field by -beta eps / 2."""
    data = lattice_fluid(48, (32, 32), 0.05, eps, 1.0, 60, seed=0)
    check = dilute_pair_check(fit_expansion(data, 1, 2), eps)
    assert abs(check["c_nearest_fitted_mean"] - check["c_nearest_analytic_dilute"]) < 0.15
    assert abs(check["c_nearest_fitted_mean"]) > 0.3  # resolved from no correlation at all


# ---------------------------------------------------------------- the Metropolis engine samples Boltzmann

@pytest.mark.parametrize("eps,temperature", [(1.0, 1.0), (-1.0, 0.7)])
def test_hops_sample_the_boltzmann_distribution_of_two_particles(eps, temperature):
    """4x4 periodic lattice, 2 particles, Moore contacts: 64 of the 120 placements touch, so
    P(touch) = 64 w / (64 w + 56), w = exp(-eps / T)."""
    rng = np.random.default_rng(0)
    state = random_particles(3000, (4, 4), 2 / 16, rng).astype(np.int8)
    J = np.array([[0.0, 0.0], [0.0, eps]])
    touching = []
    for sweep in range(60):
        hop_sweep(state, J, temperature, rng)
        if sweep >= 20:
            touching.append(lattice_energy(state, J).mean() / eps)
    w = math.exp(-eps / temperature)
    exact = 64 * w / (64 * w + 56)
    assert np.mean(touching) == pytest.approx(exact, abs=0.02)
    assert state.sum() == 3000 * 2  # canonical: particles conserved


def test_zero_temperature_never_raises_the_energy():
    rng = np.random.default_rng(3)
    state = random_particles(6, (16, 16), 0.2, rng).astype(np.int8)
    J, h = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, -2.0], [0.0, -2.0, -1.0]]), np.array([0.0, 0.0, 1.5])
    state[(state == 0) & (rng.random(state.shape) < 0.5)] = 2
    energy = lattice_energy(state, J, h)
    for _ in range(10):
        flip_sweep(state, J, h, 0.0, rng)
        hop_sweep(state, J, 0.0, rng, mover=1, into=2)
        new = lattice_energy(state, J, h)
        assert np.all(new <= energy + 1e-9)
        energy = new


def test_flips_of_independent_sites_follow_the_field():
    """J = 0: each site is liquid with probability e^{-h/T} / (1 + e^{-h/T})."""
    rng = np.random.default_rng(5)
    state = np.zeros((200, 8, 8), dtype=np.int8)
    h = np.array([0.0, 0.0, 0.8])
    for _ in range(20):
        flip_sweep(state, np.zeros((3, 3)), h, 1.0, rng)
    assert (state == 2).mean() == pytest.approx(math.exp(-0.8) / (1 + math.exp(-0.8)), abs=0.01)


def test_table2_fluids_order_as_their_couplings():
    """Contacts per particle: cold repulsive 0 < hot repulsive < ideal gas < hot attractive."""
    rho = TABLE2["hot_repulsive"]["density"]
    common = dict(n=16, shape=(16, 16), sweeps=100, seed=0)
    cold = lattice_fluid(density=rho, eps_nn=1.0, temperature=0.0, **common)
    hot = lattice_fluid(density=rho, eps_nn=1.0, temperature=1.0, **common)
    attractive = lattice_fluid(density=rho, eps_nn=-1.0, temperature=1.0, **common)
    ideal = random_particles(16, (16, 16), rho, np.random.default_rng(1))
    per = [contacts(g) / g.sum() for g in (cold, hot, ideal, attractive)]
    assert per[0] == 0 and per[0] < per[1] < per[2] < per[3]
    with pytest.raises(MapSuiteError, match="multiples of 4"):
        lattice_fluid(2, (10, 12), 0.1, 1.0, 1.0, 1)


def test_drying_conserves_particles_dries_and_keeps_particles_apart():
    particles, liquid = drying_nanoparticles(6, (16, 16), sweeps=60, seed=0)
    assert np.all(particles.sum((1, 2)) == round(0.10 * 256))
    assert not (particles & liquid).any()
    assert liquid.mean() < 0.8  # started all liquid; mu = 11 evaporates the bulk
    assert contacts(particles) == 0  # eps_nl = -20: every particle keeps its liquid shell, never touches another


# ---------------------------------------------------------------- statistics and the convergence analysis

def test_pair_correlation_and_neighbour_counts_of_known_ensembles():
    rho = 0.2
    ideal = ideal_gas(64, (32, 32), rho, seed=0)
    r, g = pair_correlation(ideal, 3.0)
    assert r[0] == 1.0 and r[1] == pytest.approx(math.sqrt(2))
    np.testing.assert_allclose(g, 1.0, atol=0.04)
    binomial = np.array([math.comb(8, k) * rho ** k * (1 - rho) ** (8 - k) for k in range(9)])
    np.testing.assert_allclose(neighbour_count_distribution(ideal), binomial, atol=0.02)
    hard = hard_core_fluid(32, (32, 32), 0.3, 1, seed=0)
    _, g_hard = pair_correlation(hard, 3.0)
    assert g_hard[0] == 0 and g_hard[1] == 0 and g_hard[2] > 1  # r = 1, sqrt 2 excluded; packing peak at 2
    assert neighbour_count_distribution(hard)[0] == 1.0
    d = structure_distances(hard, ideal_gas(32, (32, 32), hard.mean(), seed=1))
    same = structure_distances(hard[:16], hard[16:])
    assert d["pair_correlation"] > 5 * same["pair_correlation"] and d["neighbour_counts"] > 0.3
    thresholds = structure_thresholds(same)
    assert compare_structure(hard[:16], hard[16:], thresholds)["pass"]
    assert not compare_structure(hard[:16], ideal_gas(16, (32, 32), hard.mean(), seed=2), thresholds)["pass"]


def test_block_and_converged_row():
    rows = np.arange(12, dtype=float).reshape(2, 6)
    np.testing.assert_allclose(block_log_prob(rows, 3)[0], [0, 1, 3, 6, 9, 12])
    mean = np.array([-9.0, -6.0, -4.0, -3.05, -3.0, -2.95, -3.0, -3.02, -2.98, -3.0])
    row, plateau = converged_row(mean, np.full(10, 0.02), 5)
    assert row == 3 and plateau == pytest.approx(-2.99)


def test_row_convergence_sees_a_density_transient():
    """Boxes whose first 4 rows are empty and the rest an ideal gas: the density converges at row 4; the
    log-probability of an (untrained) model is measured on the very same grids."""
    torch.manual_seed(0)
    model = PixelCNN3D(ModelConfig(layers=1, filters=4, n_classes=2, dropout=0.0))
    grids = ideal_gas(64, (24, 16), 0.3, seed=0)
    grids[:, :4] = 0
    conv = row_convergence(model, grids, boundary="outside")
    assert conv.density_converged_row == 4 and conv.density_receptive_fields == 2.0  # rows_back = 2
    assert conv.row_mean.shape == conv.density_mean.shape == (24,)
    steady = row_convergence(model, ideal_gas(64, (24, 16), 0.3, seed=1), boundary="outside")
    assert steady.density_converged_row == 0


def test_training_is_deterministic_and_checks_input():
    data = ideal_gas(4, (12, 12), 0.3, seed=0)
    cfg = ModelConfig(layers=1, filters=4, n_classes=2, dropout=0.0)
    _, a = train_lattice_model(data, cfg, steps=3, batch=2, crop=8, seed=1)
    _, b = train_lattice_model(data, cfg, steps=3, batch=2, crop=8, seed=1)
    assert np.array_equal(a, b)
    with pytest.raises(MapSuiteError):
        train_lattice_model(data + 2, cfg, steps=1)


# ---------------------------------------------------------------- small PixelCNNs trained on the toys (slow)

@pytest.mark.slow
def test_pixelcnn_learns_the_ideal_gas_bias():
    """Eq. 7: a PixelCNN trained on an ideal gas has half logit gap 1/2 ln(p1/p0) = c_b at every site."""
    rho = 0.2
    data = ideal_gas(32, (24, 24), rho, seed=3)
    model, losses = train_lattice_model(data, ModelConfig(layers=1, filters=8, n_classes=2, dropout=0.0),
                                        steps=150, batch=16, crop=16, lr=5e-3, seed=0)
    p = site_probabilities(model, ideal_gas(8, (24, 24), rho, seed=4))
    gap = 0.5 * np.log(p / (1 - p))
    assert abs(gap.mean() - ideal_gas_bias(rho)) < 0.05
    assert abs(gap.mean() - ideal_gas_bias(0.25)) > 0.05
    assert gap.std() < 0.05  # no dependence on the context
    assert losses[-20:].mean() < losses[:5].mean()


@pytest.mark.slow
def test_pixelcnn_learns_the_hard_core_and_generates_it():
    """Trained on Eq. 10-11 data: p(1 | blocked) ~ 0, p(1 | free) ~ rho_eff; its samples (product sampler)
    match held-out data in pair correlation and neighbour counts; an ideal gas does not; the row-wise
    log-probability converges within 2 receptive fields (Fig. 11d)."""
    rho_eff = 0.3
    data = hard_core_fluid(48, (20, 20), rho_eff, 1, seed=5)
    train, held = data[:36], data[36:]
    config = ModelConfig(layers=2, filters=12, n_classes=2, dropout=0.0)
    model, _ = train_lattice_model(train, config, steps=300, batch=16, crop=12, lr=5e-3, seed=0)
    assert lattice_cross_entropy(model, held).item() < 0.9 * -(held.mean() * math.log(held.mean()) + (1 - held.mean()) * math.log(1 - held.mean()))
    p = site_probabilities(model, held)
    pad = np.pad(held.astype(bool), ((0, 0), (1, 0), (1, 1)))
    blocked = pad[:, :-1, :-2] | pad[:, :-1, 1:-1] | pad[:, :-1, 2:] | pad[:, 1:, :-2]
    assert p[blocked].mean() < 0.03 and abs(p[~blocked].mean() - rho_eff) < 0.05
    rows_back = receptive_field(config).rows_back
    grids, _ = sample_reference(model, (1, 20 + 2 * rows_back, 20), n_boxes=12, seed=1)
    gen = grids[:, 0].numpy()
    thresholds = structure_thresholds(structure_distances(held, train[:12]))
    assert compare_structure(held, gen[:, 2 * rows_back :], thresholds)["pass"]
    assert not compare_structure(held, ideal_gas(12, (20, 20), held.mean(), seed=6), thresholds)["pass"]
    conv = row_convergence(model, gen, boundary="outside")
    assert conv.receptive_fields <= 2.0 and conv.density_receptive_fields <= 2.0

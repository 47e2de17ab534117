"""MAP sequences as Markov chains (seed 001, Sec. III): exact analysis of tables, correlation expansions
and real PixelCNNs driven through the product's sampling path, and generated chains against it."""

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.stats import chi2

from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import OUTSIDE, ModelConfig, PixelCNN3D
from map_core.sampling.canvas import choose
from map_core.sampling.generate import sampler_function
from map_core.sampling.likelihood import log_prob
from validation.theory.correlation_expansion import expansion_for
from validation.theory.markov_chain import (
    analyse_chain,
    class_period,
    context_states,
    eigenvalue_moduli,
    encode_contexts,
    mixing_time,
    stationary_distribution,
    transition_matrix,
)
from validation.theory.markov_empirical import context_frequencies, sample_chain, total_variation, tv_bound
from validation.theory.markov_models import (
    chain_context_length,
    choice_distribution,
    expansion_conditional,
    pixelcnn_conditional,
    row_conditional,
    row_log_probs,
    row_start_distribution,
    row_states,
    rows_context_length,
    softmax_conditional,
)


def product_sampler(name):
    """The product's samplers by name; the fast one is checked as soon as it exists (same signature)."""
    if name == "fast":
        pytest.importorskip("map_core.sampling.fast")
    return sampler_function(name)


def tiny_model(layers=1, kernel=3, n_classes=2, filters=4, seed=0):
    torch.manual_seed(seed)
    return PixelCNN3D(ModelConfig(layers=layers, filters=filters, kernel=kernel, n_classes=n_classes, dropout=0.0))


def random_table(rng, n_classes, context, beta, scale=2.0):
    return softmax_conditional(rng.uniform(-scale, scale, size=(n_classes ** context, n_classes)), beta)


def check_ergodic_map_chain(P, n_classes, context, conditional):
    """Seed 001's claims for a finite-beta chain, plus the exact mixing bounds they imply."""
    rep = analyse_chain(P)
    assert rep.irreducible and rep.aperiodic and rep.ergodic and rep.period == 1
    assert rep.diameter <= context  # every state reachable within L_c steps (Fig. 5a) ...
    assert rep.diameter == context  # ... and exactly L_c between all-0 and all-(N_c-1) contexts
    assert np.count_nonzero(np.diag(P)) == n_classes  # the N_c single-class states are self-connected (Fig. 5b)
    pi = rep.stationary
    np.testing.assert_allclose(pi @ P, pi, atol=1e-10)
    assert np.all(pi > 0) and math.isclose(pi.sum(), 1.0)
    # From 0...0 and from (N_c-1)...(N_c-1) the chain reaches disjoint sets for t < L_c, so t_mix(1/4) >= L_c;
    # Doeblin: P^L >= (N_c delta)^L uniform, so |lambda_2|^L <= 1 - alpha and d(t) <= (1 - alpha)^floor(t / L).
    alpha = (n_classes * conditional.min()) ** context
    doeblin = context * math.ceil(math.log(0.25) / math.log1p(-alpha)) if alpha > 1e-12 else math.inf
    assert eigenvalue_moduli(P)[1] ** context <= 1 - alpha + 1e-9
    if rep.mixing_time is None:  # slower than analyse_chain's 10^4 steps: only if the bound allows it
        assert doeblin > 10_000
    else:
        assert context <= rep.mixing_time <= doeblin
    return rep


# ---------------------------------------------------------------- structure of the state space (Fig. 4-5)

@given(n_classes=st.integers(2, 3), context=st.integers(1, 4))
@settings(max_examples=12, deadline=None)
def test_context_states_shift_by_one_element(n_classes, context):
    states = context_states(n_classes, context)
    assert np.array_equal(encode_contexts(states, n_classes), np.arange(n_classes ** context))
    P = transition_matrix(np.full((len(states), n_classes), 1.0 / n_classes))
    for s, ctx in enumerate(states):
        successors = np.flatnonzero(P[s])
        assert len(successors) == n_classes  # each node has exactly N_c outgoing edges
        for t in successors:
            assert np.array_equal(states[t][:-1], ctx[1:])  # oldest dropped, newest appended


def test_ideal_gas_chain_mixes_in_exactly_lc_steps():
    """Context-free conditionals (ideal gas, Eq. 6): after L_c steps the context is exactly i.i.d."""
    for n_classes, context in [(2, 1), (2, 3), (3, 2)]:
        rho = np.linspace(1, 2, n_classes) / np.linspace(1, 2, n_classes).sum()
        P = transition_matrix(np.tile(rho, (n_classes ** context, 1)))
        rep = analyse_chain(P)
        assert rep.mixing_time == context and rep.diameter == context
        # nilpotent apart from the stationary part; a Jordan block of size <= L_c moves eigenvalues by
        # up to (n eps)^(1/L_c) in floating point, so that is the tolerance (2e-6 seen for L_c = 3)
        assert rep.spectral_gap == pytest.approx(1.0, abs=10 * (len(P) * np.finfo(float).eps) ** (1 / context))
        np.testing.assert_allclose(np.linalg.matrix_power(P, context), np.tile(rep.stationary, (len(P), 1)), atol=1e-12)
        expected = np.prod(rho[context_states(n_classes, context)], axis=1)
        np.testing.assert_allclose(rep.stationary, expected, atol=1e-12)


# ---------------------------------------------------------------- finite beta: irreducible, aperiodic, diameter <= L_c

@given(seed=st.integers(0, 10_000), n_classes=st.integers(2, 3), context=st.integers(1, 4),
       beta=st.floats(0.05, 2.0))
@settings(max_examples=25, deadline=None)
def test_random_tables_at_finite_beta_are_ergodic(seed, n_classes, context, beta):
    table = random_table(np.random.default_rng(seed), n_classes, context, beta)
    check_ergodic_map_chain(transition_matrix(table), n_classes, context, table)


@given(seed=st.integers(0, 10_000), context=st.integers(1, 5), order=st.integers(1, 3), beta=st.floats(0.1, 2.0))
@settings(max_examples=20, deadline=None)
@example(seed=7124, context=4, order=2, beta=2.0)  # a probability of 4e-18 that 1 - p once rounded to 0
def test_random_correlation_expansions_at_finite_beta_are_ergodic(seed, context, order, beta):
    """Eq. 21 on a 1D context, strongly repulsive terms included (finite stand-ins for Eq. 16's -inf)."""
    rng = np.random.default_rng(seed)
    exp = expansion_for(context, order, dims=1)
    exp.coefficients[:] = rng.normal(0, 2, size=exp.coefficients.shape)
    exp.coefficients[1:][rng.random(len(exp.coefficients) - 1) < 0.2] = -6.0
    table = expansion_conditional(exp, beta)
    check_ergodic_map_chain(transition_matrix(table), 2, context, table)


@given(seed=st.integers(0, 1000), layers=st.integers(1, 2), kernel=st.sampled_from([3, 5]), n_classes=st.integers(2, 3),
       temperature=st.sampled_from([0.5, 1.0, 2.0]))
@settings(max_examples=8, deadline=None)
def test_random_pixelcnn_chains_at_finite_temperature_are_ergodic(seed, layers, kernel, n_classes, temperature):
    model = tiny_model(layers, kernel, n_classes, seed=seed)
    context = chain_context_length(model)
    if n_classes ** context > 256:
        return
    assert context == 1 + layers * (kernel // 2)
    table = pixelcnn_conditional(model, temperature)
    check_ergodic_map_chain(transition_matrix(table), n_classes, context, table)


# ---------------------------------------------------------------- the table is what the product sampler draws from

@pytest.mark.parametrize("sampler", ["reference", "fast"])
@pytest.mark.parametrize("temperature", [0.7, 0])
def test_pixelcnn_table_is_the_sampler_conditional(temperature, sampler):
    """Every context given as fixed voxels of a (1, 1, L+1) box: the product sampler draws the last voxel with
    exactly the table's probability (log p to 1e-12), or its argmax at temperature 0."""
    model = tiny_model(layers=2, n_classes=3, seed=3)
    context = chain_context_length(model)
    states = context_states(3, context)
    table = pixelcnn_conditional(model, temperature)
    fixed = np.concatenate([states, np.full((len(states), 1), -1)], axis=1)[:, None, None, :]
    sample = product_sampler(sampler)
    grids, logp = sample(model, (1, 1, context + 1), n_boxes=len(states), temperature=temperature, seed=5, fixed=fixed,
                         dtype=torch.float64)
    drawn = grids[:, 0, 0, context].long().numpy()
    if temperature == 0:
        assert np.array_equal(drawn, table.argmax(1))
    else:
        np.testing.assert_allclose(logp.numpy(), np.log(table[np.arange(len(states)), drawn]), rtol=0, atol=1e-12)
        _, per = log_prob(model, grids.long(), temperature=temperature, fixed=fixed, per_voxel=True)
        np.testing.assert_allclose(per[:, 0, 0, context].exp().numpy(), table[np.arange(len(states)), drawn], atol=1e-12)


@given(seed=st.integers(0, 1000), temperature=st.sampled_from([0.3, 1.0, 3.0]))
@settings(max_examples=10, deadline=None)
def test_choice_distribution_is_what_choose_draws(seed, temperature):
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    probs = choice_distribution(logits, temperature)
    cdf = probs.cumsum(-1)
    for k in range(4):
        u = cdf[:, k] - probs[:, k] / 2  # middle of class k's interval
        cls, logp = choose(logits, u, temperature)
        assert torch.all(cls == k)
        torch.testing.assert_close(logp, probs[:, k].log(), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- infinite beta (argmax): the checker catches it

def test_checker_flags_a_reducible_argmax_chain():
    """Argmax of 'copy the last element' traps the chain in 0...0 or 1...1: two closed classes."""
    context = 3
    states = context_states(2, context)
    logits = np.stack([1.0 - states[:, -1], states[:, -1].astype(float)], axis=1)
    P = transition_matrix(softmax_conditional(logits, np.inf))
    rep = analyse_chain(P)
    assert not rep.irreducible and not rep.ergodic
    assert rep.n_closed_classes == 2 and rep.stationary is None and math.isinf(rep.diameter)
    with pytest.raises(MapSuiteError, match="closed classes"):
        stationary_distribution(P)
    assert analyse_chain(transition_matrix(softmax_conditional(logits, 1.0))).ergodic  # same logits, finite beta


def test_checker_flags_a_periodic_argmax_chain():
    """A deterministic chain that visits every state is a de Bruijn cycle: irreducible but periodic (period N_c^L)."""
    context = 3
    cycle = [0, 0, 0, 1, 0, 1, 1, 1]  # de Bruijn sequence B(2, 3)
    states = context_states(2, context)
    nxt = np.zeros(len(states), dtype=int)
    for i in range(8):
        window = [cycle[(i + k) % 8] for k in range(context)]
        nxt[encode_contexts(window, 2)] = cycle[(i + context) % 8]
    P = transition_matrix(np.eye(2)[nxt])
    rep = analyse_chain(P)
    assert rep.irreducible and not rep.aperiodic and not rep.ergodic
    assert rep.period == 8 and class_period(P, np.arange(8)) == 8
    assert rep.spectral_gap is None and rep.mixing_time is None
    assert eigenvalue_moduli(P)[1] == pytest.approx(1.0)


@given(seed=st.integers(0, 1000), layers=st.integers(1, 2), n_classes=st.integers(2, 3))
@settings(max_examples=8, deadline=None)
def test_argmax_chains_are_never_ergodic(seed, layers, n_classes):
    """At beta = inf every state has one successor: reducible, or a single cycle and then periodic."""
    model = tiny_model(layers, 3, n_classes, seed=seed)
    rep = analyse_chain(transition_matrix(pixelcnn_conditional(model, 0)))
    assert not rep.ergodic
    assert (not rep.irreducible) or rep.period == rep.n_states
    table = random_table(np.random.default_rng(seed), n_classes, 2, np.inf)
    assert not analyse_chain(transition_matrix(table)).ergodic


# ---------------------------------------------------------------- generated chains converge to the exact stationary state

@given(seed=st.integers(0, 10_000), n_classes=st.integers(2, 3), context=st.integers(1, 3), beta=st.floats(0.3, 1.5))
@settings(max_examples=15, deadline=None, derandomize=True)
def test_generated_chain_context_distribution_converges(seed, n_classes, context, beta):
    table = random_table(np.random.default_rng(seed), n_classes, context, beta)
    P = transition_matrix(table)
    pi = stationary_distribution(P)
    bounds = []
    for n in (2000, 8000):
        seq = sample_chain(table, n + context - 1, seed=seed, start_state=0, n_chains=4)
        tv = total_variation(context_frequencies(seq, n_classes, context), pi)
        bounds.append(tv_bound(P, n, n_chains=4))
        assert tv <= bounds[-1]
    assert bounds[1] / bounds[0] < 0.6  # the bound itself shrinks like n^-1/2 (0.5 for 4x the length)


def test_tv_check_fails_for_a_wrong_stationary_distribution():
    rng = np.random.default_rng(1)
    table = random_table(rng, 2, 3, 1.0, scale=3.0)
    P = transition_matrix(table)
    pi = stationary_distribution(P)
    wrong = stationary_distribution(transition_matrix(softmax_conditional(np.log(table), 0.5)))  # same model, beta / 2
    seq = sample_chain(table, 20_000, seed=2, n_chains=2)
    emp = context_frequencies(seq, 2, 3)
    bound = tv_bound(P, 20_000 - 2, n_chains=2)
    assert total_variation(emp, pi) <= bound < total_variation(emp, wrong)
    assert total_variation(emp, np.roll(pi, 1)) > bound


@pytest.mark.parametrize("sampler", ["reference", "fast"])
def test_product_sampler_chain_converges_to_the_exact_stationary_distribution(sampler):
    """Long 1D boxes from the product sampler visit contexts with the exact stationary
    frequencies of the PixelCNN's transition matrix, within the n^-1/2 bound; a wrong pi is rejected."""
    model = tiny_model(layers=1, n_classes=2, filters=4, seed=11)
    temperature = 0.4
    context = chain_context_length(model)
    P = transition_matrix(pixelcnn_conditional(model, temperature))
    pi = stationary_distribution(P)
    n, chains = 1500, 4
    grids, _ = product_sampler(sampler)(model, (1, 1, n), n_boxes=chains, temperature=temperature, seed=0)
    emp = context_frequencies(grids[:, 0, 0].long().numpy(), 2, context)
    bound = tv_bound(P, n - context + 1, n_chains=chains)
    assert total_variation(emp, pi) <= bound
    wrong = stationary_distribution(transition_matrix(pixelcnn_conditional(model, 1.5)))
    assert total_variation(emp, wrong) > bound


# ---------------------------------------------------------------- 2D: rows as super-states (Eq. 20, Fig. 7-8)

@given(seed=st.integers(0, 1000), width=st.integers(1, 3), n_classes=st.integers(2, 3), temperature=st.sampled_from([0.5, 1.0]))
@settings(max_examples=8, deadline=None)
def test_row_chain_is_exact_for_tiny_grids(seed, width, n_classes, temperature):
    """log p of whole (1, H, W) boxes (likelihood.log_prob, boundary 'outside') is the sum of the row chain's
    log-transitions, and the row chain is irreducible and aperiodic with diameter L_r."""
    model = tiny_model(layers=1, n_classes=n_classes, seed=seed)
    rows_back = rows_context_length(model)
    if n_classes ** (width * rows_back) > 256:
        return
    rng = np.random.default_rng(seed)
    height = rows_back + 3
    grids = rng.integers(0, n_classes, size=(6, height, width))
    expected = log_prob(model, grids[:, None], temperature=temperature, boundary="outside")
    total = torch.zeros(len(grids), dtype=torch.float64)
    for i in range(height):
        ctx = np.full((len(grids), rows_back, width), OUTSIDE)
        above = grids[:, max(0, i - rows_back) : i]
        ctx[:, rows_back - above.shape[1] :] = above
        total += row_log_probs(model, ctx, grids[:, i], temperature)
    np.testing.assert_allclose(total.numpy(), expected.numpy(), rtol=0, atol=1e-10)
    table = row_conditional(model, width, temperature)
    np.testing.assert_allclose(table.sum(1), 1.0, atol=1e-12)  # Eq. 20 is a distribution over whole rows
    P = transition_matrix(table)
    rep = analyse_chain(P, max_steps=2000)
    assert rep.ergodic and rep.diameter == rows_back
    assert np.count_nonzero(np.diag(P)) == n_classes ** width  # N_c^W self-connected super-states
    block = encode_contexts(grids[:, -rows_back:].reshape(len(grids), -1), n_classes)
    prev = encode_contexts(grids[:, -rows_back - 1 : -1].reshape(len(grids), -1), n_classes)
    last_row = row_log_probs(model, grids[:, -rows_back - 1 : -1], grids[:, -1], temperature)
    np.testing.assert_allclose(np.log(P[prev, block]), last_row.numpy(), atol=1e-10)
    assert not analyse_chain(transition_matrix(row_conditional(model, width, 0))).ergodic


@pytest.mark.parametrize("sampler", ["reference", "fast"])
def test_row_chain_predicts_the_product_sampler(sampler):
    """Distribution of the last L_r rows of sampled (1, H, 2) boxes = start distribution x P^(H - L_r)
    (chi-square test at p = 1e-6); the prediction for another temperature is rejected."""
    model = tiny_model(layers=1, n_classes=2, seed=4)
    rows_back, width, height, n, temperature = rows_context_length(model), 2, 5, 3000, 0.4
    P = transition_matrix(row_conditional(model, width, temperature))
    start = row_start_distribution(model, width, temperature)
    assert start.sum() == pytest.approx(1.0, abs=1e-12)
    predicted = start @ np.linalg.matrix_power(P, height - rows_back)
    grids, _ = product_sampler(sampler)(model, (1, height, width), n_boxes=n, temperature=temperature, seed=9)
    blocks = encode_contexts(grids[:, 0, -rows_back:].long().numpy().reshape(n, -1), 2)
    counts = np.bincount(blocks, minlength=len(P))
    critical = chi2.ppf(1 - 1e-6, len(P) - 1)

    def chi_square(p):
        return float(((counts - n * p) ** 2 / (n * p)).sum())
    assert chi_square(predicted) < critical
    hot = transition_matrix(row_conditional(model, width, 1.0))
    assert chi_square(row_start_distribution(model, width, 1.0) @ np.linalg.matrix_power(hot, height - rows_back)) > critical
    assert row_states(2, width, rows_back).shape == (len(P), rows_back, width)


def test_rejects_bad_input():
    with pytest.raises(MapSuiteError):
        transition_matrix(np.full((6, 2), 0.5))  # 6 is not a power of 2
    with pytest.raises(MapSuiteError):
        transition_matrix(np.full((4, 2), 0.7))
    with pytest.raises(MapSuiteError):
        analyse_chain(np.ones((3, 2)))
    with pytest.raises(MapSuiteError):
        context_frequencies([0, 1], 2, 3)
    assert mixing_time(np.full((2, 2), 0.5)) == 1  # d(0) = 1/2, d(1) = 0

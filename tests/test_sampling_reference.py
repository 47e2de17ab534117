"""The reference sampler: exact log-probabilities, conditioning, boundaries, seeds and batching."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.model.receptive_field import receptive_field
from map_core.sampling.canvas import halo_for, make_canvas
from map_core.sampling.likelihood import log_prob
from map_core.sampling.reference import sample_reference


def small_model(layers=2, filters=4, kernel=3, activation="gated", seed=0):
    torch.manual_seed(seed)
    return PixelCNN3D(ModelConfig(layers=layers, filters=filters, kernel=kernel, activation=activation, dropout=0.0))


@settings(max_examples=20, deadline=None)
@given(
    layers=st.integers(1, 2), kernel=st.sampled_from([3, 5]), activation=st.sampled_from(["gated", "relu"]),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
    temperature=st.sampled_from([0.5, 1.0, 2.0]), boundary=st.sampled_from(["outside", "empty", "wrap", "array"]),
    fix=st.booleans(), seed=st.integers(0, 1000),
)
def test_sampled_log_prob_is_exact(layers, kernel, activation, shape, temperature, boundary, fix, seed):
    """The log-probability the sampler accumulates voxel by voxel equals one teacher-forced pass."""
    model = small_model(layers, 3, kernel, activation, seed)
    rng = np.random.default_rng(seed)
    if boundary == "array":
        hz, hy, hx = halo_for(receptive_field(model.config))
        boundary = rng.integers(0, 3, size=(shape[0] + 2 * hz, shape[1] + 2 * hy, shape[2] + 2 * hx))
    fixed = np.where(rng.random(shape) < 0.3, rng.integers(0, 3, size=shape), -1) if fix else None
    grids, logp = sample_reference(model, shape, n_boxes=2, temperature=temperature, seed=seed, boundary=boundary, fixed=fixed)
    expected = log_prob(model, grids, temperature=temperature, boundary=boundary, fixed=fixed)
    np.testing.assert_allclose(logp.numpy(), expected.numpy(), rtol=1e-10, atol=1e-10)
    if fixed is not None:
        assert np.all(grids.numpy()[:, fixed >= 0] == fixed[fixed >= 0])


def test_same_seed_same_boxes_and_batching_does_not_matter():
    model = small_model()
    a, la = sample_reference(model, (3, 4, 5), n_boxes=3, seed=7)
    b, lb = sample_reference(model, (3, 4, 5), n_boxes=3, seed=7)
    c, lc = sample_reference(model, (3, 4, 5), n_boxes=1, seed=7, first_box=2)
    d, _ = sample_reference(model, (3, 4, 5), n_boxes=3, seed=8)
    assert torch.equal(a, b) and torch.equal(la, lb)
    assert torch.equal(a[2], c[0]) and lc[0] == la[2]
    assert not torch.equal(a, d)


def test_temperature_zero_is_argmax_and_high_temperature_is_uniform():
    model = small_model()
    greedy, _ = sample_reference(model, (2, 3, 3), n_boxes=2, temperature=0, seed=1)
    assert torch.equal(greedy[0], greedy[1])  # no randomness at all
    hot, _ = sample_reference(model, (4, 6, 6), n_boxes=4, temperature=1e4, seed=1)
    freq = np.bincount(hot.numpy().ravel(), minlength=3) / hot.numel()
    assert np.all(np.abs(freq - 1 / 3) < 0.08)


def test_sampler_follows_the_model_distribution():
    """Voxel frequencies of many sampled 1-voxel boxes match the model's softmax (chi-square bound)."""
    model = small_model()
    grids, _ = sample_reference(model, (1, 1, 1), n_boxes=3000, seed=3)
    _, per = log_prob(model, torch.zeros((1, 1, 1, 1), dtype=torch.int64), per_voxel=True)
    probs = torch.softmax(model.double()(torch.zeros(1, 3, 1, 1, 1, dtype=torch.float64))[0, :, 0, 0, 0], 0).detach().numpy()
    counts = np.bincount(grids.numpy().ravel(), minlength=3)
    chi2 = ((counts - 3000 * probs) ** 2 / (3000 * probs)).sum()
    assert chi2 < 13.8  # 99.9 % quantile of chi-square with 2 degrees of freedom
    assert np.isclose(per[0, 0, 0, 0].exp().item(), probs[0])


def test_extrapolates_to_boxes_larger_than_training_crops():
    model = small_model(layers=1)
    grids, logp = sample_reference(model, (2, 9, 11), n_boxes=1, seed=0)
    assert grids.shape == (1, 2, 9, 11) and torch.isfinite(logp).all()


def test_bad_inputs_are_refused():
    model = small_model()
    rf = receptive_field(model.config)
    with pytest.raises(MapSuiteError, match="boundary"):
        make_canvas((2, 2, 2), 1, rf, 3, boundary="periodic")
    with pytest.raises(MapSuiteError, match="even margin"):
        make_canvas((2, 2, 2), 1, rf, 3, boundary=np.zeros((3, 2, 2), int))
    with pytest.raises(MapSuiteError, match="fixed"):
        make_canvas((2, 2, 2), 1, rf, 3, fixed=np.zeros((2, 2, 3), int))
    with pytest.raises(MapSuiteError, match="classes"):
        log_prob(model, np.full((2, 2, 2), 5))

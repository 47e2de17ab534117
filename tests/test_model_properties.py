"""Causality and no-blind-spot of the 3D gated PixelCNN, over random shapes, configs and seeds."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from map_core.atoms.encoding import Encoding
from map_core.model.pixelcnn import GatedLayer, ModelConfig, PixelCNN3D, shift
from map_core.model.receptive_field import analytic_mask, dependency_mask, receptive_field, structural_mask


def _config(encoding: str, **arch) -> ModelConfig:
    return ModelConfig(encoding=encoding, n_classes=Encoding(encoding, 0.05).n_classes, **arch)


configs = st.builds(
    _config,
    encoding=st.sampled_from(["atoms", "water"]),  # "water": fixed class features before the first layer
    layers=st.integers(1, 3),
    filters=st.integers(2, 5),
    kernel=st.sampled_from([3, 5]),
    activation=st.sampled_from(["gated", "relu"]),
    head=st.sampled_from([0, 7]),  # 0: as wide as filters; 7: a head of its own width (the rank of the logits)
    dropout=st.just(0.0),
)


def future_violations(model, shape, target, seed) -> int:
    """Voxels at or after `target` in raster order that change the output at `target`:
    the union of the model's own random-weight gradients and its structural connectivity."""
    seen = dependency_mask(model, shape, target, inputs=3, seed=seed)
    seen |= dependency_mask(model, shape, target, structural=True, seed=seed)
    flat = np.ravel_multi_index(target, shape)
    order = np.arange(np.prod(shape)).reshape(shape)
    return int((seen & (order >= flat)).sum())


def blind_spots(config, model_cls=PixelCNN3D) -> int:
    """Voxels of the receptive field that no input and no weights let through (structural connectivity)."""
    rf = receptive_field(config)
    expected = analytic_mask(rf)
    shape = expected.shape
    target = (rf.planes_back, rf.rows_back, max(rf.cols, rf.cols_back))
    torch.manual_seed(0)
    seen = dependency_mask(model_cls(config), shape, target, structural=True)
    return int((expected & ~seen).sum())


@settings(max_examples=25, deadline=None)
@given(config=configs, shape=st.tuples(st.integers(1, 5), st.integers(1, 6), st.integers(1, 6)), seed=st.integers(0, 2**16), data=st.data())
def test_causality(config, shape, seed, data):
    target = tuple(data.draw(st.integers(0, s - 1)) for s in shape)
    torch.manual_seed(seed)
    assert future_violations(PixelCNN3D(config), shape, target, seed) == 0


@settings(max_examples=15, deadline=None)
@given(config=configs)
def test_no_blind_spot_and_exact_receptive_field(config):
    assert blind_spots(config) == 0
    np.testing.assert_array_equal(structural_mask(config), analytic_mask(receptive_field(config)))


# Deliberately wrong masks: the checks above must catch them.
class SeesCurrentVoxel(GatedLayer):
    """First horizontal layer without the one-column shift: sees the voxel it predicts."""

    def forward(self, d, v, h):
        d_pre = self.depth(d)
        d_seen = shift(d_pre, 2)
        v_pre = self.vertical(v) + self.depth_to_vertical(d_seen)
        h_pre = self.horizontal(h) + self.vertical_to_horizontal(shift(v_pre, 3)) + self.depth_to_horizontal(d_seen)
        h_out = self.horizontal_out(self.act(h_pre))
        return self.act(d_pre), self.act(v_pre), h_out if self.first else h_out + h


class NoVerticalToHorizontal(GatedLayer):
    """Vertical stack not fed to the horizontal one: the rows above are a blind spot."""

    def forward(self, d, v, h):
        d_pre = self.depth(d)
        d_seen = shift(d_pre, 2)
        v_pre = self.vertical(v) + self.depth_to_vertical(d_seen)
        h_in = shift(h, 4) if self.first else h
        h_pre = self.horizontal(h_in) + self.depth_to_horizontal(d_seen)
        h_out = self.horizontal_out(self.act(h_pre))
        return self.act(d_pre), self.act(v_pre), h_out if self.first else h_out + h


def model_with(layer_cls):
    class Broken(PixelCNN3D):
        def __init__(self, config):
            super().__init__(config)
            for i, old in enumerate(self.layers):
                new = layer_cls(config.n_classes if i == 0 else config.filters, config.filters, config.kernel, config.activation, first=(i == 0))
                self.layers[i] = new
    return Broken


def test_causality_check_catches_a_mask_that_sees_the_current_voxel():
    config = ModelConfig(layers=2, filters=3, dropout=0.0)
    torch.manual_seed(0)
    assert future_violations(model_with(SeesCurrentVoxel)(config), (3, 4, 4), (1, 2, 2), seed=0) > 0


def test_blind_spot_check_catches_a_missing_stack_connection():
    config = ModelConfig(layers=2, filters=3, dropout=0.0)
    assert blind_spots(config, model_with(NoVerticalToHorizontal)) > 0


@pytest.mark.parametrize("layers,kernel,planes", [(20, 3, 21), (8, 5, 17)])
def test_receptive_field_extent(layers, kernel, planes):
    rf = receptive_field(ModelConfig(layers=layers, kernel=kernel))
    assert rf.planes_back == planes and rf.cols == layers * (kernel // 2)
    assert rf.reach_nm == pytest.approx(planes * 0.025)

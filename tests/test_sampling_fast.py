"""The fast sampler returns exactly what the reference sampler returns."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from map_core.atoms.encoding import Encoding
from map_core.model import wavefront_sampler as fast_module
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.model.receptive_field import analytic_mask, receptive_field
from map_core.model.wavefront import Wavefront
from map_core.sampling.canvas import halo_for
from map_core.sampling.fast import sample_fast
from map_core.sampling.likelihood import log_prob
from map_core.sampling.reference import sample_reference


@settings(max_examples=20, deadline=None)
@given(
    layers=st.integers(1, 2), filters=st.integers(1, 4), kernel=st.sampled_from([3, 5]),
    activation=st.sampled_from(["gated", "relu"]),
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 5)),
    temperature=st.sampled_from([0.0, 0.3, 1.0, 3.0]), boundary=st.sampled_from(["outside", "empty", "wrap", "array"]),
    fix=st.sampled_from([None, "random", "per-box"]), n_boxes=st.integers(1, 3), seed=st.integers(0, 10_000),
    backend=st.sampled_from(["numpy", "torch"]), max_planes=st.sampled_from([None, 1, 2]),
    encoding=st.sampled_from(["atoms", "water"]),
)
def test_fast_equals_reference(layers, filters, kernel, activation, shape, temperature, boundary, fix, n_boxes, seed,
                               backend, max_planes, encoding):
    """backend "torch" on the CPU is the code path a GPU runs; max_planes 1 is a plane-by-plane wavefront;
    "water" models (fragment classes) feed class features, not one-hot vectors, to the network."""
    torch.manual_seed(seed)
    c = 3 if encoding == "atoms" else Encoding(encoding, 0.05).n_classes
    model = PixelCNN3D(ModelConfig(layers=layers, filters=filters, kernel=kernel, activation=activation, dropout=0.0,
                                   encoding=encoding, n_classes=c, head=(seed % 3) * 3))  # head 0 (= filters), 3 or 6
    rng = np.random.default_rng(seed)
    if boundary == "array":
        hz, hy, hx = halo_for(receptive_field(model.config))
        boundary = rng.integers(0, c, size=(shape[0] + 2 * hz, shape[1] + 2 * hy, shape[2] + 2 * hx))
    fixed = None
    if fix == "random":
        fixed = np.where(rng.random(shape) < 0.3, rng.integers(0, c, size=shape), -1)
    elif fix == "per-box":
        fixed = np.where(rng.random((n_boxes, *shape)) < 0.5, rng.integers(0, c, size=(n_boxes, *shape)), -1)
    kwargs = dict(n_boxes=n_boxes, temperature=temperature, seed=seed, boundary=boundary, fixed=fixed)
    ref, ref_lp = sample_reference(model, shape, **kwargs)
    kwargs.update(backend=backend, max_planes=max_planes)
    fast, fast_lp = sample_fast(model, shape, dtype=torch.float64, **kwargs)
    assert torch.equal(ref, fast)
    np.testing.assert_allclose(fast_lp.numpy(), ref_lp.numpy(), atol=1e-5, rtol=0)
    fast32, fast32_lp = sample_fast(model, shape, dtype=torch.float32, **kwargs)
    assert torch.equal(ref, fast32)  # a float32 near-tie could differ; at these sizes it would be a 1e-6 event
    np.testing.assert_allclose(fast32_lp.numpy(), ref_lp.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_fast_log_prob_matches_teacher_forcing_on_a_larger_box(backend):
    """A deep model (several planes in flight at once) on a box larger than its reach."""
    torch.manual_seed(0)
    model = PixelCNN3D(ModelConfig(layers=6, filters=5, dropout=0.0))
    grids, lp = sample_fast(model, (7, 14, 15), n_boxes=2, seed=1, dtype=torch.float64, backend=backend)
    np.testing.assert_allclose(lp.numpy(), log_prob(model, grids).numpy(), atol=1e-5, rtol=0)
    one_plane, _ = sample_fast(model, (7, 14, 15), n_boxes=2, seed=1, dtype=torch.float64, backend=backend, max_planes=1)
    assert torch.equal(one_plane, grids)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fast_on_cuda_equals_cpu():
    torch.manual_seed(0)
    model = PixelCNN3D(ModelConfig(layers=3, filters=6, dropout=0.0))
    cpu, cpu_lp = sample_fast(model, (5, 9, 10), n_boxes=2, seed=1, dtype=torch.float64)
    gpu, gpu_lp = sample_fast(model, (5, 9, 10), n_boxes=2, seed=1, dtype=torch.float64, device="cuda")
    assert torch.equal(cpu, gpu)
    np.testing.assert_allclose(gpu_lp.numpy(), cpu_lp.numpy(), atol=1e-8, rtol=0)


@settings(max_examples=30, deadline=None)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 7), st.integers(1, 7)), layers=st.integers(1, 3),
       kernel=st.sampled_from([3, 5]), max_planes=st.sampled_from([None, 1, 2]))
def test_wavefront_visits_every_voxel_once_and_batches_only_voxels_that_cannot_see_each_other(shape, layers, kernel, max_planes):
    wf = Wavefront(*shape, layers, kernel, max_planes)
    rf = receptive_field(ModelConfig(layers=layers, kernel=kernel))
    field = analytic_mask(rf)  # offsets (dz, dy, dx) a voxel sees, at index (dz, dy, dx) + centre
    centre = np.array([rf.planes_back, rf.rows_back, max(rf.cols, rf.cols_back)])
    seen = set()
    for t in range(wf.n_steps):
        step = wf.step(t)
        if step is None:
            continue
        voxels = list(zip(step.hz.tolist(), step.hy.tolist(), step.hx.tolist()))
        assert not seen & set(voxels)
        seen |= set(voxels)
        for a in voxels:
            for b in voxels:
                d = np.array(b) - np.array(a) + centre  # b as seen from a
                if a != b and np.all(d >= 0) and np.all(d < field.shape):
                    assert not field[tuple(d)], f"{b} is in the receptive field of {a}, same step {t}"
    assert seen == {(z, y, x) for z in range(shape[0]) for y in range(shape[1]) for x in range(shape[2])}
    smaller = Wavefront(*shape, layers, kernel, max_planes, max_slots=wf.n_slots - 1)  # a storage cap holds fewer planes
    assert smaller.n_slots <= wf.n_slots - 1 or smaller.in_flight == 1


def test_sampler_leaves_the_callers_model_alone():
    torch.manual_seed(0)
    model = PixelCNN3D(ModelConfig(layers=1, filters=2)).train()
    sample_fast(model, (2, 2, 2), dtype=torch.float64)
    sample_reference(model, (2, 2, 2))
    assert model.training and next(model.parameters()).dtype == torch.float32


def test_step_indices_uploaded_in_chunks_give_the_same_boxes(monkeypatch):
    """The torch path (a GPU's) takes its steps' index arrays from chunks uploaded at once; chunks of 3
    steps put many chunk edges inside one box, and the boxes still equal the numpy path's."""
    torch.manual_seed(2)
    model = PixelCNN3D(ModelConfig(layers=2, filters=4, dropout=0.0)).eval()
    numpy_grids, numpy_lp = sample_fast(model, (5, 6, 7), n_boxes=2, seed=4, dtype=torch.float64)
    monkeypatch.setattr(fast_module, "STEP_CHUNK", 3)
    torch_grids, torch_lp = sample_fast(model, (5, 6, 7), n_boxes=2, seed=4, dtype=torch.float64, backend="torch")
    assert torch.equal(numpy_grids, torch_grids)
    assert torch.allclose(numpy_lp, torch_lp, rtol=0, atol=1e-9)

"""The wrap-around boundary (issue 26): a voxel near the +x or +y face sees, through the wrap, the
opposite face's voxels of earlier rows and planes; the -x, -y and z faces stay open; sampling stays
exact (the reference and fast samplers agree, and both draw from the likelihood's product)."""

import numpy as np
import pytest
import torch

from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.model.receptive_field import receptive_field
from map_core.model.kinds import kind_of
from map_core.model.two_stage import TwoStage
from map_core.sampling.canvas import make_canvas
from map_core.sampling.fast import sample_fast
from map_core.sampling.likelihood import log_prob
from map_core.sampling.reference import sample_reference

SHAPE = (3, 6, 5)  # Z, Y, X voxels: wider than the field reaches directly (rows back 3, columns 2)


def model(seed=0):
    """An untrained net, its weights scaled 3x: at torch's initial scale, a voxel's dependence on far
    voxels is often nil (the head's ReLUs all off) or at round-off."""
    torch.manual_seed(seed)
    net = PixelCNN3D(ModelConfig(layers=2, filters=4, kernel=3, dropout=0.0))
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    return net


def structural_model():
    """Linear activations, positive weights, no biases (as ``receptive_field.dependency_mask``): every
    connection of the network shows in the log-probabilities, none is hidden by a ReLU that is off;
    weights 0.05-0.15 keep the logits near 1, where a change is not lost in a saturated softmax."""
    net = model()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_((torch.rand(p.shape, generator=gen) + 0.5) * 0.1 if name.endswith("weight") else torch.zeros_like(p))
    net.set_structural(True)
    return net


def depends(net, grid, source, target, boundary) -> bool:
    """Whether the log-probability of voxel `target` (z, y, x) changes when voxel `source` changes."""
    changed = grid.copy()
    changed[source] = (grid[source] + 1) % 3
    _, a = log_prob(net, grid[None], boundary=boundary, per_voxel=True)
    _, b = log_prob(net, changed[None], boundary=boundary, per_voxel=True)
    return not torch.allclose(a[0][target], b[0][target], rtol=0, atol=1e-12)


def test_wrap_sees_the_opposite_face_of_earlier_rows_and_planes_only():
    net = structural_model()
    grid = np.random.default_rng(0).integers(0, 3, SHAPE)
    z, ny, nx = 1, SHAPE[1], SHAPE[2]
    # +x face: the last column of row 1 sees column 0 of row 0 (an earlier row) through the wrap
    assert depends(net, grid, (z, 0, 0), (z, 1, nx - 1), "wrap")
    assert not depends(net, grid, (z, 0, 0), (z, 1, nx - 1), "outside")
    # +y face: the last row of plane 1 sees row 0 of plane 0 through the wrap
    assert depends(net, grid, (z - 1, 0, 2), (z, ny - 1, 2), "wrap")
    assert not depends(net, grid, (z - 1, 0, 2), (z, ny - 1, 2), "outside")
    # the -x face within a row stays open: column 0 never sees the same row's last column
    assert not depends(net, grid, (z, 1, nx - 1), (z, 1, 0), "wrap")
    # nothing sees a voxel after it in raster order (causality), ghosts included
    for target in [(z, 0, nx - 1), (z, 1, 0), (0, ny - 1, nx - 1)]:
        assert not depends(net, grid, (z, 1, 1), target, "wrap")


def test_sampled_boxes_fill_their_ghosts():
    """The canvas a sampler leaves holds, past the +x and +y faces, the images of the box's first
    columns and rows: what the likelihood rebuilds from the box alone."""
    net = model(1)
    canvas = make_canvas(SHAPE, 2, receptive_field(net.config), 3, "wrap")
    kind_of(net.config).sample_reference(net, canvas, seed=3)
    filled = canvas.values.clone()
    canvas.fill_images()
    assert torch.equal(filled, canvas.values)
    assert filled.shape[2:] == (SHAPE[1] + 2, SHAPE[2] + 2)  # 2 layers x r 1: two ghost rows and columns


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_wrap_fast_equals_reference_and_likelihood(backend):
    net = model(2)
    ref, ref_lp = sample_reference(net, (4, 6, 7), n_boxes=2, seed=5, boundary="wrap")
    fast, fast_lp = sample_fast(net, (4, 6, 7), n_boxes=2, seed=5, boundary="wrap", dtype=torch.float64, backend=backend)
    assert torch.equal(ref, fast)
    np.testing.assert_allclose(fast_lp.numpy(), ref_lp.numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(log_prob(net, ref, boundary="wrap").numpy(), ref_lp.numpy(), atol=1e-9, rtol=0)
    open_lp = log_prob(net, ref, boundary="outside")
    assert (open_lp - ref_lp).abs().max() > 1e-3  # the wrap changes what the edge voxels see


def test_two_stage_refuses_wrap():
    config = ModelConfig(layers=1, filters=2, dropout=0.0, encoding="water", n_classes=241, kind="two-stage", voxel_nm=0.05)
    net = TwoStage().build(config)
    with pytest.raises(MapSuiteError, match="wrap"):
        sample_reference(net, (2, 2, 2), boundary="wrap")

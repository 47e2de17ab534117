"""Molecular fragment classes ("water" encoding): codebook, encode/decode, rotations, sampling, generation."""

import hashlib

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from map_core.atoms import water_classes as wc
from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import load_frames
from map_core.atoms.molecules import group_waters, make_whole
from map_core.atoms.neighbors import minimum_image
from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D, one_hot
from map_core.sampling.fast import sample_fast
from map_core.sampling.generate import SamplingJob, cut_box, decode_grouped, generate_to_file
from map_core.sampling.likelihood import log_prob
from map_core.training.crops import all_rotations, apply_rotation, class_permutations, cut_crops, rotation_matrix, voxelise
from map_core.training.train import TrainSettings, train

DATA = "tests/data/water_md_small.npz"
CODER = Encoding("water", 0.05)


def _angle_errors(directions):
    """Degrees between each true O->H direction and its decoded one (best H order)."""
    u = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    v = wc.codebook()[wc.nearest_class(u) - 1]
    same = ((u - v) ** 2).sum((1, 2)) <= ((u - v[:, ::-1]) ** 2).sum((1, 2))
    v = np.where(same[:, None, None], v, v[:, ::-1])
    return np.degrees(np.arccos(np.clip((u * v).sum(-1), -1.0, 1.0)))


def test_codebook_is_whole_molecules_spread_over_all_orientations():
    book = wc.codebook()
    assert book.shape == (240, 2, 3) and CODER.n_classes == 241
    np.testing.assert_allclose(np.linalg.norm(book, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose((book[:, 0] * book[:, 1]).sum(-1), np.cos(wc.THETA_RAD), atol=1e-12)
    d2 = wc.pair_distance2(book, book) + np.eye(len(book)) * 10
    assert d2.min() > 0.05  # no two classes the same orientation
    rots = Rotation.random(4000, random_state=3).as_matrix()
    err = _angle_errors(np.einsum("nij,pj->npi", rots, wc.template_directions()))
    assert np.sqrt((err ** 2).mean()) < 14.0 and err.max() < 35.0


def test_codebook_is_the_one_models_were_trained_with():
    """Trained models index this exact codebook: a change of numpy, BLAS or platform that moved the
    farthest-point selection would decode every model wrong, so its digits are pinned here."""
    assert hashlib.sha256(np.round(wc.codebook(), 6).tobytes()).hexdigest() == "d5b2eab2ed6207d6792aad19db8efa56df7ab6a8c347296b75d4eae423cac64f"


def test_codebook_is_closed_under_the_cube_rotations():
    for m in wc.cube_rotations():
        perm = wc.class_permutation(tuple(m.ravel()))
        assert perm[0] == 0 and sorted(perm) == list(range(241))
        np.testing.assert_allclose(np.einsum("ij,kpj->kpi", m, wc.codebook()), _ordered(wc.codebook()[perm[1:] - 1],
                                   np.einsum("ij,kpj->kpi", m, wc.codebook())), atol=1e-9)


def _ordered(book, target):
    """`book` pairs with their H order matched to `target`'s."""
    same = ((book - target) ** 2).sum((1, 2)) <= ((book[:, ::-1] - target) ** 2).sum((1, 2))
    return np.where(same[:, None, None], book, book[:, ::-1])


def test_round_trip_keeps_every_molecule_whole():
    frames = load_frames(DATA)
    pos, elem, box, mol = frames.positions[0], frames.elements[0], frames.box[0], frames.molecule[0]
    grid, report = CODER.encode(pos, elem, box, periodic=True, molecule=mol)
    assert report.collisions == 0 and report.dropped == 0
    assert np.count_nonzero(grid) == len(pos) // 3
    dpos, delem, dmol = CODER.decode(grid)
    assert len(dpos) == len(pos) and (dmol >= 0).all()
    # decoded molecules have the q-TIP4P/F equilibrium geometry and are found by the grouping
    _, grouped = group_waters(dpos, delem)
    assert grouped.orphans == 0
    oh = dpos.reshape(-1, 3, 3)[:, 1:] - dpos.reshape(-1, 3, 3)[:, :1]
    np.testing.assert_allclose(np.linalg.norm(oh, axis=-1), wc.R_OH_NM, atol=1e-12)
    # each oxygen lands within half a voxel diagonal of where it was
    orig_o = np.mod(pos[elem == "O"], box)
    dist = np.linalg.norm(minimum_image(orig_o[:, None, :] - dpos[delem == "O"][None], box), axis=-1).min(1)
    assert dist.max() <= np.sqrt(3) / 2 * CODER.voxel_nm + 1e-9


def test_encode_groups_atoms_when_no_molecule_ids_are_given_and_refuses_bad_input():
    frames = load_frames(DATA)
    pos, elem, box, mol = frames.positions[1], frames.elements[1], frames.box[1], frames.molecule[1]
    with_ids, _ = CODER.encode(pos, elem, box, molecule=mol)
    grouped, _ = CODER.encode(pos, elem, box)
    np.testing.assert_array_equal(with_ids, grouped)
    with pytest.raises(MapSuiteError, match="no water class"):
        CODER.encode([[0.1, 0.1, 0.1]], ["C"], box)
    with pytest.raises(MapSuiteError, match="NaN"):
        CODER.encode([[np.nan, 0.1, 0.1]], ["O"], box)
    with pytest.raises(MapSuiteError, match="encoding must be"):
        Encoding("beads", 0.05)
    with pytest.raises(ValueError, match="241 classes"):
        ModelConfig(encoding="water", n_classes=3)


def test_rotating_a_grid_and_its_classes_equals_encoding_the_rotated_atoms():
    """The augmentation of training: a cube rotation of a voxel grid with `class_permutations`
    is exactly the grid of the rotated molecules."""
    frames = load_frames(DATA)
    pos, elem, mol = frames.positions[0], frames.elements[0], frames.molecule[0]
    n = int(frames.box[0][0] / CODER.voxel_nm)
    side = n * CODER.voxel_nm
    pos = make_whole(pos, elem, mol, frames.box[0])
    keep = np.repeat(np.all(pos[elem == "O"] < side, axis=1), 3)  # molecules whose O is in the cube
    pos, elem, mol = pos[keep], elem[keep], mol[keep]
    grid, _ = CODER.encode(pos, elem, [side] * 3, periodic=False, molecule=mol)
    rots = all_rotations()
    for rotation, perm in zip(rots, class_permutations(CODER, rots)):
        centre = np.full(3, side / 2)
        turned = (pos - centre) @ rotation_matrix(rotation).T + centre
        expected, _ = CODER.encode(turned, elem, [side] * 3, periodic=False, molecule=mol)
        np.testing.assert_array_equal(perm[apply_rotation(grid, rotation)], expected)


def test_rotation_matrix_follows_the_grid():
    grid = np.zeros((3, 3, 3), dtype=np.uint8)
    grid[1, 1, 2] = 1  # one step along +x from the centre
    for rotation in all_rotations():
        z, y, x = (int(v[0]) - 1 for v in np.nonzero(apply_rotation(grid, rotation)))
        np.testing.assert_array_equal(rotation_matrix(rotation) @ [1, 0, 0], [x, y, z])


def test_crops_turn_their_classes_on_numpy_and_torch_alike():
    grids = voxelise(load_frames(DATA), CODER)
    rots = all_rotations()
    perms = class_permutations(CODER, rots)
    specs = np.array([[0, 0, 1, 2, r] for r in range(24)])
    a = cut_crops(grids, specs, 8, rots, perms)
    b = cut_crops([torch.from_numpy(g) for g in grids], specs, 8, rots, [torch.from_numpy(p) for p in perms])
    np.testing.assert_array_equal(a, b.numpy())
    assert a.dtype == np.uint8 and (np.count_nonzero(a, axis=(1, 2, 3)) == np.count_nonzero(a[0])).all()


def _water_model(seed=0, layers=2, filters=4):
    torch.manual_seed(seed)
    return PixelCNN3D(ModelConfig(layers=layers, filters=filters, dropout=0.0, voxel_nm=CODER.voxel_nm,
                                  encoding="water", n_classes=CODER.n_classes)).eval()


def test_class_features_equal_one_hot_inputs_through_the_table():
    model = _water_model()
    canvas = torch.randint(-1, CODER.n_classes, (2, 3, 4, 5))
    torch.testing.assert_close(model.logits(canvas), model(one_hot(canvas, CODER.n_classes)), atol=1e-6, rtol=0)


def test_fast_sampler_log_prob_matches_teacher_forcing_for_fragment_classes():
    model = _water_model(layers=4, filters=5)
    grids, lp = sample_fast(model, (5, 9, 10), n_boxes=2, seed=4, dtype=torch.float64)
    assert grids.max() < CODER.n_classes
    np.testing.assert_allclose(lp.numpy(), log_prob(model, grids).numpy(), atol=1e-5, rtol=0)


@pytest.mark.slow
def test_generated_fragment_boxes_have_no_orphans_and_repair_for_md(tmp_path):
    model = _water_model()
    with torch.no_grad():  # a random liquid with clashes to repair
        model.head_out.bias[0] = 3.0
    frames = generate_to_file(model, tmp_path / "g.npz", SamplingJob((12, 12, 12), n_boxes=1, seed=2), progress=False)
    assert frames.meta["encoding"] == "water"
    assert frames.meta["defects"][0]["orphans"] == 0 and frames.meta["defects"][0]["molecules"] > 10
    assert (frames.molecule[0] >= 0).all()
    grid = frames.extra["grids"][0]
    _, _, _, report = decode_grouped(grid, CODER)
    assert report.orphans == 0
    region = frames.meta["region"]
    pos, elem, mol, box, rep = cut_box(grid, CODER, region["origin_zyx"], region["shape_zyx"], periodic=True)
    assert rep["repair"]["orphans_removed"] == 0 and len(pos) == 3 * rep["repair"]["molecules_out"]


def test_a_fragment_model_trains_below_the_class_frequency_baseline(tmp_path):
    config = ModelConfig(layers=2, filters=8, dropout=0.0, voxel_nm=0.05, encoding="water", n_classes=CODER.n_classes)
    settings = TrainSettings(crop=16, steps=60, batch=2, lr=0.01, optimizer="adam", rotations="full", test_crops=4,
                             checkpoint_every=30)
    prov = train(DATA, tmp_path / "w.pt", config, settings, progress=False)
    assert prov["test_cross_entropy"] < prov["baseline_cross_entropy"]

"""The classifier two-sample test's per-molecule features (validation.gate.classifier).

Windows of continuous positions cut from the shipped training set as the gate cuts them
(validation.gate.boxes.window_frames, 1.4 nm as the quick profile's analysed region): the features
are finite on small and degenerate boxes, the rotation-invariant ones do not move under a rigid
motion of a box, a known different ensemble (molecules moved rigidly apart by 3 %,
validation.gate.foreign.expanded) is told apart, and one ensemble split in two is not.
"""

import numpy as np
import pytest

from map_core.atoms.frames import Frames, load_frames
from validation.gate.boxes import window_frames
from validation.gate.classifier import (
    DIPOLE_FEATURES,
    FEATURE_NAMES,
    N_FEATURES,
    classifier_test,
    molecule_features,
)
from validation.gate.foreign import expanded
from validation.gate.reference import SHIPPED_TRAINING_SET
from validation.md.boxes import random_rotation

REGION_NM = 1.4
CLASSIFIER = {"hidden": 32, "epochs": 25, "folds": 3, "max_samples": 3000, "seed": 0}


@pytest.fixture(scope="module")
def water():
    return load_frames(SHIPPED_TRAINING_SET)


def _windows(frames, n, seed, size=REGION_NM, indices=None):
    indices = range(len(frames)) if indices is None else indices
    return window_frames(frames, indices, np.full(3, size), n, np.random.default_rng(seed))


def test_names_match_columns():
    assert len(FEATURE_NAMES) == N_FEATURES == len(set(FEATURE_NAMES))
    assert set(DIPOLE_FEATURES) <= set(FEATURE_NAMES)


@pytest.mark.parametrize("size", [0.45, 0.7, REGION_NM])
def test_shape_and_finite(water, size):
    boxes = _windows(water, 4, 1, size)
    x, box = molecule_features(boxes)
    assert x.shape == (len(box), N_FEATURES) and x.dtype == np.float64 and box.dtype == np.int64
    assert len(x) > 0 and np.isfinite(x).all()
    assert set(np.unique(box)) <= set(range(4))
    # distances are capped, never padded with inf or NaN; cosines stay cosines
    cols = {name: k for k, name in enumerate(FEATURE_NAMES)}
    assert np.all(x[:, cols["d_OO_12"]] <= 0.6 + 1e-12)
    assert np.all(np.abs(x[:, [cols[f"cos_OOO_{k}"] for k in range(1, 7)]]) <= 1.0 + 1e-12)
    # physically sensible values: first-shell oxygens at 0.26-0.30 nm, O-H bonds near 0.1 nm; in the
    # analysed region (small boxes are mostly faces) water is tetrahedral with 2-4 hydrogen bonds
    med = dict(zip(FEATURE_NAMES, np.median(x, axis=0)))
    assert 0.26 < med["d_OO_1"] < 0.30 and 0.09 < med["r_OH_short"] < 0.105 and 1.7 < med["a_HOH"] < 1.95
    if size == REGION_NM:
        assert 0.4 < med["q_tet"] < 0.9 and np.mean(x[:, cols["hb_donated"]] + x[:, cols["hb_accepted"]]) > 2.0
    # limit: about this many molecules in all
    xs, bs = molecule_features(boxes, limit=8, seed=3)
    assert len(xs) <= 8 and np.isfinite(xs).all()


def test_degenerate_boxes():
    """Boxes with one or two molecules, orphans, or no oxygen at all give finite rows or none."""
    mol = np.array([[0.0, 0.0, 0.0], [0.0957, 0.0, 0.0], [-0.024, 0.0927, 0.0]])
    one = (mol + 0.5, np.array(["O", "H", "H"]), np.array([0, 0, 0]), np.ones(3))
    x, _ = molecule_features(one)
    assert x.shape == (0, N_FEATURES)  # a lone oxygen has no neighbour to describe
    two = (np.concatenate([mol + 0.3, mol + 0.6, [[0.1, 0.1, 0.1]]]), np.array(["O", "H", "H"] * 2 + ["H"]),
           np.array([0, 0, 0, 1, 1, 1, -1]), np.ones(3))
    x, box = molecule_features(two)
    assert x.shape == (2, N_FEATURES) and np.isfinite(x).all() and list(box) == [0, 0]
    empty = Frames.from_arrays([np.zeros((2, 3))], [np.array(["H", "H"])], [np.array([-1, -1])], np.ones((1, 3)))
    x, box = molecule_features(empty)
    assert x.shape == (0, N_FEATURES) and box.shape == (0,)


def test_rigid_motion_leaves_invariant_features(water):
    boxes = _windows(water, 2, 5)
    rng = np.random.default_rng(9)
    moved = []
    for f in range(len(boxes)):
        rot = random_rotation(rng)
        moved.append(np.asarray(boxes.positions[f], dtype=np.float64) @ rot.T + rng.normal(0.0, 2.0, 3))
    other = Frames.from_arrays(moved, list(boxes.elements), list(boxes.molecule), np.asarray(boxes.box))
    x, b = molecule_features(boxes)
    y, c = molecule_features(other)
    assert x.shape == y.shape and np.array_equal(b, c)
    invariant = [k for k, name in enumerate(FEATURE_NAMES) if name not in DIPOLE_FEATURES]
    np.testing.assert_allclose(y[:, invariant], x[:, invariant], rtol=0, atol=1e-4)  # positions are float32
    dip = [FEATURE_NAMES.index(name) for name in DIPOLE_FEATURES]
    assert not np.allclose(y[:, dip], x[:, dip], atol=1e-3)  # the dipole direction follows the box's axes
    np.testing.assert_allclose(np.linalg.norm(y[:, dip], axis=1), 1.0, atol=1e-9)


def test_expanded_water_is_told_apart(water):
    """Molecules moved rigidly 3 % apart (density -9 %): far above the scatter of a split ensemble."""
    x_ref, b_ref = molecule_features(_windows(water, 12, 21))
    x_gen, b_gen = molecule_features(_windows(expanded(water, 1.03), 6, 22))
    out = classifier_test(x_gen, b_gen, x_ref, b_ref, **CLASSIFIER)
    assert out["auc"] > 0.75, out
    assert out["p_value"] < 1e-10, out


def test_one_ensemble_split_in_two_is_not(water):
    """Windows of the even and of the odd frames, five times over: AUC near 0.5 and accuracy no
    better than chance by the exact binomial test. Molecules of one window share neighbours, so a
    single split scatters by about 0.04 (more than an uninformative classifier's 0.017): the mean of
    five is held to 0.04 of 0.5, each split to 0.1."""
    n = len(water)
    aucs, p_values = [], []
    for k in range(5):
        x_ref, b_ref = molecule_features(_windows(water, 12, 31 + 10 * k, indices=range(0, n, 2)))
        x_gen, b_gen = molecule_features(_windows(water, 6, 32 + 10 * k, indices=range(1, n, 2)))
        out = classifier_test(x_gen, b_gen, x_ref, b_ref, **CLASSIFIER)
        aucs.append(out["auc"])
        p_values.append(out["p_value"])
    assert abs(np.mean(aucs) - 0.5) < 0.04 and np.all(np.abs(np.array(aucs) - 0.5) < 0.1), aucs
    assert np.median(p_values) > 0.05 and min(p_values) > 1e-3, p_values

"""Motif-conditioned generation (seed 000, Results 2): the motif is never changed, every step's
log-probability is the teacher-forced one with the same fixed voxels, the turns are the ones the
paper names, and a resumed run equals an uninterrupted one."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from map_core.atoms.encoding import Encoding
from map_core.atoms.rotations import class_permutations, rotation_matrix
from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from map_core.sampling.likelihood import log_prob
from map_core.sampling.motif import TURN, UNTURN, X_CW, Z_CCW, motif_origin, protocol_steps, turned
from map_core.sampling.reference import sample_reference


def _model(encoding="water", seed=0):
    torch.manual_seed(seed)
    c = 3 if encoding == "atoms" else Encoding(encoding, 0.05).n_classes
    return PixelCNN3D(ModelConfig(layers=1, filters=3, kernel=3, dropout=0.0, encoding=encoding, n_classes=c)).eval()


def _motif(model, m=3, seed=1):
    rng = np.random.default_rng(seed)
    c = model.config.n_classes
    return np.where(rng.random((m, m, m)) < 0.3, rng.integers(1, c, size=(m, m, m)), 0).astype(np.uint8)


def test_the_turns_are_the_papers():
    """Counter-clockwise about z (x -> y), clockwise about x (y -> -z), z first; UNTURN undoes it."""
    np.testing.assert_array_equal(rotation_matrix(Z_CCW), [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(rotation_matrix(X_CW), [[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    np.testing.assert_array_equal(rotation_matrix(TURN), rotation_matrix(X_CW) @ rotation_matrix(Z_CCW))
    np.testing.assert_array_equal(rotation_matrix(TURN + UNTURN), np.eye(3, dtype=int))
    grid = np.arange(5 * 7 * 9).reshape(5, 7, 9)
    np.testing.assert_array_equal(turned(turned(grid, 3), 3, inverse=True), grid)


@settings(max_examples=6, deadline=None)
@given(encoding=st.sampled_from(["water", "atoms"]), seed=st.integers(0, 1000),
       shape=st.sampled_from([(9, 9, 9), (11, 9, 13)]))
def test_motif_fixed_and_log_prob_teacher_forced(encoding, seed, shape):
    model = _model(encoding, seed)
    motif = _motif(model, 3, seed)
    origin = motif_origin(shape, motif.shape)
    cube = tuple(slice(o, o + 3) for o in origin)
    steps = list(protocol_steps(model, motif, shape, iterations=4, seed=seed))
    assert [s.step for s in steps] == [0, 1, 2, 3, 4]
    for s in steps:
        assert s.grid.shape == shape
        np.testing.assert_array_equal(s.grid[cube], motif)  # bit-identical in every iteration
        assert not s.generated[cube].any()
        now = turned(s.grid, s.turns, None if encoding == "atoms" else _perm(model))
        sampled = s.fixed < 0
        if s.step == 0:  # step (i) ran on the sub-box [origin, N)
            now = s.grid[origin[0]:, origin[1]:, origin[2]:]
            sampled = sampled[origin[0]:, origin[1]:, origin[2]:]
            fixed = s.fixed[origin[0]:, origin[1]:, origin[2]:]
        else:
            fixed = s.fixed
        lp = log_prob(model, now[None], 1.0, "empty", fixed).item()
        assert lp == pytest.approx(s.log_prob, abs=1e-4)
        assert sampled.sum() == s.generated.sum()
    # step (iii) generates exactly what step (i) left empty, and afterwards every voxel but the motif is set
    first = steps[0].generated | np.pad(np.ones((3, 3, 3), bool), [(o, n - o - 3) for o, n in zip(origin, shape)])
    assert not (steps[1].generated & first).any()
    assert (steps[1].generated | first).all()
    # later iterations regenerate what the turn put outside the kept region: most of the box
    for s in steps[2:]:
        assert 0.5 < s.generated.mean() < 1.0


def _perm(model):
    return class_permutations(model.config.coder(), [TURN, UNTURN])


def test_resume_equals_uninterrupted_and_reference_sampler_agrees():
    model = _model("water", 3)
    motif = _motif(model, 3, 3)
    full = list(protocol_steps(model, motif, (9, 9, 9), iterations=3, seed=7))
    resumed = list(protocol_steps(model, motif, (9, 9, 9), iterations=3, seed=7, start=full[1]))
    assert [s.step for s in resumed] == [2, 3]
    for a, b in zip(full[2:], resumed):
        np.testing.assert_array_equal(a.grid, b.grid)
    ref = list(protocol_steps(model, motif, (9, 9, 9), iterations=3, seed=7, sampler=sample_reference))
    for a, b in zip(full, ref):
        np.testing.assert_array_equal(a.grid, b.grid)


def test_bad_geometry_is_refused_in_one_line():
    model = _model()
    motif = _motif(model, 3)
    with pytest.raises(MapSuiteError, match="centre"):
        list(protocol_steps(model, motif, (10, 9, 9), iterations=1))
    with pytest.raises(MapSuiteError, match="too small .* receptive field"):
        list(protocol_steps(model, motif, (5, 5, 5), iterations=1))
    with pytest.raises(MapSuiteError, match="classes"):
        list(protocol_steps(model, motif + 250, (9, 9, 9), iterations=1))

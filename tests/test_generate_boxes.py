"""`map-suite generate` returns the burned-in box, cut from a larger canvas, and repairs it on request.

Runs the shipped default model (real sampling, small boxes) and checks the cut against the
sampled canvas that the output keeps in `grids`.
"""

import numpy as np
import pytest

from map_core.atoms.frames import load_frames
from map_core.atoms.molecules import CLASH_NM
from map_core.atoms.neighbors import pairs_within
from map_core.atoms.voxels import decode
from map_core.model.checkpoint import load_model
from map_core.model.default import default_model_path
from map_core.model.receptive_field import receptive_field
from map_core.sampling import generate
from map_core.sampling.generate import SamplingJob, generate_to_file
from map_core.sampling.margins import burn_in_voxels, canvas_shape, face_voxels

SHAPE = (14, 12, 13)


@pytest.fixture(scope="module")
def model():
    return load_model(default_model_path())[0]


@pytest.fixture(scope="module")
def boxes(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "boxes.npz"
    generate_to_file(model, out, SamplingJob(SHAPE, 2, seed=3), progress=False)
    return load_frames(out, allow_empty_frames=True)


def test_box_is_the_region_of_a_larger_canvas(model, boxes):
    voxel = model.config.voxel_nm
    b, face = burn_in_voxels(model.config, 1.0), face_voxels(model.config)
    assert b == receptive_field(model.config).planes_back  # one receptive field, the default
    assert boxes.extra["grids"].shape == (2, *canvas_shape(SHAPE, b, face))
    size = np.array(SHAPE[::-1]) * voxel
    for f in range(len(boxes)):
        pos, el, mol = boxes.positions[f], boxes.elements[f], boxes.molecule[f]
        assert np.allclose(boxes.box[f], size)
        grid = boxes.extra["grids"][f][b : b + SHAPE[0], b : b + SHAPE[1], b : b + SHAPE[2]]
        # every O voxel of the region is an O of the output (in a molecule or an orphan), and no other O is
        oxygen = grid > 0 if model.config.coder().whole_molecules else grid == 1  # fragment classes: every occupied voxel
        region_o, _ = decode(np.where(oxygen, 1, 0), voxel)
        out_o = np.sort(np.round(pos[el == "O"] / voxel - 0.5).astype(int), axis=0)
        assert np.array_equal(out_o, np.sort(np.round(region_o / voxel - 0.5).astype(int), axis=0))
        # orphans lie inside the box; molecules are O, H, H and their hydrogens within a bond of the box
        assert np.all((pos[mol < 0] >= 0) & (pos[mol < 0] < size))
        ids, counts = np.unique(mol[mol >= 0], return_counts=True)
        assert np.all(counts == 3) and len(ids) == boxes.meta["defects"][f]["molecules"]
        assert np.count_nonzero(mol < 0) == boxes.meta["defects"][f]["orphans"]
        assert np.all(pos > -0.2) and np.all(pos < size + 0.2)


def test_repair_gives_a_periodic_box_without_orphans_or_clashes(model, tmp_path):
    out = tmp_path / "repaired.npz"
    generate_to_file(model, out, SamplingJob(SHAPE, 2, seed=3), progress=False, repair_boxes=True)
    frames = load_frames(out, allow_empty_frames=True)
    assert frames.meta["periodic"] is True
    for f in range(len(frames)):
        pos, el, mol, box = frames.positions[f], frames.elements[f], frames.molecule[f], frames.box[f]
        rep = frames.meta["defects"][f]["repair"]
        assert np.all(mol >= 0) and len(pos) == 3 * rep["molecules_out"]
        assert rep["molecules_out"] == rep["molecules_in"] - rep["clash_molecules_removed"] - rep["seam_molecules_removed"]
        i, j, d = pairs_within(pos, pos, max(CLASH_NM.values()), box)
        other = mol[i] != mol[j]
        limits = np.array([CLASH_NM.get((el[a], el[c]), CLASH_NM.get((el[c], el[a]))) for a, c in zip(i[other], j[other])])
        assert np.all(d[other] >= limits)


def test_wrapped_box_has_its_burn_in_below_only_and_repairs(model, tmp_path):
    """boundary "wrap" (issue 26): the canvas is as wide as the box in y and x, the box is its planes
    [b, b + Z), and the repaired box is periodic, as with the cut."""
    out = tmp_path / "wrapped.npz"
    generate_to_file(model, out, SamplingJob(SHAPE, 1, seed=3, boundary="wrap"), progress=False, repair_boxes=True)
    frames = load_frames(out, allow_empty_frames=True)
    b, face = burn_in_voxels(model.config, 1.0), face_voxels(model.config)
    assert frames.extra["grids"].shape == (1, b + SHAPE[0] + face, SHAPE[1], SHAPE[2])
    assert frames.meta["region"]["origin_zyx"] == [b, 0, 0] and frames.meta["boundary"] == "wrap"
    grid = frames.extra["grids"][0][b : b + SHAPE[0]]
    assert frames.meta["defects"][0]["molecules"] == np.count_nonzero(grid)  # every occupied voxel: one whole molecule
    rep = frames.meta["defects"][0]["repair"]
    assert len(frames.positions[0]) == 3 * rep["molecules_out"] > 0


def test_no_burn_in_is_the_raw_canvas(model, tmp_path):
    out = tmp_path / "raw.npz"
    generate_to_file(model, out, SamplingJob(SHAPE, 1, seed=3), progress=False, burn_in=0)
    frames = load_frames(out, allow_empty_frames=True)
    assert frames.extra["grids"].shape == (1, *SHAPE)
    per_voxel = 3 if model.config.coder().whole_molecules else 1  # a fragment class is a whole molecule
    assert len(frames.positions[0]) == per_voxel * np.count_nonzero(frames.extra["grids"][0])


def test_progress_is_one_bar_over_the_batches_and_a_resume_says_how_many_were_done(model, tmp_path, capsys, monkeypatch):
    """A run interrupted after its first batch resumes saying how much was done, and one bar runs over
    the remaining batches, naming the batch it draws (issue 26); the file equals an uninterrupted run's."""
    job = SamplingJob((6, 6, 6), 3, seed=5, batch=1)
    whole = tmp_path / "whole.npz"
    generate_to_file(model, whole, job, progress=False, burn_in=0)

    real_map_tasks = generate.map_tasks

    def first_batch_then_stop(client, fn, todo, shared, done=None):
        real_map_tasks(client, fn, todo[:1], shared=shared, done=done)
        raise KeyboardInterrupt  # as a kill between batches

    out = tmp_path / "boxes.npz"
    with monkeypatch.context() as m:
        m.setattr(generate, "map_tasks", first_batch_then_stop)
        with pytest.raises(KeyboardInterrupt):
            generate_to_file(model, out, job, progress=False, burn_in=0)
    capsys.readouterr()
    generate_to_file(model, out, job, progress=True, burn_in=0)
    err = capsys.readouterr().err
    assert "resuming" in err and "1 of 3 boxes done" in err
    bars = [ln.strip() for ln in err.replace("\r", "\n").splitlines() if "batches" in ln]
    assert "batch 2 of 3" in err and "batch 3 of 3" in err and "batch 1 of 3" not in err
    assert "1.00/3 batches" in bars[0] and "3.00/3 batches" in bars[-1], bars  # one bar, from the done batch to the end
    assert np.array_equal(load_frames(out, allow_empty_frames=True).extra["grids"],
                          load_frames(whole, allow_empty_frames=True).extra["grids"])

"""Voxel encode/decode, grouping atoms into waters, and repair of generated boxes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from waters import water_lattice

import map_core.atoms.neighbors as nb
from map_core.atoms.molecules import group_waters, repair, water_indices
from map_core.atoms.neighbors import pairs_within
from map_core.atoms.voxels import decode, encode, grid_shape
from map_core.errors import MapSuiteError

boxes = arrays(np.float64, 3, elements=st.floats(0.3, 1.5))


@settings(max_examples=50, deadline=None)
@given(box=boxes, voxel=st.floats(0.01, 0.05), seed=st.integers(0, 2**32 - 1), shift=st.floats(-5, 5))
def test_encode_decode_moves_no_atom_more_than_half_a_voxel_diagonal(box, voxel, seed, shift):
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 40)
    pos = rng.uniform(0, 1, size=(n, 3)) * box + shift * box  # anywhere: encode wraps periodic positions
    elem = rng.choice(["O", "H"], size=n)
    grid, report = encode(pos, elem, box, voxel)
    assert grid.shape == grid_shape(box, voxel)
    dpos, delem = decode(grid, voxel)
    assert len(dpos) == n - report.collisions
    # every decoded atom sits within half a voxel diagonal of an original atom of the same element
    delta = dpos[:, None, :] - pos[None, :, :]
    delta -= box * np.round(delta / box)
    dist = np.linalg.norm(delta, axis=2)
    dist[delem[:, None] != elem[None, :]] = np.inf
    assert np.all(dist.min(axis=1) <= np.sqrt(3) / 2 * voxel + 1e-9)
    if report.collisions == 0:  # and every original atom is represented
        assert np.all(dist.min(axis=0) <= np.sqrt(3) / 2 * voxel + 1e-9)


def test_two_atoms_in_one_voxel_are_counted_not_hidden():
    grid, report = encode([[0.01, 0.01, 0.01], [0.02, 0.02, 0.02], [0.5, 0.5, 0.5]], ["O", "H", "H"], [1, 1, 1], 0.025)
    assert report.collisions == 1 and report.atoms == 3
    assert np.count_nonzero(grid) == 2 and grid[0, 0, 0] == 1  # the first atom kept


def test_encode_refuses_bad_input():
    with pytest.raises(MapSuiteError, match="NaN"):
        encode([[np.nan, 0, 0]], ["O"], [1, 1, 1])
    with pytest.raises(MapSuiteError, match="voxel class"):
        encode([[0.1, 0.1, 0.1]], ["C"], [1, 1, 1])
    with pytest.raises(MapSuiteError, match="outside"):
        encode([[1.1, 0.1, 0.1]], ["O"], [1, 1, 1], periodic=False)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), offset=arrays(np.float64, 3, elements=st.floats(0, 1)))
def test_grouping_recovers_molecules_split_across_every_face(seed, offset):
    """Waters on a jittered lattice, shifted so that molecules straddle all six faces, then wrapped."""
    rng = np.random.default_rng(seed)
    pos, elem, mol, box = water_lattice(5, 0.31, rng, jitter=0.03)
    pos = np.mod(pos + offset * box, box)
    found, report = group_waters(pos, elem, box=box)
    assert report.orphans == 0 and report.molecules == len(pos) // 3
    # same partition as the truth
    for ids in water_indices(elem, found):
        assert len(set(mol[ids])) == 1


def test_grouping_recovers_real_md_frames(md_frames):
    for f in range(len(md_frames)):
        pos, elem, box = md_frames.positions[f], md_frames.elements[f], md_frames.box[f]
        found, report = group_waters(pos, elem, box=box)
        assert report.orphans == 0 and report.molecules == len(pos) // 3
        truth = md_frames.molecule[f]
        for ids in water_indices(elem, found):
            assert len(set(truth[ids])) == 1


def test_grouping_of_voxel_decoded_md_frames(md_frames):
    """After the 0.025 nm round trip real water still groups into whole molecules."""
    pos, elem, box = md_frames.positions[0], md_frames.elements[0], md_frames.box[0]
    grid, report = encode(pos, elem, box, 0.025)
    dpos, delem = decode(grid, 0.025)
    _, grouped = group_waters(dpos, delem, box=box)
    assert report.collisions == 0 and grouped.orphans == 0 and grouped.molecules == len(pos) // 3


def test_orphans_are_counted():
    rng = np.random.default_rng(0)
    pos, elem, _, box = water_lattice(2, 0.4, rng)
    keep = np.ones(len(pos), bool)
    keep[[1, 2, 4]] = False  # molecule 0 loses both H, molecule 1 one H
    _, report = group_waters(pos[keep], elem[keep], box=None)
    assert report.molecules == 6 and report.orphan_o == 2 and report.orphan_h == 1


def test_repair_removes_orphans_and_seam_clashes():
    rng = np.random.default_rng(1)
    pos, elem, _, box = water_lattice(3, 0.3, rng)
    # replace the waters at x-sites 0.15 and 0.75 by one at the far x face and one at the near face,
    # which overlap only through the periodic image
    base = pos[:3] - pos[0]
    seam = base + np.array([box[0] - 0.03, 0.15, 0.15])
    near = base + np.array([0.03, 0.17, 0.15])
    drop = np.r_[0:3, 54:57]
    rest = np.delete(pos, drop, axis=0)
    pos2 = np.concatenate([rest, seam, near, [[0.45, 0.45, 0.8]]])
    elem2 = np.concatenate([np.delete(elem, drop), ["O", "H", "H", "O", "H", "H", "H"]])
    out_pos, out_elem, out_mol, report = repair(pos2, elem2, box)
    assert report.orphans_removed == 1 and report.seam_molecules_removed == 1
    assert report.molecules_out == report.molecules_in - 1 == len(out_pos) // 3
    i, j, d = pairs_within(out_pos, out_pos, 0.2, box)
    inter = out_mol[i] != out_mol[j]
    assert not np.any(d[inter] < 0.11)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), cutoff=st.floats(0.05, 0.3), periodic=st.booleans())
def test_cell_list_matches_brute_force(seed, n, cutoff, periodic):
    rng = np.random.default_rng(seed)
    box = rng.uniform(0.9, 2.0, 3)
    a, b = rng.uniform(0, 1, (n, 3)) * box, rng.uniform(0, 1, (n + 3, 3)) * box
    old = nb._BRUTE_FORCE_PAIRS
    try:
        nb._BRUTE_FORCE_PAIRS = 0  # force the cell list
        fast = pairs_within(a, b, cutoff, box if periodic else None)
    finally:
        nb._BRUTE_FORCE_PAIRS = old
    slow = nb._brute_force(a, b, cutoff, box if periodic else None)
    assert sorted(zip(fast[0], fast[1])) == sorted(zip(slow[0], slow[1]))

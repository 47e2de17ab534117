"""Boxes from other programs (issue 14): every format `map-suite export` writes reads back into the
same Frames, the seed authors' .npy class grids are mapped to this project's classes, and bad or
foreign files are refused in one line."""

import numpy as np
import pytest

from map_core.atoms.frames import save_frames
from map_core.atoms.voxels import decode, encode
from map_core.errors import MapSuiteError
from validation.md.export import FORMATS, NEEDS_TOPOLOGY, export_frames, ordered_box
from validation.md.imports import read_boxes

# readback precision, nm (as tests/test_export.py)
TOLERANCE = {"pdb": 6e-5, "gro": 6e-4, "xtc": 6e-4, "dcd": 1e-5, "lammps": 1e-4, "extxyz": 1e-6}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_exported_boxes_read_back_as_whole_waters(tmp_path, md_frames, fmt):
    frames = md_frames.select([0, 1])
    out = tmp_path / f"water{FORMATS[fmt]}"
    export_frames(frames, fmt, out)
    back = read_boxes(out, top=out.with_suffix(".top.pdb") if fmt in NEEDS_TOPOLOGY else None)
    assert len(back) == 2 and back.meta["periodic"] is True
    for f in range(2):
        expected, elements, _ = ordered_box(frames.positions[f], frames.elements[f], frames.molecule[f], frames.box[f])
        assert np.max(np.abs(back.positions[f] - expected)) < TOLERANCE[fmt]
        assert list(back.elements[f]) == list(elements)
        assert np.all(back.molecule[f] >= 0) and len(np.unique(back.molecule[f])) == len(expected) // 3
        np.testing.assert_allclose(back.box[f], frames.box[f], atol=TOLERANCE[fmt] + 1e-6)


def test_frames_files_are_read_as_they_are(md_frames, tmp_path):
    save_frames(tmp_path / "f.npz", md_frames.select([0]))
    back = read_boxes(tmp_path / "f.npz")
    np.testing.assert_array_equal(back.positions[0], md_frames.positions[0])


def test_seed_class_grids_map_to_this_projects_classes(md_frames, tmp_path):
    """The seed authors' order is empty, H, O; ours is empty, O, H."""
    voxel = 0.025
    ours, _ = encode(md_frames.positions[0], md_frames.elements[0], md_frames.box[0], voxel)
    seed = np.array([0, 2, 1], dtype=np.uint8)[ours]  # O (1) -> 2, H (2) -> 1
    np.save(tmp_path / "grids.npy", np.stack([seed, seed]))
    back = read_boxes(tmp_path / "grids.npy", voxel_nm=voxel)
    pos, el = decode(ours, voxel)
    assert len(back) == 2 and back.meta["periodic"] is False and back.meta["classes"] == ["empty", "H", "O"]
    np.testing.assert_allclose(back.positions[0], pos)
    assert list(back.elements[0]) == list(el)
    assert np.mean(back.molecule[0] >= 0) > 0.8  # decoded atoms group into waters (the rest: molecules cut by the open faces)
    # the same grids read with the wrong class order are another box: hydrogens where oxygens were
    swapped = read_boxes(tmp_path / "grids.npy", voxel_nm=voxel, classes=("empty", "O", "H"))
    assert np.count_nonzero(swapped.elements[0] == "O") == np.count_nonzero(el == "H")


def _pdb_with(tmp_path, element: str):
    path = tmp_path / f"{element}.pdb"
    path.write_text("CRYST1   10.000   10.000   10.000  90.00  90.00  90.00 P 1           1\n"
                    f"HETATM    1  {element:<3} XXX A   1       1.000   1.000   1.000  1.00  0.00          {element:>2}\nEND\n")
    return path


def test_bad_and_foreign_boxes_are_refused_in_one_line(tmp_path, md_frames):
    out = tmp_path / "w.dcd"
    export_frames(md_frames.select([0]), "dcd", out)
    bad_npy = tmp_path / "float.npy"
    np.save(bad_npy, np.zeros((4, 4, 4)))
    range_npy = tmp_path / "range.npy"
    np.save(range_npy, np.full((4, 4, 4), 7))
    empty_npy = tmp_path / "empty.npy"
    np.save(empty_npy, np.zeros((4, 4, 4), dtype=np.int64))
    text = tmp_path / "notes.pdb"
    text.write_text("this is not a PDB\n")
    cases = [
        (lambda: read_boxes(tmp_path / "missing.pdb"), "no such boxes file"),
        (lambda: read_boxes(tmp_path / "w.top.pdb", fmt="cif"), "unknown box format"),
        (lambda: read_boxes(out), "give its topology"),
        (lambda: read_boxes(_pdb_with(tmp_path, "C")), "atoms other than water's: C"),
        (lambda: read_boxes(bad_npy), "class grids must be integers"),
        (lambda: read_boxes(range_npy), "outside 0..2"),
        (lambda: read_boxes(empty_npy), "no atoms"),
        (lambda: read_boxes(empty_npy, classes=("empty", "O", "O")), "classes must name"),
        (lambda: read_boxes(text), "pdb"),
    ]
    (tmp_path / "x.cif").write_text("data_x\n")
    cases.append((lambda: read_boxes(tmp_path / "x.cif"), "unknown box format '.cif'"))
    for call, message in cases:
        with pytest.raises(MapSuiteError, match=message) as info:
            call()
        assert "\n" not in str(info.value)

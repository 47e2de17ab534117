"""`map-suite export` on hostile frames and failing writes (issue 29, part 3): what a writer cannot write (an
element the format has no name for, a molecule id that is not one whole water) is refused before anything is
written, in one line naming the frames file; what it can write is written; and a failure while writing any of
several files (a full disk) leaves no file, not even the first boxes', and every earlier output as it was.

Frames are the MD frames of tests/data/water_md_small.npz with one field spoiled (tests/hostile.py), written as a
raw frames file (save_frames would refuse some of them itself), and exported in process.
"""

import errno
import json
import tempfile
from pathlib import Path
from unittest import mock

import mdtraj
import numpy as np
import pytest
from ase.data import atomic_numbers
from hostile import EXPORT_ELEMENT_DEFECTS, EXPORT_MOLECULE_DEFECTS, FUZZ, tree
from hypothesis import event, given, settings
from hypothesis import strategies as st

import validation.md.export as export_module
from map_core.atoms.frames import load_frames
from map_core.atoms.frames_check import element_symbols
from validation.cli.main import main
from validation.md.export import FORMATS

ROOT = Path(__file__).resolve().parents[1]
MD = load_frames(ROOT / "tests" / "data" / "water_md_small.npz")  # 5 frames of 216 waters, ids 0..215
EARLIER = b"an earlier output\n"


def writes(fmt: str, symbol: str) -> bool:
    """Whether a file of `fmt` can hold atoms of `symbol`, by the libraries that write it (and the frames file)."""
    if symbol not in element_symbols():  # no frames file holds it
        return False
    if fmt == "lammps":  # the dump's type column: 1 O, 2 H
        return symbol in ("O", "H")
    if fmt == "extxyz":
        return symbol in atomic_numbers
    return symbol.upper() in mdtraj.element.Element._elements_by_symbol  # the topology of pdb, gro, dcd, xtc


def write_raw(path: Path, frames: list) -> Path:
    """A frames file (ragged layout) of [(positions, elements, molecule, box)], written without any check."""
    positions, elements, molecule, box = zip(*frames)
    np.savez(path, positions=np.concatenate(positions).astype(np.float32), elements=np.concatenate(elements).astype("<U2"),
             molecule=np.concatenate(molecule).astype(np.int32), counts=np.array([len(p) for p in positions], np.int64),
             box=np.asarray(box, np.float64), meta=np.array(json.dumps({"method": "classical", "source": "test"})))
    return path


def md_frames(n: int) -> list:
    return [(MD.positions[f].copy(), MD.elements[f].copy(), MD.molecule[f].copy(), MD.box[f].copy()) for f in range(n)]


@st.composite
def spoiled(draw):
    """(frames, defect): valid MD frames with one field spoiled in one frame, and what was spoiled."""
    frames = md_frames(draw(st.integers(1, 3)))
    k = draw(st.integers(0, len(frames) - 1))
    _, elements, molecule, _ = frames[k]
    m = draw(st.integers(0, 214))
    o, h1, h2 = np.flatnonzero(molecule == m)
    if draw(st.booleans()):  # an atom of another element: its water's atoms become atoms of no molecule
        symbol = draw(EXPORT_ELEMENT_DEFECTS)
        molecule[[o, h1, h2]] = -1
        elements[draw(st.sampled_from([o, h1, h2]))] = symbol
        return frames, ("element", symbol)
    defect = draw(EXPORT_MOLECULE_DEFECTS)
    if defect == "incomplete water":
        molecule[h2] = -1
    elif defect == "lone oxygen":
        molecule[[h1, h2]] = -1
    elif defect == "lone hydrogens":
        molecule[o] = -1
    else:  # "two waters, one id"
        molecule[molecule == m + 1] = m
    return frames, ("molecule", defect)


def export(capsys, frames_path, fmt, out, *options) -> tuple:
    capsys.readouterr()
    code = main(["export", str(frames_path), "--format", fmt, "--out", str(out), *options])
    return code, capsys.readouterr().err.splitlines()


@FUZZ
@given(case=spoiled(), fmt=st.sampled_from(sorted(FORMATS)), option=st.sampled_from([(), ("--repair",)]),
       earlier=st.booleans())
def test_what_a_writer_cannot_write_is_refused_before_anything_is_written(case, fmt, option, earlier, capsys):
    frames, (field, value) = case
    with tempfile.TemporaryDirectory() as tmp:
        source = write_raw(Path(tmp) / "frames.npz", frames)
        folder = Path(tmp) / "out"
        folder.mkdir()
        out = folder / f"boxes{FORMATS[fmt]}"
        if earlier:
            out.write_bytes(EARLIER)
        before = tree(folder)
        code, err = export(capsys, source, fmt, out, *option)
        event("written" if code == 0 else "refused")
        if field == "element" and writes(fmt, value):  # an atom of no molecule the format can name: written
            assert code == 0, err
            per_box = folder / f"boxes_000{FORMATS[fmt]}"  # boxes of different atoms: one file each (dcd, xtc, gro)
            assert per_box.is_file() or (out.is_file() and out.read_bytes() != EARLIER), sorted(tree(folder))
            assert not any(".tmp" in name or name.startswith(".") for name in tree(folder)), sorted(tree(folder))
            return
        assert code == 2 and len(err) == 1, err
        assert err[0].startswith(f"map-suite export: error: {source}: "), err
        assert tree(folder) == before  # nothing written, the earlier output as it was


@settings(FUZZ, max_examples=max(5, FUZZ.max_examples // 3))
@given(case=spoiled().filter(lambda c: c[1][0] == "molecule"), relax=st.sampled_from(["0.0005", "1"]))
def test_relax_refuses_the_same_frames_before_any_md(case, relax, capsys):
    """--relax (which repairs first) gets no further than the same check: no minimisation, no MD, one line."""
    frames, _ = case
    with tempfile.TemporaryDirectory() as tmp:
        source = write_raw(Path(tmp) / "frames.npz", frames)
        with mock.patch.object(export_module, "relax_box", side_effect=AssertionError("relaxed a refused box")):
            code, err = export(capsys, source, "pdb", Path(tmp) / "x.pdb", "--relax", relax)
        assert code == 2 and len(err) == 1 and str(source) in err[0], err
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["frames.npz"]


def _boxes_of_different_sizes(n: int, drop) -> list:
    """`n` MD frames, frame f without its first drop[f] waters: one file per box for dcd, xtc and gro."""
    frames = []
    for f, (pos, el, mol, box) in enumerate(md_frames(n)):
        keep = mol >= drop[f]
        frames.append((pos[keep], el[keep], mol[keep] - drop[f], box))
    return frames


@FUZZ
@given(n=st.integers(2, 4), fmt=st.sampled_from(sorted(FORMATS)), fail_at=st.integers(0, 8),
       earlier=st.lists(st.booleans(), min_size=8, max_size=8))
def test_a_write_that_fails_at_any_file_leaves_nothing(n, fmt, fail_at, earlier, capsys):
    """The disk fills while the (fail_at)th file is written: exit 2, one line, no file of this export (not the
    first boxes'), and every earlier file of the same names unchanged."""
    with tempfile.TemporaryDirectory() as tmp:
        source = write_raw(Path(tmp) / "frames.npz", _boxes_of_different_sizes(n, list(range(n))))
        folder = Path(tmp) / "out"
        folder.mkdir()
        out = folder / f"gen{FORMATS[fmt]}"
        stem, suffix = out.stem, out.suffix
        names = [out.name] + [f"{stem}_{k:03d}{suffix}" for k in range(n)] + [f"{stem}_{k:03d}.top.pdb" for k in range(n)]
        for name, keep in zip(names, earlier):
            if keep:
                (folder / name).write_bytes(EARLIER)
        before = tree(folder)
        calls = []

        def failing(real):
            def write(*args, **kwargs):
                calls.append(real.__name__)
                if len(calls) - 1 == fail_at:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real(*args, **kwargs)
            return write

        writers = ("_write_pdb", "_write_lammps", "_write_extxyz", "_write_mdtraj")
        with mock.patch.multiple(export_module, **{w: failing(getattr(export_module, w)) for w in writers}):
            code, err = export(capsys, source, fmt, out)
        if fail_at >= len(calls):  # fewer files than the failure's place: all written
            assert code == 0, err
            assert not any(".tmp" in name or name.startswith(".") for name in tree(folder))
            return
        assert code == 2 and len(err) == 1 and "No space left on device" in err[0], err
        assert tree(folder) == before


@FUZZ
@given(n=st.integers(2, 4), fmt=st.sampled_from(["dcd", "xtc", "gro"]), which=st.integers(0, 3),
       topology=st.booleans())
def test_a_folder_in_place_of_any_box_file_is_refused_before_anything_is_written(n, fmt, which, topology, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        source = write_raw(Path(tmp) / "frames.npz", _boxes_of_different_sizes(n, list(range(n))))
        folder = Path(tmp) / "out"
        folder.mkdir()
        k = which % n
        blocker = folder / (f"gen_{k:03d}.top.pdb" if topology and fmt != "gro" else f"gen_{k:03d}{FORMATS[fmt]}")
        blocker.mkdir()
        before = tree(folder)
        code, err = export(capsys, source, fmt, folder / f"gen{FORMATS[fmt]}")
        assert code == 2 and len(err) == 1 and f"{blocker}: is an existing folder" in err[0], err
        assert tree(folder) == before


@settings(FUZZ, max_examples=max(5, FUZZ.max_examples // 3))
@given(n=st.integers(1, 3), fmt=st.sampled_from(sorted(FORMATS)), drop=st.lists(st.integers(0, 3), min_size=3, max_size=3),
       repair=st.booleans())
def test_valid_frames_are_written(n, fmt, drop, repair, capsys):
    """A refusal of valid frames is a failure: whole waters (any number per box), with or without --repair."""
    with tempfile.TemporaryDirectory() as tmp:
        source = write_raw(Path(tmp) / "frames.npz", _boxes_of_different_sizes(n, drop))
        folder = Path(tmp) / "out"
        folder.mkdir()
        code, err = export(capsys, source, fmt, folder / f"w{FORMATS[fmt]}", *(["--repair"] if repair else []))
        assert code == 0, err
        written = sorted(tree(folder))
        assert written and not any(".tmp" in name or name.startswith(".") for name in written), written


def _far_orphan(frames: list, f: int) -> list:
    """Every frame's first water made atoms of no molecule, frame f's O 500 nm below its box (a frames file may
    hold it: within 1000 box lengths), which no PDB column can place."""
    for _, _, molecule, _ in frames:
        molecule[:3] = -1
    frames[f][0][0] = [-500.0, 0.5, 0.5]
    return frames


@pytest.mark.parametrize("fmt, n, f", [("pdb", 2, 1), ("dcd", 2, 0), ("lammps", 1, 0)])
def test_a_box_a_pdb_cannot_place_is_refused_before_anything_is_written(tmp_path, capsys, fmt, n, f):
    """As a PDB, or as the topology PDB beside a DCD or a LAMMPS dump (of each box, or of the first of boxes
    that share their atoms)."""
    source = write_raw(tmp_path / "frames.npz", _far_orphan(md_frames(n), f))
    code, err = export(capsys, source, fmt, tmp_path / f"x{FORMATS[fmt]}")
    assert code == 2 and len(err) == 1 and f"{source}: box {f} does not fit a PDB" in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames.npz"]


def test_a_far_box_goes_where_no_pdb_is_written(tmp_path, capsys):
    """The second box of a DCD of boxes that share their atoms (the topology PDB is the first box's) and any
    extended XYZ take it."""
    source = write_raw(tmp_path / "frames.npz", _far_orphan(md_frames(2), 1))
    for fmt in ("dcd", "extxyz"):
        code, err = export(capsys, source, fmt, tmp_path / f"x{FORMATS[fmt]}")
        assert code == 0, err

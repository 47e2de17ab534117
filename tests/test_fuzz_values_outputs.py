"""Outputs all or nothing (issue 29, part 3): every command's --out is checked before any work by one helper
(map_core.files.check_output_path), so a path that cannot be written (an existing folder where a file goes, a
path below a file, an empty name, an unwritable folder, a name too long) ends in exit 2 and one stderr line that
names it, with nothing left behind; writable paths still get their outputs. Library warnings never reach the
terminal before, or in place of, that one line (map_core.errors.run_one_line).

Commands run in process (validation.cli.main.main), hypothesis draws the paths (tests/hostile.py).
"""

import contextlib
import errno
import io
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from gate_helpers import SUBPROCESS_ENV, save_tiny_model
from hostile import FUZZ, SAFE_NAME, hostile_output_path, make_output_path, tree, unlock
from hypothesis import given, settings
from hypothesis import strategies as st

from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.errors import MapSuiteError, run_one_line
from map_core.files import check_output_path, partial_folder, staged_outputs
from validation.cli.main import main
from validation.md.export import export_frames

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ROOT / "tests" / "data" / "water_md_small.npz"
RESULTS = ROOT / "reports" / "default-quick" / "results.json"
VALID = settings(FUZZ, max_examples=max(3, FUZZ.max_examples // 10))  # valid runs do the work: fewer of them


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Valid inputs of every command: a tiny model, two MD frames, and a copy of a gate's results (a report's
    default folder is beside its results: a refusal that fell back to it must not touch the committed one)."""
    root = tmp_path_factory.mktemp("inputs")
    frames = root / "frames.npz"
    save_frames(frames, load_frames(FRAMES).select([0, 1]))
    results = root / "results" / "results.json"
    results.parent.mkdir()
    results.write_bytes(RESULTS.read_bytes())
    return {"model": save_tiny_model(root / "tiny.pt"), "frames": frames, "results": results}


# command -> (kind of its --out, suffix, argv given the inputs and the --out text)
COMMANDS = {
    "generate": ("file", ".npz", lambda i, o: ["generate", "--model", str(i["model"]), "--shape", "2", "2", "2",
                                               "--out", o, "--no-progress"]),
    "export": ("file", ".pdb", lambda i, o: ["export", str(i["frames"]), "--format", "pdb", "--out", o]),
    "train": ("file", ".pt", lambda i, o: ["train", "--data", str(i["frames"]), "--out", o, "--layers", "1",
                                           "--filters", "2", "--crop", "4", "--steps", "1", "--test-crops", "1",
                                           "--no-progress"]),
    "simulate": ("file", ".npz", lambda i, o: ["simulate", "--waters", "8", "--frames", "1", "--stride-ps", "0.01",
                                               "--equilibrate-ps", "0", "--seed", "1", "--out", o, "--quiet"]),
    "motif scan": ("file", ".json", lambda i, o: ["motif", "scan", "--data", str(i["frames"]), "--out", o,
                                                  "--probe-nm", "0.6", "--no-progress"]),
    "validate": ("folder", "", lambda i, o: ["validate", "--model", str(i["model"]), "--profile", "smoke",
                                             "--out", o, "--no-progress"]),
    "report": ("folder", "", lambda i, o: ["report", str(i["results"]), "--out", o]),
    "motif generate": ("folder", "", lambda i, o: ["motif", "generate", "--model", str(i["model"]), "--scan",
                                                   str(ROOT / "reports" / "motif-default" / "scan.json"),
                                                   "--out", o, "--no-progress"]),
    "toy": ("folder", "", lambda i, o: ["toy", "--system", "ideal_gas", "--out", o, "--quiet"]),
}


def run_cli(argv, capsys) -> tuple:
    """(exit code, stderr lines) of `map-suite argv` run in this process."""
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err.splitlines()


def assert_one_line_naming(code, err, name: str, prog: str) -> None:
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith(f"map-suite {prog}: error: ") and name in err[0], err


def shown(text: str) -> str:
    """How a refusal names an output path: as given, or quoted where it is empty or blank."""
    return text if text.strip() else repr(text)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_that_cannot_be_written_is_refused_before_any_work(command, inputs, tmp_path, capsys):
    kind, suffix, argv = COMMANDS[command]

    @FUZZ
    @given(recipe=hostile_output_path(kind))
    def check(recipe):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        out = make_output_path(recipe, folder, suffix)
        if out is None:  # no unwritable folder on this machine (root without a read-only file system)
            return
        before = tree(folder)
        try:
            code, err = run_cli(argv(inputs, out), capsys)
            assert_one_line_naming(code, err, shown(out), command.split()[0])
            assert tree(folder) == before  # no .partial/, no temporary, no first file
            if out.startswith(("/proc/", "/sys/")):
                assert not os.path.lexists(out)
            assert Path(os.devnull).is_char_device()
        finally:
            unlock(folder)

    check()


@pytest.mark.parametrize("command", ["export", "generate", "motif scan"])
def test_a_writable_output_is_written(command, inputs, tmp_path, capsys):
    """A refusal of a writable path is a failure: fresh names, in folders that do not exist yet, get their file."""
    _, suffix, argv = COMMANDS[command]

    @VALID
    @given(parts=st.lists(SAFE_NAME, min_size=1, max_size=3), earlier=st.booleans())
    def check(parts, earlier):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        out = folder.joinpath(*parts[:-1], parts[-1] + suffix)
        if earlier:  # an earlier output of the same name is replaced
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("an earlier output\n")
        code, err = run_cli(argv(inputs, str(out)), capsys)
        assert code == 0, err
        assert out.is_file() and out.read_bytes() != b"an earlier output\n"
        assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no .partial/, no temporary

    check()


@pytest.mark.slow  # renders a report's figures (10-20 s)
def test_a_report_folder_that_exists_or_not_is_written(inputs, tmp_path, capsys):
    """Folder outputs are legitimate folders: an existing one is written into (a new one: the writable-output test
    of `motif scan`'s parents, and test_report.py)."""
    (tmp_path / "earlier.txt").write_text("kept")
    code, err = run_cli(["report", str(inputs["results"]), "--out", str(tmp_path)], capsys)
    assert code == 0 and err == [], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier.txt", "figures", "report.html"]


# --- the helpers themselves -------------------------------------------------------------------------------------


def test_the_path_check_takes_what_can_be_written(tmp_path):
    (tmp_path / "old.npz").write_text("x")
    for path, kind in [(tmp_path / "a.npz", "file"), (tmp_path / "old.npz", "file"), (tmp_path / "new" / "deep" / "a.npz", "file"),
                       (tmp_path, "folder"), (tmp_path / "new" / "report", "folder"), (".", "folder")]:
        assert check_output_path(path, kind) == Path(path)
    with pytest.raises(ValueError):
        check_output_path(tmp_path / "a", "socket")


@FUZZ
@given(name=SAFE_NAME, n_files=st.integers(1, 4), fail_at=st.integers(0, 4), earlier=st.booleans(), new=st.booleans())
def test_staged_outputs_are_all_or_nothing(name, n_files, fail_at, earlier, new):
    """Files staged together appear together; a failure at any file leaves the folder as it was (a folder made
    for them goes again)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "new" / "sub" if new else Path(tmp)
        targets = [folder / f"{name}_{k}.txt" for k in range(n_files)]
        if earlier and not new:
            for t in targets:
                t.write_text("earlier")
        before = tree(tmp)
        try:
            with staged_outputs(folder) as stage:
                for k, t in enumerate(targets):
                    if k == fail_at:
                        raise OSError(errno.EIO, "a writer failed")
                    stage(t).write_text(f"new {k}")
        except OSError:
            assert fail_at < n_files and tree(tmp) == before
        else:
            assert fail_at >= n_files
            assert [t.read_text() for t in targets] == [f"new {k}" for k in range(n_files)]
            assert sorted(os.listdir(folder)) == sorted(t.name for t in targets)


def test_a_staged_output_onto_a_folder_is_refused_and_leaves_nothing(tmp_path):
    (tmp_path / "b.txt").mkdir()
    with pytest.raises(MapSuiteError, match="b.txt: is an existing folder"), staged_outputs(tmp_path) as stage:
        stage(tmp_path / "a.txt").write_text("a")
        stage(tmp_path / "b.txt").write_text("b")
    assert sorted(os.listdir(tmp_path)) == ["b.txt"] and (tmp_path / "b.txt").is_dir()


def test_a_partial_folder_goes_after_a_refusal_and_stays_after_ctrl_c(tmp_path):
    out = tmp_path / "new" / "out.npz"
    with pytest.raises(MapSuiteError), partial_folder(out, keep="piece_*") as (folder, created):
        assert created and folder.is_dir()
        raise MapSuiteError("refused", out)
    assert not (tmp_path / "new").exists()  # and the folder made to hold it
    with pytest.raises(MapSuiteError), partial_folder(out, keep="piece_*") as (folder, _):
        (folder / "piece_0").write_text("finished work")
        raise MapSuiteError("refused after a finished piece", out)
    assert (folder / "piece_0").exists()  # kept for the rerun
    with pytest.raises(MapSuiteError), partial_folder(out, keep="piece_*") as (folder, created):
        assert not created  # found from the earlier run: left as it was
        raise MapSuiteError("refused", out)
    assert (folder / "piece_0").exists()
    with partial_folder(out) as (folder, _):
        pass
    assert not folder.exists()  # done: removed
    with pytest.raises(KeyboardInterrupt), partial_folder(out) as (folder, _):
        raise KeyboardInterrupt
    assert folder.exists()


def test_motif_scan_refused_at_a_later_frame_leaves_no_partial_folder(tmp_path, capsys):
    """The scan keeps pieces of 50 frames in OUT.partial/; frame 60 has a box smaller than the probe: the refusal
    comes after the first piece is written and still leaves nothing behind."""
    md = load_frames(FRAMES)
    pick = [k % len(md) for k in range(61)]
    frames = md.select(pick)
    small = 0.5 / frames.box[60]  # frame 60 shrunk into a 0.5 nm box
    positions = [*frames.positions[:60], frames.positions[60] * small.astype(np.float32)]
    shrunk = Frames.from_arrays(positions, frames.elements, frames.molecule, np.vstack([frames.box[:60], [[0.5] * 3]]),
                                frames.meta)
    data = tmp_path / "data.npz"
    save_frames(data, shrunk)
    out = tmp_path / "scan.json"
    code, err = run_cli(["motif", "scan", "--data", str(data), "--out", str(out), "--probe-nm", "0.6", "--no-progress"],
                        capsys)
    assert code == 2 and len(err) == 1 and "does not fit in frame 60" in err[0], err
    assert sorted(os.listdir(tmp_path)) == ["data.npz"]


# --- library warnings: folded into the one line, never printed in their own form -------------------------------------


def _dummy_cryst1_pdb(path: Path) -> Path:
    """A PDB of real water whose CRYST1 record is mdtraj's 'dummy' 1 Å cell: mdtraj warns and drops the box."""
    export_frames(load_frames(FRAMES).select([0]), "pdb", path)
    lines = path.read_text().splitlines()
    cryst1 = "CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1 "
    path.write_text("\n".join(cryst1 if line.startswith("CRYST1") else line for line in lines) + "\n")
    return path


def test_a_library_warning_on_refused_input_ends_the_one_line(tmp_path, capsys):
    pdb = _dummy_cryst1_pdb(tmp_path / "dummy.pdb")
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        code, err = run_cli(["validate", "--boxes", str(pdb), "--out", str(tmp_path / "report"), "--profile", "smoke",
                             "--no-progress"], capsys)
    assert_one_line_naming(code, err, str(pdb), "validate")
    assert "(library warning: UserWarning: Unlikely unit cell vectors" in err[0], err
    assert escaped == []  # none left the command in its own form
    assert sorted(os.listdir(tmp_path)) == ["dummy.pdb"]


@pytest.mark.slow  # a fresh interpreter imports torch, OpenMM and mdtraj
def test_the_terminal_sees_one_line_and_no_warning_form(tmp_path):
    """As a user runs it: a fresh interpreter, every warning shown (-W always), stderr exactly one line."""
    pdb = _dummy_cryst1_pdb(tmp_path / "dummy.pdb")
    result = subprocess.run([sys.executable, "-W", "always", "-m", "validation.cli", "validate", "--boxes", str(pdb),
                             "--out", str(tmp_path / "report"), "--profile", "smoke", "--no-progress"],
                            capture_output=True, text=True, env=SUBPROCESS_ENV, check=False)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "library warning" in lines[0], result.stderr


@FUZZ
@given(n_warnings=st.integers(0, 4), repeats=st.integers(1, 3), fails=st.booleans())
def test_warnings_become_notes_after_work_or_end_the_error_line(n_warnings, repeats, fails):
    """Warnings (numpy's, Python's, logging's) each become one note line after work that succeeds, repeats
    of one warning one note, or one summary at the end of the error line; never Python's two-line form."""

    def work():
        for _ in range(repeats):
            for k in range(n_warnings):
                if k % 2:
                    logging.getLogger("some.library").warning("logged warning %d", k)
                else:
                    with np.errstate(over="warn"):
                        np.float32(np.float64(1e300) * (k + 1))  # RuntimeWarning: overflow encountered in cast
                    warnings.warn(f"library warning {k}\nsecond line", UserWarning, stacklevel=1)
        if fails:
            raise MapSuiteError("refused", "input.npz")
        return 0

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run_one_line("map-suite x", work)
    lines = err.getvalue().splitlines()
    if fails:
        assert code == 2 and len(lines) == 1 and lines[0].startswith("map-suite x: error: input.npz: refused"), lines
        assert ("(library warning: " in lines[0]) == (n_warnings > 0), lines
    else:
        assert code == 0 and all(line.startswith("map-suite x: note: ") for line in lines), lines
        assert len(lines) == len(set(lines)) and (len(lines) > 0) == (n_warnings > 0), lines
        assert sum("library warning" in line for line in lines) == (n_warnings + 1) // 2, lines
        assert sum("logged warning" in line for line in lines) == n_warnings // 2, lines
    assert not any("second line" in line and "library warning" not in line for line in lines)

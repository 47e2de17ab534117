"""The frames file and checkpoints: round trips and refusal of bad files."""

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from waters import water_lattice

from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.errors import MapSuiteError
from map_core.model.checkpoint import check_voxel_size, load_checkpoint, load_model, save_checkpoint
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from validation.cli.main import main


def lattice_frames(n_frames=2, seed=0):
    rng = np.random.default_rng(seed)
    parts = [water_lattice(3, 0.3, rng, 0.02) for _ in range(n_frames)]
    return Frames.from_arrays([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts],
                              [p[3] for p in parts], {"method": "test"})


def test_ragged_round_trip_and_extra_arrays(tmp_path):
    frames = lattice_frames()
    frames.positions[1] = frames.positions[1][:-3]  # ragged: different atom counts
    frames.elements[1], frames.molecule[1] = frames.elements[1][:-3], frames.molecule[1][:-3]
    frames.extra["grids"] = np.zeros((2, 4, 4, 4), np.uint8)
    save_frames(tmp_path / "f.npz", frames)
    back = load_frames(tmp_path / "f.npz")
    assert list(back.counts) == [81, 78] and back.meta == {"method": "test"}
    np.testing.assert_allclose(back.positions[1], frames.positions[1], atol=1e-6)
    assert back.extra["grids"].shape == (2, 4, 4, 4)


def test_fixed_layout_is_read(tmp_path):
    frames = lattice_frames()
    np.savez(tmp_path / "fixed.npz", positions=np.stack(frames.positions), elements=frames.elements[0],
             molecule=frames.molecule[0], box=frames.box, meta=json.dumps({"method": "md"}))
    back = load_frames(tmp_path / "fixed.npz")
    assert len(back) == 2 and back.counts.tolist() == [81, 81] and back.meta["method"] == "md"


@pytest.mark.parametrize("problem,match", [
    ("missing", "no such file"), ("text", "not a readable"), ("nokeys", "missing arrays"),
    ("nan", "NaN"), ("empty", "no frames"), ("noatoms", "no atoms"), ("badbox", "positive"),
])
def test_bad_frames_files_are_refused(tmp_path, problem, match):
    path = tmp_path / "bad.npz"
    frames = lattice_frames()
    if problem == "text":
        path.write_text("not a zip")
    elif problem == "nokeys":
        np.savez(path, something=np.zeros(3))
    elif problem == "nan":
        frames.positions[0][5, 1] = np.nan
        np.savez(path, positions=np.concatenate(frames.positions), elements=np.concatenate(frames.elements), counts=frames.counts, box=frames.box)
    elif problem == "empty":
        np.savez(path, positions=np.zeros((0, 3)), elements=np.zeros(0, "<U2"), counts=np.zeros(0, int), box=np.zeros((0, 3)))
    elif problem == "noatoms":
        np.savez(path, positions=np.zeros((0, 3)), elements=np.zeros(0, "<U2"), counts=np.zeros(1, int), box=np.ones((1, 3)))
    elif problem == "badbox":
        np.savez(path, positions=np.concatenate(frames.positions), elements=np.concatenate(frames.elements), counts=frames.counts, box=-frames.box)
    with pytest.raises(MapSuiteError, match=match) as err:
        load_frames(path)
    assert "bad.npz" in str(err.value) and "\n" not in str(err.value)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = PixelCNN3D(ModelConfig(layers=2, filters=4))
    save_checkpoint(tmp_path / "m.pt", model, {"data_sha256": "x", "steps": 3})
    back, payload = load_model(tmp_path / "m.pt")
    assert payload["provenance"]["steps"] == 3 and payload["receptive_field"]["planes_back"] == 3
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k])


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_bad_checkpoints_are_refused(tmp_path, capsys):
    torch.manual_seed(0)
    model = PixelCNN3D(ModelConfig(layers=1, filters=2))
    good = tmp_path / "good.pt"
    save_checkpoint(good, model, {})
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(good.read_bytes()[:200])
    with pytest.raises(MapSuiteError, match="not a map-suite checkpoint .*not a torch file"):
        load_checkpoint(corrupt)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "map-suite-checkpoint", "payload": Exploit()}, evil)
    with pytest.raises(MapSuiteError, match="not a map-suite checkpoint .*refused"):
        load_checkpoint(evil)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(MapSuiteError, match="not a map-suite checkpoint .*not a torch file"):
        load_checkpoint(raw)
    assert "this must never run" not in capsys.readouterr().out
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(MapSuiteError, match="not a map-suite checkpoint .*format marker"):
        load_checkpoint(foreign)
    with pytest.raises(MapSuiteError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")
    nan = tmp_path / "nan.pt"
    with torch.no_grad():
        model.head_out.bias.fill_(float("nan"))
    save_checkpoint(nan, model, {})
    with pytest.raises(MapSuiteError, match="NaN"):
        load_model(nan)
    with pytest.raises(MapSuiteError, match="voxel size mismatch"):
        check_voxel_size(0.025, 0.03, "x.npz")


GRO = """water
    3
    1SOL     OW    1   0.126   1.624   1.679
    1SOL    HW1    2   0.190   1.661   1.747
    1SOL    HW2    3   0.177   1.568   1.613
   1.86206   1.86206   1.86206
"""


def not_a_checkpoint(kind, folder):
    """A file of `kind` that is not a map-suite checkpoint."""
    path = folder / {"gro": "water.gro", "pdb": "water.pdb", "zip": "other.zip", "npz": "frames.npz"}.get(kind, f"{kind}.pt")
    if kind == "gro":
        path.write_text(GRO)
    elif kind == "pdb":
        path.write_text("ATOM      1  OW  SOL     1       1.260  16.240  16.790  1.00  0.00           O\nEND\n")
    elif kind == "text":
        path.write_text("hello, I am a text file\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("notes.txt", "a zip archive, not a torch file")
    elif kind == "npz":
        np.savez(path, positions=np.zeros((3, 3)))
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"format": "map-suite-checkpoint"}, protocol=4))
    elif kind == "dict":
        torch.save({"weights": torch.zeros(3), "epoch": 7}, path)
    elif kind == "dict_protocol4":  # opcodes the plain-data (weights_only) load refuses
        torch.save({"weights": torch.zeros(3)}, path, pickle_protocol=4)
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "code":
        torch.save({"format": "map-suite-checkpoint", "payload": Exploit()}, path)
    return path


KINDS = ["gro", "pdb", "text", "empty", "zip", "npz", "pickle", "dict", "dict_protocol4", "tensor", "code"]


@pytest.mark.filterwarnings("error")  # a warning of torch's would be one more line on stderr
@pytest.mark.parametrize("kind", KINDS)
def test_a_file_that_is_not_a_checkpoint_gets_one_line_of_ours(kind, tmp_path, capsys):
    path = not_a_checkpoint(kind, tmp_path)
    out = tmp_path / "boxes.npz"
    assert main(["generate", "--model", str(path), "--out", str(out), "--no-progress"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert str(path) in line and "not a map-suite checkpoint" in line and "map-suite train" in line
    assert "WeightsUnpickler" not in line and "Please file an issue" not in line and "weights_only" not in line
    assert "this must never run" not in captured.out and not out.exists()


def test_a_gro_file_as_model_in_a_real_process(tmp_path):
    """The whole program, as a user runs it: stderr holds exactly our one line (no torch warning)."""
    path = not_a_checkpoint("gro", tmp_path)
    done = subprocess.run([sys.executable, "-m", "validation.cli", "generate", "--model", str(path), "--out",
                           str(tmp_path / "boxes.npz"), "--no-progress"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"map-suite generate: error: {path}: not a map-suite checkpoint (a torch file "
                                        "written by `map-suite train` was expected); it is not a torch file (or a "
                                        "truncated one)"]

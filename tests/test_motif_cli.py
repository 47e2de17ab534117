"""`map-suite motif scan|generate` end to end on a small real model and a planted cavity: outputs,
refusals (one line, exit 2, nothing written), and a SIGKILL followed by the same command."""

import json

import numpy as np
import pytest
import torch
from gate_helpers import save_model
from test_kill9 import cli, run, run_killed
from test_motif_scan import _cavity_frames

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import load_frames, save_frames
from map_core.model.pixelcnn import ModelConfig, PixelCNN3D
from validation.cli.main import main

pytestmark = pytest.mark.slow  # subprocesses, OpenMM or whole gate runs: `pytest -m 'not slow' tests` skips them

SHAPE = ["18", "18", "18"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("motif")
    frames, _ = _cavity_frames()
    data = root / "frames.npz"
    save_frames(data, frames)
    torch.manual_seed(0)
    config = ModelConfig(layers=1, filters=3, kernel=3, dropout=0.0, encoding="water", voxel_nm=0.05,
                         n_classes=Encoding("water", 0.05).n_classes)
    model = save_model(root / "m.pt", PixelCNN3D(config).eval(), data)
    scan = root / "scan.json"
    assert main(["motif", "scan", "--data", str(data), "--out", str(scan), "--probe-nm", "0.6", "--threshold", "0.3",
                 "--no-progress"]) == 0
    return root, data, model, scan


def _generate(setup, out, *extra):
    root, data, model, scan = setup
    return ["motif", "generate", "--model", model, "--scan", scan, "--out", out, "--shape", *SHAPE, "--seed", "3",
            "--no-progress", *extra]


def test_generate_writes_every_iteration_and_keeps_the_motif(setup, tmp_path):
    root, data, model, scan = setup
    out = tmp_path / "run"
    assert main([str(a) for a in _generate(setup, out, "--iterations", "3")]) == 0
    result = json.loads((out / "motif.json").read_text())
    assert [s["step"] for s in result["steps"]] == [0, 1, 2, 3]
    assert len(result["convergence"]["iterations"]) == 3 and (out / "motif.html").exists()
    site = json.loads(scan.read_text())["sites"][0]
    assert result["site_detail"] == site and result["motif"]["molecules"] == site["molecules"]
    z, y, x = result["motif"]["origin_zyx"]
    m = result["motif"]["voxels"][0]
    cubes = [load_frames(out / s["file"], allow_empty_frames=True).extra["grid"][z:z + m, y:y + m, x:x + m]
             for s in result["steps"]]
    assert all(np.array_equal(c, cubes[0]) for c in cubes)
    assert (cubes[0] > 0).sum() == site["molecules"]


BAD = [
    (["--site", "99"], "--site 99 is out of range"),
    (["--shape", "12", "12", "12"], "too small"),
    (["--shape", "18", "17", "18"], "centre"),
]


@pytest.mark.parametrize("extra, message", BAD)
def test_generate_refuses_bad_input_in_one_line(setup, tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    args = [str(a) for a in _generate(setup, out, "--iterations", "2")]
    args = args[: args.index("--shape")] + args[args.index("--shape") + 4:] + extra  # replace --shape when given
    if "--shape" not in extra:
        args += ["--shape", *SHAPE]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
    assert not out.exists()


def test_scan_refuses_a_probe_larger_than_the_box(setup, tmp_path, capsys):
    root, data, model, scan = setup
    out = tmp_path / "scan.json"
    assert main(["motif", "scan", "--data", str(data), "--out", str(out), "--probe-nm", "2.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not fit" in err and "\n" not in err and not out.exists()


def test_generate_killed_resumes_to_the_same_result(setup, tmp_path):
    reference, out = tmp_path / "reference", tmp_path / "killed"
    assert main([str(a) for a in _generate(setup, reference, "--iterations", "3")]) == 0  # uninterrupted, in-process
    killed = run_killed(cli(*_generate(setup, out, "--iterations", "3")), (out / "step_i.npz").exists, 0.3)
    assert killed, "the run finished before the kill: nothing was tested"
    assert not (out / "motif.json").exists()  # a killed run never looks finished
    run(cli(*_generate(setup, out, "--iterations", "3")))
    a, b = json.loads((reference / "motif.json").read_text()), json.loads((out / "motif.json").read_text())
    assert a == b
    for s in a["steps"]:
        fa, fb = load_frames(reference / s["file"], allow_empty_frames=True), load_frames(out / s["file"], allow_empty_frames=True)
        assert np.array_equal(fa.extra["grid"], fb.extra["grid"])

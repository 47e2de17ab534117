"""The map-suite CLI for train, generate and evaluate: end to end, and one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import map_core.sampling.generate as gen
from map_core.atoms.frames import load_frames, save_frames
from map_core.files import sha256_file
from map_core.model.checkpoint import load_model
from map_core.sampling.generate import SamplingJob, generate_to_file
from map_core.sampling.margins import burn_in_voxels, canvas_shape, face_voxels
from map_core.sampling.reference import sample_reference
from validation.cli.main import main


def test_train_generate_evaluate(tmp_path, lattice_file, capsys):
    model = tmp_path / "m.pt"
    assert main(["train", "--data", str(lattice_file), "--out", str(model), "--layers", "1", "--filters", "3",
                 "--crop", "8", "--steps", "3", "--batch", "1", "--test-crops", "1", "--no-progress"]) == 0
    assert "test cross-entropy" in capsys.readouterr().out
    out = tmp_path / "boxes.npz"
    args = ["generate", "--model", str(model), "--shape", "3", "4", "5", "--n-boxes", "2", "--seed", "4",
            "--out", str(out), "--no-progress", "--sampler", "reference"]
    assert main(args) == 0
    boxes = load_frames(out, allow_empty_frames=True)
    net, _ = load_model(model)
    b = burn_in_voxels(net.config, 1.0)
    assert boxes.extra["grids"].shape == (2, *canvas_shape((3, 4, 5), b, face_voxels(net.config))) and b > 0
    assert boxes.meta["region"]["origin_zyx"] == [b, b, b] and len(boxes.meta["defects"]) == 2
    assert np.allclose(boxes.box, [5 * 0.025, 4 * 0.025, 3 * 0.025])
    assert boxes.meta["voxel_nm"] == 0.025 and not out.with_name(out.name + ".partial").exists()
    first = boxes.extra["grids"].copy()
    assert main(args) == 0  # same seed, same output
    assert np.array_equal(load_frames(out, allow_empty_frames=True).extra["grids"], first)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--data", str(lattice_file), "--crop", "8", "--crops", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["crops"] == 2 and 0 < result["cross_entropy"] and 0 < result["baseline_cross_entropy"]


def test_generate_resumes_from_finished_batches(tmp_path, lattice_file):
    model = tmp_path / "m.pt"
    main(["train", "--data", str(lattice_file), "--out", str(model), "--layers", "1", "--filters", "3", "--crop", "8",
          "--steps", "1", "--test-crops", "1", "--no-progress"])
    out = tmp_path / "b.npz"
    common = ["generate", "--model", str(model), "--shape", "2", "3", "3", "--seed", "1", "--out", str(out), "--no-progress"]
    assert main(common + ["--n-boxes", "3", "--batch", "1"]) == 0
    reference = load_frames(out, allow_empty_frames=True).extra["grids"]
    # an interrupted run left box 0 and 1 finished; the rerun keeps them and makes only box 2

    partial = out.with_name(out.name + ".partial")
    out.unlink()
    net, _ = load_model(model)
    calls = []

    def interrupted(*a, **k):  # the real sampler, with a Ctrl-C arriving before the third box
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(k["first_box"])
        return sample_reference(*a, **k)

    real = gen.sampler_function
    gen.sampler_function = lambda name: interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            generate_to_file(net, out, SamplingJob((2, 3, 3), 3, seed=1), progress=False, model_sha256=sha256_file(model))
    finally:
        gen.sampler_function = real
    assert partial.exists() and len(list(partial.glob("boxes_*.npz"))) == 2 and not out.exists()
    assert main(common + ["--n-boxes", "3", "--batch", "1"]) == 0 and not partial.exists()
    assert np.array_equal(load_frames(out, allow_empty_frames=True).extra["grids"], reference)


def run_cli(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "validation.cli", *args], capture_output=True, text=True, env=env, cwd=cwd)


def run_main(capsys, *args):
    """(exit code, stderr) of `map-suite ARGS` run in this process; argparse's exit counts as a return."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


@pytest.mark.slow
def test_errors_are_one_line_with_exit_code_2(tmp_path, lattice_file, capsys):
    model = tmp_path / "m.pt"
    main(["train", "--data", str(lattice_file), "--out", str(model), "--layers", "1", "--filters", "2", "--crop", "8",
          "--steps", "1", "--test-crops", "1", "--no-progress"])
    not_ckpt = tmp_path / "not_a_model.pt"
    not_ckpt.write_bytes(b"\x00garbage")
    cases = [
        (["generate", "--model", str(not_ckpt), "--out", str(tmp_path / "x.npz")], "not_a_model.pt"),
        (["generate", "--model", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.npz")], "missing.pt"),
        (["generate", "--model", str(model), "--device", "bogus", "--out", str(tmp_path / "x.npz")], "not a torch device"),
        (["generate", "--model", str(model), "--device", "cuda", "--sampler", "reference", "--out", str(tmp_path / "x.npz")], "CPU only"),
        (["train", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "y.pt")], "missing.npz"),
        (["train", "--data", str(lattice_file), "--out", str(tmp_path / "y.pt"), "--crop", "500"], "smaller than the crop"),
        (["train", "--data", str(lattice_file), "--out", str(model), "--voxel", "0.03", "--resume"], "voxel size mismatch"),
        (["train", "--data", str(lattice_file), "--out", str(tmp_path / "y.pt"), "--device", "bogus"], "not a torch device"),
        (["generate", "--model", str(model), "--burn-in", "nan", "--out", str(tmp_path / "x.npz")], "--burn-in: nan is not a finite number"),
        (["generate", "--model", str(model), "--temperature", "nan", "--out", str(tmp_path / "x.npz")], "--temperature: nan is not a finite number"),
        (["generate", "--model", str(model), "--shape", "100000", "100000", "100000", "--out", str(tmp_path / "x.npz")],
         "GB of memory"),
        (["generate", "--model", str(model), "--temperature", "inf", "--out", str(tmp_path / "x.npz")], "--temperature: inf is not a finite number"),
        (["generate", "--model", str(model), "--burn-in", "-1", "--out", str(tmp_path / "x.npz")], "--burn-in: -1 is outside [0, inf)"),
    ]
    # Each case runs through `main`, the code path of the console script; the first three also run
    # as real processes, so that nothing printed at import or exit adds a line.
    for i, (args, expect) in enumerate(cases):
        code, err = run_main(capsys, *args)
        assert code == 2, (args, err)
        lines = [ln for ln in err.strip().splitlines() if ln]
        assert len(lines) == 1 and expect in lines[0], err
        if i < 3:
            result = run_cli(*args)
            assert result.returncode == 2 and result.stderr.strip() == err.strip(), (args, result.stderr)
    if not torch.cuda.is_available():
        code, err = run_main(capsys, "generate", "--model", str(model), "--device", "cuda", "--out", str(tmp_path / "x.npz"))
        assert code == 2 and "no CUDA device" in err.strip().splitlines()[-1], err
        code, err = run_main(capsys, "train", "--data", str(lattice_file), "--out", str(tmp_path / "y.pt"), "--device", "cuda:0")
        assert code == 2 and "no CUDA device" in err.strip().splitlines()[-1], err
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "y.pt").exists()
    assert not (tmp_path / "x.npz.partial").exists()
    # generated boxes carry their voxel size: a model of another voxel size refuses them
    boxes = tmp_path / "boxes.npz"
    main(["generate", "--model", str(model), "--shape", "9", "9", "9", "--out", str(boxes), "--no-progress"])
    frames = load_frames(boxes, allow_empty_frames=True)
    frames.meta["voxel_nm"] = 0.05
    save_frames(boxes, frames)
    code, err = run_main(capsys, "evaluate", "--model", str(model), "--data", str(boxes), "--crop", "4")
    assert code == 2 and "voxel size mismatch" in err

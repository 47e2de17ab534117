"""Gate profiles and inputs: shipped profiles load, user profiles work, bad input is refused in one line
before any work (map-suite validate: exit 2; pytest validation: usage error)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from gate_helpers import DATA, marginal_model, save_model

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import load_frames, save_frames
from map_core.errors import MapSuiteError
from map_core.files import find_shown, shown_path
from map_core.model.default import default_model_path
from map_core.model.pixelcnn import ModelConfig
from validation.cli.main import main
from validation.gate.inputs import calibration_match
from validation.gate.profile import SHIPPED, load_profile, shipped_path

ROOT = Path(__file__).resolve().parent.parent
TINY = ModelConfig(layers=1, filters=2, dropout=0.0)


def test_shipped_profiles_load_and_grow_from_smoke_to_paper():
    profiles = {name: load_profile(name) for name in SHIPPED}
    assert [p.name for p in profiles.values()] == list(SHIPPED)
    sizes = [(p["sampling"]["region_nm"], p["md"]["box_nm"], p["md.classical"]["npt_ps"])
             for p in (profiles[n] for n in ("smoke", "quick", "paper"))]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    paper, gpu = profiles["paper"], profiles["gpu"]
    # gpu: the paper's MD box and beads on CUDA, shorter runs, sampling on the GPU
    assert gpu["md"]["box_nm"] == paper["md"]["box_nm"] and gpu["md.rpmd"]["beads"] == paper["md.rpmd"]["beads"]
    assert gpu["md.classical"]["nvt_ps"] < paper["md.classical"]["nvt_ps"] and gpu["sampling"]["device"] == "cuda"
    assert all(profiles[n]["sampling"]["device"] == "cpu" for n in ("smoke", "quick", "paper"))
    # seed 000's MD protocol: 343 waters in a 2.4 nm box, NPT 125 ps -> NVT 500 ps, RPMD 32 beads with contraction
    assert paper["md"]["box_nm"] == 2.4 and paper["md.classical"]["npt_ps"] == 125 and paper["md.classical"]["nvt_ps"] == 500
    assert paper["md.rpmd"]["beads"] == 32 and paper["md.rpmd"]["contract_reciprocal"]
    assert profiles["smoke"].sha256() != profiles["quick"].sha256()
    assert profiles["smoke"].sha256("thresholds") != profiles["smoke"].with_seed(5).sha256()


def test_a_user_profile_extends_a_shipped_one(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('extends = "smoke"\n[profile]\nname = "mine"\n[sampling]\nn_boxes = 6\n[thresholds]\ng_OO = 0.25\n')
    p = load_profile(path)
    assert p.name == "mine" and p["sampling"]["n_boxes"] == 6 and p["thresholds"]["g_OO"] == 0.25
    assert p["md"] == load_profile("smoke")["md"]
    full = tmp_path / "copy.toml"  # a complete user file works without extends
    full.write_text(shipped_path("smoke").read_text())
    assert load_profile(full).data == load_profile("smoke").data


BAD = [
    ("[sampling\nregion_nm = 1.0\n", "not valid TOML"),
    ('extends = "smoke"\n[sampling]\nregoin_nm = 1.0\n', "unknown key 'regoin_nm' in \\[sampling\\]"),
    ('extends = "smoke"\n[md.classical]\nnpt_ps = -5.0\n', "npt_ps = -5.0 must be a positive number"),
    ('extends = "smoke"\n[sampling]\nregion_nm = "big"\n', "region_nm = 'big' must be a positive number"),
    ('extends = "smoke"\n[sampling]\nn_boxes = 2.5\n', "n_boxes = 2.5 must be an integer"),
    ('extends = "smoke"\n[md.langevin]\nfriction = 1.0\n', "unknown section \\[md.langevin\\]"),
    ('extends = "smoke"\n[plots]\ndpi = 3\n', "unknown section \\[plots\\]"),
    ('extends = "smoke"\nspeed = 3\n', "unknown top-level key 'speed'"),
    ('extends = "medium"\n', "only the shipped profiles"),
    ('extends = "smoke"\n[md]\nbox_nm = 3.0\n', "must fit in \\[sampling\\] region_nm"),
    ('extends = "smoke"\n[structure]\nrdf_r_max_nm = 0.9\n', "at most half"),
    ('extends = "smoke"\n[structure]\nsq_r_max_nm = 0.9\n', "sq_r_max_nm = 0.9 must exceed two RDF bins"),
    ('[profile]\nname = "x"\ndescription = ""\nseed = 0\n', "missing section \\[sampling\\]"),
    ('extends = "smoke"\n[thresholds]\nclassifier_auc = 0.4\n', "classifier_auc = 0.4 must be a number in \\(0.5, 1\\]"),
    ('extends = "smoke"\n[calibration]\nencoding = "beads"\n', "encoding = 'beads' must be 'atoms' or 'water'"),
    ('extends = "smoke"\n[md.rpmd]\nstart = "repaired"\n', "npt_ps = 0 needs start = 'classical'"),
    ('extends = "smoke"\n[md.rpmd]\nnpt_ps = -1.0\n', "npt_ps = -1.0 must be"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_malformed_profiles_are_refused_with_one_line(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(MapSuiteError, match=message) as info:
        load_profile(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_the_gate_says_when_a_profile_was_calibrated_for_other_voxels():
    smoke = load_profile("smoke")
    cal = smoke["calibration"]
    same = calibration_match(smoke, Encoding(cal["encoding"], cal["voxel_nm"]))
    assert same["matches"] and same["note"] == ""
    other = "water" if cal["encoding"] == "atoms" else "atoms"
    for coder in (Encoding(other, cal["voxel_nm"]), Encoding(cal["encoding"], 2 * cal["voxel_nm"])):
        miss = calibration_match(smoke, coder)
        assert not miss["matches"]
        assert f"calibrate smoke --encoding {coder.name} --voxel {coder.voxel_nm:g}" in miss["note"]


def test_unknown_profile_name_is_refused():
    with pytest.raises(MapSuiteError, match="no such profile .*shipped profiles: smoke, quick, paper"):
        load_profile("fast")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("m") / "tiny.pt", marginal_model(TINY, [0.998, 0.0007, 0.0013], True))


@pytest.fixture(scope="module")
def mismatched_reference(tmp_path_factory):
    """The test frames, labelled as voxelised at 0.05 nm (the model uses 0.025 nm)."""
    frames = load_frames(DATA)
    frames.meta["voxel_nm"] = 0.05
    path = tmp_path_factory.mktemp("ref") / "other_voxel.npz"
    save_frames(path, frames)
    return path


def _bad_profile(tmp_path) -> Path:
    path = tmp_path / "neg.toml"
    path.write_text('extends = "smoke"\n[md.classical]\nnvt_ps = -1\n')
    return path


def test_cli_refuses_bad_input_before_any_work(tmp_path, tiny_model, mismatched_reference, capsys):
    cases = [
        (["--profile", str(_bad_profile(tmp_path))], "nvt_ps = -1 must be a positive number"),
        (["--reference", str(mismatched_reference)], "voxel size mismatch: model uses 0.025 nm voxels, data 0.05 nm"),
        (["--profile", "nope"], "no such profile"),
        (["--model", str(tmp_path / "missing.pt")], "no such checkpoint"),
        (["--groups", "structure,plots"], "--groups must name some of"),
    ]
    for extra, message in cases:
        out = tmp_path / f"out{len(extra)}{extra[0]}"
        args = ["validate", "--model", str(tiny_model), "--profile", "smoke", "--out", str(out), *extra]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
        assert not out.exists()  # nothing was started


def test_a_region_too_thin_for_a_markov_block_is_refused_before_sampling(tmp_path, capsys):
    """0.6 nm is 12 planes of the shipped model, under its 13-plane receptive-field depth: the boundary
    test would have no block to compare (it once ended in an IndexError after sampling)."""
    profile = tmp_path / "thin.toml"
    profile.write_text('extends = "smoke"\n[sampling]\nregion_nm = 0.6\n[structure]\nrdf_r_max_nm = 0.3\nsq_r_max_nm = 0.4\n'
                       '[md]\nenabled = false\nbox_nm = 0.6\n')
    cache, out = tmp_path / "cache", tmp_path / "out"
    assert main(["validate", "--profile", str(profile), "--cache", str(cache), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "under one block of 13 planes" in err, err
    assert not out.exists() and not any(cache.rglob("*.npz"))


def test_the_gpu_profile_is_refused_before_any_work_where_torch_has_no_cuda(tmp_path, capsys):
    """The gpu profile samples on CUDA and runs OpenMM's CUDA platform; without CUDA it stops at once."""
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the gpu profile would run")
    out = tmp_path / "out"
    assert main(["validate", "--profile", "gpu", "--cache", str(tmp_path / "cache"), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no CUDA device" in err, err
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ('[sampling]\ndevice = "gpu"\n', "device = 'gpu' must be 'cpu', 'cuda' or 'cuda:N'"),
    ('[md]\nplatform = "Metal"\n', "platform = 'Metal' must be one of 'auto', 'CUDA'"),
])
def test_device_and_platform_keys_are_checked(tmp_path, text, message):
    path = tmp_path / "p.toml"
    path.write_text('extends = "smoke"\n' + text)
    with pytest.raises(MapSuiteError, match=message):
        load_profile(path)


def test_cli_report_refuses_a_file_that_is_not_results(tmp_path, capsys):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"checks": []}))
    assert main(["report", str(bad)]) == 2
    assert "not a gate results file" in capsys.readouterr().err


def _pytest_gate(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "pytest", "validation", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_pytest_gate_turns_bad_input_into_a_usage_error(tmp_path, tiny_model, mismatched_reference):
    for extra, message in (
        (["--profile", str(_bad_profile(tmp_path))], "nvt_ps = -1 must be a positive number"),
        (["--profile", "smoke", "--reference", str(mismatched_reference)], "voxel size mismatch"),
    ):
        run = _pytest_gate("--model", str(tiny_model), "--out", str(tmp_path / "gate"), *extra)
        assert run.returncode == 4, run.stdout + run.stderr  # pytest's usage-error exit code
        errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1 and message in errors[0], run.stderr
        assert "collected" not in run.stdout and not (tmp_path / "gate").exists()


def test_gate_options_are_listed_in_pytest_help():
    run = _pytest_gate("--help")
    assert run.returncode == 0
    for option in ("--model", "--profile", "--reference", "--out", "--gate-cache"):
        assert option in run.stdout


def test_reports_name_shipped_files_without_absolute_paths(tmp_path, monkeypatch):
    """A committed report must not carry one machine's folders (issue 26): shipped files are named
    relative to the installation from any working directory; a user's own file keeps its spelling."""
    monkeypatch.chdir(tmp_path)
    assert load_profile("quick").as_dict()["source"] == "validation/gate/profiles/quick.toml"
    assert shown_path(default_model_path()) == "map_core/data/default_model.pt"
    (tmp_path / "mine.pt").write_bytes(b"")
    assert shown_path(tmp_path / "mine.pt") == "mine.pt"
    assert shown_path("/elsewhere/model.pt") == "/elsewhere/model.pt"
    # ... and a shown path finds its file again: a shipped file from any working directory
    assert find_shown("map_core/data/default_model.pt") == default_model_path()
    assert find_shown("mine.pt") == Path("mine.pt") and find_shown("nowhere.pt") == Path("nowhere.pt")

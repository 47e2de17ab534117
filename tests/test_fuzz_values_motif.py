"""Motif files with hostile values (issue 29, part 3): the scan (scan.json, read by load_scan) and the steps of a
run (iteration_NN.npz, read by read_step when `motif generate` resumes) have every field checked, type, shape,
dtype, finiteness, range and the relations between fields; one hostile value in a committed file ends
`map-suite motif generate` in exit 2 and one line naming the file, with nothing written, while the committed files
themselves are taken as they are.

The files are those of reports/motif-default (the shipped model's run around site 0 of the shipped training set),
each with one value replaced (tests/hostile.py); the command runs in process.
"""

import contextlib
import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hostile import FUZZ, HOSTILE_FLOAT, HOSTILE_INT, HOSTILE_NUMBER, NON_FINITE, WRONG_JSON_TYPE, tree
from hypothesis import given
from hypothesis import strategies as st

import validation.motif.run as motif_run
from map_core.errors import MapSuiteError
from map_core.model.default import default_model_path
from validation.cli.main import main
from validation.motif.run import read_step, step_path
from validation.motif.scan import load_scan

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "reports" / "motif-default"
SCAN = json.loads((RUN / "scan.json").read_text())
JOB = json.loads((RUN / "job.json").read_text())
GENERATE = ["motif", "generate", "--model", str(default_model_path()), "--shape", *map(str, JOB["shape"]),
            "--iterations", str(JOB["iterations"]), "--seed", str(JOB["seed"]), "--site", str(JOB["site"]),
            "--no-progress"]

NOT_A_NUMBER = WRONG_JSON_TYPE.filter(lambda v: not isinstance(v, (int, float)) or isinstance(v, bool))
NEGATIVE_OR_HUGE = st.one_of(NON_FINITE, st.sampled_from([-1.0, -1e-9, -(2**31), 1e30, 1e300, 10**30]))
# each field of a scan, and what no scan can hold there (a value a scan may hold is not drawn: a quantile of 0.3)
SCAN_FIELDS = {
    ("probe_nm",): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("stride_nm",): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("frames",): st.one_of(HOSTILE_INT, HOSTILE_FLOAT, NOT_A_NUMBER),
    ("probes",): st.one_of(HOSTILE_INT, HOSTILE_FLOAT, NOT_A_NUMBER),
    ("quantile",): st.one_of(NON_FINITE, st.sampled_from([0, 0.0, -0.1, 1, 1.0, 1.5, 1e300]), NOT_A_NUMBER.filter(
        lambda v: v is not None)),
    ("threshold_g_cm3",): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("tail_probability",): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("density_g_cm3", "mean"): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("density_g_cm3", "std"): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("density_g_cm3", "dominant"): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("density_g_cm3", "values", 3): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("molecules_per_probe", "values", 3): st.one_of(HOSTILE_INT, HOSTILE_FLOAT, NOT_A_NUMBER),
    ("molecules_per_probe", "counts", 3): st.one_of(HOSTILE_INT, HOSTILE_FLOAT, NOT_A_NUMBER),
    ("sites", 1, "frame"): st.one_of(HOSTILE_INT, HOSTILE_FLOAT, NOT_A_NUMBER),  # site 0 holds frame 0: a repeat
    ("sites", 1, "molecules"): st.one_of(HOSTILE_INT, HOSTILE_FLOAT, NOT_A_NUMBER),
    ("sites", 1, "density_g_cm3"): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("sites", 0, "centre_nm", 2): st.one_of(NEGATIVE_OR_HUGE, st.just(0), NOT_A_NUMBER),
    ("sites", 0, "centre_nm"): st.one_of(NOT_A_NUMBER, st.lists(st.floats(0.1, 1.0), max_size=2)).filter(
        lambda v: not (isinstance(v, list) and len(v) == 3 and all(0 < c <= 1000 for c in v))),  # not a point
    ("sites",): NOT_A_NUMBER.filter(lambda v: not isinstance(v, list) or len(v) > 0),
    ("seed_000", "low_g_cm3"): st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER),
    ("data", "sha256"): st.one_of(NOT_A_NUMBER, st.just("0" * 63), st.just("g" * 64)),
    ("data", "path"): st.one_of(NOT_A_NUMBER.filter(lambda v: not isinstance(v, str)), st.sampled_from(["", "   "])),
    ("format",): NOT_A_NUMBER,
}


def replaced(document, where: tuple, value):
    """A deep copy of `document` with the value at the path `where` (keys and indices) replaced."""
    out = copy.deepcopy(document)
    node = out
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    return out


def write_json(path: Path, document) -> Path:
    """JSON text as a hand (or another program) might write it: NaN and Infinity literals, long integers."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # 10**5000 is a JSON number too; the reader must refuse it, not this writer
    try:
        path.write_text(json.dumps(document, indent=1))
    finally:
        sys.set_int_max_str_digits(limit)
    return path


def generate(capsys, scan: Path, out: Path, sampling: bool = False) -> tuple:
    """(exit code, stderr lines) of `motif generate` of the committed job; sampling: let it sample (else a run that
    gets past its checks fails at once, not minutes of the shipped model later)."""
    capsys.readouterr()
    guard = contextlib.nullcontext() if sampling else mock.patch.object(
        motif_run, "protocol_steps", side_effect=AssertionError("sampled: an input that should be refused was taken"))
    with guard:
        code = main([*GENERATE, "--scan", str(scan), "--out", str(out)])
    return code, capsys.readouterr().err.splitlines()


def assert_refused(code, err, path: Path) -> None:
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"map-suite motif: error: {path}: "), err


@FUZZ
@given(field=st.sampled_from(sorted(SCAN_FIELDS, key=str)), data=st.data())
def test_a_scan_with_one_hostile_value_is_refused_naming_it(field, data, capsys):
    value = data.draw(SCAN_FIELDS[field], label="value")
    with tempfile.TemporaryDirectory() as tmp:
        scan = write_json(Path(tmp) / "scan.json", replaced(SCAN, field, value))
        before = tree(tmp)
        code, err = generate(capsys, scan, Path(tmp) / "run")
        assert_refused(code, err, scan)
        assert tree(tmp) == before  # no run folder, nothing else


@FUZZ
@given(field=st.sampled_from(["probe_nm", "tail_probability", ("density_g_cm3", "mean"),
                               ("density_g_cm3", "std"), ("sites", 2, "density_g_cm3")]),
       factor=st.floats(1.001, 1.5) | st.floats(0.5, 0.999))
def test_a_scan_whose_numbers_disagree_is_refused(field, factor):
    """A plausible number that breaks a relation (the densities follow from the probe and the counts, the tail from
    the threshold, the mean and spread from the histogram): no type or range check sees it, the relations do. (A
    threshold between two densities, or another stride, is a scan of its own: not drawn.)"""
    where = field if isinstance(field, tuple) else (field,)
    node = SCAN
    for key in where:
        node = node[key]
    with tempfile.TemporaryDirectory() as tmp:
        scan = write_json(Path(tmp) / "scan.json", replaced(SCAN, where, node * factor))
        with pytest.raises(MapSuiteError, match="scan.json: not a valid scan file") as info:
            load_scan(scan)
        assert "\n" not in str(info.value)


def test_the_committed_scan_and_steps_are_taken_as_they_are():
    assert load_scan(RUN / "scan.json") == {**SCAN}
    for k in range(JOB["iterations"] + 1):
        step = read_step(step_path(RUN, k), k, JOB["shape"], 241)
        assert step.step == step.turns == k and step.grid.shape == tuple(JOB["shape"])


# --- step files -----------------------------------------------------------------------------------------------


def step_arrays(k: int) -> dict:
    with np.load(step_path(RUN, k)) as z:
        return {name: z[name] for name in z.files}


ITERATION_1 = step_arrays(1)
SHAPE = ITERATION_1["grid"].shape


@st.composite
def hostile_step(draw):
    """(what, arrays) of iteration_01.npz with one hostile value: in an array of the step, or in meta."""
    arrays = {k: v.copy() for k, v in ITERATION_1.items()}
    meta = json.loads(str(arrays["meta"]))
    what = draw(st.sampled_from(["grid class", "grid dtype", "grid shape", "generated dtype", "generated none",
                                 "fixed value", "fixed dtype", "fixed shape", "log_prob", "log_prob shape", "turns",
                                 "meta step", "meta turns", "meta log_prob", "meta shape"]))
    voxel = tuple(draw(st.integers(0, n - 1)) for n in SHAPE)
    if what == "grid class":
        arrays["grid"][voxel] = draw(st.integers(241, 255))  # the shipped model has 241 classes
    elif what == "grid dtype":
        arrays["grid"] = arrays["grid"].astype(draw(st.sampled_from([np.int16, np.int64, np.float32, np.float64])))
    elif what == "grid shape":
        arrays["grid"] = arrays["grid"][: draw(st.integers(1, SHAPE[0] - 1))]
    elif what == "generated dtype":
        arrays["generated"] = arrays["generated"].astype(draw(st.sampled_from([np.uint8, np.int64, np.float32])))
    elif what == "generated none":
        arrays["generated"][:] = False
    elif what == "fixed value":
        arrays["fixed"][voxel] = draw(st.sampled_from([-32768, -2, 241, 255, 32767]))
    elif what == "fixed dtype":
        arrays["fixed"] = arrays["fixed"].astype(draw(st.sampled_from([np.int32, np.int64, np.float64, np.uint8])))
    elif what == "fixed shape":
        arrays["fixed"] = arrays["fixed"][:, : draw(st.integers(1, SHAPE[1] - 1))]
    elif what == "log_prob":
        arrays["log_prob"] = np.array([draw(HOSTILE_FLOAT)], dtype=np.float64)
    elif what == "log_prob shape":
        arrays["log_prob"] = np.repeat(arrays["log_prob"], draw(st.sampled_from([0, 2, 3])))
    elif what == "turns":
        arrays["turns"] = np.array([draw(st.sampled_from([0, 2, -1, 2**31, 2**63 - 1]))], dtype=np.int64)
    else:
        key = what.split()[1]
        meta[key] = draw(st.one_of(HOSTILE_NUMBER, NOT_A_NUMBER) if key != "shape" else
                         st.one_of(NOT_A_NUMBER, st.lists(st.integers(1, 80), min_size=3, max_size=3).filter(
                             lambda s: s != list(SHAPE))))
        limit = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(0)
        try:
            arrays["meta"] = np.array(json.dumps(meta))
        finally:
            sys.set_int_max_str_digits(limit)
    return what, arrays


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """The committed run's job.json and step (i), as a folder a killed `motif generate` would have left."""
    folder = tmp_path_factory.mktemp("motif_run")
    for name in ("job.json", "step_i.npz"):
        shutil.copy(RUN / name, folder / name)
    return folder


@FUZZ
@given(case=hostile_step())
def test_a_step_with_one_hostile_value_is_refused_naming_it(case, run_folder, capsys):
    """The rerun of the committed job reads its finished steps before anything else: the hostile one is refused."""
    _, arrays = case
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        shutil.copytree(run_folder, out)
        bad = out / "iteration_01.npz"
        np.savez(bad, **arrays)
        before = tree(out)
        code, err = generate(capsys, RUN / "scan.json", out)
        assert_refused(code, err, bad)
        assert tree(out) == before  # nothing written, nothing removed


def test_a_step_without_the_motif_is_refused(run_folder, tmp_path, capsys):
    """A grid of valid classes whose motif voxels differ from the run's motif: only the motif itself tells."""
    arrays = {k: v.copy() for k, v in ITERATION_1.items()}
    centre = (SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2] // 2)  # a voxel of the motif
    arrays["grid"][centre] = (int(arrays["grid"][centre]) + 1) % 241  # another class of the model
    out = tmp_path / "run"
    shutil.copytree(run_folder, out)
    np.savez(out / "iteration_01.npz", **arrays)
    before = tree(out)
    code, err = generate(capsys, RUN / "scan.json", out)
    assert_refused(code, err, out / "iteration_01.npz")
    assert "motif" in err[0] and tree(out) == before


@pytest.mark.slow  # the convergence numbers and the report's figures of six 40^3 boxes
def test_the_committed_run_resumes_to_its_report(tmp_path, capsys):
    """Valid files are no refusal: the committed run's folder, less its results, finishes without sampling."""
    out = tmp_path / "run"
    out.mkdir()
    for k in range(JOB["iterations"] + 1):
        shutil.copy(step_path(RUN, k), step_path(out, k))
    shutil.copy(RUN / "job.json", out / "job.json")
    code, err = generate(capsys, RUN / "scan.json", out)
    assert code == 0, err
    assert (out / "motif.json").is_file() and (out / "motif.html").is_file()
    assert json.loads((out / "motif.json").read_text())["convergence"] == json.loads(
        (RUN / "motif.json").read_text())["convergence"]

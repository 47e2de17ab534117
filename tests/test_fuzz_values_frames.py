"""Well-formed frames files with one hostile value, one clear error (issue 29, part 1).

Each strategy starts from the arrays of a real frames file (MD water, tests/data/water_md_small.npz;
a generated open box, reports/motif-default/iteration_01.npz) and puts one hostile value into one
field: a position, a count, an element, a molecule id, a box edge, the meta JSON, or a dtype or
shape. The file is a valid .npz; only its values are wrong. Every reader (`load_frames`,
`read_boxes`) must refuse it with one MapSuiteError line naming the file, and the commands that
read frames (train, evaluate, motif scan, validate --boxes, export) exit 2 with one stderr line
naming it and leave nothing in their output folder. Valid files (the shipped ones, unwrapped MD
frames, generated boxes with hydrogens past their faces) are still accepted.

`FUZZ` examples per kind (30 in CI; MAP_SUITE_FUZZ_EXAMPLES=2000 for the slow variant).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile import (
    FUZZ,
    HOSTILE_FLOAT,
    HOSTILE_INT,
    HOSTILE_NUMBER,
    NEGATIVE_INT,
    NOT_A_POSITION,
    NOT_AN_ELEMENT,
    WRONG_JSON_TYPE,
    WRONG_NUMBER_DTYPE,
    with_dtype,
)
from hypothesis import assume, given
from hypothesis import strategies as st

from map_core.atoms import frames_check
from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.atoms.voxels import check_voxel_budget
from map_core.errors import MapSuiteError
from map_core.model.default import default_model_path
from validation.cli.main import main
from validation.md.imports import read_boxes

ROOT = Path(__file__).resolve().parents[1]
MD = ROOT / "tests" / "data" / "water_md_small.npz"  # 5 frames of 216 q-TIP4P/F waters, wrapped into the box
GENERATED = ROOT / "reports" / "motif-default" / "iteration_01.npz"  # a generated open box, H past its faces
SHIPPED = ROOT / "map_core" / "data" / "water_classical_216.npz"


def arrays_of(path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


SOURCES = {"md": arrays_of(MD), "generated": arrays_of(GENERATED)}
# HUGE_INT and HOSTILE_INT as int64 can store them (10**5000 has no int64, and no repr either)
INT64_HUGE = [2**31, 2**53 + 1, 2**63 - 1]
INT64_HOSTILE = [*INT64_HUGE, -1, -(2**31), -(2**63), 0]


def json_text(value) -> str:
    """JSON of `value`, huge integers (10**5000) included."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(value)
    finally:
        sys.set_int_max_str_digits(old)


def write(path: Path, arrays: dict) -> Path:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def assert_refused(read, path: Path, what: str = "") -> str:
    """`read(path)` raises MapSuiteError: one line naming `path`."""
    with pytest.raises(MapSuiteError) as info:
        read(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message, (what, message)
    return message


# --- one hostile field per strategy: (what, arrays) ------------------------------------------------


def _source(draw) -> tuple:
    name = draw(st.sampled_from(sorted(SOURCES)))
    return name, {k: v.copy() for k, v in SOURCES[name].items()}


def _atom(draw, a: dict) -> int:
    return draw(st.integers(0, len(a["positions"]) - 1))


@st.composite
def positions_value(draw):
    name, a = _source(draw)
    value = draw(NOT_A_POSITION)
    pos = a["positions"].astype(np.float64)  # exact: float64 max stays float64 max
    pos[_atom(draw, a), draw(st.integers(0, 2))] = value
    a["positions"] = pos
    return f"{name}: position {value!r}", a


@st.composite
def positions_form(draw):
    name, a = _source(draw)
    pos = a["positions"]
    form = draw(st.sampled_from(["dtype", "(M, 4)", "(M, 2)", "(3M,)", "(M, 3, 1)", "(M, 1, 3)"]))
    if form == "dtype":
        kind = draw(WRONG_NUMBER_DTYPE)
        a["positions"] = with_dtype(pos, kind)
        return f"{name}: positions stored as {kind}", a
    a["positions"] = {"(M, 4)": lambda: np.c_[pos, pos[:, :1]], "(M, 2)": lambda: pos[:, :2], "(3M,)": lambda: pos.reshape(-1),
                      "(M, 3, 1)": lambda: pos[:, :, None], "(M, 1, 3)": lambda: pos[:, None, :]}[form]()
    return f"{name}: positions of shape {form}", a


@st.composite
def counts_value(draw):
    """Counts that do not describe the positions, some adding up to the right total in int64 or uint64."""
    name, a = _source(draw)
    c, n = a["counts"].astype(np.int64), len(a["positions"])
    how = draw(st.sampled_from(["wrap int64", "wrap uint64", "negative", "one off", "huge", "float", "2-D", "empty",
                                "box rows", "fixed layout"]))
    if how == "wrap int64":  # 2^62 added to four counts: the int64 sum wraps round to the true total
        c = np.concatenate([c, np.zeros(max(0, 4 - len(c)), np.int64)])
        c[:4] += 2**62
        a["box"] = np.resize(a["box"], (len(c), 3))
    elif how == "wrap uint64":  # 2^64 - 1 and 1 more: the uint64 sum wraps round to the true total
        c = np.concatenate([c, [0, 0]]).astype(np.uint64)
        c[-2], c[-1] = np.uint64(2**64 - 1), np.uint64(1)
        a["box"] = np.resize(a["box"], (len(c), 3))
    elif how == "negative":  # a negative count and a compensating one
        c = np.concatenate([c, [-draw(st.integers(1, 10**6)), 0]])
        c[-1] = -c[-2]
        a["box"] = np.resize(a["box"], (len(c), 3))
    elif how == "one off":
        c[draw(st.integers(0, len(c) - 1))] += draw(st.sampled_from([-1, 1]))
    elif how == "huge":
        c[draw(st.integers(0, len(c) - 1))] = draw(st.sampled_from([2**31, 2**62, 2**63 - 1, -(2**63)]))
    elif how == "float":
        c = c.astype(draw(st.sampled_from([np.float64, np.float32])))
    elif how == "2-D":
        c = c[None, :]
    elif how == "empty":
        c = c[:0]
    elif how == "box rows":
        a["box"] = np.resize(a["box"], (len(c) + draw(st.sampled_from([-1, 1, 5])), 3))
    else:  # fixed-layout positions with counts that disagree
        if len(set(c.tolist())) == 1 and len(c) > 1:
            a["positions"] = a["positions"].reshape(len(c), -1, 3)
            a["elements"], a["molecule"] = a["elements"][: c[0]], a["molecule"][: c[0]]
            c = c.copy()
            c[0] += 3
            c[1] -= 3
        else:
            c = c + n
    a["counts"] = c
    return f"{name}: counts {how}", a


@st.composite
def elements_value(draw):
    name, a = _source(draw)
    bad = draw(NOT_AN_ELEMENT)
    how = draw(st.sampled_from(["one", "all lower case", "numbers", "shape"]))
    if how == "one":
        el = a["elements"].astype(object)
        el[_atom(draw, a)] = bad
        a["elements"] = np.array(el.tolist(), dtype=str)
        return f"{name}: element {bad!r}", a
    if how == "all lower case":
        a["elements"] = np.char.lower(a["elements"])
        return f"{name}: elements o, h", a
    if how == "numbers":
        a["elements"] = np.where(a["elements"] == "O", 8, 1).astype(draw(st.sampled_from([np.int64, np.float32, np.uint8])))
        return f"{name}: elements as atomic numbers", a
    a["elements"] = a["elements"][: -draw(st.integers(1, 5))]
    return f"{name}: elements shorter than positions", a


@st.composite
def molecule_value(draw):
    name, a = _source(draw)
    mol = a["molecule"].astype(np.int64)
    how = draw(st.sampled_from(["below -1", "past the atoms", "dtype", "shape"]))
    if how == "below -1":
        mol[_atom(draw, a)] = draw(st.one_of(NEGATIVE_INT.filter(lambda v: v < -1), st.integers(-(2**63), -2)))
    elif how == "past the atoms":  # an id no frame of <= 888 atoms can number, up to int64's largest
        mol[_atom(draw, a)] = draw(st.one_of(st.sampled_from(INT64_HUGE), st.integers(888, 2**63 - 1)))
    elif how == "dtype":
        kind = draw(st.sampled_from(["float", "text", "bool", "complex"]))
        mol = {"float": mol.astype(np.float64), "text": mol.astype(str), "bool": mol >= 0, "complex": mol + 0j}[kind]
    else:
        mol = mol[: -draw(st.integers(1, 5))]
    a["molecule"] = mol
    return f"{name}: molecule ids {how}", a


@st.composite
def molecule_relation(draw):
    """Ids in range that no water can have: two molecules merged (2 O, 4 H), an O given to another water,
    a hydrogen made a third H of a water, an atom of another element in a water."""
    name, a = _source(draw)
    mol, el = a["molecule"].astype(np.int64), a["elements"].copy()
    first = int(a["counts"][0])
    ids = np.unique(mol[:first][mol[:first] >= 0])
    k = int(draw(st.sampled_from(ids[:-1].tolist())))
    how = draw(st.sampled_from(["merged", "two O", "three H", "other element"]))
    if how == "merged":
        mol[:first][mol[:first] == ids[np.searchsorted(ids, k) + 1]] = k
    elif how == "two O":
        o = np.flatnonzero((mol[:first] != k) & (el[:first] == "O"))[0]
        mol[o] = k
    elif how == "three H":
        h = np.flatnonzero((mol[:first] != k) & (el[:first] == "H"))[0]
        mol[h] = k
    else:
        atom = np.flatnonzero(mol[:first] == k)[0]
        el = el.astype("<U2")
        el[atom] = draw(st.sampled_from(["Na", "Cl", "C", "N"]))
    a["molecule"], a["elements"] = mol.astype(np.int32), el
    return f"{name}: molecule {k} {how}", a


@st.composite
def box_value(draw):
    name, a = _source(draw)
    box = a["box"].astype(np.float64)
    how = draw(st.sampled_from(["edge", "edge", "int", "dtype", "shape"]))
    if how == "edge":  # every hostile float is outside 0.001..1000 nm (or not finite)
        value = draw(HOSTILE_FLOAT)
        box[draw(st.integers(0, len(box) - 1)), draw(st.integers(0, 2))] = value
        a["box"] = box
        return f"{name}: box edge {value!r}", a
    if how == "int":
        value = draw(st.sampled_from(INT64_HOSTILE))
        box = np.round(box).astype(np.int64)
        box[0, draw(st.integers(0, 2))] = value
        a["box"] = box
        return f"{name}: integer box edge {value}", a
    if how == "dtype":
        kind = draw(WRONG_NUMBER_DTYPE)
        a["box"] = with_dtype(box, kind)
        return f"{name}: box stored as {kind}", a
    shapes = [box[:, :2], np.c_[box, box[:, :1]], box[:, None, :], box.T] + ([box.reshape(-1)] if len(box) > 1 else [])
    a["box"] = draw(st.sampled_from(shapes))
    return f"{name}: box of shape {a['box'].shape}", a


@st.composite
def meta_value(draw):
    """meta that is no JSON object, or a known key of the wrong type or range."""
    name, a = _source(draw)
    meta = json.loads(str(a["meta"]))
    how = draw(st.sampled_from(["not an object", "not JSON", "not text", "voxel_nm", "temperature", "beads", "seed",
                                "periodic", "method"]))
    if how == "not an object":
        value = draw(WRONG_JSON_TYPE.filter(lambda v: not isinstance(v, dict)))
        a["meta"] = np.array(json_text(value))
        return f"{name}: meta {json_text(value)[:40]}", a
    if how == "not JSON":
        a["meta"] = np.array(draw(st.sampled_from(["{", "", "{'a': 1}", "[1, 2", "1" * 5000, "{\"a\": " + "[" * 100000])))
        return f"{name}: meta not JSON", a
    if how == "not text":
        a["meta"] = draw(st.sampled_from([np.array(5), np.array([json.dumps(meta)] * 2), np.array(3.5), np.zeros(0)]))
        return f"{name}: meta array {a['meta'].dtype} {a['meta'].shape}", a
    anything_wrong = st.one_of(WRONG_JSON_TYPE, st.just(float("nan")))
    value = draw({
        "voxel_nm": st.one_of(anything_wrong, HOSTILE_NUMBER, st.sampled_from([1.5, 0.0009, 2])),
        # MD (method classical) temperatures: K, >= 1
        "temperature": st.one_of(anything_wrong, HOSTILE_NUMBER, st.sampled_from([0.5, 2e4])),
        "beads": st.one_of(anything_wrong, HOSTILE_INT, st.sampled_from([1.0, 32.0, 2.5, 10_001])),
        "seed": st.one_of(anything_wrong, NEGATIVE_INT, st.sampled_from([2**63, 2**64, 10**5000, 1.0, 1.5])),
        "periodic": st.one_of(st.sampled_from(["false", "true", 0, 1, None]), st.text(max_size=5)),
        "method": st.one_of(st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=2)),
    }[how])
    assume(not _acceptable(how, value))  # not .filter: a rejected draw would repr the strategy, and 10**5000 has no repr
    meta[how] = value
    if how == "temperature":
        meta["method"] = "classical"
    a["meta"] = np.array(json_text(meta))
    return f"{name}: meta {how} = {json_text(value)[:40]}", a


def _acceptable(key: str, value) -> bool:
    """Whether META_RULES would accept `value` for `key` (only for filtering the strategy: a few drawn values are valid)."""
    accepts, _ = frames_check.META_RULES[key]
    try:
        return accepts(value, {"method": "classical"})
    except (TypeError, ValueError):
        return False


KINDS = {"positions_value": positions_value, "positions_form": positions_form, "counts": counts_value,
         "elements": elements_value, "molecule_value": molecule_value, "molecule_relation": molecule_relation,
         "box": box_value, "meta": meta_value}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_hostile_values_are_refused_by_every_reader(kind, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"values_{kind}")

    @FUZZ
    @given(case=KINDS[kind]())
    def run(case):
        what, arrays = case
        path = write(folder / "hostile.npz", arrays)
        assert_refused(lambda p: load_frames(p, allow_empty_frames=True), path, what)
        assert_refused(lambda p: read_boxes(p), path, what)

    run()


# --- the commands that read frames ----------------------------------------------------------------


def _hostile_file(folder: Path, case: str) -> Path:
    """A named hostile frames file, each a case of the issue."""
    a = {k: v.copy() for k, v in SOURCES["md"].items()}
    meta = json.loads(str(a["meta"]))
    if case == "counts wrap to the total":
        a["counts"] = np.array([2**62 + 648] * 4 + [648], dtype=np.int64)
    elif case == "NaN position":
        a["positions"][7, 1] = np.nan
    elif case == "meta a list":
        a["meta"] = np.array(json.dumps([["a", 1], ["b", 2]]))
    elif case == "lower-case elements":
        a["elements"] = np.char.lower(a["elements"])
    elif case == "box 1e30 nm":
        a["box"][:] = 1e30
    elif case == "box 1e-3 nm":
        a["box"][:] = 1e-3
    elif case == "voxel_nm NaN":
        meta["voxel_nm"] = float("nan")
        a["meta"] = np.array(json.dumps(meta))
    elif case == "five atoms in one water":
        a["molecule"][3:5] = 0
    elif case == "positions as text":
        a["positions"] = a["positions"].astype(str)
    return write(folder / "hostile.npz", a)


def _command(command: str, data: Path, out: Path) -> list:
    return {
        "train": ["train", "--data", data, "--out", out / "m.pt", "--steps", "1", "--crop", "8", "--no-progress"],
        "evaluate": ["evaluate", "--model", default_model_path(), "--data", data, "--crop", "8", "--crops", "1"],
        "motif scan": ["motif", "scan", "--data", data, "--out", out / "scan.json", "--probe-nm", "0.6", "--no-progress"],
        "validate --boxes": ["validate", "--boxes", data, "--profile", "smoke", "--out", out / "report", "--no-progress"],
        "export": ["export", data, "--format", "gro", "--out", out / "boxes.gro"],
    }[command]


def run_refused(capsys, command: list, path: Path, out: Path) -> str:
    """Run the CLI in process: exit 2, one stderr line naming `path`, no file left under `out`."""
    capsys.readouterr()
    code = main([str(x) for x in command])
    err = capsys.readouterr().err.strip()
    assert code == 2, (command, err)
    assert len(err.splitlines()) == 1 and str(path) in err and err.startswith(f"map-suite {command[0]}"), err
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file()], list(out.rglob("*"))
    return err


CLI_CASES = [  # (case, command): every case of the issue through the commands where it was seen, and others
    ("counts wrap to the total", "train"), ("counts wrap to the total", "validate --boxes"),
    ("NaN position", "validate --boxes"), ("NaN position", "export"),
    ("meta a list", "motif scan"), ("meta a list", "evaluate"),
    ("lower-case elements", "motif scan"), ("lower-case elements", "train"),
    ("box 1e30 nm", "train"), ("box 1e30 nm", "evaluate"), ("box 1e30 nm", "motif scan"),
    ("box 1e-3 nm", "validate --boxes"),
    ("voxel_nm NaN", "evaluate"), ("five atoms in one water", "validate --boxes"), ("positions as text", "export"),
]


@pytest.mark.parametrize("case,command", CLI_CASES)
def test_commands_refuse_hostile_frames_in_one_line(case, command, tmp_path, capsys):
    data = _hostile_file(tmp_path, case)
    out = tmp_path / "out"
    run_refused(capsys, _command(command, data, out), data, out)


# --- memory: the voxel budget and the gate's periodic images -------------------------------------


def _md_with_box(folder: Path, edge: float) -> Path:
    a = {k: v.copy() for k, v in SOURCES["md"].items()}
    a["box"][:] = edge
    return write(folder / f"box_{edge:g}.npz", a)


def test_a_box_whose_voxels_do_not_fit_in_memory_is_refused_before_training(tmp_path, capsys):
    """900 nm is a plausible box, but (900 / 0.025)^3 one-byte voxels are 42 TiB: refused naming the file."""
    data = _md_with_box(tmp_path, 900.0)
    load_frames(data)  # a valid frames file
    err = run_refused(capsys, _command("train", data, tmp_path / "out"), data, tmp_path / "out")
    assert "GiB of memory" in err


def test_periodic_boxes_whose_images_do_not_fit_are_refused_by_the_gate(tmp_path, capsys):
    """A 0.002 nm periodic box is in range (a box of two of the smallest voxels), but the windows the gate cuts
    would hold 10^9 images of it."""
    data = _md_with_box(tmp_path, 0.002)
    read_boxes(data)
    err = run_refused(capsys, _command("validate --boxes", data, tmp_path / "out"), data, tmp_path / "out")
    assert "periodic images" in err


def test_voxel_budget_counts_in_floats_and_names_the_file():
    assert check_voxel_budget([[1.86, 1.86, 1.86]] * 400, 0.025, "x.npz", budget=2**30) == pytest.approx(401 * 75**3)
    for box in ([1e30] * 3, [900.0] * 3):
        with pytest.raises(MapSuiteError, match="x.npz: voxel grids .* GiB of memory"):
            check_voxel_budget([box], 0.025, "x.npz", budget=2**40)
    with pytest.raises(MapSuiteError, match="x.npz: voxel size"):
        check_voxel_budget([[1.0] * 3], float("nan"), "x.npz")


# --- valid input stays valid ---------------------------------------------------------------------


def test_valid_frames_files_are_accepted(tmp_path):
    for path in (MD, SHIPPED, GENERATED, *sorted((ROOT / "reports" / "motif-default").glob("*.npz"))):
        load_frames(path, allow_empty_frames=True)
        read_boxes(path)
    a = {k: v.copy() for k, v in SOURCES["md"].items()}
    # unwrapped MD: atoms 50 box lengths away, as a long trajectory's diffusion leaves them
    a["positions"] = a["positions"] + 50 * a["box"][0, 0]
    a["positions"][:648] -= 120 * a["box"][0, 0]
    load_frames(write(tmp_path / "unwrapped.npz", a))
    # other real and integer dtypes than the writers' own
    b = {k: v.copy() for k, v in SOURCES["md"].items()}
    b["positions"], b["counts"] = b["positions"].astype(np.float64), b["counts"].astype(np.uint32)
    b["molecule"] = b["molecule"].astype(np.int64)
    load_frames(write(tmp_path / "wide.npz", b))
    fixed = {k: v for k, v in b.items() if k != "counts"}
    fixed["positions"] = b["positions"].reshape(5, 648, 3)
    fixed["elements"], fixed["molecule"] = b["elements"][:648], b["molecule"][:648]
    assert load_frames(write(tmp_path / "fixed.npz", fixed)).counts.tolist() == [648] * 5


def test_valid_values_at_the_edges_are_accepted(tmp_path):
    """Generated boxes sampled at temperature 0 (argmax), partial waters cut at a face, orphans, virtual
    sites, an empty generated box, boxes at the ends of the range."""
    frames = load_frames(MD).select([0, 1])
    frames.meta = {"method": "map", "temperature": 0, "seed": 2**63 - 1, "voxel_nm": 0.001, "periodic": False, "beads": 1}
    frames.molecule[0] = frames.molecule[0].copy()
    frames.molecule[0][:2] = -1  # an orphan O and H: the rest of the water keeps its id (one H)
    frames.elements[1] = frames.elements[1].copy()
    frames.elements[1][:3] = ["O", "H", "X"]  # a virtual site in a water (TIP4P's M as ASE's X)
    save_frames(tmp_path / "edges.npz", frames)
    back = load_frames(tmp_path / "edges.npz")
    assert back.meta["temperature"] == 0
    empty = Frames.from_arrays([np.zeros((0, 3))], [np.zeros(0, "<U2")], [np.zeros(0, int)], [[0.001, 0.001, 1000.0]],
                               {"method": "map"})
    save_frames(tmp_path / "empty.npz", empty)
    load_frames(tmp_path / "empty.npz", allow_empty_frames=True)


def test_the_suite_can_fail_without_the_counts_check(tmp_path, monkeypatch):
    """With the exact (Python int) sum of counts replaced by numpy's int64 sum, counts that wrap round to the
    total are accepted again (here in a file without molecule ids, which would otherwise give the split away)."""
    a = {k: v for k, v in SOURCES["md"].items() if k != "molecule"}
    a["counts"] = np.array([2**62 + 648] * 4 + [648], dtype=np.int64)
    path = write(tmp_path / "wrapped.npz", a)
    assert "counts" in assert_refused(lambda p: load_frames(p, allow_empty_frames=True), path)

    def int64_sum(counts, n_positions, where):  # the check as it was: the sum in int64, no range check
        if counts.astype(np.int64).sum() != n_positions:
            raise MapSuiteError("counts do not add up", where)
        return counts.astype(np.int64)

    monkeypatch.setattr(frames_check, "_counts", int64_sum)
    accepted = load_frames(path, allow_empty_frames=True)  # the property would fail: split at wrapped (negative) offsets,
    assert len(accepted) == 5 and accepted.counts.tolist() != [648] * 5  # frames of 3240, 0, 0, 2592 and 648 atoms

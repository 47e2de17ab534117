"""Well-formed checkpoints with hostile values (issue 29): the shipped checkpoint, saved again by torch
with one field changed (a config value, the format version, a weight tensor's values, shape or type,
a provenance field the commands read). `load_model` either returns a model or raises one MapSuiteError
line naming the file; the model's memory is checked before it is built; files that are not
checkpoints (a GRO given as --model) end in our own line, never torch's text.
"""

import math

import pytest
import torch
from hostile import FUZZ, HOSTILE_NUMBER, WRONG_JSON_TYPE, hostile_array
from hypothesis import given
from hypothesis import strategies as st

from map_core.errors import MapSuiteError
from map_core.model import checkpoint
from map_core.model.checkpoint import NOT_A_CHECKPOINT, load_checkpoint, load_model
from map_core.model.default import default_model_path
from map_core.model.one_stage import OneStagePixelCNN
from validation.cli.main import main

SHIPPED = torch.load(default_model_path(), weights_only=True)
WEIGHTS = sorted(SHIPPED["state_dict"])
CONFIG_KEYS = ["layers", "filters", "kernel", "activation", "dropout", "n_classes", "voxel_nm", "encoding", "kind", "head",
               "reach_nm"]
NAMES = st.one_of(st.text(max_size=12), st.sampled_from(["three-stage", "beads", "", "ONE-STAGE", "gated ", "water\n"]))


def is_real(value) -> bool:
    """A finite number a float holds (10**5000 is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e308 and math.isfinite(value)


def payload_with(where: tuple, value) -> dict:
    """A copy of the shipped payload with one field changed (tensors are shared unless replaced)."""
    out = {**SHIPPED, "config": dict(SHIPPED["config"]), "state_dict": dict(SHIPPED["state_dict"]),
           "provenance": {**SHIPPED["provenance"], "settings": dict(SHIPPED["provenance"]["settings"])}}
    kind, key = where
    if kind == "config":
        out["config"][key] = value
    elif kind == "format_version":
        out["format_version"] = value
    elif kind in ("weights", "shape", "dtype"):
        out["state_dict"][key] = value
    elif kind == "missing":
        del out["state_dict"][key]
    elif kind == "test_fraction":
        out["provenance"]["settings"]["test_fraction"] = value
    else:  # another provenance field
        out["provenance"][key] = value
    return out


@st.composite
def hostile_payloads(draw):
    """(where, value, acceptable): where = (kind, key); acceptable says whether the changed file is still
    a valid checkpoint of the same network (a dropout of 0, finite weights, ...)."""
    kind = draw(st.sampled_from(["config", "config", "format_version", "weights", "shape", "dtype", "missing",
                                 "test_fraction", "provenance"]))
    if kind == "config":
        key = draw(st.sampled_from(CONFIG_KEYS))
        value = draw(st.one_of(HOSTILE_NUMBER, WRONG_JSON_TYPE, NAMES))
        real = is_real(value)
        ok = (key == "dropout" and real and 0 <= value < 1) or (key == "head" and type(value) is int and value == 0) \
            or (key == "reach_nm" and real and 0.05 <= value <= 1.0)
        return (kind, key), value, ok
    if kind == "format_version":
        return (kind, None), draw(st.one_of(HOSTILE_NUMBER, WRONG_JSON_TYPE, st.sampled_from([1.0, True, 2, "1"]))), False
    key = draw(st.sampled_from(WEIGHTS))
    shape = tuple(SHIPPED["state_dict"][key].shape)
    if kind == "weights":
        value = torch.from_numpy(draw(hostile_array(shape)))
        return (kind, key), value, bool(torch.isfinite(value).all())
    if kind == "shape":
        wrong = draw(st.sampled_from([shape + (1,), shape[1:] or (2,), (shape[0] + 1,) + shape[1:], (0,) + shape[1:]]))
        return (kind, key), torch.zeros(wrong), False
    if kind == "dtype":
        return (kind, key), torch.zeros(shape, dtype=draw(st.sampled_from([torch.int64, torch.bool, torch.uint8]))), False
    if kind == "missing":
        return (kind, key), None, False
    if kind == "test_fraction":
        value = draw(st.one_of(HOSTILE_NUMBER, WRONG_JSON_TYPE))
        return (kind, None), value, is_real(value) and 0 < value < 1
    key = draw(st.sampled_from(["class_frequencies", "data_sha256", "settings"]))
    value = draw(st.one_of(HOSTILE_NUMBER, WRONG_JSON_TYPE, st.just([0.5] * 3)))
    settings_ok = key == "settings" and isinstance(value, dict) and "test_fraction" not in value  # the default fraction
    return (kind, key), value, value is None or settings_ok or (key == "data_sha256" and isinstance(value, str))


def check_one(path, acceptable: bool, what):
    try:
        model, _ = load_model(path)
    except MapSuiteError as exc:
        message = str(exc)
        assert str(path) in message and "\n" not in message, message
        assert not acceptable, f"a valid checkpoint ({what}) was refused: {message}"
        return
    assert acceptable, f"{what} was accepted"
    assert all(torch.isfinite(t).all() for t in model.state_dict().values())


@FUZZ
@given(case=hostile_payloads())
def test_hostile_values_end_in_one_line_naming_the_file(tmp_path_factory, case):
    where, value, acceptable = case
    path = tmp_path_factory.mktemp("ckpt") / "hostile.pt"
    torch.save(payload_with(where, value), path)
    check_one(path, acceptable, f"{where} = {type(value).__name__}")


# The values of the issue: each must be refused at load, before a model is built.
SEEN = [
    (("config", "layers"), 0), (("config", "layers"), -3), (("config", "layers"), 10**12),
    (("config", "filters"), 0), (("config", "filters"), 10**12), (("config", "kernel"), 0), (("config", "kernel"), 4),
    (("config", "kernel"), 10**12), (("config", "voxel_nm"), float("nan")), (("config", "voxel_nm"), 0.0),
    (("config", "voxel_nm"), -0.05), (("config", "voxel_nm"), "0.05"), (("config", "encoding"), "beads"),
    (("config", "kind"), "three-stage"), (("config", "n_classes"), 240), (("config", "head"), 10**12),
    (("config", "reach_nm"), 1e300), (("config", "dropout"), float("inf")), (("config", "layers"), True),
    (("config", "layers"), torch.tensor(12)), (("format_version", None), "1"), (("format_version", None), 1.0),
    (("format_version", None), True), (("format_version", None), torch.ones(3)),
    (("weights", "layers.0.depth.conv.weight"), torch.full((32, 11, 2, 3, 3), float("nan"))),
    (("weights", "head_out.bias"), torch.full((241,), float("inf"))),
    (("shape", "layers.3.horizontal.conv.weight"), torch.zeros(32, 16, 1, 1, 3)),
    (("dtype", "head_out.bias"), torch.zeros(241, dtype=torch.int64)), (("missing", "head_out.bias"), None),
    (("weights", "layers.0.extra"), torch.zeros(3)),  # a tensor the network does not have
    (("weights", "head_out.bias"), torch.eye(241).to_sparse()[0]), (("weights", "head_out.bias"), torch.empty(241, device="meta")),
    (("test_fraction", None), 1.5), (("provenance", "class_frequencies"), [0.5, 0.5]),
]


@pytest.mark.parametrize("where, value", SEEN, ids=[f"{w[0]}-{w[1]}-{i}" for i, (w, _) in enumerate(SEEN)])
def test_values_of_the_issue_are_refused(tmp_path, where, value):
    path = tmp_path / "bad.pt"
    torch.save(payload_with(where, value), path)
    with pytest.raises(MapSuiteError) as info:
        load_model(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_memory_is_checked_before_the_model_is_built(tmp_path, monkeypatch):
    """The parameters x 4 bytes against available memory: first a floor from the config alone, then the
    exact count of a shapes-only (meta device) build; no real tensor is made before both pass."""
    built = []
    real_build = OneStagePixelCNN.build
    monkeypatch.setattr(OneStagePixelCNN, "build", lambda self, c: built.append(torch.get_default_device().type)
                        or real_build(self, c))
    path = default_model_path()
    params = sum(t.numel() for t in SHIPPED["state_dict"].values())
    for free, words in ((1000, "needs at least"), (4 * params - 1, f"{params:,} parameters need")):
        monkeypatch.setattr(checkpoint, "available_memory_bytes", lambda free=free: free)
        with pytest.raises(MapSuiteError, match=words):
            load_model(path)
        assert "cpu" not in built, built
    monkeypatch.setattr(checkpoint, "available_memory_bytes", lambda: 4 * params)
    load_model(path)
    assert built[-1] == "cpu"


def test_the_shipped_checkpoint_and_a_faithful_copy_load(tmp_path):
    model, _ = load_model(default_model_path())
    assert model.config.to_dict() == {**model.config.to_dict(), **SHIPPED["config"]}
    copy = tmp_path / "copy.pt"
    torch.save(payload_with(("config", "layers"), SHIPPED["config"]["layers"]), copy)
    load_model(copy)
    load_checkpoint(copy)


# --- through the command line --------------------------------------------------------------------------

GRO = "water\n    3\n    1SOL     OW    1   0.126   0.639   0.322\n    1SOL    HW1    2   0.187   0.713   0.340\n" \
      "    1SOL    HW2    3   0.170   0.566   0.370\n   1.86206   1.86206   1.86206\n"


@pytest.mark.parametrize("name", ["water.gro", "layers.pt", "nan.pt", "version.pt"])
def test_generate_refuses_in_one_line_and_writes_nothing(tmp_path, capsys, name):
    path = tmp_path / name
    if name.endswith(".gro"):
        path.write_text(GRO)
    else:
        where, value = {"layers.pt": (("config", "layers"), 10**12), "version.pt": (("format_version", None), "1"),
                        "nan.pt": (("weights", "head_out.bias"), torch.full((241,), float("nan")))}[name]
        torch.save(payload_with(where, value), path)
    out = tmp_path / "out" / "boxes.npz"
    assert main(["generate", "--model", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    assert NOT_A_CHECKPOINT in err if name.endswith(".gro") else "checkpoint" in err
    assert not out.exists()

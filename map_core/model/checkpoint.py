"""Checkpoints: one file with format version, model config, weights and training provenance.

Written atomically with torch.save; read with torch.load(weights_only=True), so a file that
would run code when unpickled is refused rather than executed.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from map_core.atoms.encoding import ENCODINGS, Encoding
from map_core.errors import MapSuiteError
from map_core.files import atomic_path, available_memory_bytes
from map_core.model.kinds import KINDS, kind_of
from map_core.model.pixelcnn import ModelConfig
from map_core.values import is_real

FORMAT = "map-suite-checkpoint"
FORMAT_VERSION = 1

# Bounds of a checkpoint's config values (the memory its weights need is checked separately, against
# what is available, before the model is built: `load_model`).
# voxel_nm: above 0.3 nm two molecules of liquid water (O-O 0.28 nm) share a voxel, which no encoding
# represents; below 0.001 nm one nm^3 is 10^9 voxels, more than any box this suite samples.
VOXEL_NM_MIN, VOXEL_NM_MAX = 0.001, 0.3
# layers x (kernel // 2): how many planes back a voxel sees, the unit of every burn-in margin and of
# the sampler's boundary halo. Seed 000 used 20, the shipped model 12; at 256 a box's margins alone
# are 512 voxels wide.
MAX_FIELD_DEPTH = 256
# reach_nm: how far stage 2 of a two-stage model looks (map_core.model.turner); its radial bases sit
# at 0.21-0.35 nm with 0.028 nm widths, so past 1 nm every term is below 1e-100, zero in float32,
# while its offset tables grow as the reach cubed.
REACH_NM_MAX = 1.0
BYTES_PER_WEIGHT = 4  # float32 parameters
UNKNOWN_MEMORY_BYTES = 2**40  # where /proc/meminfo says nothing: 1 TiB, more than any node this project runs on


def save_checkpoint(path, model, provenance: dict, training_state: dict | None = None) -> None:
    """Write a checkpoint atomically: `model` is a network its kind built (``model.config.kind``).

    provenance: JSON-like dict (data sha256, steps, losses, seed, ...);
    training_state: optimizer state and step counters needed by `train --resume` (optional).
    """
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "receptive_field": kind_of(model.config).receptive_field(model.config).as_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "provenance": provenance,
        "training_state": training_state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


NOT_A_CHECKPOINT = "not a map-suite checkpoint (a torch file written by `map-suite train` was expected)"


def _refuse(why: str, path) -> MapSuiteError:
    """The one line for a file that is not a checkpoint: our words and a short reason, never torch's text."""
    return MapSuiteError(f"{NOT_A_CHECKPOINT}; {why}", path)


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read and check a checkpoint; raise MapSuiteError naming the file on any problem.

    Anything that is not a checkpoint (a GRO, PDB or text file, an empty file, a zip archive that is
    not a torch file, a torch file of other content or one holding objects that a plain-data load
    refuses) gets one line of ours (``NOT_A_CHECKPOINT`` and a short reason), never torch's message.
    """
    path = Path(path)
    if not path.exists():
        raise MapSuiteError("no such checkpoint file", path)
    if not path.is_file():
        raise _refuse("it is a folder, not a file", path)
    try:
        with open(path, "rb") as fh:
            empty = not fh.read(1)
    except OSError as exc:
        raise MapSuiteError(f"cannot read the checkpoint ({exc.strerror or exc.__class__.__name__})", path) from None
    if empty:
        raise _refuse("the file is empty", path)
    # torch.save writes a zip archive: anything else (text, GRO, PDB, a bare pickle, a truncated
    # file) is not read at all, so torch's unpickler never sees it.
    if not zipfile.is_zipfile(path):
        raise _refuse("it is not a torch file (or a truncated one)", path)
    try:
        with warnings.catch_warnings():  # torch's warnings would be more lines on stderr
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
        why = (f"refused: it holds code or objects other than plain data ({found.group(1)}), never loaded" if found
               else "refused: its content is not the plain data a safe load reads")
        raise _refuse(why, path) from None
    except Exception:  # noqa: BLE001 - any bytes: torch's readers fail in many ways on a damaged file
        raise _refuse("it is a zip archive but not a torch file (or a damaged one)", path) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        held = f"a {type(payload).__name__}" + (" without the map-suite format marker" if isinstance(payload, dict) else "")
        raise _refuse(f"it is a torch file holding {held}", path)
    version = payload.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # not True, not 1.0, not a tensor
        raise MapSuiteError(f"checkpoint format version {_shown(version)} is not supported (expected {FORMAT_VERSION})", path)
    for key, kind in (("config", dict), ("state_dict", dict), ("provenance", dict)):
        if key not in payload:
            raise MapSuiteError(f"checkpoint lacks {key!r}", path)
        if not isinstance(payload[key], kind):
            raise MapSuiteError(f"checkpoint {key!r} is a {type(payload[key]).__name__}, not a {kind.__name__}", path)
    problem = config_problem(payload["config"]) or _weights_problem(payload["state_dict"]) or \
        _provenance_problem(payload["provenance"], payload["config"])
    if problem:
        raise MapSuiteError(problem, path)
    return payload


def _shown(x) -> str:
    """A value for a one-line message: short; a tensor by its shape, never its (multi-line) text."""
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)} ({x.layout}, on {x.device.type})".replace("torch.", "")
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**15:
        return f"an integer of about {int(abs(x).bit_length() * math.log10(2)) + 1} digits"  # str() fails past 4300
    text = repr(x)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def config_problem(config: dict) -> str:
    """What is wrong with a checkpoint's model config ('' if nothing): unknown keys, types and ranges
    of every field, checked before ModelConfig (whose own checks assume numbers) sees them.
    Fields left out take ModelConfig's defaults (checkpoints written before they existed)."""
    fields = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(str(k) for k in config if k not in fields)
    if unknown:
        return f"checkpoint config has unknown keys {', '.join(unknown)[:80]}"
    c = {**fields, **config}

    def bad(key, what):
        return f"checkpoint config {key} = {_shown(c[key])} must be {what}"

    for key in ("layers", "filters"):
        if not _is_int(c[key]) or c[key] < 1:
            return bad(key, "an integer >= 1")
    if not _is_int(c["kernel"]) or c["kernel"] < 3 or c["kernel"] % 2 == 0:
        return bad("kernel", "an odd integer >= 3")
    if c["layers"] * (c["kernel"] // 2) > MAX_FIELD_DEPTH:
        return (f"checkpoint config layers = {_shown(c['layers'])} with kernel = {_shown(c['kernel'])} sees "
                f"{_shown(c['layers'] * (c['kernel'] // 2))} planes back, more than {MAX_FIELD_DEPTH}")
    if not _is_int(c["head"]) or c["head"] < 0:
        return bad("head", "an integer >= 0 (0: as wide as filters)")
    if not is_real(c["dropout"]) or not 0.0 <= c["dropout"] < 1.0:
        return bad("dropout", "a number in [0, 1)")
    if not is_real(c["voxel_nm"]) or not VOXEL_NM_MIN <= c["voxel_nm"] <= VOXEL_NM_MAX:
        return bad("voxel_nm", f"a number of nm in [{VOXEL_NM_MIN}, {VOXEL_NM_MAX}]")
    if not is_real(c["reach_nm"]) or not c["voxel_nm"] <= c["reach_nm"] <= REACH_NM_MAX:
        return bad("reach_nm", f"a number of nm from one voxel ({c['voxel_nm']}) to {REACH_NM_MAX}")
    for key, known in (("activation", ("gated", "relu")), ("encoding", ENCODINGS), ("kind", tuple(KINDS))):
        if not isinstance(c[key], str) or c[key] not in known:
            return bad(key, "one of " + ", ".join(known))
    coder = Encoding(c["encoding"], c["voxel_nm"])
    # grids are uint8 (map_core.atoms.encoding): at most 256 classes; a draw needs at least 2
    if not _is_int(c["n_classes"]) or not 2 <= c["n_classes"] <= 256 or not coder.fits(c["n_classes"]):
        return bad("n_classes", f"a class count of the {c['encoding']} encoding (2 to 256; {coder.n_classes} as shipped)")
    return ""


def _weights_problem(state: dict) -> str:
    """What is wrong with a state dict's entries themselves ('' if nothing): names, types, values.
    Whether their shapes fit the config is `load_model`'s to check, against the model it would build."""
    for name, tensor in state.items():
        if not isinstance(name, str):
            return f"checkpoint weights are named by a {type(name).__name__}, not a string"
        # dense, with values: a sparse or a meta tensor (both plain data to a safe load) has no finite test
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point() or tensor.layout != torch.strided \
                or tensor.is_meta:
            return f"checkpoint weight {name[:80]} is {_shown(tensor)}, not a dense tensor of floating-point numbers"
        if not torch.isfinite(tensor).all():
            return f"checkpoint weights contain NaN or inf ({name[:80]})"
    return ""


def _provenance_problem(prov: dict, config: dict) -> str:
    """What is wrong with the provenance fields that commands read ('' if nothing): the held-out fraction
    of the training frames (the gate's reference split), the training data's hash and path, the class
    frequencies (training starts, benchmarks); the rest is shown, not read."""
    settings = prov.get("settings")
    if settings is not None and not isinstance(settings, dict):
        return f"checkpoint provenance settings is {_shown(settings)}, not a table"
    fraction = (settings or {}).get("test_fraction", 0.2)
    if not is_real(fraction) or not 0.0 < fraction < 1.0:
        return f"checkpoint provenance settings.test_fraction = {_shown(fraction)} must be a number in (0, 1)"
    for key in ("data_sha256", "data_path"):
        if prov.get(key) is not None and not isinstance(prov[key], str):
            return f"checkpoint provenance {key} = {_shown(prov[key])} must be a string"
    freq = prov.get("class_frequencies")
    if freq is not None:
        n = config.get("n_classes", ModelConfig.n_classes)  # the config is checked already
        if not isinstance(freq, (list, tuple)) or len(freq) != n or not all(is_real(f) and f >= 0 for f in freq):
            return f"checkpoint provenance class_frequencies must be {n} numbers >= 0, one per class"
    return ""


def _weights_floor(config: ModelConfig) -> float:
    """A lower bound of the parameters (and, for a two-stage model, the float64 tables of stage 2) of
    `config`'s network, without building it (floats: never overflows). The one-stage trunk as
    map_core.model.pixelcnn builds it, with one input channel (the encoding's are more): each layer's
    three causal convolutions, three width x width and one filters x filters 1x1x1 maps, then the head."""
    f, k, r = float(config.filters), float(config.kernel), float(config.kernel // 2)
    width = 2 * f if config.activation == "gated" else f
    head = float(config.head or config.filters)
    layer = width * (r + 1) * (k * k + k + 1) + 3 * width * (width + 1) + f * (f + 1)
    params = config.layers * layer + head * (f + 1) + config.n_classes * (head + 1)
    if config.kind == "two-stage":  # stage 2's geometry: (offsets, orientations, 4 arms, 12 angle bases) float64, 3 at once
        reach = config.reach_nm / config.voxel_nm
        params += 4.19 * reach * reach * reach * (config.n_classes - 1) * 4 * 12 * 3 * 8 / BYTES_PER_WEIGHT
    return params


def load_model(path, map_location="cpu") -> tuple:
    """(network of the checkpoint's model kind in eval mode, checkpoint payload) from a checkpoint file;
    a config without a kind is of the one-stage kind (checkpoints written before kinds were recorded)."""
    payload = load_checkpoint(path, map_location)  # config values and weights checked there
    config = ModelConfig.from_dict(payload["config"])
    kind = kind_of(config)
    free = available_memory_bytes() or UNKNOWN_MEMORY_BYTES
    if not _weights_floor(config) * BYTES_PER_WEIGHT <= free:  # before even a shapes-only build
        raise MapSuiteError(f"checkpoint config ({config.layers} layers x {config.filters} filters, kernel "
                            f"{config.kernel}) needs at least {_weights_floor(config) * BYTES_PER_WEIGHT / 1e9:.3g} GB "
                            f"of memory, {free / 1e9:.3g} GB are available", path)
    with torch.device("meta"):  # the network's tensors without their memory: shapes and count only
        expected = {name: tuple(t.shape) for name, t in kind.build(config).state_dict().items()}
    needed = sum(math.prod(shape) for shape in expected.values()) * BYTES_PER_WEIGHT
    if needed > free:
        raise MapSuiteError(f"the model's {needed // BYTES_PER_WEIGHT:,} parameters need {needed / 1e9:.3g} GB of memory, "
                            f"{free / 1e9:.3g} GB are available", path)
    problem = _shapes_problem(expected, payload["state_dict"], config)
    if problem:
        raise MapSuiteError(problem, path)
    try:
        model = kind.build(config)
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:  # noqa: BLE001 - checked above; a defect those checks miss still ends in one line
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise MapSuiteError(f"checkpoint config/weights do not match the model ({first})", path) from None
    return model.eval(), payload


def _shapes_problem(expected: dict, state: dict, config: ModelConfig) -> str:
    """Which weight of the file does not fit the network its config builds ('' if all fit)."""
    arch = f"a {config.kind} model of {config.layers} layers x {config.filters} filters, kernel {config.kernel}"
    missing = [name for name in expected if name not in state]
    if missing:
        return f"checkpoint weights lack {missing[0]} ({len(missing)} tensors missing) of {arch}"
    extra = [name for name in state if name not in expected]
    if extra:
        return f"checkpoint weights hold {extra[0][:80]}, which {arch} does not have"
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape:
            return f"checkpoint weight {name} has shape {tuple(state[name].shape)}, {arch} needs {shape}"
    return ""


def check_voxel_size(model_voxel: float, data_voxel: float, path=None) -> None:
    """Refuse data whose voxel size differs from the model's (relative tolerance 1e-6)."""
    if abs(model_voxel - data_voxel) > 1e-6 * max(model_voxel, data_voxel):
        raise MapSuiteError(
            f"voxel size mismatch: model uses {model_voxel:g} nm voxels, data {data_voxel:g} nm", path
        )

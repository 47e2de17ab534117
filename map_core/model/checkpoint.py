"""Checkpoints: one file with format version, model config, weights and training provenance.

Written atomically with torch.save; read with torch.load(weights_only=True), so a file that
would run code when unpickled is refused rather than executed.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from map_core.errors import MapSuiteError
from map_core.files import atomic_path
from map_core.model.kinds import kind_of
from map_core.model.pixelcnn import ModelConfig

FORMAT = "map-suite-checkpoint"
FORMAT_VERSION = 1


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
    if payload.get("format_version") != FORMAT_VERSION:
        raise MapSuiteError(f"checkpoint format version {payload.get('format_version')} is not supported (expected {FORMAT_VERSION})", path)
    for key, kind in (("config", dict), ("state_dict", dict), ("provenance", dict)):
        if key not in payload:
            raise MapSuiteError(f"checkpoint lacks {key!r}", path)
        if not isinstance(payload[key], kind):
            raise MapSuiteError(f"checkpoint {key!r} is a {type(payload[key]).__name__}, not a {kind.__name__}", path)
    return payload


def load_model(path, map_location="cpu") -> tuple:
    """(network of the checkpoint's model kind in eval mode, checkpoint payload) from a checkpoint file;
    a config without a kind is of the one-stage kind (checkpoints written before kinds were recorded)."""
    payload = load_checkpoint(path, map_location)
    try:
        config = ModelConfig.from_dict(payload["config"])
        model = kind_of(config).build(config)
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:  # noqa: BLE001 - a damaged config or state dict may fail anywhere in torch
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise MapSuiteError(f"checkpoint config/weights do not match the model ({first})", path) from None
    for name, tensor in model.state_dict().items():
        if not torch.isfinite(tensor).all():
            raise MapSuiteError(f"checkpoint weights contain NaN or inf ({name})", path)
    return model.eval(), payload


def check_voxel_size(model_voxel: float, data_voxel: float, path=None) -> None:
    """Refuse data whose voxel size differs from the model's (relative tolerance 1e-6)."""
    if abs(model_voxel - data_voxel) > 1e-6 * max(model_voxel, data_voxel):
        raise MapSuiteError(
            f"voxel size mismatch: model uses {model_voxel:g} nm voxels, data {data_voxel:g} nm", path
        )

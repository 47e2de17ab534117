"""The torch device a model runs on, checked once with a one-line error (``--device`` of the CLI)."""

from __future__ import annotations

import torch

from map_core.errors import MapSuiteError


def resolve_device(name: str) -> torch.device:
    """torch.device for "cpu", "cuda" or "cuda:N"; MapSuiteError if it is not one or is not present."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise MapSuiteError(f"--device {name!r} is not a torch device (cpu, cuda, cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise MapSuiteError(f"--device {name}: only cpu and cuda devices are supported")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise MapSuiteError(f"--device {name}: this torch build or machine has no CUDA device")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise MapSuiteError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev

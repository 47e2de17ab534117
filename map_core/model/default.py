"""Where the shipped default model lives (package data)."""

from pathlib import Path

from map_core.errors import MapSuiteError

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "data" / "default_model.pt"


def default_model_path() -> Path:
    """Path of the shipped default checkpoint; MapSuiteError if this installation has none."""
    if not DEFAULT_MODEL.exists():
        raise MapSuiteError("no shipped default model in this installation; pass --model", DEFAULT_MODEL)
    return DEFAULT_MODEL

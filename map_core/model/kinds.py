"""The registry of model kinds (``ModelConfig.kind``): each implements `ModelKind`
(``map_core.model.kind_base``) in its own module.

- ``"one-stage"``: `OneStagePixelCNN` (``map_core.model.one_stage``), the gated PixelCNN over every
  voxel in raster order; checkpoints written before kinds were recorded are of this kind.
- ``"two-stage"``: `TwoStage` (``map_core.model.two_stage``), oxygens by an occupancy PixelCNN, then
  each molecule turned seeing every oxygen within reach and the turns before it
  (``map_core.model.turner``).

A new kind is a module with its `ModelKind` subclass and one entry in `KIND_CLASSES`.
"""

from __future__ import annotations

from map_core.errors import MapSuiteError
from map_core.model.kind_base import ModelKind
from map_core.model.one_stage import OneStagePixelCNN
from map_core.model.two_stage import TwoStage

KIND_CLASSES = (OneStagePixelCNN, TwoStage)
KINDS = {cls.name: cls() for cls in KIND_CLASSES}

__all__ = ["KINDS", "KIND_CLASSES", "ModelKind", "kind_named", "kind_of"]


def kind_named(name: str) -> ModelKind:
    """The registered kind called `name`; MapSuiteError naming the known ones otherwise."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise MapSuiteError(f"model kind must be one of {', '.join(KINDS)}, not {name!r}") from None


def kind_of(config) -> ModelKind:
    """The kind of a model's ``ModelConfig``."""
    return kind_named(config.kind)

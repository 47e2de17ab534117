"""Voxel encodings: how a box of water molecules becomes an integer class grid, and back.

The registry of encodings, chosen by a model's ``ModelConfig.encoding``; each implements the
interface `Encoding` (``map_core.atoms.encoding_base``) in its own module:

- ``"atoms"``: `AtomClasses` (``map_core.atoms.voxels``): classes 0 empty, 1 O, 2 H; decoded atoms
  are grouped into molecules afterwards, and atoms left out of a molecule are orphans;
- ``"water"``: `WaterClasses` (``map_core.atoms.water_classes``): classes 0 empty, 1..K the oxygen
  of a whole molecule in one of K orientations; decoding yields whole molecules only.

``Encoding(name, voxel_nm)`` builds the registered class for `name`, so training, sampling and the
gate treat every model alike. A new encoding is a module with its `Encoding` subclass and one
entry in `ENCODING_CLASSES`. Positions nm, grids (Z, Y, X) uint8 (at most 256 classes).
"""

from __future__ import annotations

from map_core.atoms.encoding_base import Encoding, encoding_class, register
from map_core.atoms.voxels import AtomClasses
from map_core.atoms.water_classes import WaterClasses

ENCODING_CLASSES = (AtomClasses, WaterClasses)
ENCODINGS = register(*ENCODING_CLASSES)  # their names, in this order (command-line choices, profile schema)

__all__ = ["ENCODINGS", "ENCODING_CLASSES", "AtomClasses", "Encoding", "WaterClasses", "encoding_class"]

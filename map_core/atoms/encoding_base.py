"""The interface every voxel encoding implements (`Encoding`), and the lookup of encodings by name.

An encoding turns a box of atoms into an integer class grid and back. Each one is a subclass of
`Encoding` in its own module, registered by name in ``map_core.atoms.encoding``; code that holds
an encoding asks it (how many classes, the network's input features, whole molecules or not, its
labels for people) and never compares its name. ``Encoding(name, voxel_nm)`` builds the subclass
registered for `name`, as ``pathlib.Path(...)`` builds the path class of the platform.
Positions nm, grids (Z, Y, X) uint8 (at most 256 classes).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from map_core.errors import MapSuiteError

_REGISTERED: dict = {}  # name -> Encoding subclass, filled by `register` (map_core.atoms.encoding)


def register(*classes) -> tuple:
    """Register Encoding subclasses under their `name`; returns the names in that order."""
    for cls in classes:
        if cls.name in _REGISTERED and _REGISTERED[cls.name] is not cls:
            raise ValueError(f"two encodings are named {cls.name!r}")
        _REGISTERED[cls.name] = cls
    return tuple(cls.name for cls in classes)


def encoding_class(name):
    """The Encoding subclass registered for `name`, or None when no encoding has that name
    (frames made by MD, or by another program, name none)."""
    return _REGISTERED.get(name) if isinstance(name, str) else None


def _name_and_voxel(name, voxel_nm):
    return name, voxel_nm


class _ByName(ABCMeta):
    """``Encoding(name, voxel_nm)`` -> the registered subclass's ``(voxel_nm)``; subclasses build as usual."""

    def __call__(cls, *args, **kwargs):
        if cls is not Encoding:
            return super().__call__(*args, **kwargs)
        name, voxel_nm = _name_and_voxel(*args, **kwargs)
        chosen = encoding_class(name)
        if chosen is None:
            raise MapSuiteError(f"encoding must be one of {', '.join(_REGISTERED)}, not {name!r}")
        return chosen(voxel_nm)


@dataclass(frozen=True)
class Encoding(metaclass=_ByName):
    """An encoding at voxels of side `voxel_nm` nm. Subclasses set the class attributes and the methods.

    name: the registry key, recorded in checkpoints (``ModelConfig.encoding``) and generated files;
    label: what its classes are called in tables ("atom" classes); summary: its classes in a few
    words (command-line help); whole_molecules: every decoded atom belongs to a whole molecule
    (no orphans possible), and `encode` takes molecule ids; rigid_molecules: every decoded molecule
    has the same bond lengths and angle (its atoms are placed from a template, not voxel by voxel).
    """

    voxel_nm: float

    name: ClassVar[str]
    label: ClassVar[str]
    summary: ClassVar[str]
    whole_molecules: ClassVar[bool]
    rigid_molecules: ClassVar[bool]

    def __post_init__(self):
        if not self.voxel_nm > 0:
            raise MapSuiteError(f"voxel size must be positive, got {self.voxel_nm}")

    @property
    @abstractmethod
    def n_classes(self) -> int:
        """Number of voxel classes, empty (0) included."""

    def fits(self, n_classes: int) -> bool:
        """Whether a model with `n_classes` output classes can use this encoding (default: exactly its own)."""
        return n_classes == self.n_classes

    @abstractmethod
    def describe_classes(self, n_classes: int) -> str:
        """The classes of a model with `n_classes` classes, for model cards ("3 atom classes (empty, O, H)")."""

    @abstractmethod
    def input_features(self) -> np.ndarray | None:
        """(n_classes, F) network input per class, or None for one-hot inputs."""

    @abstractmethod
    def encode(self, positions, elements, box_nm, periodic: bool = True, clip: bool = False, molecule=None):
        """One box of atoms -> (grid (Z, Y, X) uint8, map_core.atoms.voxels.EncodeReport).

        positions (N, 3) nm, elements (N,) 'O'/'H', box_nm (3,) x y z edges. periodic: wrap into
        the box; otherwise clip=True drops what lies outside [0, L) (atoms, or molecules whose O
        does) and clip=False refuses it. molecule: (N,) ids of whole waters (-1 none), read by
        encodings of whole molecules only; None groups the atoms first.
        """

    @abstractmethod
    def decode(self, grid) -> tuple:
        """(positions (N, 3) nm, elements (N,), molecule (N,) int32 or None when not known)."""

    def orientations(self) -> np.ndarray | None:
        """(n_classes - 1, 2, 3) unit O->H directions of classes 1.., when every class but empty is one
        molecule in one orientation (what the two-stage model kind turns); None otherwise (default)."""
        return None

    @abstractmethod
    def class_permutation(self, matrix) -> np.ndarray | None:
        """(n_classes,) class map under a rotation of space by the 3x3 integer `matrix` (None: identity)."""

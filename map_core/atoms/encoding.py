"""Voxel encodings: how a box of water molecules becomes an integer class grid, and back.

Two encodings, chosen by a model's ``ModelConfig.encoding``:

- ``"atoms"`` (``map_core.atoms.voxels``): classes 0 empty, 1 O, 2 H; decoded atoms are grouped
  into molecules afterwards, and atoms left out of a molecule are orphans;
- ``"water"`` (``map_core.atoms.water_classes``): classes 0 empty, 1..K the oxygen of a whole
  molecule in one of K orientations; decoding yields whole molecules only.

`Encoding` gives both the same calls, so training, sampling and the gate treat every model alike.
Positions nm, grids (Z, Y, X) uint8 (at most 256 classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from map_core.atoms import voxels, water_classes
from map_core.atoms.molecules import group_waters, water_indices
from map_core.atoms.neighbors import minimum_image
from map_core.errors import MapSuiteError

ENCODINGS = ("atoms", "water")


@dataclass(frozen=True)
class Encoding:
    """An encoding (`name`, one of ENCODINGS) at voxels of side `voxel_nm` nm."""

    name: str
    voxel_nm: float

    def __post_init__(self):
        if self.name not in ENCODINGS:
            raise MapSuiteError(f"encoding must be one of {', '.join(ENCODINGS)}, not {self.name!r}")
        if not self.voxel_nm > 0:
            raise MapSuiteError(f"voxel size must be positive, got {self.voxel_nm}")

    @property
    def n_classes(self) -> int:
        return voxels.N_CLASSES if self.name == "atoms" else water_classes.n_classes()

    @property
    def whole_molecules(self) -> bool:
        """True when every decoded atom belongs to a whole molecule (no orphans possible)."""
        return self.name == "water"

    def input_features(self) -> np.ndarray | None:
        """(n_classes, F) network input per class, or None for one-hot inputs."""
        return None if self.name == "atoms" else water_classes.input_features()

    def encode(self, positions, elements, box_nm, periodic: bool = True, clip: bool = False, molecule=None):
        """One box of atoms -> (grid (Z, Y, X) uint8, voxels.EncodeReport).

        positions (N, 3) nm, elements (N,) 'O'/'H', box_nm (3,) x y z edges. periodic: wrap into
        the box; otherwise clip=True drops what lies outside [0, L) (atoms, or molecules whose O
        does) and clip=False refuses it. molecule: (N,) ids of whole waters (-1 none), "water" only;
        None groups the atoms first.
        """
        if self.name == "atoms":
            if clip and not periodic:
                pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
                inside = np.all((pos >= 0) & (pos < np.asarray(box_nm, dtype=np.float64)), axis=1)
                positions, elements = pos[inside], np.asarray(elements)[inside]
            return voxels.encode(positions, elements, box_nm, self.voxel_nm, periodic)
        return _encode_waters(positions, elements, box_nm, self.voxel_nm, periodic, clip, molecule)

    def decode(self, grid) -> tuple:
        """(positions (N, 3) nm, elements (N,), molecule (N,) int32 or None when not known)."""
        if self.name == "atoms":
            return (*voxels.decode(grid, self.voxel_nm), None)
        oxygen, classes = voxels.occupied_centres(grid, self.voxel_nm)
        hydrogens = oxygen[:, None, :] + water_classes.hydrogen_offsets(classes)
        positions = np.concatenate([oxygen[:, None, :], hydrogens], axis=1).reshape(-1, 3)
        elements = np.tile(np.array(["O", "H", "H"], dtype="<U2"), len(oxygen))
        return positions, elements, np.repeat(np.arange(len(oxygen), dtype=np.int32), 3)

    def class_permutation(self, matrix) -> np.ndarray | None:
        """(n_classes,) class map under a rotation of space by the 3x3 integer `matrix` (None: identity)."""
        if self.name == "atoms":
            return None
        return water_classes.class_permutation(tuple(int(v) for v in np.asarray(matrix).ravel()))


def _encode_waters(positions, elements, box_nm, voxel: float, periodic: bool, clip: bool, molecule):
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    elements = np.asarray(elements)
    box = np.asarray(box_nm, dtype=np.float64)
    if not np.all(np.isfinite(positions)):
        raise MapSuiteError("positions contain NaN or inf")
    unknown = set(np.unique(elements)) - {"O", "H"}
    if unknown:
        raise MapSuiteError(f"elements {sorted(unknown)} have no water class (known: H, O)")
    if molecule is None:
        molecule, _ = group_waters(positions, elements, box if periodic else None)
    waters = water_indices(elements, molecule, strict=False)
    oxygen = positions[waters[:, 0]]
    bonds = positions[waters[:, 1:]] - oxygen[:, None, :]
    if periodic:
        bonds = minimum_image(bonds, box)
        oxygen = np.mod(oxygen, box)
    else:
        inside = np.all((oxygen >= 0) & (oxygen < box), axis=1)
        if not clip and not inside.all():
            raise MapSuiteError("atoms outside a non-periodic box")
        oxygen, bonds = oxygen[inside], bonds[inside]
    grid, collisions = voxels.place(oxygen, water_classes.nearest_class(bonds), voxels.grid_shape(box, voxel), voxel)
    return grid, voxels.EncodeReport(collisions=collisions, atoms=len(positions), dropped=len(positions) - 3 * len(waters))

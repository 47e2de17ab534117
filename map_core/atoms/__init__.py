"""Atoms and voxels: frames files, voxel encoding and decoding, water molecules, neighbour pairs.

- ``frames``: the frames file (ragged or fixed layout), read and written;
- ``voxels``: atom boxes <-> integer class grids (0 empty, 1 O, 2 H);
- ``water_classes``: molecular fragment classes (0 empty, 1..240 an O with one of 240 H orientations);
- ``encoding_base``: the interface every encoding implements (``Encoding``);
- ``encoding``: the registry of encodings (``AtomClasses``, ``WaterClasses``), chosen by a model's config;
- ``molecules``: grouping atoms into waters, orphan counts, repair of generated boxes;
- ``neighbors``: pairs within a cutoff (cell lists) and the minimum-image convention.
"""

from map_core.atoms.encoding import ENCODINGS, AtomClasses, Encoding, WaterClasses, encoding_class
from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.atoms.molecules import MAX_OH_NM, decoded_water_limits, group_waters, make_whole, repair, water_indices
from map_core.atoms.neighbors import minimum_image, pairs_within
from map_core.atoms.voxels import DEFAULT_VOXEL_NM, N_CLASSES, decode, encode, full_voxels, grid_shape

__all__ = [
    "DEFAULT_VOXEL_NM", "ENCODINGS", "MAX_OH_NM", "N_CLASSES", "AtomClasses", "Encoding", "Frames", "WaterClasses",
    "decode", "decoded_water_limits", "encode", "encoding_class", "full_voxels", "grid_shape", "group_waters",
    "load_frames", "make_whole", "minimum_image", "pairs_within", "repair", "save_frames", "water_indices",
]

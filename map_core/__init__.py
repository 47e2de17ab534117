"""map_core: voxel encoding, the 3D gated PixelCNN, training and sampling of MAP models.

Depends on torch, numpy and scipy; never on OpenMM or on ``validation``. Lengths are nanometres
throughout. Subpackages, each importing only those listed before it:

- ``map_core.atoms``: frames files, voxel encoding and decoding, water molecules, neighbour pairs;
- ``map_core.model``: the PixelCNN, its receptive field, checkpoints, the shipped default model;
- ``map_core.training``: voxelised crops with rotations, the training loop;
- ``map_core.sampling``: canvas, reference and fast samplers, wavefront, likelihood, generation.

``map_core.errors`` and ``map_core.files`` (atomic writes, checksums) serve all of them;
``map_core/data/`` holds the shipped training set, default model and their cards.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

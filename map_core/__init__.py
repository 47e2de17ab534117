"""map_core: voxel encoding, the 3D gated PixelCNN, training and sampling of MAP models.

Depends on torch and numpy only. Lengths are nanometres throughout.
"""

__version__ = "0.1.0"

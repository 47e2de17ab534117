"""The canvas a sampler writes into: the box, an optional boundary halo, and which voxels to sample.

Shared by the reference and the fast sampler and by `log_prob`, so all three see the same
inputs; a model kind (``map_core.model.kinds``) samples and scores a canvas. Integer canvases hold
class ids, with OUTSIDE (-1) for voxels outside the sample. The seed stream (`box_uniforms`) and
the per-voxel class choice (`choose`) every kind's samplers use live in ``map_core.model.choice``
and are this module's names for them too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from map_core.errors import MapSuiteError
from map_core.model.choice import box_uniforms, choose  # noqa: F401 (map_core.sampling's names for them)
from map_core.model.pixelcnn import OUTSIDE
from map_core.model.receptive_field import ReceptiveField


@dataclass
class Canvas:
    """values: (B, Zc, Yc, Xc) int64 classes / OUTSIDE; free: (B, Zc, Yc, Xc) bool voxels to sample;
    box: (z0, y0, x0, Z, Y, X) position and shape of the box inside the canvas; wrap: the rows and
    columns past the box's +y and +x faces are ghosts, images of the box's first rows and columns
    (``make_canvas(boundary="wrap")``)."""

    values: torch.Tensor
    free: torch.Tensor
    box: tuple
    wrap: bool = False

    def box_view(self, tensor: torch.Tensor) -> torch.Tensor:
        z0, y0, x0, nz, ny, nx = self.box
        return tensor[:, z0 : z0 + nz, y0 : y0 + ny, x0 : x0 + nx]

    def source(self, y, x):
        """(rows, cols) of the canvas voxels whose classes voxels at rows `y`, columns `x` hold (ints,
        numpy or torch integer arrays): themselves, or for a ghost of a wrapped canvas its source in
        the box (coordinates modulo the box's edges)."""
        if not self.wrap:
            return y, x
        _, y0, x0, _, ny, nx = self.box
        return y - ny * ((y - y0) // ny), x - nx * ((x - x0) // nx)

    def copy_to_images(self, z: int, y: int, x: int) -> None:
        """After box voxel (z, y, x) was drawn: write its classes into its ghosts (a wrapped canvas)."""
        if self.wrap:
            rows = torch.arange(y, self.values.shape[2], self.box[4])
            cols = torch.arange(x, self.values.shape[3], self.box[5])
            self.values[:, z, rows[:, None], cols[None, :]] = self.values[:, z, y, x].clone()[:, None, None]

    def fill_images(self) -> None:
        """Write every box voxel's classes into its ghosts (a wrapped canvas; the box as it stands)."""
        if self.wrap:
            rows, cols = self.source(torch.arange(self.values.shape[2]), torch.arange(self.values.shape[3]))
            self.values[:] = self.values[:, :, rows[:, None], cols[None, :]]


def wrap_for(rf: ReceptiveField) -> tuple:
    """(gy, gx): ghost rows past the +y face and ghost columns past the +x face of a wrapped box, as
    far as a voxel sees ahead (rows ahead in earlier planes, columns ahead in earlier rows)."""
    return rf.rows_ahead, rf.cols


def halo_for(rf: ReceptiveField) -> tuple:
    """(hz, hy, hx): boundary voxels a box needs on each side for its first voxels to see a full field."""
    return rf.planes_back, max(rf.rows_back, rf.rows_ahead), max(rf.cols, rf.cols_back)


def make_canvas(shape, n_boxes: int, rf: ReceptiveField, n_classes: int, boundary="outside", fixed=None) -> Canvas:
    """Build the canvas for `n_boxes` boxes of `shape` (Z, Y, X) voxels.

    boundary: "outside" (nothing around the box), "empty" (a halo of empty voxels as wide as the
      receptive field), "wrap" (periodic where raster order allows: past the +x and +y faces the
      canvas holds ghosts, images of the box's first columns and rows, filled as those are drawn,
      so a voxel near +x or +y sees the opposite face's voxels of earlier rows and planes; the -x,
      -y and z faces stay open), or an integer array (Z + 2hz, Y + 2hy, X + 2hx) or (B, ...) of classes
      surrounding the box (e.g. training voxels), whose centre (the box) is ignored.
    fixed: None or an integer array (Z, Y, X) or (B, Z, Y, X): values >= 0 are kept (conditioning),
      negative values are sampled.
    """
    nz, ny, nx = (int(s) for s in shape)
    if min(nz, ny, nx) < 1 or n_boxes < 1:
        raise MapSuiteError(f"box shape {tuple(shape)} and n_boxes {n_boxes} must be positive")
    wrap = isinstance(boundary, str) and boundary == "wrap"
    if isinstance(boundary, str):
        if boundary in ("outside", "wrap"):
            hz = hy = hx = 0
        elif boundary == "empty":
            hz, hy, hx = halo_for(rf)
        else:
            raise MapSuiteError(f"boundary must be 'outside', 'empty', 'wrap' or an array, not {boundary!r}")
        gy, gx = wrap_for(rf) if wrap else (0, 0)
        values = torch.full((n_boxes, nz + 2 * hz, ny + 2 * hy + gy, nx + 2 * hx + gx), 0 if boundary == "empty" else OUTSIDE,
                            dtype=torch.int64)
    else:
        arr = torch.as_tensor(np.asarray(boundary), dtype=torch.int64)
        if arr.dim() == 3:
            arr = arr.unsqueeze(0).expand(n_boxes, *arr.shape)
        if arr.dim() != 4 or arr.shape[0] != n_boxes:
            raise MapSuiteError(f"boundary array of shape {tuple(arr.shape)} does not fit {n_boxes} boxes")
        dz, dy, dx = (arr.shape[1] - nz, arr.shape[2] - ny, arr.shape[3] - nx)
        if min(dz, dy, dx) < 0 or dz % 2 or dy % 2 or dx % 2:
            raise MapSuiteError(f"boundary array {tuple(arr.shape[1:])} must exceed the box {shape} by an even margin per axis")
        if arr.min() < OUTSIDE or arr.max() >= n_classes:
            raise MapSuiteError(f"boundary array holds values outside [-1, {n_classes - 1}]")
        hz, hy, hx = dz // 2, dy // 2, dx // 2
        values = arr.clone()
    free = torch.zeros_like(values, dtype=torch.bool)
    canvas = Canvas(values=values, free=free, box=(hz, hy, hx, nz, ny, nx), wrap=wrap)
    canvas.box_view(canvas.free)[...] = True
    canvas.box_view(canvas.values)[...] = OUTSIDE  # not generated yet; never seen before it is
    if fixed is not None:
        fx = torch.as_tensor(np.asarray(fixed), dtype=torch.int64)
        if fx.dim() == 3:
            fx = fx.unsqueeze(0).expand(n_boxes, *fx.shape)
        if tuple(fx.shape) != (n_boxes, nz, ny, nx):
            raise MapSuiteError(f"fixed voxels of shape {tuple(fx.shape)} do not match {n_boxes} boxes of {tuple(shape)}")
        if fx.max() >= n_classes:
            raise MapSuiteError(f"fixed voxels hold classes >= {n_classes}")
        keep = fx >= 0
        canvas.box_view(canvas.values)[keep] = fx[keep]
        canvas.box_view(canvas.free)[keep] = False
        canvas.fill_images()  # the fixed voxels' ghosts; those of free voxels stay OUTSIDE until drawn
    return canvas

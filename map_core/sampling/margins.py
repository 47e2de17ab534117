"""Burn-in margins: how much more than a wanted box a sampler must generate.

Generation starts with no context at the canvas's low-z face and its side faces: a voxel sees
the planes below it over rows and columns on both sides, and the earlier voxels of its plane
(see ``map_core.model.receptive_field``; the model's kind gives its field and the margin). Its
statistics reach those of the bulk only some receptive fields away from where the context begins
(seed 001: one to two; the gate's ``markov_saturation`` check measures it). So a box of (nz, ny, nx) voxels is generated inside a
canvas with a margin of `b` voxels below it and on its four sides, and `face` planes above it
in which the hydrogens of molecules crossing its top face are completed:

    canvas = (b + nz + face, ny + 2 b, nx + 2 b), box = canvas[b : b + nz, b : b + ny, b : b + nx].

A box that wraps around in y and x (the "wrap" boundary) has context at its side faces from the
wrap, so its margin is below only: canvas = (b + nz + face, ny, nx), box = canvas[b : b + nz].
"""

from __future__ import annotations

import math

from map_core.atoms.molecules import MAX_OH_NM
from map_core.model.kinds import kind_of


def burn_in_voxels(config, fields: float, min_nm: float = 0.0) -> int:
    """Margin b (voxels) of the kind of `config`: the larger of `fields` receptive-field depths
    (planes_back) and `min_nm` (``ModelKind.burn_in_voxels``)."""
    return kind_of(config).burn_in_voxels(config, fields, min_nm)


def face_voxels(config) -> int:
    """Planes above a box that complete the molecules crossing its top face (an O-H bond and one more),
    plus the planes ahead that the kind of `config` looks at (``ModelKind.lookahead_voxels``)."""
    return int(math.ceil(MAX_OH_NM / config.voxel_nm)) + 1 + kind_of(config).lookahead_voxels(config)


def canvas_shape(shape, b: int, face: int, wrap: bool = False) -> tuple:
    """(Z, Y, X) canvas that holds a box of `shape` (Z, Y, X) with margin `b` and `face` planes above;
    wrap: the box wraps around in y and x (``make_canvas(boundary="wrap")``), so its margin is below only."""
    nz, ny, nx = (int(s) for s in shape)
    side = 0 if wrap else b
    return (b + nz + face, ny + 2 * side, nx + 2 * side)


def box_origin(b: int, wrap: bool = False) -> list:
    """[z, y, x] voxel of the canvas (`canvas_shape`) where the kept box begins."""
    return [b, 0, 0] if wrap else [b, b, b]

"""Motif-conditioned generation: water generated around a fixed motif, as seed 000 (Results 2,
Fig. 4) describes it, with its generative iterations.

The box (Z, Y, X) voxels holds the motif, a cube of `motif.shape` voxels, at its centre: it starts at
``origin = (N - m) / 2`` on every axis (N - m must be even, so that the quarter turns below map the
motif onto itself). Every step samples with the exact samplers of this package; the motif's voxels,
empty ones included (they are part of the motif: its cavity), are fixed voxels and never sampled.

1. Step (i): the motif sits in the first corner, in raster order, of the region from the motif's
   low corner to the box's far corner, ``[origin, N)`` on every axis. That region is generated
   around it; the rest of the box is left empty (not yet generated). Voxels generated later in
   raster order see the motif in their past.
2. Step (ii): the box is turned, as seed 000 says, counter-clockwise about z and then clockwise
   about x, by quarter turns about the box centre (right-handed, looking down each axis from
   its positive end; ``TURN``). The matrix acting on (x, y, z) vectors is
   ``[[0, -1, 0], [0, 0, 1], [-1, 0, 0]]``: the generated region moves from (+x, +y, +z) of the
   centre to (-x, +y, -z), i.e. to the first half of the planes in raster order. Classes that carry
   an orientation turn with the grid (``map_core.atoms.rotations``), so the turn is exact.
3. Step (iii): the voxels outside the turned region are generated, with the turned region fixed.
   The motif is now at the centre, surrounded by generated water: iteration 1.

Iteration n > 1 repeats (ii) and (iii) on the full box: it turns the box, erases the voxels outside
the turned ``[origin, N)`` region (the same voxels that step (iii) generated) and generates them
anew, with the rest fixed. Each iteration thus regenerates all but the region kept,
1 - ((N + m) / 2N)^3 of the box (73 % of a 40^3 box around a 12-voxel motif), and the region kept
moves with every turn. Each step's result is reported in the frame of the
original box (turned back), where the motif's voxels are bit-identical to the motif.

Randomness: step s draws box stream ``s`` of `seed` (``map_core.sampling.canvas.box_uniforms``),
so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from map_core.atoms.rotations import apply_rotation, class_permutations
from map_core.errors import MapSuiteError
from map_core.model.kinds import kind_of
from map_core.sampling.fast import sample_fast

Z_CCW = ((1, (2, 1)),)  # counter-clockwise about z: x -> y
X_CW = ((1, (0, 1)),)  # clockwise about x: y -> -z
TURN = Z_CCW + X_CW  # step (ii): first about z, then about x
UNTURN = ((1, (1, 0)), (1, (1, 2)))  # the inverse: counter-clockwise about x, then clockwise about z


@dataclass
class MotifStep:
    """One step of the protocol. step 0 is step (i); step n >= 1 is iteration n.

    grid: (Z, Y, X) uint8 classes in the original frame (step 0: voxels not generated are 0);
    generated: (Z, Y, X) bool, the voxels this step sampled, original frame;
    log_prob: nats of the sampled voxels under the model (the sampler's own sum);
    turns: quarter-turn pairs (``TURN``) applied so far; the sampler saw ``turned(grid, turns)``;
    fixed: (Z', Y', X') int16 fixed voxels of the sampler call, in the frame it ran in (-1: sampled).
    """

    step: int
    grid: np.ndarray
    generated: np.ndarray
    log_prob: float
    turns: int
    fixed: np.ndarray


def motif_origin(shape, motif_shape) -> np.ndarray:
    """(3,) first voxel (z, y, x) of the motif at the centre of a box of `shape` voxels."""
    shape, m = np.asarray(shape, int), np.asarray(motif_shape, int)
    if np.any(m > shape) or np.any((shape - m) % 2):
        raise MapSuiteError(f"a motif of {m.tolist()} voxels cannot sit at the centre of a {shape.tolist()} box: each side "
                            "must be at least the motif's and differ from it by an even number of voxels")
    return (shape - m) // 2


def check_room(shape, motif_shape, config) -> None:
    """Refuse a box without one receptive field of room around the motif on every side
    (the generated water would never see a full neighbourhood of the motif)."""
    rf = kind_of(config).receptive_field(config)
    reach = max(rf.planes_back, rf.rows_back, rf.rows_ahead, rf.cols, rf.cols_back)
    need = np.asarray(motif_shape, int) + 2 * reach
    if np.any(np.asarray(shape, int) < need):
        raise MapSuiteError(f"box {[int(s) for s in shape]} voxels is too small for a {[int(s) for s in motif_shape]}-voxel "
                            f"motif plus one receptive field ({reach} voxels) on every side: use at least {need.tolist()}")


def turned(grid, turns: int, perm=None, inverse: bool = False) -> np.ndarray:
    """`grid` turned by `turns` applications of TURN (or of its inverse), classes mapped by `perm`
    (the class permutation of TURN, or None when classes do not carry an orientation)."""
    out = np.asarray(grid)
    for _ in range(turns):
        out = apply_rotation(out, UNTURN if inverse else TURN)
        if perm is not None and out.dtype != bool:
            out = (perm[1] if inverse else perm[0])[out]
    return np.ascontiguousarray(out)


def first_region(shape, origin) -> np.ndarray:
    """(Z, Y, X) bool: the region [origin, N) on every axis (step (i))."""
    mask = np.zeros(tuple(int(s) for s in shape), dtype=bool)
    z, y, x = (int(o) for o in origin)
    mask[z:, y:, x:] = True
    return mask


def protocol_steps(model, motif, shape, iterations: int, seed: int = 0, temperature: float = 1.0,
                   boundary: str = "empty", start=None, progress: bool = False, sampler=sample_fast):
    """Yield MotifStep 0 (step (i)) and iterations 1..`iterations`.

    motif: (m, m, m) uint8 classes of the model's encoding; shape: (Z, Y, X) box voxels.
    start: the last MotifStep of an interrupted run (resumes after it). boundary: what the model
    sees outside the box ("empty" or "outside"). sampler: sample_fast or sample_reference.
    """
    config = model.config
    motif = np.asarray(motif)
    if motif.ndim != 3 or motif.size == 0 or motif.min() < 0 or motif.max() >= config.n_classes:
        raise MapSuiteError(f"a motif must be a 3D grid of classes 0..{config.n_classes - 1}")
    origin = motif_origin(shape, motif.shape)
    check_room(shape, motif.shape, config)
    perm = class_permutations(config.coder(), [TURN, UNTURN])
    shape = tuple(int(s) for s in shape)
    motif_mask = np.zeros(shape, dtype=bool)
    motif_mask[tuple(slice(o, o + m) for o, m in zip(origin, motif.shape))] = True

    def sample(fixed, step):
        grids, logp = sampler(model, fixed.shape, 1, temperature, seed, boundary=boundary, fixed=fixed,
                              progress=progress, first_box=step)
        return np.asarray(grids[0], dtype=np.uint8), float(logp[0])

    if start is None:
        sub_shape = tuple(n - o for n, o in zip(shape, origin))
        fixed = np.full(sub_shape, -1, dtype=np.int16)
        fixed[: motif.shape[0], : motif.shape[1], : motif.shape[2]] = motif
        sub, logp = sample(fixed, 0)
        grid = np.zeros(shape, dtype=np.uint8)
        grid[origin[0]:, origin[1]:, origin[2]:] = sub
        full_fixed = np.full(shape, -1, dtype=np.int16)
        full_fixed[origin[0]:, origin[1]:, origin[2]:] = fixed
        last = MotifStep(0, grid, first_region(shape, origin) & ~motif_mask, logp, 0, full_fixed)
        yield last
    else:
        last = start
    for step in range(last.step + 1, iterations + 1):
        turns = last.turns + 1
        now = turned(last.grid, last.turns, perm)  # the frame of the previous step ...
        keep = turned(first_region(now.shape, motif_origin(now.shape, turned(motif, last.turns, perm).shape)), 1)
        now = turned(now, 1, perm)  # ... turned once more (step ii); after step (i), ~keep is what it left empty
        fixed = np.where(keep, now.astype(np.int16), np.int16(-1))
        new, logp = sample(fixed, step)
        grid = turned(new, turns, perm, inverse=True)
        last = MotifStep(step, grid, turned(~keep, turns, inverse=True), logp, turns, fixed)
        if not np.array_equal(grid[motif_mask], motif.reshape(-1)):  # fixed voxels and exact turns: never
            raise MapSuiteError(f"iteration {step} changed the motif's voxels (a sampler that ignores fixed voxels?)")
        yield last

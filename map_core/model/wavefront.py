"""The wavefront schedule of the fast sampler: which voxels can be computed at the same time.

Time step T visits a set of cursors (z, y, x) with z Dz + y S + x = T, where S = R + 1 and
Dz = R S + R + 1 (R = layers * (kernel // 2), the stacks' reach). At its cursor a step does, in
this order:

1. horizontal stack, head and sampling of voxel (z, y, x);
2. per layer l (reach o = (l + 1) r): the vertical stack at (z, y, x - o) and the depth stack at
   (z, y - o, x - o), the latter adding its 1x1 links into plane z + 1.

Everything a step reads was written at an earlier step, or earlier in the same step (a lower layer,
or the sample of step 1): the vertical stack of layer l at column c needs the row's voxels up to
column c + o, the horizontal stack of row y + 1 at column x needs the vertical stack of row y up
to column x for every layer (written at step T - S + R < T), and plane z + 1 at (y, x) needs the
depth stack of plane z up to (y + R, x + R) (written at step T - Dz + R S + R < T). So voxels of
different rows and planes whose cursors share a step cannot see each other, and are computed as
one batch: about min(Y, X / S) rows in each of up to (Y S + X) / Dz planes. A larger Dz is
also exact (planes overlap less, and fewer are held in memory): `max_planes` caps the overlap.

Cursors run over an extended plane of (Y + R) x (X + R) so that the lagging stacks reach the last
rows and columns. Storage is a ring of P planes of (Y + 2 PAD) x (X + 2 PAD) slots, flat slot
index ((z mod P) Yp + y + PAD) Xp + x + PAD, with PAD = r + 1 zero slots around the canvas (the
zero padding of the full network). Work that falls outside the canvas reads and writes the
centre of one extra, all-zero plane (the dump) and is masked to zero, so the dump stays zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Step:
    """Index arrays of one time step (numpy int64 unless noted; n cursors, m of them canvas voxels).

    Per layer l, (L, n, ...): v_at slots of the vertical stack's outputs, v_below the slots one row
    down (its link to the horizontal stack), v_win its input windows (r+1 rows x k columns);
    d_at, d_next, d_win the same for the depth stack (link slots in the next plane, windows of
    r+1 planes x k x k); vmask, dmask (L, n) bool: that work lies on the canvas (else its slots
    are the dump). hcur (m,) slots of the voxels, h_win0 / h_win (m, r+1) the horizontal windows
    of the first / later layers, hz, hy, hx (m,) the voxels' canvas coordinates.
    """

    v_at: np.ndarray
    v_below: np.ndarray
    v_win: np.ndarray
    d_at: np.ndarray
    d_next: np.ndarray
    d_win: np.ndarray
    vmask: np.ndarray
    dmask: np.ndarray
    hcur: np.ndarray
    h_win0: np.ndarray
    h_win: np.ndarray
    hz: np.ndarray
    hy: np.ndarray
    hx: np.ndarray


class Wavefront:
    """Schedule for a canvas of (planes, rows, cols) voxels and a model of `layers` layers, kernel k."""

    def __init__(self, planes: int, rows: int, cols: int, layers: int, kernel: int, max_planes: int | None = None,
                 max_slots: int | None = None):
        """max_planes: cap on planes in flight; max_slots: cap on storage slots (ring and dump plane),
        met by holding fewer planes in flight, down to one (which it may still exceed)."""
        r = kernel // 2
        self.r, self.layers = r, layers
        self.R = layers * r
        self.S = self.R + 1
        self.Z, self.Y, self.X = planes, rows, cols
        self.q_max = (rows + self.R - 1) * self.S + cols + self.R - 1  # last cursor offset within a plane
        self.Dz = self.R * self.S + self.R + 1
        self.PAD = r + 1
        self.Yp, self.Xp = rows + 2 * self.PAD, cols + 2 * self.PAD
        self.plane_slots = self.Yp * self.Xp
        if max_slots is not None:  # storage is (in flight + 2r + 3) planes, see P and n_slots below
            fit = max(1, max_slots // self.plane_slots - 2 * r - 3)
            max_planes = fit if max_planes is None else min(max_planes, fit)
        if max_planes is not None:
            self.Dz = max(self.Dz, math.ceil((self.q_max + 1) / max(1, max_planes)))
        self.in_flight = math.ceil((self.q_max + 1) / self.Dz)  # planes generated at once, at most
        self.P = self.in_flight + 2 * r + 2  # a slot is reused only after every reader of its plane is done
        self.dump = self.P * self.plane_slots + (self.Yp // 2) * self.Xp + self.Xp // 2
        self.n_slots = (self.P + 1) * self.plane_slots  # the ring and the dump plane
        self.n_steps = (planes - 1) * self.Dz + self.q_max + 1
        # cursors (y, x) of each in-plane offset q = y S + x
        self._diag = []
        for q in range(self.q_max + 1):
            y = np.arange(max(0, -(-(q - cols - self.R + 1) // self.S)), min(rows + self.R - 1, q // self.S) + 1)
            self._diag.append((y, q - y * self.S))
        rr, cc = np.meshgrid(np.arange(-r, 1), np.arange(-r, r + 1), indexing="ij")
        self.vwin = (rr * self.Xp + cc).ravel()  # vertical window: rows y-r..y, cols c-r..c+r
        dy, dx = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
        self._dwin_plane = (dy * self.Xp + dx).ravel()  # k^2 offsets within one plane
        self.hwin0 = np.arange(-r - 1, 0)  # first layer's horizontal window: columns x-r-1..x-1
        self.hwin = np.arange(-r, 1)  # later layers: columns x-r..x

    def plane_offset(self, z) -> np.ndarray:
        """Slot of (z, -PAD, -PAD), for integer z or an array of them (negative planes wrap)."""
        return np.mod(z, self.P) * self.plane_slots

    def plane_slice(self, z: int) -> slice:
        start = int(self.plane_offset(z))
        return slice(start, start + self.plane_slots)

    def step(self, t: int) -> Step | None:
        """The cursors of time step t, or None if there are none."""
        z_lo, z_hi = max(0, -(-(t - self.q_max) // self.Dz)), min(self.Z - 1, t // self.Dz)
        if z_hi < z_lo:
            return None
        parts = [(z, *self._diag[t - z * self.Dz]) for z in range(z_lo, z_hi + 1)]
        cz = np.concatenate([np.full(len(y), z) for z, y, _ in parts])
        cy = np.concatenate([y for _, y, _ in parts])
        cx = np.concatenate([x for _, _, x in parts])
        base = self.plane_offset(cz)
        cur = base + (cy + self.PAD) * self.Xp + cx + self.PAD
        r = self.r
        o = (np.arange(self.layers) + 1)[:, None] * r  # (L, 1) reach of each layer
        xin = (cx - o >= 0) & (cx - o < self.X)
        vmask = xin & (cy < self.Y)
        dmask = xin & (cy - o >= 0) & (cy - o < self.Y)
        v_at = np.where(vmask, cur - o, self.dump)
        v_below = np.where(vmask, v_at + self.Xp, self.dump)
        v_win = v_at[:, :, None] + self.vwin
        d_at = np.where(dmask, cur - o * (self.Xp + 1), self.dump)
        d_next = np.where(dmask, d_at + self.plane_offset(cz + 1) - base, self.dump)
        planes = self.plane_offset(cz[:, None] + np.arange(-r, 1)) - base[:, None]  # (n, r+1) ring offsets
        d_win = np.where(dmask[:, :, None, None], planes[:, :, None] + self._dwin_plane, self._dwin_plane)
        d_win = (d_at[:, :, None, None] + d_win).reshape(self.layers, len(cur), -1)
        real = (cy < self.Y) & (cx < self.X)
        hcur = cur[real]
        return Step(v_at=v_at, v_below=v_below, v_win=v_win, d_at=d_at, d_next=d_next, d_win=d_win,
                    vmask=vmask, dmask=dmask, hcur=hcur, h_win0=hcur[:, None] + self.hwin0,
                    h_win=hcur[:, None] + self.hwin, hz=cz[real], hy=cy[real], hx=cx[real])

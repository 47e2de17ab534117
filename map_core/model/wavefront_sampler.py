"""The one-stage PixelCNN's fast exact sampler: cached per-layer states, one network evaluation per voxel,
in wavefronts (``map_core.sampling.fast.sample_fast`` calls it through the model's kind).

Same inputs, same seed stream and same result as the reference sampler, but instead of running the
network on a window for every voxel it keeps what the stacks have already computed (after
Ramachandran et al. 2017, "Fast generation for convolutional autoregressive models", extended to
the third dimension): each voxel costs one evaluation of the horizontal stack at that voxel, and
the depth and vertical stacks are evaluated once per voxel too, as soon as the voxels they see
are known. Voxels that cannot see each other are evaluated together (`map_core.model.wavefront`), and
so are the boxes of a batch.

Every step applies the model's own weights with the same zero padding at the canvas edges as the
full forward pass, so the probabilities equal those of the likelihood up to round-off.

Backends: on the CPU the steps run in numpy (its per-call cost is several times below torch's at
these sizes); on any other torch device ("cuda") the same step code runs on torch tensors.
`backend="torch"` runs the torch path on the CPU too, which is how the tests check it without a GPU.
On a device the step loop never waits for it: the steps' index arrays are uploaded
``STEP_CHUNK`` steps at a time (one copy per array kind per chunk, not per step), the uniforms
are on the device from the start, and nothing is read back until the end.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.special
import torch

from map_core.model.choice import box_uniforms, choose
from map_core.model.kind_base import progress_loop
from map_core.model.pixelcnn import PixelCNN3D, eval_copy, input_matrix
from map_core.model.wavefront import Step, Wavefront

STEP_CHUNK = 256  # wavefront steps whose index arrays go to the device in one copy per array kind
_INDEX_FIELDS = ("v_at", "v_below", "v_win", "d_at", "d_next", "d_win", "hcur", "h_win0", "h_win", "hz", "hy", "hx")


class _Steps:
    """The wavefront's steps with their index arrays on the backend (`get(t)`: a Step or None).

    numpy: built step by step, as they are used. torch: built for STEP_CHUNK steps at once and
    copied to the device as one array per field, then sliced into views, so a step costs no
    host-to-device copy and the host never waits for the device."""

    def __init__(self, wf: Wavefront, be: "_Backend"):
        self.wf, self.be = wf, be
        self.first, self.chunk = 0, []

    def get(self, t: int):
        if self.be.numpy:
            s = self.wf.step(t)
            return None if s is None else dataclasses.replace(s, vmask=self.be.mask(s.vmask), dmask=self.be.mask(s.dmask))
        if not self.first <= t < self.first + len(self.chunk):
            self._load(t)
        return self.chunk[t - self.first]

    def _load(self, t0: int) -> None:
        steps = [self.wf.step(t) for t in range(t0, min(t0 + STEP_CHUNK, self.wf.n_steps))]
        real = [s for s in steps if s is not None]
        fields = {}
        for name in _INDEX_FIELDS + ("vmask", "dmask"):
            arrays = [getattr(s, name) for s in real]
            if name in ("vmask", "dmask"):
                arrays = [a[:, None, :, None] for a in arrays]
            flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0, np.int64)
            dev = torch.from_numpy(flat).to(self.be.device, self.be.dtype if name.endswith("mask") else torch.int64)
            fields[name] = [piece.view(a.shape) for piece, a in zip(dev.split([a.size for a in arrays]), arrays)]
        chunk, i = [], 0
        for s in steps:
            chunk.append(None if s is None else Step(**{k: v[i] for k, v in fields.items()}))
            i += s is not None
        self.first, self.chunk = t0, chunk


def _conv_matrix(conv: torch.nn.Conv3d) -> torch.Tensor:
    """(window * Cin, Cout) matrix of a conv whose window is flattened (plane, row, col, channel)."""
    w = conv.weight  # (Cout, Cin, kz, ky, kx)
    return w.permute(2, 3, 4, 1, 0).reshape(-1, w.shape[0])


class _Backend:
    """Array operations that differ between numpy and torch; everything else is shared syntax."""

    def __init__(self, name: str, dtype: torch.dtype, device):
        self.numpy = name == "numpy"
        self.dtype, self.device = dtype, torch.device(device)
        self.np_dtype = {torch.float32: np.float32, torch.float64: np.float64}[dtype]

    def array(self, t) -> "np.ndarray | torch.Tensor":
        t = torch.as_tensor(t)
        if self.numpy:
            return t.detach().cpu().numpy().astype(self.np_dtype if t.is_floating_point() else t.numpy().dtype)
        return t.detach().to(self.device, self.dtype if t.is_floating_point() else t.dtype)

    def take(self, a, idx):
        """Gather slots: a (B, slots, C), idx (...) -> (B, ..., C)."""
        if self.numpy:
            return a.take(idx, axis=1)
        return a.index_select(1, idx.reshape(-1)).reshape(a.shape[0], *idx.shape, a.shape[2])

    def zeros(self, *shape):
        return np.zeros(shape, self.np_dtype) if self.numpy else torch.zeros(shape, dtype=self.dtype, device=self.device)

    def act(self, activation: str, x):
        """Gated tanh * sigmoid over the two channel halves, or relu; x (..., C)."""
        if activation == "gated":
            half = x.shape[-1] // 2
            if self.numpy:
                return np.tanh(x[..., :half]) * scipy.special.expit(x[..., half:])
            return torch.tanh(x[..., :half]) * torch.sigmoid(x[..., half:])
        return np.maximum(x, 0) if self.numpy else torch.relu(x)

    def mask(self, m: np.ndarray):
        """(L, n) bool -> (L, 1, n, 1) float, to multiply (B, n, C) arrays."""
        m = m[:, None, :, None]
        return m.astype(self.np_dtype) if self.numpy else torch.from_numpy(m).to(self.device, self.dtype)

    def one_hot(self, eye, classes):
        """(..., C) network inputs (rows of `eye`: one-hot or class features) of integer `classes`,
        all-zero where a class is OUTSIDE (-1)."""
        inside = classes >= 0
        return eye[classes.clip(0) if self.numpy else classes.clamp(min=0)] * inside[..., None]

    def relu(self, x):
        return np.maximum(x, 0) if self.numpy else torch.relu(x)


class _Weights:
    """The model's weights as matrices for channels-last windows, on the backend."""

    def __init__(self, model: PixelCNN3D, be: _Backend):
        a = be.array
        self.h, self.v, self.d, self.d_bias = [], [], [], []
        self.v2h, self.d2link, self.out, self.out_bias, self.link_bias = [], [], [], [], []
        for layer in model.layers:
            self.h.append(a(_conv_matrix(layer.horizontal.conv)))
            self.v.append(a(_conv_matrix(layer.vertical.conv)))
            self.d.append(a(_conv_matrix(layer.depth.conv)))
            self.d_bias.append(a(layer.depth.conv.bias))
            self.v2h.append(a(_conv_matrix(layer.vertical_to_horizontal)))
            # the depth stack feeds both links of the next plane: one matrix (W, 2W)
            self.d2link.append(a(torch.cat([_conv_matrix(layer.depth_to_horizontal), _conv_matrix(layer.depth_to_vertical)], 1)))
            self.out.append(a(_conv_matrix(layer.horizontal_out)))
            self.out_bias.append(a(layer.horizontal_out.bias))
            # 1x1 links of a shifted-in zero still add their bias, so every voxel's link starts from these
            self.link_bias.append(a(torch.cat([layer.horizontal.conv.bias + layer.vertical_to_horizontal.bias + layer.depth_to_horizontal.bias,
                                               layer.vertical.conv.bias + layer.depth_to_vertical.bias])))
        self.head = (a(_conv_matrix(model.head_hidden)), a(model.head_hidden.bias), a(_conv_matrix(model.head_out)), a(model.head_out.bias))


def sample_canvas(model: PixelCNN3D, canvas, seed: int, first_box: int = 0, temperature: float = 1.0,
                  dtype=torch.float32, progress: bool = False, device="cpu", backend: str | None = None,
                  max_planes: int | None = None, memory_mb: float = 1024):
    """Sample the free voxels of `canvas` (map_core.sampling.canvas.Canvas; boxes k use the uniforms
    of (seed, first_box + k)); returns (grids (B, Z, Y, X) uint8, log_prob (B,) float64 nats of the
    sampled voxels), on the CPU.

    device: torch device the network runs on ("cpu", "cuda", ...); backend: "numpy" (CPU only) or
    "torch"; default numpy on the CPU, torch elsewhere. max_planes: cap on the planes generated at
    once; None: as many as the wavefront allows while its storage stays under `memory_mb` MiB
    (fewer planes in flight only means smaller batches per step; the result is the same).
    Sets torch to one thread while it runs: the work comes in calls far too small to share
    between cores (numpy's BLAS may still use a second thread for the largest batches).
    """
    device = torch.device(device)
    backend = backend or ("numpy" if device.type == "cpu" else "torch")
    if backend not in ("numpy", "torch") or (backend == "numpy" and device.type != "cpu"):
        raise ValueError(f"backend {backend!r} cannot run on device {device}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return _sample_canvas(model, canvas, seed, first_box, temperature, progress, _Backend(backend, dtype, device),
                                  max_planes, memory_mb)
    finally:
        torch.set_num_threads(threads)


def _sample_canvas(model, canvas, seed, first_box, temperature, progress, be, max_planes, memory_mb):
    model = eval_copy(model, be.dtype)
    config = model.config
    n_layers, act = config.layers, config.activation
    *_, nz, ny, nx = canvas.box
    bsz, zc, yc, xc = canvas.values.shape
    u = torch.zeros(bsz, zc, yc, xc, dtype=torch.float64)
    canvas.box_view(u)[...] = torch.stack([box_uniforms((nz, ny, nx), seed, first_box + b) for b in range(bsz)])
    free_planes = torch.nonzero(canvas.free.flatten(2).any(2).any(0)).flatten()
    if len(free_planes) == 0:  # everything given: nothing to sample
        return canvas.box_view(canvas.values).to(torch.uint8).clone(), torch.zeros(bsz, dtype=torch.float64)
    planes = int(free_planes[-1]) + 1  # planes after the last free voxel are never needed
    width = 2 * config.filters if act == "gated" else config.filters
    n_in = input_matrix(model).shape[1]  # input channels per voxel: one-hot classes, or the class features
    slot_bytes = bsz * (n_in + config.filters * (3 * n_layers - 2) + 2 * width * n_layers) * torch.finfo(be.dtype).bits // 8
    max_slots = int(memory_mb * 2**20 // slot_bytes) if max_planes is None else None
    wf = Wavefront(planes, yc, xc, n_layers, config.kernel, max_planes, max_slots)
    w = _Weights(model, be)
    if be.numpy:
        values, free, u = canvas.values.numpy(), canvas.free.numpy(), u.numpy()
    else:
        values, free, u = canvas.values.to(be.device), canvas.free.to(be.device), u.to(be.device)
    eye = be.array(input_matrix(model))  # row c: the network input of class c
    filters = config.filters
    # ring storage, (B, slots, channels): the input features (one-hot or class features); per layer the horizontal output, the
    # activated vertical and depth stacks (inputs of the next layer), and the accumulated links
    hot = be.zeros(bsz, wf.n_slots, n_in)
    h_out = [be.zeros(bsz, wf.n_slots, filters) for _ in range(n_layers)]
    v_act = [be.zeros(bsz, wf.n_slots, filters) for _ in range(n_layers - 1)]
    d_act = [be.zeros(bsz, wf.n_slots, filters) for _ in range(n_layers - 1)]
    # accumulated links per layer: channels [:W] feed the horizontal stack, [W:] the vertical one
    links = [be.zeros(bsz, wf.n_slots, 2 * width) for _ in range(n_layers)]
    logp_total = np.zeros(bsz) if be.numpy else torch.zeros(bsz, dtype=torch.float64, device=be.device)
    inner = (slice(wf.PAD, wf.PAD + yc), slice(wf.PAD, wf.PAD + xc))

    def start_links(z):
        for l in range(n_layers):
            links[l][:, wf.plane_slice(z)] = w.link_bias[l]

    def start_plane(z):
        """Plane z enters the ring: its known voxels' inputs, and plane z + 1's links reset."""
        plane = be.zeros(bsz, wf.Yp, wf.Xp, n_in)
        plane[:, inner[0], inner[1]] = be.one_hot(eye, values[:, z])
        hot[:, wf.plane_slice(z)] = plane.reshape(bsz, wf.plane_slots, n_in)
        start_links(z + 1)

    start_links(0)
    plan = _Steps(wf, be)
    steps = range(wf.n_steps)
    steps = progress_loop(steps, "generate (fast)", progress, "step")
    for t in steps:
        if t % wf.Dz == 0 and t // wf.Dz < planes:
            start_plane(t // wf.Dz)
        s = plan.get(t)
        if s is None:
            continue
        n = s.v_at.shape[1]
        if s.hcur.shape[0]:
            _horizontal_and_sample(be, w, act, s, hot, h_out, links, values, free, u, eye, temperature, logp_total,
                                   canvas.source)
        v_at, v_below, v_win, d_at, d_next, d_win = s.v_at, s.v_below, s.v_win, s.d_at, s.d_next, s.d_win
        vmask, dmask = s.vmask, s.dmask
        v_in = d_in = hot
        for l in range(n_layers):
            v_pre = (be.take(v_in, v_win[l]).reshape(bsz * n, -1) @ w.v[l]).reshape(bsz, n, width)
            v_pre = (v_pre + be.take(links[l], v_at[l])[..., width:]) * vmask[l]
            links[l][:, v_below[l], :width] += (v_pre.reshape(bsz * n, width) @ w.v2h[l]).reshape(bsz, n, width)
            d_pre = (be.take(d_in, d_win[l]).reshape(bsz * n, -1) @ w.d[l] + w.d_bias[l]).reshape(bsz, n, width) * dmask[l]
            links[l][:, d_next[l]] += (d_pre.reshape(bsz * n, width) @ w.d2link[l]).reshape(bsz, n, 2 * width)
            if l < n_layers - 1:
                v_act[l][:, v_at[l]] = be.act(act, v_pre)
                d_act[l][:, d_at[l]] = be.act(act, d_pre)
                v_in, d_in = v_act[l], d_act[l]
    grids = canvas.box_view(torch.as_tensor(values).cpu()).to(torch.uint8).clone()
    return grids, torch.as_tensor(logp_total, dtype=torch.float64).cpu()


def _horizontal_and_sample(be, w, act, s, hot, h_out, links, values, free, u, eye, temperature, logp_total, source):
    """Horizontal stack, head and sampling of the step's voxels (z, y, x) = (s.hz, s.hy, s.hx);
    the step's arrays are on the backend already (`_Steps`). A voxel not sampled keeps its class,
    or a ghost of a wrapped canvas takes its source's (`source`: Canvas.source), drawn at an earlier
    step: the ghost's row or column comes later in raster order than its source."""
    bsz, m = hot.shape[0], s.hcur.shape[0]
    hcur = s.hcur
    g = None
    width = w.h[0].shape[1]
    win = be.take(hot, s.h_win0)
    h_win = s.h_win
    for l in range(len(w.h)):
        pre = (win.reshape(bsz * m, -1) @ w.h[l]).reshape(bsz, m, -1) + be.take(links[l], hcur)[..., :width]
        out = (be.act(act, pre).reshape(bsz * m, -1) @ w.out[l] + w.out_bias[l]).reshape(bsz, m, -1)
        g = out if g is None else out + g  # residual stream after the first layer
        h_out[l][:, hcur] = g
        if l < len(w.h) - 1:
            win = be.take(h_out[l], h_win)
    w1, b1, w2, b2 = w.head
    hidden = be.relu(be.relu(g).reshape(bsz * m, -1) @ w1 + b1)
    logits = (hidden @ w2 + b2).reshape(bsz, m, -1)
    hz, hy, hx = s.hz, s.hy, s.hx
    is_free = free[:, hz, hy, hx]
    sy, sx = source(hy, hx)
    if be.numpy and not is_free.any():  # a cheap skip on the host; on a device this test would wait for it
        if sy is hy and sx is hx:  # no ghosts: these voxels' inputs are in place since their plane began
            return
        new = values[:, hz, sy, sx]
    else:
        cls, logp = choose(logits, u[:, hz, hy, hx], temperature)
        new = is_free * cls + ~is_free * values[:, hz, sy, sx]
        logp_total += (is_free * logp).sum(1)
    values[:, hz, hy, hx] = new
    hot[:, hcur] = be.one_hot(eye, new)

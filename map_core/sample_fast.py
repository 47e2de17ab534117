"""The fast exact sampler: cached per-layer states, one network evaluation per voxel.

Same inputs, same seed stream and same result as `sample_reference`, but instead of running the
network on a window for every voxel it keeps what the stacks have already computed
(after Ramachandran et al. 2017, "Fast generation for convolutional autoregressive models",
extended to the third dimension):

- depth stack: once per plane, a convolution over the last r+1 planes of each layer's input;
- vertical stack: once per row, a convolution over the last r+1 rows of the current plane,
  plus the depth link of the previous plane;
- horizontal stack: per voxel, the last r+1 columns of each layer, plus the row links.

Known voxels before the first free voxel of a row are run through the horizontal stack as one
convolution; rows and planes without free voxels skip the horizontal (and vertical) work.
Every step applies the model's own weights with the same zero padding at the canvas edges as the
full forward pass, so the probabilities equal those of `log_prob` up to round-off.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .canvas import box_uniforms, choose, make_canvas
from .model import PixelCNN3D, eval_copy, one_hot
from .receptive_field import receptive_field


class _LayerWeights:
    """One layer's weights, with numpy copies laid out for channels-last per-voxel evaluation."""

    def __init__(self, layer):
        self.layer = layer
        hw = layer.horizontal.conv.weight  # (W, Cin, 1, 1, r+1)
        self.h_bias = layer.horizontal.conv.bias
        # (r+1) * Cin inputs ordered column-major, channel-minor, as a channels-last window flattens
        self.h_weight_np = hw[:, :, 0, 0, :].permute(2, 1, 0).reshape(-1, hw.shape[0]).numpy()
        self.out_weight_np = layer.horizontal_out.weight[:, :, 0, 0, 0].t().contiguous().numpy()
        self.out_bias_np = layer.horizontal_out.bias.numpy()
        self.v2h = layer.vertical_to_horizontal
        self.d2h = layer.depth_to_horizontal
        self.d2v = layer.depth_to_vertical


def _head_np(model) -> tuple:
    """(W1 (F, F), b1, W2 (F, C), b2) of the output head, for channels-last rows."""
    w1, w2 = model.head_hidden.weight[:, :, 0, 0, 0], model.head_out.weight[:, :, 0, 0, 0]
    return (w1.t().contiguous().numpy(), model.head_hidden.bias.numpy(), w2.t().contiguous().numpy(), model.head_out.bias.numpy())


def _conv1x1_row(conv, x):
    """A 1x1x1 convolution applied to (B, C, X) rows."""
    return F.conv1d(x, conv.weight.reshape(conv.weight.shape[0], conv.weight.shape[1], 1), conv.bias)


def sample_fast(model: PixelCNN3D, shape, n_boxes: int = 1, temperature: float = 1.0, seed: int = 0,
                boundary="outside", fixed=None, dtype=torch.float32, progress: bool = False, first_box: int = 0):
    """Generate `n_boxes` boxes of `shape` (Z, Y, X) voxels; arguments and result as `sample_reference`.

    Returns (grids (B, Z, Y, X) uint8, log_prob (B,) float64 nats of the sampled voxels).
    Runs torch on one thread: the work comes in calls far too small to share between cores, and
    spreading them costs more than it gains (40x slower measured with a busy second core).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _sample_fast(model, shape, n_boxes, temperature, seed, boundary, fixed, dtype, progress, first_box)
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def _sample_fast(model, shape, n_boxes, temperature, seed, boundary, fixed, dtype, progress, first_box):
    model = eval_copy(model, dtype)
    config = model.config
    r = config.kernel // 2
    n_cls = config.n_classes
    rf = receptive_field(config)
    canvas = make_canvas(shape, n_boxes, rf, n_cls, boundary, fixed)
    z0, y0, x0, nz, ny, nx = canvas.box
    u = torch.stack([box_uniforms((nz, ny, nx), seed, first_box + b) for b in range(n_boxes)])
    values, free = canvas.values, canvas.free
    bsz, zc, yc, xc = values.shape
    layers = [_LayerWeights(layer) for layer in model.layers]
    n_layers = len(layers)
    logp_total = torch.zeros(bsz, dtype=torch.float64)

    head = _head_np(model)
    # depth inputs of each layer for the last r+1 planes: (B, Cin, r+1, Yc, Xc), oldest first
    d_in = [torch.zeros(bsz, n_cls if i == 0 else config.filters, r + 1, yc, xc, dtype=dtype) for i in range(n_layers)]
    width = layers[0].h_weight_np.shape[1]
    d_prev = [torch.zeros(bsz, width, yc, xc, dtype=dtype) for _ in range(n_layers)]  # d_pre of plane z-1
    free_planes = free.any(0).flatten(1).any(1)
    free_rows = free.any(0).any(2)  # (Zc, Yc)

    planes = range(zc)
    if progress:
        from tqdm import tqdm
        planes = tqdm(planes, desc="generate (fast)", unit="plane")
    for z in planes:
        if free_planes[z]:
            v_in = [torch.zeros(bsz, n_cls if i == 0 else config.filters, r + 1, xc, dtype=dtype) for i in range(n_layers)]
            v_prev = [torch.zeros(bsz, width, xc, dtype=dtype) for _ in range(n_layers)]  # v_pre of row y-1
            for y in range(yc):
                d_row = [d_prev[l][:, :, y, :] for l in range(n_layers)]
                if free_rows[z, y]:
                    links = [_conv1x1_row(layers[l].v2h, v_prev[l]) + _conv1x1_row(layers[l].d2h, d_row[l]) for l in range(n_layers)]
                    logp_total += _sample_row(model, layers, head, links, values, free, u, z, y, (z0, y0, x0), temperature, r, dtype)
                # vertical stack of the now complete row y
                row_hot = one_hot(values[:, z, y, :].reshape(bsz, 1, 1, xc), n_cls, dtype)[:, :, 0, 0, :]
                inp = row_hot
                for l, lw in enumerate(layers):
                    v_in[l] = torch.cat([v_in[l][:, :, 1:], inp.unsqueeze(2)], dim=2)
                    conv = lw.layer.vertical.conv
                    v_pre = F.conv2d(F.pad(v_in[l], (r, r)), conv.weight[:, :, 0], conv.bias)[:, :, 0, :]
                    v_pre = v_pre + _conv1x1_row(lw.d2v, d_row[l])
                    v_prev[l] = v_pre
                    inp = lw.layer.act(v_pre)
        # depth stack of the now complete plane z
        inp = one_hot(values[:, z : z + 1], n_cls, dtype)[:, :, 0]
        for l, lw in enumerate(layers):
            d_in[l] = torch.cat([d_in[l][:, :, 1:], inp.unsqueeze(2)], dim=2)
            conv = lw.layer.depth.conv
            d_pre = F.conv3d(F.pad(d_in[l], (r, r, r, r)), conv.weight, conv.bias)[:, :, 0]
            d_prev[l] = d_pre
            inp = lw.layer.act(d_pre)
    return canvas.box_view(values).to(torch.uint8).clone(), logp_total


def _np_act(activation: str, x: np.ndarray) -> np.ndarray:
    if activation == "gated":
        half = x.shape[-1] // 2  # slices, not np.split: its generic path cost a third of the sampler's time
        out = np.tanh(x[..., half:] * 0.5)
        out += 1.0
        out *= 0.5  # sigmoid without overflow
        out *= np.tanh(x[..., :half])
        return out
    return np.maximum(x, 0)


def _sample_row(model, layers, head, links, values, free, u, z, y, origin, temperature, r, dtype):
    """Generate the free voxels of row (z, y) in place; returns the (B,) log-probability added.

    The per-voxel work runs in numpy on channels-last arrays: at these sizes (a few hundred
    multiply-adds per call) numpy's per-call overhead is several times below torch's.
    """
    bsz, _, _, xc = values.shape
    config = model.config
    n_cls = config.n_classes
    activation = config.activation
    z0, y0, x0 = origin
    row_free = free[:, z, y, :]
    cols = torch.nonzero(row_free.any(0)).flatten()
    first, last = int(cols[0]), int(cols[-1])
    n_layers = len(layers)
    filters = config.filters
    # channels-last rows with leading zero columns: h_rows[l][:, c + r] is h_out of layer l at column c,
    # hot[:, c + r + 1] the one-hot input at column c
    h_rows = [torch.zeros(bsz, xc + r, filters, dtype=dtype) for _ in range(n_layers)]
    hot = torch.zeros(bsz, xc + r + 1, n_cls, dtype=dtype)
    hot[:, r + 1 :] = one_hot(values[:, z, y, :].reshape(bsz, 1, 1, xc), n_cls, dtype)[:, :, 0, 0, :].transpose(1, 2)
    if first > 0:  # known prefix: one convolution per layer
        inp = hot[:, : first + r].transpose(1, 2)  # shifted input of columns 0..first-1
        for l, lw in enumerate(layers):
            conv = lw.layer.horizontal.conv
            h_pre = F.conv1d(inp, conv.weight[:, :, 0, 0], conv.bias) + links[l][:, :, :first]
            h_out = _conv1x1_row(lw.layer.horizontal_out, lw.layer.act(h_pre))
            if l > 0:
                h_out = h_out + h_rows[l - 1][:, r : r + first].transpose(1, 2)
            h_rows[l][:, r : r + first] = h_out.transpose(1, 2)
            inp = h_rows[l][:, : first + r].transpose(1, 2)
    hot_np = hot.numpy()
    rows_np = [h.numpy() for h in h_rows]
    links_np = [(links[l] + lw.h_bias[None, :, None]).transpose(1, 2).contiguous().numpy() for l, lw in enumerate(layers)]
    values_np = values.numpy()
    free_np = row_free.numpy()
    u_row = u[:, z - z0, y - y0].numpy()  # rows with free voxels lie inside the box
    eye = np.eye(n_cls, dtype=hot_np.dtype)
    w1, b1, w2, b2 = head
    logp_row = np.zeros(bsz)
    for x in range(first, last + 1):
        inp = hot_np[:, x : x + r + 1].reshape(bsz, -1)  # columns x-r-1 .. x-1
        for l, lw in enumerate(layers):
            h_pre = inp @ lw.h_weight_np
            h_pre += links_np[l][:, x]
            h_out = _np_act(activation, h_pre) @ lw.out_weight_np
            h_out += lw.out_bias_np
            if l > 0:
                h_out += rows_np[l - 1][:, r + x]
            rows_np[l][:, r + x] = h_out
            inp = rows_np[l][:, x : x + r + 1].reshape(bsz, -1)  # columns x-r .. x of this layer
        is_free = free_np[:, x]
        if is_free.any():
            hidden = np.maximum(np.maximum(h_out, 0) @ w1 + b1, 0)
            cls, logp = choose(hidden @ w2 + b2, u_row[:, x - x0], temperature)
            values_np[is_free, z, y, x] = cls[is_free]
            logp_row += np.where(is_free, logp, 0.0)
            current = values_np[:, z, y, x]
            hot_np[:, x + r + 1] = eye[np.maximum(current, 0)] * (current >= 0)[:, None]
    return torch.from_numpy(logp_row)

"""The reference sampler: slow, obviously correct raster-order generation.

For every voxel it runs the whole network on the causal window around that voxel (the
receptive field, clipped to the canvas) and samples from the softmax at that voxel. The fast
sampler must reproduce its grids exactly; `log_prob` must reproduce its log-probabilities.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from map_core.model.pixelcnn import PixelCNN3D, eval_copy, one_hot
from map_core.model.receptive_field import receptive_field
from map_core.sampling.canvas import box_uniforms, choose, make_canvas


@torch.no_grad()
def sample_reference(model: PixelCNN3D, shape, n_boxes: int = 1, temperature: float = 1.0, seed: int = 0,
                     boundary="outside", fixed=None, dtype=torch.float64, progress: bool = False, first_box: int = 0):
    """Generate `n_boxes` boxes of `shape` (Z, Y, X) voxels.

    temperature: softmax temperature (0 = argmax). boundary, fixed: see map_core.sampling.canvas.make_canvas.
    first_box: index of the first box in the seed stream (boxes k use uniforms seeded by (seed, k)).
    Returns (grids (B, Z, Y, X) uint8, log_prob (B,) float64 nats of the sampled voxels).
    """
    model = eval_copy(model, dtype)
    config = model.config
    rf = receptive_field(config)
    canvas = make_canvas(shape, n_boxes, rf, config.n_classes, boundary, fixed)
    z0, y0, x0, nz, ny, nx = canvas.box
    u = torch.stack([box_uniforms((nz, ny, nx), seed, first_box + b) for b in range(n_boxes)])
    logp_total = torch.zeros(n_boxes, dtype=torch.float64)
    _, zc, yc, xc = canvas.values.shape
    back_rows, ahead_rows = rf.rows_back, rf.rows_ahead
    cols = max(rf.cols, rf.cols_back)
    planes = range(nz)
    if progress:
        planes = tqdm(planes, desc="generate (reference)", unit="plane")
    for k in planes:
        z = z0 + k
        zs = max(0, z - rf.planes_back)
        for j in range(ny):
            y = y0 + j
            ys, ye = max(0, y - back_rows), min(yc, y + ahead_rows + 1)
            for i in range(nx):
                x = x0 + i
                free = canvas.free[:, z, y, x]
                if not free.any():
                    continue
                xs, xe = max(0, x - cols), min(xc, x + cols + 1)
                window = canvas.values[:, zs : z + 1, ys:ye, xs:xe]
                logits = model(one_hot(window, config.n_classes, dtype))[:, :, z - zs, y - ys, x - xs]
                cls, logp = choose(logits, u[:, k, j, i], temperature)
                canvas.values[free, z, y, x] = cls[free]
                logp_total += torch.where(free, logp, torch.zeros_like(logp))
    return canvas.box_view(canvas.values).to(torch.uint8).clone(), logp_total

"""The one-stage kind: the 3D gated PixelCNN (``map_core.model.pixelcnn``), every voxel in raster
order, each seeing only the voxels before it within its receptive field.

- training loss: cross-entropy of every voxel of a crop given the voxels before it (teacher forcing);
- log-probability: one network pass over the filled canvas;
- reference sampler: for every voxel the whole network on the causal window around it (the
  receptive field, clipped to the canvas), then a draw from the softmax at that voxel, copied into
  its ghosts on a wrapped canvas (``map_core.sampling.canvas``);
- fast sampler: cached per-layer states in wavefronts (``map_core.model.wavefront_sampler``), the
  reference sampler's grids exactly;
- receptive field: analytic (``map_core.model.receptive_field``); burn-in: whole receptive-field depths.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from map_core.model import wavefront_sampler
from map_core.model.choice import box_uniforms, choose
from map_core.model.kind_base import ModelKind, progress_loop
from map_core.model.pixelcnn import PixelCNN3D, eval_copy, one_hot
from map_core.model.receptive_field import receptive_field


class OneStagePixelCNN(ModelKind):
    name = "one-stage"
    description = "one-stage gated PixelCNN: every voxel in raster order, each seeing only what came before"

    def build(self, config) -> PixelCNN3D:
        return PixelCNN3D(config)

    def start_from_frequencies(self, net: PixelCNN3D, frequencies) -> None:
        with torch.no_grad():
            net.head_out.bias.copy_(torch.log(torch.as_tensor(np.maximum(frequencies, 1e-12), dtype=torch.float32)))

    def warm_start(self, net: PixelCNN3D, source) -> list:
        """Every tensor of a trained one-stage `source` whose name and shape `net` shares (a wider head
        starts from the trained trunk)."""
        target = net.state_dict()
        fits = {k: v for k, v in source.state_dict().items() if k in target and v.shape == target[k].shape}
        net.load_state_dict({**target, **fits})
        return sorted(fits)

    def loss(self, net: PixelCNN3D, crops: torch.Tensor, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
        crops = crops.long()
        with torch.autocast(crops.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits = net.logits(crops)
        return F.cross_entropy(logits.float(), crops)

    def receptive_field(self, config):
        return receptive_field(config)

    @torch.no_grad()
    def class_log_probs(self, model: PixelCNN3D, canvas, temperature: float, dtype=torch.float64) -> torch.Tensor:
        model = eval_copy(model, dtype)
        logits = model.logits(canvas.values)
        z0, y0, x0, nz, ny, nx = canvas.box
        logits = logits[:, :, z0 : z0 + nz, y0 : y0 + ny, x0 : x0 + nx]
        return torch.log_softmax(logits.double() / temperature, dim=1)

    @torch.no_grad()
    def sample_reference(self, model: PixelCNN3D, canvas, seed: int, first_box: int = 0, temperature: float = 1.0,
                         dtype=torch.float64, progress: bool = False):
        model = eval_copy(model, dtype)
        config = model.config
        rf = receptive_field(config)
        z0, y0, x0, nz, ny, nx = canvas.box
        n_boxes, _, yc, xc = canvas.values.shape
        u = torch.stack([box_uniforms((nz, ny, nx), seed, first_box + b) for b in range(n_boxes)])
        logp_total = torch.zeros(n_boxes, dtype=torch.float64)
        back_rows, ahead_rows = rf.rows_back, rf.rows_ahead
        cols = max(rf.cols, rf.cols_back)
        planes = range(nz)
        planes = progress_loop(planes, "generate (reference)", progress, "plane")
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
                    canvas.copy_to_images(z, y, x)
                    logp_total += torch.where(free, logp, torch.zeros_like(logp))
        return canvas.box_view(canvas.values).to(torch.uint8).clone(), logp_total

    def sample_fast(self, model: PixelCNN3D, canvas, seed: int, first_box: int = 0, temperature: float = 1.0,
                    dtype=torch.float32, progress: bool = False, device="cpu", backend: str | None = None,
                    max_planes: int | None = None, memory_mb: float = 1024):
        """options: backend ("numpy", CPU only, or "torch"), max_planes and memory_mb (the wavefront's
        planes in flight and storage cap), see map_core.model.wavefront_sampler.sample_canvas."""
        return wavefront_sampler.sample_canvas(model, canvas, seed, first_box, temperature, dtype, progress, device,
                                               backend, max_planes, memory_mb)

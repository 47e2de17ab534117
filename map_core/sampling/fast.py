"""The fast exact sampler: same inputs, same seed stream and same boxes as `sample_reference`, by the model's kind.

For the one-stage kind this is the cached wavefront sampler (``map_core.model.wavefront_sampler``:
one network evaluation per voxel, numpy on the CPU, torch on CUDA or with ``backend="torch"``).
"""

from __future__ import annotations

import torch

from map_core.model.kinds import kind_of
from map_core.sampling.canvas import make_canvas


def sample_fast(model, shape, n_boxes: int = 1, temperature: float = 1.0, seed: int = 0,
                boundary="outside", fixed=None, dtype=torch.float32, progress: bool = False, first_box: int = 0,
                device="cpu", backend: str | None = None, max_planes: int | None = None, memory_mb: float = 1024):
    """Generate `n_boxes` boxes of `shape` (Z, Y, X) voxels; arguments and result as `sample_reference`.

    device: torch device the network runs on ("cpu", "cuda", ...); backend: "numpy" (CPU only) or
    "torch"; default numpy on the CPU, torch elsewhere. max_planes: cap on the planes generated at
    once; None: as many as the wavefront allows while its storage stays under `memory_mb` MiB
    (fewer planes in flight only means smaller batches per step; the result is the same).
    Returns (grids (B, Z, Y, X) uint8, log_prob (B,) float64 nats of the sampled voxels), on the CPU.
    """
    config = model.config
    kind = kind_of(config)
    canvas = make_canvas(shape, n_boxes, kind.receptive_field(config), config.n_classes, boundary, fixed)
    return kind.sample_fast(model, canvas, seed, first_box, temperature, dtype=dtype, progress=progress, device=device,
                            backend=backend, max_planes=max_planes, memory_mb=memory_mb)

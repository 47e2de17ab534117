"""The random draw of every sampler: per-box seed streams of uniforms, and the class choice by inverse CDF.

Randomness: box k of a call with seed s draws its uniforms from its own generator seeded by
(s, k), one uniform per box voxel in raster order, so results do not depend on batching; a
voxel's class is the first whose cumulative probability exceeds its uniform (`choose`), in
float64 on whatever device the logits are. Every sampler of every model kind draws this way,
so the reference and fast samplers of a kind give the same boxes for one seed.
"""

from __future__ import annotations

import numpy as np
import torch


def box_uniforms(shape, seed: int, box_index: int, stream: int = 0) -> torch.Tensor:
    """(Z, Y, X) float64 uniforms in [0, 1) for box `box_index` of a call with `seed`; `stream` > 0 gives
    further independent streams of the same box (a second stage's draws)."""
    entropy = [int(seed), int(box_index)] + ([int(stream)] if stream else [])
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    gen = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.rand(tuple(int(s) for s in shape), generator=gen, dtype=torch.float64)


def choose(logits, u, temperature: float) -> tuple:
    """Sample classes by inverse CDF, in float64: logits (..., C), u (...) uniforms in [0, 1).

    temperature 0 means argmax. Returns (classes (...) int64, log-probabilities (...) of the
    chosen classes at that temperature), as torch tensors on the logits' device if `logits` is
    one, else numpy arrays; both paths do the same float64 arithmetic. Both samplers use this.
    """
    if isinstance(logits, torch.Tensor):  # on the tensor's own device, no copy to the host
        y = logits.detach().double()
        if temperature == 0:
            return y.argmax(-1), torch.zeros(y.shape[:-1], dtype=torch.float64, device=y.device)
        u = torch.as_tensor(u, dtype=torch.float64, device=y.device)
        y = y / temperature
        y = y - y.amax(-1, keepdim=True)
        logp_all = y - torch.log(torch.exp(y).sum(-1, keepdim=True))
        cdf = torch.exp(logp_all).cumsum(-1)
        cls = (cdf < u[..., None]).sum(-1).clamp(max=y.shape[-1] - 1)
        return cls, torch.gather(logp_all, -1, cls[..., None])[..., 0]
    y = np.asarray(logits, dtype=np.float64)
    if temperature == 0:
        return y.argmax(-1), np.zeros(y.shape[:-1])
    u = np.asarray(u)
    y = y / temperature
    y = y - y.max(-1, keepdims=True)
    logp_all = y - np.log(np.exp(y).sum(-1, keepdims=True))
    cdf = np.exp(logp_all).cumsum(-1)
    cls = np.minimum((cdf < u[..., None]).sum(-1), y.shape[-1] - 1)
    return cls, np.take_along_axis(logp_all, cls[..., None], -1)[..., 0]

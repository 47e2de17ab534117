"""Transition matrices of MAP chains from conditional models (seed 001, Eq. 3-4, 19-21).

A conditional model gives p(X_i = theta | context) for every context state; validation.theory.markov_chain
turns that emission table into the chain. Three kinds of model are supported:

- a logit table through the softmax of Eq. 4 at inverse temperature beta (beta = inf: argmax);
- a truncated correlation expansion (Eq. 21, validation.theory.correlation_expansion) on a 1D context;
- a PixelCNN3D, evaluated exactly as the samplers evaluate it: the causal window as an integer
  canvas (OUTSIDE = -1 for voxels not generated), `one_hot`, the model's forward pass in float64,
  and the distribution `canvas.choose` draws from at the given temperature (0 = argmax).

1D chains are boxes of shape (1, 1, n); their context length is the receptive field's
`cols_back`. 2D boxes (1, H, W) are chains of rows (Eq. 20, Fig. 7-8): the super-state is the
last `rows_back` rows of width W, a row being one symbol among N_c^W (x = 0 most significant).
"""

from __future__ import annotations

import numpy as np
import torch

from map_core.errors import MapSuiteError
from map_core.model.pixelcnn import OUTSIDE, PixelCNN3D, eval_copy, one_hot
from map_core.model.receptive_field import receptive_field
from map_core.sampling.canvas import choose
from validation.theory.markov_chain import MAX_STATES, context_states


def softmax_conditional(logits, beta: float = 1.0) -> np.ndarray:
    """(S, N_c) logits -> p(theta | s) = exp(beta l_theta) / sum exp(beta l) (Eq. 4); beta = inf: argmax (first on ties)."""
    logits = np.asarray(logits, dtype=np.float64)
    if np.isinf(beta):
        out = np.zeros_like(logits)
        out[np.arange(len(logits)), logits.argmax(1)] = 1.0
        return out
    z = beta * logits
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def choice_distribution(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """(..., C) logits -> (..., C) float64 probabilities with which `canvas.choose` picks each class.

    choose picks class k for u in (cdf_{k-1}, cdf_k] of softmax(logits / T); at T = 0 it picks the argmax.
    """
    logits = logits.double()
    if temperature == 0:
        cls, _ = choose(logits, torch.zeros(logits.shape[:-1], dtype=torch.float64), 0)
        return torch.nn.functional.one_hot(cls, logits.shape[-1]).double()
    return torch.log_softmax(logits / temperature, dim=-1).exp()


def expansion_conditional(expansion, beta: float = 1.0) -> np.ndarray:
    """(2^L, 2) emission table of a 1D correlation expansion (offsets (0, -L)..(0, -1)) at inverse temperature beta."""
    offsets = np.asarray(expansion.offsets)
    length = len(offsets)
    if (offsets[:, 0] != 0).any() or sorted(offsets[:, 1].tolist()) != list(range(-length, 0)):
        raise MapSuiteError("expansion_conditional needs a 1D expansion with context (0, -L)..(0, -1)")
    contexts = context_states(2, length)  # oldest first, like the offsets in raster order
    return expansion.class_probabilities(contexts[:, offsets[:, 1] + length], beta)  # column of offset dx is dx + L


# ---------------------------------------------------------------- PixelCNN, 1D

@torch.no_grad()
def pixelcnn_logits_1d(model: PixelCNN3D, contexts) -> torch.Tensor:
    """(S, N_c) float64 logits for the voxel after each (S, L) context of a (1, 1, n) box."""
    contexts = torch.as_tensor(np.asarray(contexts), dtype=torch.int64)
    n, length = contexts.shape
    model = eval_copy(model, torch.float64)  # the caller's model is left as it is
    canvas = torch.full((n, 1, 1, length + 1), OUTSIDE, dtype=torch.int64)  # current voxel not yet generated
    canvas[:, 0, 0, :length] = contexts
    return model(one_hot(canvas, model.config.n_classes, torch.float64))[:, :, 0, 0, length]


def chain_context_length(model: PixelCNN3D) -> int:
    """L_c of a PixelCNN's 1D chain: the voxels of the current row its output sees."""
    return receptive_field(model.config).cols_back


def pixelcnn_conditional(model: PixelCNN3D, temperature: float = 1.0) -> np.ndarray:
    """(N_c^L_c, N_c) emission table of a PixelCNN on 1D boxes (1, 1, n), away from the start boundary."""
    n_classes, length = model.config.n_classes, chain_context_length(model)
    if n_classes ** length > MAX_STATES:
        raise MapSuiteError(f"{n_classes}^{length} context states exceed the enumerable limit {MAX_STATES}")
    logits = pixelcnn_logits_1d(model, context_states(n_classes, length))
    return choice_distribution(logits, temperature).numpy()


# ---------------------------------------------------------------- PixelCNN, 2D rows as super-states

def rows_context_length(model: PixelCNN3D) -> int:
    """Rows of context of a 2D box (1, H, W): the receptive field's rows_back."""
    return receptive_field(model.config).rows_back


@torch.no_grad()
def row_log_probs(model: PixelCNN3D, contexts, rows, temperature: float = 1.0) -> torch.Tensor:
    """log p(row | context rows) (Eq. 20, product over the row's voxels), (B,) float64 nats.

    contexts: (B, L_r, W) classes of the rows above, oldest first (OUTSIDE = -1 above the box);
    rows: (B, W) classes. Teacher forcing: the causal model gives every voxel's conditional in one pass.
    """
    contexts = torch.as_tensor(np.asarray(contexts), dtype=torch.int64)
    rows = torch.as_tensor(np.asarray(rows), dtype=torch.int64)
    model = eval_copy(model, torch.float64)  # the caller's model is left as it is
    canvas = torch.cat([contexts, rows[:, None, :]], dim=1)  # (B, L_r + 1, W)
    # Rows above the box must lie beyond the canvas, not inside it as OUTSIDE voxels: one-hot inputs are
    # zero either way, but deeper features are zero only beyond the canvas (inside they carry conv biases).
    blank = (canvas == OUTSIDE).all(-1).long().cumprod(-1).sum(-1)  # leading all-OUTSIDE rows per box
    if bool((canvas[:, -1] == OUTSIDE).any()) or int((canvas == OUTSIDE).sum()) != int(blank.sum()) * canvas.shape[-1]:
        raise MapSuiteError("OUTSIDE is only allowed as whole rows at the top of a context")
    out = torch.empty(len(canvas), dtype=torch.float64)
    for k in blank.unique().tolist():
        sel = blank == k
        part = canvas[sel, k:][:, None]  # (b, 1, L_r + 1 - k, W)
        logits = model(one_hot(part, model.config.n_classes, torch.float64))[:, :, 0, -1, :]  # (b, C, W)
        probs = choice_distribution(logits.permute(0, 2, 1), temperature)  # (b, W, C)
        out[sel] = probs.gather(-1, rows[sel][..., None]).squeeze(-1).log().sum(-1)
    return out


def row_states(n_classes: int, width: int, n_rows: int) -> np.ndarray:
    """(N_c^(W n_rows), n_rows, W) all blocks of rows; block s has row symbols = digits of s in base N_c^W."""
    return context_states(n_classes, width * n_rows).reshape(-1, n_rows, width)


def row_conditional(model: PixelCNN3D, width: int, temperature: float = 1.0) -> np.ndarray:
    """(S, N_c^W) emission table of the row chain: p(next row | last L_r rows), S = N_c^(W L_r)."""
    n_classes, n_rows = model.config.n_classes, rows_context_length(model)
    n_states = n_classes ** (width * n_rows)
    if n_states > MAX_STATES:
        raise MapSuiteError(f"{n_states} row super-states exceed the enumerable limit {MAX_STATES}")
    contexts = row_states(n_classes, width, n_rows)
    rows = row_states(n_classes, width, 1)[:, 0]
    n_rows_symbols = len(rows)
    ctx = np.repeat(contexts, n_rows_symbols, axis=0)
    nxt = np.tile(rows, (n_states, 1))
    return row_log_probs(model, ctx, nxt, temperature).exp().numpy().reshape(n_states, n_rows_symbols)


def row_start_distribution(model: PixelCNN3D, width: int, temperature: float = 1.0) -> np.ndarray:
    """(S,) distribution of the first L_r rows of a box (1, H, W) generated with boundary 'outside'."""
    n_classes, n_rows = model.config.n_classes, rows_context_length(model)
    blocks = row_states(n_classes, width, n_rows)
    logp = torch.zeros(len(blocks), dtype=torch.float64)
    for k in range(n_rows):
        ctx = np.full((len(blocks), n_rows, width), OUTSIDE)
        ctx[:, n_rows - k :] = blocks[:, :k]
        logp += row_log_probs(model, ctx, blocks[:, k], temperature)
    return logp.exp().numpy()

"""The interface of a model kind (`ModelKind`): one object per way of modelling a box of voxels.

A model kind builds its network from a ``ModelConfig``, gives the training loss, scores and
samples canvases, and states how far its voxels see; training (``map_core.training``), sampling,
likelihood and generation (``map_core.sampling``) and the gate ask the kind of a model
(``map_core.model.kinds.kind_of(config)``, by ``ModelConfig.kind``) and never its name. Each kind
is a subclass in its own module, registered in ``map_core.model.kinds``.

Canvases are ``map_core.sampling.canvas.Canvas`` objects (values, free voxels, the box's place),
built by the sampling package around the kind's receptive field. Every sampler draws box k of a
call with `seed` from the seed stream ``map_core.model.choice.box_uniforms(shape, seed, k)``
(further streams, e.g. for a second stage, are the kind's to derive from it), so the reference
and the fast sampler of a kind give identical boxes on one seed, and log-probabilities in nats
compare across kinds.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from tqdm import tqdm

from map_core.errors import MapSuiteError


class JobBar:
    """One progress bar over all batches of a generation job (``map_core.sampling.generate``), counted
    in batches: each sampler loop of a batch moves it by its `share` of the batch, so the bar runs from
    the batches already done to the job's batch count once, and its description says which batch is
    running ("generate (fast), batch 3 of 8")."""

    def __init__(self, n_batches: int, done: int = 0, bar=None, share: float = 1.0):
        self.n_batches, self.batch, self.share = n_batches, done, share
        self.bar = bar if bar is not None else tqdm(
            total=n_batches, initial=done, desc="generate: ", mininterval=1.0, dynamic_ncols=True,
            bar_format="{desc}{percentage:3.0f}%|{bar}| {n:.2f}/{total} batches [{elapsed}<{remaining}]")

    def start_batch(self, number: int) -> None:
        """Batch `number` (1-based) of the job begins."""
        self.batch = number

    def finish_batch(self) -> None:
        """The running batch is done: the count snaps to a whole number of batches (float shares add up
        to a little more or less than one)."""
        self.bar.n = min(self.n_batches, round(self.bar.n))
        self.bar.refresh()

    def advance(self, amount: float) -> None:
        self.bar.update(min(amount, self.n_batches - self.bar.n))

    def part(self, fraction: float) -> JobBar:
        """The same bar for a loop that is `fraction` of this one's share (a stage, or one box of a batch)."""
        return JobBar(self.n_batches, self.batch, self.bar, self.share * fraction)

    def close(self) -> None:
        self.bar.close()


def progress_loop(items, what: str, progress, unit: str):
    """`items`, iterated with progress shown: on the job's bar where `progress` is a `JobBar` (its
    share of the batch spread over the items), on a bar of its own (`what`, in `unit`) where it is
    True, not at all where it is False."""
    if isinstance(progress, JobBar):
        progress.bar.set_description(f"{what}, batch {progress.batch} of {progress.n_batches}", refresh=False)
        step = progress.share / max(len(items), 1)
        for item in items:
            yield item
            progress.advance(step)
    elif progress:
        yield from tqdm(items, desc=what, unit=unit, mininterval=1.0)
    else:
        yield from items


def progress_part(progress, fraction: float):
    """`progress` for a loop that is `fraction` of the caller's work (unchanged unless a `JobBar`)."""
    return progress.part(fraction) if isinstance(progress, JobBar) else progress


class ModelKind(ABC):
    """One kind of model. name: its registry key (``ModelConfig.kind``, recorded in checkpoints);
    description: one line for people."""

    name: ClassVar[str]
    description: ClassVar[str]

    # --- the network and its training ---------------------------------------------------
    @abstractmethod
    def build(self, config):
        """The untrained network (a torch.nn.Module with a ``config``) of `config`, its weights drawn
        from torch's global generator."""

    def param_groups(self, net) -> list:
        """[(parameters, learning-rate scale)]: the groups the optimiser trains, each at scale x the run's rate."""
        return [(list(net.parameters()), 1.0)]

    @abstractmethod
    def start_from_frequencies(self, net, frequencies) -> None:
        """Set the untrained `net` to predict the (n_classes,) class `frequencies` everywhere: where
        training starts (with ~0.15 % of voxels occupied, learning the marginal alone would take most
        of a short run)."""

    @abstractmethod
    def loss(self, net, crops, autocast_dtype=None):
        """Mean cross-entropy (nats per voxel, float32 scalar tensor) of (B, Z, Y, X) class crops under
        `net`; with `autocast_dtype` (torch.bfloat16) the network runs under autocast on the crops' device."""

    # --- what a voxel sees ----------------------------------------------------------------
    @abstractmethod
    def receptive_field(self, config):
        """The voxels the prediction of a voxel depends on (map_core.model.receptive_field.ReceptiveField):
        the boundary halo of a canvas and the unit of burn-in margins."""

    def lookahead_voxels(self, config) -> int:
        """Voxels after a voxel in raster order, along any axis, that its prediction may depend on (0:
        causal; a kind that sees ahead needs that many more planes generated above a kept box)."""
        return 0

    def warm_start(self, net, source) -> list:
        """Copy into the untrained `net` what fits from `source`, a trained network of another or the same
        kind (``map-suite train --init-from``); returns the names of the tensors copied. Default: refused."""
        raise MapSuiteError(f"the {self.name} kind cannot start from another model's weights")

    def burn_in_voxels(self, config, fields: float, min_nm: float = 0.0) -> int:
        """Margin b (voxels) generated around a box and cut away: the larger of `fields` receptive-field
        depths (planes_back) and `min_nm` (see map_core.sampling.margins)."""
        if not (math.isfinite(fields) and fields >= 0 and math.isfinite(min_nm) and min_nm >= 0):
            raise MapSuiteError(f"burn-in must be finite and >= 0, got {fields} receptive fields and {min_nm} nm")
        depth = self.receptive_field(config).planes_back
        return int(math.ceil(max(min_nm / config.voxel_nm, fields * depth) - 1e-9))

    # --- scoring and sampling canvases ----------------------------------------------------
    @abstractmethod
    def class_log_probs(self, model, canvas, temperature: float, dtype):
        """(B, n_classes, Z, Y, X) float64 log-probabilities (nats) of every class at every box voxel
        of a filled `canvas` at `temperature` (> 0), each voxel given what the kind conditions it on
        (the contexts a sampled chain visited: the Markov checks read them); the network runs in `dtype`."""

    def log_prob(self, model, canvas, temperature: float, dtype):
        """(B, Z, Y, X) float64 log-probabilities (nats) of the box voxels of a filled `canvas` at
        `temperature` (> 0), each given what the kind conditions it on; 0 where a voxel is not free."""
        logp = self.class_log_probs(model, canvas, temperature, dtype)
        chosen = logp.gather(1, canvas.box_view(canvas.values).long().clamp(min=0).unsqueeze(1)).squeeze(1)
        return torch.where(canvas.box_view(canvas.free), chosen, torch.zeros_like(chosen))

    @abstractmethod
    def sample_reference(self, model, canvas, seed: int, first_box: int = 0, temperature: float = 1.0, dtype=None,
                         progress: bool = False):
        """Sample the free voxels of `canvas` the slow, obviously correct way; boxes k use the seed stream of
        (seed, first_box + k). Returns (grids (B, Z, Y, X) uint8, log_prob (B,) float64 nats of the sampled voxels)."""

    @abstractmethod
    def sample_fast(self, model, canvas, seed: int, first_box: int = 0, temperature: float = 1.0, dtype=None,
                    progress: bool = False, device="cpu", **options):
        """As `sample_reference`, fast, on `device`, with the same boxes for the same seed (options: the
        kind's own, e.g. memory caps)."""

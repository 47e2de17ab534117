"""The two-stage kind: stage 1 places the oxygens, stage 2 turns each molecule seeing every oxygen.

One raster pass of the one-stage PixelCNN must turn a molecule before most of the neighbours that
decide its turn exist. Here a box of water fragment classes (``Encoding.orientations``: every class
but empty is one molecule in one orientation) is drawn in two exact autoregressive passes:

- stage 1 (`TwoStageNet.stage1`): the gated PixelCNN of ``map_core.model.pixelcnn``, causal and with
  no blind spot, whose input table shows it occupancy only (empty, occupied), so its chain is over
  oxygens. Its head still has a logit per class; p1(occupied) = sum over the orientation classes
  (an orientation it would guess is marginalised out, never kept). Sampling: the one-stage kind's
  samplers (the wavefront on the fast path) on the same canvas and seed stream 0.
- stage 2 (`TwoStageNet.stage2`, ``map_core.model.turner``): each molecule in raster order, seeing
  every oxygen within `reach_nm` through a non-causal convolution of the oxygen field and the
  orientations before it through a causal one. Sampling visits occupied voxels only; stream 1.

log p(box) = log p1(oxygens) + log p2(orientations | oxygens), both exact, so held-out
cross-entropies in nats per voxel compare directly with the one-stage kind's. Fixed voxels and
boundaries are conditioned on as by the one-stage kind (a fixed molecule's orientation is seen by
the molecules after it). Receptive field: stage 1's, widened to stage 2's reach on every side;
stage 2 also sees `lookahead_voxels` planes ahead, which generation adds above a kept box.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from map_core.errors import MapSuiteError
from map_core.model import wavefront_sampler
from map_core.model.choice import box_uniforms, choose
from map_core.model.kind_base import ModelKind, progress_loop, progress_part
from map_core.model.one_stage import OneStagePixelCNN
from map_core.model.pixelcnn import PixelCNN3D, eval_copy
from map_core.model.receptive_field import ReceptiveField, receptive_field
from map_core.model.turner import Lattice, Turner, orientation_loss, reach_extent

STAGE2_STREAM = 1  # seed stream of stage 2's draws (stage 1 draws from stream 0, as the one-stage kind)
# Stage 2's few geometric weights start at zero and must travel far; measured on the shipped data
# (Adam, 600 steps of 4 crops): at 0.002 it reached 3.75 nats per molecule, at 0.03 then 0.01 3.39.
STAGE2_LR_SCALE = 10.0


def occupancy_features(n_classes: int) -> np.ndarray:
    """(n_classes, 2) float32 stage-1 inputs: [1, 0] for empty, [0, 1] for every molecule class."""
    table = np.zeros((n_classes, 2), dtype=np.float32)
    table[0, 0] = 1.0
    table[1:, 1] = 1.0
    return table


class TwoStageNet(nn.Module):
    """A two-stage model: `stage1` (PixelCNN3D over occupancy) and `stage2` (Turner)."""

    def __init__(self, config):
        super().__init__()
        orientations = config.coder().orientations()
        if orientations is None or len(orientations) != config.n_classes - 1:
            raise MapSuiteError(f"the two-stage kind turns molecules: the {config.encoding} encoding's classes are not "
                                "one molecule in one orientation each")
        self.config = config
        self.stage1 = PixelCNN3D(dataclasses.replace(config, kind="one-stage"), features=occupancy_features(config.n_classes))
        self.stage2 = Turner(config, orientations)


class TwoStage(ModelKind):
    name = "two-stage"
    description = "two-stage: oxygens in raster order, then each molecule turned seeing every oxygen and the turns before it"

    def build(self, config) -> TwoStageNet:
        return TwoStageNet(config)

    def param_groups(self, net: TwoStageNet) -> list:
        return [(list(net.stage1.parameters()), 1.0), (list(net.stage2.parameters()), STAGE2_LR_SCALE)]

    def start_from_frequencies(self, net: TwoStageNet, frequencies) -> None:
        freq = np.maximum(np.asarray(frequencies, dtype=np.float64), 1e-12)
        with torch.no_grad():
            net.stage1.head_out.bias.copy_(torch.log(torch.as_tensor(freq, dtype=torch.float32)))
            net.stage2.bias.copy_(torch.log(torch.as_tensor(freq[1:] / freq[1:].sum(), dtype=torch.float32)))

    def warm_start(self, net: TwoStageNet, source) -> list:
        """Stage 1 from a trained one-stage PixelCNN of the same trunk and head (its occupancy input
        channels, the first two of the water features, and everything after the inputs), or both
        stages from a two-stage model."""
        if isinstance(source, TwoStageNet):
            net.load_state_dict(source.state_dict())
            return list(net.state_dict())
        target, copied = net.stage1.state_dict(), []
        for key, value in source.state_dict().items():
            if key not in target:
                continue
            if value.shape != target[key].shape and key.startswith("layers.0.") and key.endswith(".weight") \
                    and value.dim() == 5 and value.shape[1] > target[key].shape[1]:
                value = value[:, : target[key].shape[1]]  # [empty, occupied] come first in the source's inputs
            if value.shape == target[key].shape:
                target[key] = value.clone()
                copied.append(f"stage1.{key}")
        net.stage1.load_state_dict(target)
        return copied

    def loss(self, net: TwoStageNet, crops: torch.Tensor, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
        crops = crops.long()
        with torch.autocast(crops.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits = net.stage1.logits(crops)
        logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=1)  # bf16 -> fp32
        occupied = crops > 0
        stage1 = torch.where(occupied, torch.logsumexp(logp[:, 1:], dim=1), logp[:, 0]).sum()
        return (orientation_loss(net.stage2, occupied, crops) - stage1) / crops.numel()

    def receptive_field(self, config) -> ReceptiveField:
        rf, r = receptive_field(config), reach_extent(config)
        return ReceptiveField(planes_back=max(rf.planes_back, r), rows_back=max(rf.rows_back, r),
                              rows_ahead=max(rf.rows_ahead, r), cols=max(rf.cols, r), cols_back=max(rf.cols_back, r),
                              voxel_nm=config.voxel_nm)

    def lookahead_voxels(self, config) -> int:
        return reach_extent(config)

    # --- scoring ----------------------------------------------------------------------------
    @torch.no_grad()
    def class_log_probs(self, model: TwoStageNet, canvas, temperature: float, dtype=torch.float64) -> torch.Tensor:
        """Empty: log p1(empty); class k: log p1(occupied) + log p2(k), stage 2 as if the voxel held a molecule."""
        _refuse_wrap(canvas)
        stage1 = self._stage1_box(model, canvas, temperature, dtype)
        turner = eval_copy(model, torch.float64).stage2
        lattice = Lattice(canvas.values > 0, canvas.values)
        z0, y0, x0, nz, ny, nx = canvas.box
        grid = torch.stack(torch.meshgrid(torch.arange(len(canvas.values)), torch.arange(z0, z0 + nz),
                                          torch.arange(y0, y0 + ny), torch.arange(x0, x0 + nx), indexing="ij"), -1)
        stage2 = torch.log_softmax(turner.logits_at(lattice, grid.reshape(-1, 4)) / temperature, dim=1)
        stage2 = stage2.reshape(len(canvas.values), nz, ny, nx, -1).permute(0, 4, 1, 2, 3)
        return torch.cat([stage1[:, :1], stage1[:, 1:] + stage2], dim=1)

    @torch.no_grad()
    def log_prob(self, model: TwoStageNet, canvas, temperature: float, dtype=torch.float64) -> torch.Tensor:
        _refuse_wrap(canvas)
        logp = self._stage1_chosen(model, canvas, temperature, dtype)
        turner = eval_copy(model, torch.float64).stage2
        lattice = Lattice(canvas.values > 0, canvas.values)
        z0, y0, x0, _, _, _ = canvas.box
        inside = _in_box(lattice.sites, canvas.box)
        sites = lattice.sites[inside]
        stage2 = torch.log_softmax(turner.logits_at(lattice, sites) / temperature, dim=1)
        chosen = stage2.gather(1, (lattice.classes[tuple(sites.T)] - 1)[:, None])[:, 0]
        logp[sites[:, 0], sites[:, 1] - z0, sites[:, 2] - y0, sites[:, 3] - x0] += chosen
        return torch.where(canvas.box_view(canvas.free), logp, torch.zeros_like(logp))

    def _stage1_box(self, model: TwoStageNet, canvas, temperature: float, dtype) -> torch.Tensor:
        """(B, 2, Z, Y, X) float64 stage-1 log p(empty), log p(occupied) over the box at `temperature`."""
        net = eval_copy(model, dtype).stage1
        z0, y0, x0, nz, ny, nx = canvas.box
        logits = net.logits(canvas.values)[:, :, z0 : z0 + nz, y0 : y0 + ny, x0 : x0 + nx].double()
        logp = torch.log_softmax(logits / temperature, dim=1)
        return torch.stack([logp[:, 0], torch.logsumexp(logp[:, 1:], dim=1)], dim=1)

    def _stage1_chosen(self, model: TwoStageNet, canvas, temperature: float, dtype) -> torch.Tensor:
        """(B, Z, Y, X) float64 stage-1 log-probability of each box voxel's occupancy as the canvas holds it."""
        stage1 = self._stage1_box(model, canvas, temperature, dtype)
        return torch.where(canvas.box_view(canvas.values) > 0, stage1[:, 1], stage1[:, 0])

    # --- sampling ---------------------------------------------------------------------------
    @torch.no_grad()
    def sample_reference(self, model: TwoStageNet, canvas, seed: int, first_box: int = 0, temperature: float = 1.0,
                         dtype=torch.float64, progress: bool = False):
        """Stage 1 by the one-stage reference sampler; stage 2 molecule by molecule, each from `logits_at`
        on the canvas as it stands (the whole stage-2 network at that voxel)."""
        _refuse_wrap(canvas)
        grids, _ = OneStagePixelCNN().sample_reference(eval_copy(model, dtype).stage1, canvas, seed, first_box,
                                                       temperature, dtype, progress_part(progress, 0.5))
        self._place_oxygens(canvas, grids)
        turner = eval_copy(model, torch.float64).stage2
        logp2 = torch.zeros(len(canvas.values), dtype=torch.float64)
        for b in range(len(canvas.values)):
            u = _stage2_uniforms(canvas, seed, first_box + b)
            lattice = Lattice(canvas.values[b : b + 1] > 0, canvas.values[b : b + 1])  # classes: a view, kept current
            todo = lattice.sites[canvas.free[b][tuple(lattice.sites[:, 1:].T)]]
            box_bar = progress_part(progress, 0.5 / len(canvas.values))
            for site in progress_loop(todo, "generate (reference, stage 2)", box_bar, "molecule"):
                logits = turner.logits_at(lattice, site[None])[0]
                cls, lp = choose(logits, u[_box_index(site, canvas.box)], temperature)
                canvas.values[b, site[1], site[2], site[3]] = cls + 1
                logp2[b] += lp
        return self._result(model, canvas, temperature, dtype, logp2)

    @torch.no_grad()
    def sample_fast(self, model: TwoStageNet, canvas, seed: int, first_box: int = 0, temperature: float = 1.0,
                    dtype=torch.float32, progress: bool = False, device="cpu", backend: str | None = None,
                    max_planes: int | None = None, memory_mb: float = 1024):
        """Stage 1 by the wavefront sampler (options as the one-stage kind's); stage 2 with the oxygen-field
        terms of every molecule computed once, then molecule by molecule in raster order (all boxes of the
        batch at once), each drawn orientation pushed to the later molecules within reach."""
        _refuse_wrap(canvas)
        grids, _ = wavefront_sampler.sample_canvas(eval_copy(model, dtype).stage1, canvas, seed, first_box, temperature,
                                                   dtype, progress_part(progress, 0.5), device, backend, max_planes, memory_mb)
        self._place_oxygens(canvas, grids)
        turner = eval_copy(model, torch.float64).stage2
        lattice = Lattice(canvas.values > 0, canvas.values)
        sites = lattice.sites
        pairs = turner.pairs(lattice, sites)  # searched once: the oxygen-field sums and the causal edges share them
        logits = turner.field_logits(len(sites), pairs, turner.field_table())
        src, dst, m = turner.causal_edges(lattice, pairs)
        # the t-th molecule of every box is drawn at step t; edges leave in the order their source is drawn
        first = torch.searchsorted(sites[:, 0].contiguous(), torch.arange(len(canvas.values)))
        step = torch.arange(len(sites)) - first[sites[:, 0]]
        bounds = torch.arange(int(step.max()) + 2 if len(sites) else 1)  # step t spans [start[t], start[t + 1])
        order = torch.argsort(step[src], stable=True)
        src, dst, m = src[order], dst[order], m[order]
        edge_start = torch.searchsorted(step[src].contiguous(), bounds)
        mol_order = torch.argsort(step, stable=True)
        mol_start = torch.searchsorted(step[mol_order].contiguous(), bounds)
        uniforms = torch.stack([_stage2_uniforms(canvas, seed, first_box + b) for b in range(len(canvas.values))])
        free = canvas.free[tuple(sites.T)]
        logp2 = torch.zeros(len(canvas.values), dtype=torch.float64)
        pushed = torch.zeros_like(logits)
        steps = range(len(mol_start) - 1)
        for t in progress_loop(steps, "generate (stage 2)", progress_part(progress, 0.5), "step"):
            rows = mol_order[mol_start[t] : mol_start[t + 1]]
            rows = rows[free[rows]]
            if len(rows):
                s = sites[rows]
                u = uniforms[s[:, 0], s[:, 1] - canvas.box[0], s[:, 2] - canvas.box[1], s[:, 3] - canvas.box[2]]
                cls, lp = choose(logits[rows] + pushed[rows], u, temperature)
                lattice.classes[tuple(s.T)] = cls + 1
                logp2.index_add_(0, s[:, 0], lp)
            e = slice(int(edge_start[t]), int(edge_start[t + 1]))
            if e.stop > e.start:
                neighbour = lattice.classes[tuple(sites[src[e]].T)]
                pushed.index_add_(0, dst[e], turner.pair_terms(m[e], neighbour))
        return self._result(model, canvas, temperature, dtype, logp2)

    @staticmethod
    def _place_oxygens(canvas, grids) -> None:
        """Write stage 1's draws into the canvas: its class at an occupied voxel is a placeholder that
        stage 2 replaces before any molecule reads it (molecules read only earlier ones)."""
        free = canvas.box_view(canvas.free)
        canvas.box_view(canvas.values)[free] = grids.long()[free]

    def _result(self, model, canvas, temperature, dtype, logp2) -> tuple:
        grids = canvas.box_view(canvas.values).to(torch.uint8).clone()
        if temperature == 0:
            return grids, torch.zeros(len(grids), dtype=torch.float64)
        logp1 = self._stage1_chosen(model, canvas, temperature, dtype)
        logp1 = torch.where(canvas.box_view(canvas.free), logp1, torch.zeros_like(logp1)).sum(dim=(1, 2, 3))
        return grids, logp1 + logp2


def _refuse_wrap(canvas) -> None:
    """The two-stage kind has no wrap-around boundary yet: stage 2 would have to copy each drawn
    orientation into the molecule's ghosts before any later molecule reads them."""
    if canvas.wrap:
        raise MapSuiteError("the two-stage kind has no wrap-around boundary yet; use --boundary outside or empty")


def _in_box(sites: torch.Tensor, box) -> torch.Tensor:
    z0, y0, x0, nz, ny, nx = box
    z, y, x = sites[:, 1], sites[:, 2], sites[:, 3]
    return (z >= z0) & (z < z0 + nz) & (y >= y0) & (y < y0 + ny) & (x >= x0) & (x < x0 + nx)


def _box_index(site, box) -> tuple:
    return int(site[1]) - box[0], int(site[2]) - box[1], int(site[3]) - box[2]


def _stage2_uniforms(canvas, seed: int, box_index: int) -> torch.Tensor:
    _, _, _, nz, ny, nx = canvas.box
    return box_uniforms((nz, ny, nx), seed, box_index, stream=STAGE2_STREAM)


__all__ = ["STAGE2_STREAM", "TwoStage", "TwoStageNet", "occupancy_features"]

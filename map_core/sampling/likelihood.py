"""Exact log-probability of given grids under a MAP model (teacher forcing), by the model's kind."""

from __future__ import annotations

import math

import numpy as np
import torch

from map_core.errors import MapSuiteError
from map_core.model.kinds import kind_of
from map_core.sampling.canvas import make_canvas


def log_prob(model, grids, temperature: float = 1.0, boundary="outside", fixed=None,
             dtype=torch.float64, per_voxel: bool = False):
    """log p(grid) in nats for each of (B, Z, Y, X) class grids, summed over the sampled voxels.

    Voxels fixed by `fixed` (values >= 0) are conditioned on and not counted; boundary as in
    map_core.sampling.canvas.make_canvas. per_voxel=True also returns the (B, Z, Y, X) log-probabilities.
    """
    if temperature <= 0:
        raise MapSuiteError("log_prob needs a positive temperature")
    grids = torch.as_tensor(np.asarray(grids), dtype=torch.int64)
    if grids.dim() == 3:
        grids = grids.unsqueeze(0)
    config = model.config
    if grids.min() < 0 or grids.max() >= config.n_classes:
        raise MapSuiteError(f"grids hold values outside the classes 0..{config.n_classes - 1}")
    kind = kind_of(config)
    canvas = make_canvas(grids.shape[1:], grids.shape[0], kind.receptive_field(config), config.n_classes, boundary, fixed)
    free = canvas.box_view(canvas.free)
    canvas.box_view(canvas.values)[free] = grids[free]
    canvas.fill_images()  # a wrapped canvas: the ghosts hold the grids' first rows and columns
    logp = kind.log_prob(model, canvas, temperature, dtype)
    total = logp.sum(dim=(1, 2, 3))
    return (total, logp) if per_voxel else total


def cross_entropy_split(model, grids, boundary="outside", frequencies=None) -> dict:
    """Cross-entropy of (B, Z, Y, X) grids of oriented molecules (``Encoding.orientations``) split into
    where the oxygens sit and how each molecule is turned, in nats per molecule (each voxel given what
    the model's kind conditions it on, as `log_prob`; temperature 1):

    - occupancy: -log p(empty) at empty voxels and -log p(occupied) at molecules, p(occupied) the sum
      over the orientation classes;
    - orientation: -log p(class | occupied) at molecules;
    - their sum over the molecules is the total (`nats_per_voxel` x voxels).

    Beside them the references: a uniform choice among the K orientations (ln K) and, given the
    training class `frequencies` (n_classes,), the independent-voxel baseline split the same way.
    """
    if model.config.coder().orientations() is None:
        raise MapSuiteError(f"the {model.config.encoding} encoding's classes are not oriented molecules: no orientation split")
    grids = torch.as_tensor(np.asarray(grids), dtype=torch.int64)
    grids = grids.unsqueeze(0) if grids.dim() == 3 else grids
    kind = kind_of(model.config)
    canvas = make_canvas(grids.shape[1:], grids.shape[0], kind.receptive_field(model.config), model.config.n_classes, boundary)
    canvas.box_view(canvas.values)[...] = grids
    every = kind.class_log_probs(model, canvas, 1.0, torch.float64)  # (B, C, Z, Y, X)
    occupied = grids > 0
    log_occupied = torch.logsumexp(every[:, 1:], dim=1)
    chosen = every.gather(1, grids[:, None])[:, 0]
    molecules = int(occupied.sum())
    occupancy = -float(torch.where(occupied, log_occupied, every[:, 0]).sum())
    orientation = -float((chosen - log_occupied)[occupied].sum())
    out = {"voxels": grids.numel(), "molecules": molecules, "nats_per_voxel": (occupancy + orientation) / grids.numel(),
           "occupancy_nats_per_molecule": occupancy / max(molecules, 1),
           "orientation_nats_per_molecule": orientation / max(molecules, 1),
           "uniform_orientation_nats": math.log(model.config.n_classes - 1)}
    if frequencies is not None:
        f = np.maximum(np.asarray(frequencies, dtype=np.float64), 1e-300)
        counts = np.bincount(grids.numpy().ravel(), minlength=len(f))
        f_occ = f[1:].sum()
        out["baseline_occupancy_nats_per_molecule"] = -(counts[0] * np.log(f[0]) + counts[1:].sum() * np.log(f_occ)) / max(molecules, 1)
        out["baseline_orientation_nats_per_molecule"] = -float((counts[1:] * np.log(f[1:] / f_occ)).sum()) / max(molecules, 1)
    return out

"""Sampling: the canvas, the reference and fast exact samplers, likelihood, and generation as a job.

Every sampler and the likelihood ask the model's kind (``map_core.model.kinds``) to do the work on
a canvas built here, so they serve every kind alike.

- ``canvas``: box, boundary halo, fixed voxels (the seed streams and the class choice: ``map_core.model.choice``);
- ``reference``: the slow, obviously correct sampler (one-stage: one full network pass per voxel);
- ``fast``: the fast exact sampler, the same boxes (one-stage: cached states in wavefronts, numpy or torch);
- ``likelihood``: teacher-forced log-probability of given grids;
- ``margins``: the burn-in margin generated around a box and cut away;
- ``generate``: what to sample (``SamplingJob``); boxes in resumable batches, decoded to atoms, written as a frames file;
- ``motif``: generation around a fixed motif with turns and iterations (seed 000, Results 2).
"""

from map_core.sampling.canvas import choose, halo_for, make_canvas
from map_core.sampling.fast import sample_fast
from map_core.sampling.generate import SAMPLER_FUNCTIONS, SamplingJob, decode_boxes, generate_to_file, sampler_function
from map_core.sampling.likelihood import cross_entropy_split, log_prob
from map_core.sampling.margins import burn_in_voxels, canvas_shape, face_voxels
from map_core.sampling.motif import protocol_steps
from map_core.sampling.reference import sample_reference

__all__ = [
    "SAMPLER_FUNCTIONS", "SamplingJob", "burn_in_voxels", "canvas_shape", "choose", "cross_entropy_split", "decode_boxes", "face_voxels",
    "generate_to_file", "halo_for", "log_prob", "make_canvas", "protocol_steps", "sample_fast", "sample_reference",
    "sampler_function",
]

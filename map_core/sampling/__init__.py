"""Sampling: the canvas, the reference and fast exact samplers, likelihood, and generation as a job.

- ``canvas``: box, boundary halo, fixed voxels, and the per-voxel class choice;
- ``reference``: raster-order generation, one full network pass per voxel (obviously correct);
- ``wavefront``: the schedule of voxels that cannot see each other;
- ``fast``: cached per-layer states, one evaluation per voxel, numpy or torch (CPU or CUDA);
- ``likelihood``: teacher-forced log-probability of given grids;
- ``margins``: the burn-in margin generated around a box and cut away;
- ``generate``: boxes in resumable batches, decoded to atoms, written as a frames file;
- ``motif``: generation around a fixed motif with turns and iterations (seed 000, Results 2).
"""

from map_core.sampling.canvas import choose, halo_for, make_canvas
from map_core.sampling.fast import sample_fast
from map_core.sampling.generate import decode_boxes, generate_to_file, sampler_function
from map_core.sampling.likelihood import log_prob
from map_core.sampling.margins import burn_in_voxels, canvas_shape, face_voxels
from map_core.sampling.motif import protocol_steps
from map_core.sampling.reference import sample_reference
from map_core.sampling.wavefront import Wavefront

__all__ = [
    "Wavefront", "burn_in_voxels", "canvas_shape", "choose", "decode_boxes", "face_voxels", "generate_to_file",
    "halo_for", "log_prob", "make_canvas", "protocol_steps", "sample_fast", "sample_reference", "sampler_function",
]

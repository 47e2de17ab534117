"""Rare-motif conditioned generation (seed 000, Results 2): the scan of the training data for
low-density probe cubes, the resumable generation job around one motif, and its convergence
numbers (Steinhardt q4/q6 KL per iteration, density around the motif)."""

from validation.motif.convergence import convergence, radial_density
from validation.motif.run import run_motif_job
from validation.motif.scan import load_scan, motif_atoms, scan_frames, voxelise_motif, write_scan

__all__ = ["convergence", "load_scan", "motif_atoms", "radial_density", "run_motif_job", "scan_frames",
           "voxelise_motif", "write_scan"]

"""Memory and disk a run needs, estimated before any work, and the refusal of one that cannot fit.

Bytes throughout; the estimates are generous upper bounds, not measurements of one platform.
"""

from __future__ import annotations

from map_core.errors import MapSuiteError
from map_core.files import available_memory_bytes, free_disk_bytes
from validation.md.settings import MDSettings
from validation.md.water_model import PARTICLES_PER_WATER

MD_BYTES_PER_PARTICLE_COPY = 2048  # OpenMM state, forces, neighbour lists and integrator, per particle and bead (generous)
MD_BASE_BYTES = 300 * 2**20  # the OpenMM context and Python itself


def md_budget(n_waters: int, settings: MDSettings, extra_frames: int = 0) -> tuple:
    """(memory bytes, disk bytes) a run of `n_waters` needs: the context of every bead, and the
    trajectories (float32 positions of 3 atoms per water each ``traj_ps``), checkpoints and
    `extra_frames` frames written afterwards."""
    particles = n_waters * PARTICLES_PER_WATER * settings.n_copies
    memory = MD_BASE_BYTES + particles * MD_BYTES_PER_PARTICLE_COPY
    frames = (settings.npt_ps + settings.nvt_ps) / settings.traj_ps + extra_frames
    disk = int(frames * (3 * n_waters * 12 + 200) + 4 * particles * 6 * 8)  # + two checkpoints of positions, velocities
    return memory, disk


def check_md_fits(n_waters: int, settings: MDSettings, workdir, extra_frames: int = 0) -> None:
    """Refuse, before any work, a run whose memory or disk estimate (`md_budget`) exceeds what is free."""
    memory, disk = md_budget(n_waters, settings, extra_frames)
    free = available_memory_bytes()
    if free is not None and memory > free:
        raise MapSuiteError(f"{n_waters} waters x {settings.n_copies} copies need about {memory / 1e9:.3g} GB of memory, "
                            f"{free / 1e9:.3g} GB are available", workdir)
    free_disk = free_disk_bytes(workdir)
    if disk > free_disk:
        raise MapSuiteError(f"the run needs about {disk / 1e6:.3g} MB of disk for trajectories and checkpoints, "
                            f"{free_disk / 1e6:.3g} MB are free", workdir)

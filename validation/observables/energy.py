"""q-TIP4P/F intermolecular energy per molecule, evaluated with OpenMM.

The energy of the non-bonded force groups (Lennard-Jones between oxygens, Coulomb between
H and M sites of different molecules; periodic: PME + dispersion correction with the model's
cutoff; non-periodic: all pairs, no cutoff) of the complete molecules of each frame, divided
by their number. Orphan atoms and incomplete molecules are left out. A non-periodic
(generated) box has a surface, so its per-molecule energy is less negative than the bulk.
Energies kJ/mol.
"""

from __future__ import annotations

import numpy as np
import openmm

from map_core.atoms.neighbors import minimum_image
from validation.md.platform import pick_platform
from validation.md.water_model import GROUP_DIRECT, GROUP_RECIP, build_system, with_m_sites
from validation.observables.frame_tools import as_frames, frame, water_molecules


def compute_intermolecular_energy(data, periodic: bool = True, platform: str | None = "Reference",
                                  cutoff_nm: float | None = None) -> np.ndarray:
    """(F,) intermolecular q-TIP4P/F energy per molecule, kJ/mol (NaN for a frame without molecules).

    platform: OpenMM platform name ('Reference' is exact and fast enough for analysis; None
    picks the fastest). cutoff_nm: periodic real-space cutoff (default of the water model).
    """
    frames = as_frames(data)
    plat, props = pick_platform(platform)
    out = np.full(len(frames), np.nan)
    cache = {}
    for f in range(len(frames)):
        pos, el, mol, box = frame(frames, f)
        w = water_molecules(el, mol)
        if len(w) == 0:
            continue
        xyz = pos[w]  # (M, 3, 3)
        xyz[:, 1:] = xyz[:, :1] + minimum_image(xyz[:, 1:] - xyz[:, :1], box if periodic else None)  # whole molecules
        key = (len(w), tuple(box) if periodic else None)
        if key not in cache:
            system = build_system(len(w), box if periodic else None, cutoff_nm)
            cache.clear()  # one context at a time: frames of a trajectory share it
            cache[key] = openmm.Context(system, openmm.VerletIntegrator(0.001), plat, props)
        context = cache[key]
        context.setPositions(with_m_sites(xyz.reshape(-1, 3)))
        context.computeVirtualSites()
        state = context.getState(getEnergy=True, groups={GROUP_DIRECT, GROUP_RECIP})
        out[f] = state.getPotentialEnergy()._value / len(w)
    return out

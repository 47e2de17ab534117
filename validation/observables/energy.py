"""q-TIP4P/F intermolecular energy per molecule: per frame with OpenMM, per molecule as pair sums.

The energy of the non-bonded force groups (Lennard-Jones between oxygens, Coulomb between
H and M sites of different molecules; periodic: PME + dispersion correction with the model's
cutoff; non-periodic: all pairs, no cutoff) of the complete molecules of each frame, divided
by their number. Orphan atoms and incomplete molecules are left out. A non-periodic
(generated) box has a surface, so its per-molecule energy is less negative than the bulk.
Energies kJ/mol.

``compute_molecule_energies`` splits the same non-periodic energy between molecules: molecule i
gets half of each pair term u_ij it takes part in, so a frame's values sum to its OpenMM energy
(tests/test_observables.py checks this against ``compute_intermolecular_energy``). OpenMM
reports energies per force group, not per particle, so these pair sums are evaluated here with
numpy, from the same parameters (``validation.md.water_model.PARAMS``).
"""

from __future__ import annotations

import numpy as np
import openmm

from map_core.atoms.neighbors import minimum_image
from validation.md.platform import pick_platform
from validation.md.water_model import COULOMB, GROUP_DIRECT, GROUP_RECIP, PARAMS, build_system, m_site_positions, with_m_sites
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


PAIR_BLOCK = 256  # molecules per block of the pair sums: (256, M, 3, 3) distances at a time


def compute_molecule_energies(data) -> list:
    """Per frame, an (M,) array: each complete molecule's share of the non-periodic intermolecular
    q-TIP4P/F energy, E_i = 1/2 sum_j u_ij over all other molecules j (no cutoff), kJ/mol.

    u_ij is the Lennard-Jones term of the two oxygens plus the Coulomb terms between the H and M
    sites of the two molecules. Molecules are those of ``water_molecules`` in its order; each
    molecule's H atoms are taken as they sit (generated and decoded boxes are open boxes).
    """
    frames = as_frames(data)
    charges = np.array([PARAMS.q_h, PARAMS.q_h, PARAMS.q_m])
    qq = COULOMB * charges[:, None] * charges[None, :]
    out = []
    for f in range(len(frames)):
        pos, el, mol, _ = frame(frames, f)
        xyz = np.asarray(pos, dtype=np.float64)[water_molecules(el, mol)]  # (M, 3, 3) O, H, H
        sites = np.concatenate([xyz[:, 1:], m_site_positions(xyz)[:, None]], axis=1)  # (M, 3, 3) H, H, M
        energy = np.zeros(len(xyz))
        for start in range(0, len(xyz), PAIR_BLOCK):
            rows = slice(start, min(start + PAIR_BLOCK, len(xyz)))
            energy[rows] = 0.5 * _pair_energies(xyz[rows, 0], sites[rows], xyz[:, 0], sites, qq, start)
        out.append(energy)
    return out


def _pair_energies(o_rows, sites_rows, o_all, sites_all, qq, start: int) -> np.ndarray:
    """(R,) sum over all other molecules j of u_ij for the R molecules starting at index `start`."""
    r_oo = np.linalg.norm(o_rows[:, None] - o_all[None], axis=-1)  # (R, M)
    self_pair = (np.arange(len(o_rows)), start + np.arange(len(o_rows)))
    r_oo[self_pair] = np.inf
    sr6 = (PARAMS.sigma_oo / r_oo) ** 6
    lj = 4.0 * PARAMS.eps_oo * (sr6 * sr6 - sr6)
    r_sites = np.linalg.norm(sites_rows[:, None, :, None] - sites_all[None, :, None, :], axis=-1)  # (R, M, 3, 3)
    r_sites[self_pair] = np.inf
    return (lj + (qq / r_sites).sum(axis=(2, 3))).sum(axis=1)

"""q-TIP4P/F flexible water as an OpenMM System.

Model and parameters: S. Habershon, T. E. Markland and D. E. Manolopoulos, "Competing quantum
effects in the dynamics of a flexible water model", J. Chem. Phys. 131, 024501 (2009).

Each molecule is four particles in the order O, H1, H2, M:

* O-H bonds: quartic expansion of a Morse potential,
  V(r) = D_r [a^2 dr^2 - a^3 dr^3 + (7/12) a^4 dr^4], dr = r - r_eq;
* H-O-H angle: harmonic, V = (k_theta / 2) (theta - theta_eq)^2;
* a massless M site, r_M = gamma r_O + (1 - gamma)/2 (r_H1 + r_H2), carrying the negative
  charge (ThreeParticleAverageSite);
* Lennard-Jones between oxygens only; Coulomb between H and M sites of different molecules;
  all intramolecular non-bonded pairs excluded; no constraints (RPMD refuses them).

Force groups (so that multiple-time-step integrators and RPMD contraction can address them):
``GROUP_INTRA`` bonds and angles, ``GROUP_DIRECT`` real-space non-bonded (LJ + direct Coulomb
+ dispersion correction), ``GROUP_RECIP`` PME reciprocal space.

Lengths nm, energies kJ/mol, angles rad, masses dalton, charges e.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import openmm

from map_core.errors import MapSuiteError

KCAL = 4.184  # kJ per kcal

GROUP_INTRA = 0
GROUP_DIRECT = 1
GROUP_RECIP = 2

PARTICLES_PER_WATER = 4  # O, H1, H2, M
MASS_O = 15.99943  # dalton
MASS_H = 1.007947
MASS_WATER = MASS_O + 2 * MASS_H  # 18.01532 dalton
COULOMB = 138.935456  # kJ mol^-1 nm e^-2, 1 / (4 pi eps0) as OpenMM uses it


@dataclass(frozen=True)
class QTIP4PF:
    """q-TIP4P/F parameters (Habershon et al. 2009, Table I), in OpenMM units."""

    d_r: float = 116.09 * KCAL  # kJ/mol
    alpha_r: float = 22.87  # nm^-1
    r_eq: float = 0.09419  # nm
    k_theta: float = 87.85 * KCAL  # kJ/mol/rad^2, V = k/2 (theta - theta_eq)^2
    theta_eq: float = math.radians(107.4)  # rad
    q_m: float = -1.1128  # e
    q_h: float = 0.5564  # e
    sigma_oo: float = 0.31589  # nm
    eps_oo: float = 0.1852 * KCAL  # kJ/mol
    gamma: float = 0.73612  # M-site weight of O


PARAMS = QTIP4PF()


def default_cutoff(box_nm) -> float:
    """Non-bonded cutoff, nm: min(1.0, 0.45 x shortest box edge).

    0.45 rather than 0.5 leaves room for the box to shrink under a barostat (OpenMM refuses a
    cutoff longer than half the box).
    """
    return float(min(1.0, 0.45 * float(np.min(box_nm))))


def m_site_positions(positions, gamma: float = PARAMS.gamma) -> np.ndarray:
    """M-site positions, nm, (M, 3), from (M, 3, 3) O, H1, H2 positions of whole molecules."""
    positions = np.asarray(positions, dtype=np.float64)
    return gamma * positions[:, 0] + 0.5 * (1.0 - gamma) * (positions[:, 1] + positions[:, 2])


def build_system(n_waters: int, box_nm=None, cutoff_nm: float | None = None,
                 params: QTIP4PF = PARAMS, ewald_tolerance: float = 5e-4):
    """Return an ``openmm.System`` of `n_waters` q-TIP4P/F molecules (particles O, H1, H2, M each).

    box_nm: (3,) orthorhombic box edges, nm, for a periodic system with PME, LJ cutoff and the
    long-range dispersion correction; None for an isolated (non-periodic) cluster with no
    cutoff (used for energies of generated, non-periodic boxes).
    cutoff_nm: real-space cutoff, nm; default :func:`default_cutoff`. Must be below half the
    shortest edge.
    """
    if n_waters < 1:
        raise MapSuiteError(f"need at least one water molecule, got {n_waters}")
    system = openmm.System()
    # per-bond, not global, parameters: global names would clash with integrator variables
    bonds = openmm.CustomBondForce("D*(a^2*dr^2 - a^3*dr^3 + (7/12)*a^4*dr^4); dr = r - req")
    for name in ("D", "a", "req"):
        bonds.addPerBondParameter(name)
    bond_params = [params.d_r, params.alpha_r, params.r_eq]
    angles = openmm.HarmonicAngleForce()
    nonbonded = openmm.NonbondedForce()
    for i in range(n_waters):
        o, h1, h2, m = (PARTICLES_PER_WATER * i + k for k in range(4))
        system.addParticle(MASS_O)
        system.addParticle(MASS_H)
        system.addParticle(MASS_H)
        system.addParticle(0.0)
        system.setVirtualSite(m, openmm.ThreeParticleAverageSite(
            o, h1, h2, params.gamma, 0.5 * (1 - params.gamma), 0.5 * (1 - params.gamma)))
        bonds.addBond(o, h1, bond_params)
        bonds.addBond(o, h2, bond_params)
        angles.addAngle(h1, o, h2, params.theta_eq, params.k_theta)
        nonbonded.addParticle(0.0, params.sigma_oo, params.eps_oo)
        nonbonded.addParticle(params.q_h, 1.0, 0.0)
        nonbonded.addParticle(params.q_h, 1.0, 0.0)
        nonbonded.addParticle(params.q_m, 1.0, 0.0)
        members = (o, h1, h2, m)
        for a in range(4):
            for b in range(a + 1, 4):
                nonbonded.addException(members[a], members[b], 0.0, 1.0, 0.0)
    if box_nm is None:
        nonbonded.setNonbondedMethod(openmm.NonbondedForce.NoCutoff)
    else:
        box = np.asarray(box_nm, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(box)) or np.any(box <= 0):
            raise MapSuiteError(f"box edges must be finite and positive, got {box.tolist()} nm")
        cutoff = default_cutoff(box) if cutoff_nm is None else float(cutoff_nm)
        if cutoff <= 0 or cutoff >= 0.5 * box.min():
            raise MapSuiteError(f"cutoff {cutoff:.3f} nm must be positive and below half the "
                                f"shortest box edge ({box.min():.3f} nm)")
        system.setDefaultPeriodicBoxVectors(
            openmm.Vec3(box[0], 0, 0), openmm.Vec3(0, box[1], 0), openmm.Vec3(0, 0, box[2]))
        nonbonded.setNonbondedMethod(openmm.NonbondedForce.PME)
        nonbonded.setCutoffDistance(cutoff)
        nonbonded.setUseDispersionCorrection(True)
        nonbonded.setUseSwitchingFunction(False)
        nonbonded.setEwaldErrorTolerance(ewald_tolerance)
    bonds.setForceGroup(GROUP_INTRA)
    angles.setForceGroup(GROUP_INTRA)
    nonbonded.setForceGroup(GROUP_DIRECT)
    nonbonded.setReciprocalSpaceForceGroup(GROUP_RECIP)
    for force in (bonds, angles, nonbonded):
        system.addForce(force)
    return system


def with_m_sites(water_positions) -> np.ndarray:
    """Particle positions, nm, (4 M, 3) in O, H1, H2, M order from (3 M, 3) O, H1, H2 positions."""
    xyz = np.asarray(water_positions, dtype=np.float64).reshape(-1, 3, 3)
    return np.concatenate([xyz, m_site_positions(xyz)[:, None, :]], axis=1).reshape(-1, 3)


def atom_indices(n_waters: int) -> np.ndarray:
    """Indices, (3 n_waters,), of the massive particles (O, H1, H2) among the system's particles."""
    return (PARTICLES_PER_WATER * np.arange(n_waters)[:, None] + np.arange(3)[None, :]).reshape(-1)

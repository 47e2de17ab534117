"""One OpenMM context for one stage of a run: integrator, barostat, state in and out.

Classical and RPMD runs look the same from outside: positions and velocities are
(copies, particles, 3) arrays (copies = 1 for classical, the number of beads for RPMD),
particles include the massless M sites. Lengths nm, velocities nm/ps, energies kJ/mol.

Thermostat and barostat (see validation/PROTOCOLS.md for how they stand in for seed 000's
Andersen thermostat and anisotropic Berendsen barostat):

* classical: ``LangevinMiddleIntegrator`` (a "middle" Langevin splitting, BAOAB-like) or, with ``intra_substeps`` > 1, ``MTSLangevinIntegrator`` with the
  intramolecular force group evaluated ``intra_substeps`` times per outer step;
  NPT adds ``MonteCarloBarostat`` or ``MonteCarloAnisotropicBarostat``.
* RPMD: ``RPMDIntegrator`` (PILE thermostat), optional contraction of the PME
  reciprocal-space group to the centroid; NPT adds ``RPMDMonteCarloBarostat``.
"""

from __future__ import annotations

import math

import numpy as np
import openmm
from openmm import Vec3

from map_core.errors import MapSuiteError
from validation.md.platform import pick_platform
from validation.md.settings import MDSettings
from validation.md.water_model import (
    GROUP_DIRECT,
    GROUP_INTRA,
    GROUP_RECIP,
    MASS_H,
    MASS_O,
    MASS_WATER,
    PARTICLES_PER_WATER,
    build_system,
)

BOLTZMANN = 0.00831446261815324  # kJ/mol/K
AVOGADRO = 6.02214076e23


def particle_masses(n_waters: int) -> np.ndarray:
    """(4 n,) masses, dalton, in O, H1, H2, M order (M massless)."""
    return np.tile([MASS_O, MASS_H, MASS_H, 0.0], n_waters)


def density_g_cm3(n_waters: int, volume_nm3: float) -> float:
    """Mass density, g/cm3, of `n_waters` molecules in `volume_nm3`."""
    return n_waters * MASS_WATER / AVOGADRO / (volume_nm3 * 1e-21)


def make_integrator(settings: MDSettings, seed: int):
    """The OpenMM integrator described by `settings` (random-number seed `seed` > 0)."""
    dt = settings.timestep_ps
    if settings.method == "rpmd":
        contractions = {GROUP_RECIP: 1} if settings.contract_reciprocal and settings.beads > 1 else {}
        if contractions:
            integrator = openmm.RPMDIntegrator(settings.beads, settings.temperature_k,
                                               settings.friction_per_ps, dt, contractions)
        else:
            integrator = openmm.RPMDIntegrator(settings.beads, settings.temperature_k,
                                               settings.friction_per_ps, dt)
    elif settings.intra_substeps > 1:
        groups = [(GROUP_RECIP, 1), (GROUP_DIRECT, 1), (GROUP_INTRA, settings.intra_substeps)]
        integrator = openmm.MTSLangevinIntegrator(settings.temperature_k, settings.friction_per_ps, dt, groups)
    else:
        integrator = openmm.LangevinMiddleIntegrator(settings.temperature_k, settings.friction_per_ps, dt)
    integrator.setRandomNumberSeed(seed)
    return integrator


def make_barostat(settings: MDSettings, seed: int):
    """The Monte Carlo barostat for the NPT stage."""
    p, t, every = settings.pressure_bar, settings.temperature_k, settings.barostat_interval
    if settings.method == "rpmd":
        # RPMDIntegrator.step(n) gives the barostat one chance per *call*, not per time step
        # (OpenMM 8.x), so it attempts a move on every call and Engine.step calls in pieces
        barostat = openmm.RPMDMonteCarloBarostat(p, 1)
    elif settings.barostat == "anisotropic":
        barostat = openmm.MonteCarloAnisotropicBarostat(openmm.Vec3(p, p, p), t, True, True, True, every)
    else:
        barostat = openmm.MonteCarloBarostat(p, t, every)
    barostat.setRandomNumberSeed(seed)
    return barostat


class Engine:
    """A context of `n_waters` molecules for one stage ('npt' or 'nvt') of a run."""

    def __init__(self, n_waters: int, box_nm, settings: MDSettings, ensemble: str, seed: int):
        self.n_waters = n_waters
        self.settings = settings
        self.copies = settings.n_copies
        self.system = build_system(n_waters, box_nm, settings.cutoff_nm)
        if ensemble == "npt":
            self.system.addForce(make_barostat(settings, seed))
        # steps per integrator call: one RPMD barostat attempt per barostat_interval steps
        self.piece = settings.barostat_interval if ensemble == "npt" and settings.method == "rpmd" else None
        self.integrator = make_integrator(settings, seed)
        platform, properties = pick_platform(settings.platform, settings.threads)
        self.platform_name = platform.getName()
        try:
            self.context = openmm.Context(self.system, self.integrator, platform, properties)
        except openmm.OpenMMException as exc:
            raise MapSuiteError(f"OpenMM could not create a context on {self.platform_name}: {exc}") from None
        self.masses = particle_masses(n_waters)
        self.dof = 3 * 3 * n_waters  # no constraints, no centre-of-mass motion removal

    # --- state in and out -------------------------------------------------------------------
    def set_state(self, positions, velocities=None, box_nm=None) -> None:
        """positions, velocities: (copies, 4 n, 3) or (4 n, 3) (same for every copy); box (3,)."""
        if box_nm is not None:
            b = np.asarray(box_nm, dtype=float).reshape(3)
            self.context.setPeriodicBoxVectors(Vec3(b[0], 0, 0), Vec3(0, b[1], 0), Vec3(0, 0, b[2]))
        pos = self._per_copy(positions)
        vel = None if velocities is None else self._per_copy(velocities)
        if self.copies == 1 and self.settings.method == "classical":
            self.context.setPositions(pos[0])
            self.context.computeVirtualSites()
            if vel is not None:
                self.context.setVelocities(vel[0])
        else:
            self.context.setPositions(pos[0])  # the minimiser and getState() read the context
            for k in range(self.copies):
                self.integrator.setPositions(k, pos[k])
                if vel is not None:
                    self.integrator.setVelocities(k, vel[k])

    def _per_copy(self, array) -> np.ndarray:
        array = np.asarray(array, dtype=np.float64)
        if array.ndim == 2:
            array = np.broadcast_to(array, (self.copies,) + array.shape)
        if array.shape != (self.copies, PARTICLES_PER_WATER * self.n_waters, 3):
            raise MapSuiteError(f"state of shape {array.shape} does not fit {self.copies} copies "
                                f"of {self.n_waters} waters")
        return np.ascontiguousarray(array)

    def thermalise(self, seed: int) -> None:
        """Draw Maxwell-Boltzmann velocities for every copy (RPMD beads at P x T, as the
        ring-polymer Hamiltonian of P beads is sampled at P T)."""
        rng = np.random.default_rng(seed)
        temperature = self.settings.temperature_k * self.copies
        vel = np.zeros((self.copies, len(self.masses), 3))
        massive = self.masses > 0
        sigma = np.sqrt(BOLTZMANN * temperature / self.masses[massive])
        vel[:, massive] = rng.normal(size=(self.copies, massive.sum(), 3)) * sigma[None, :, None]
        self.set_state(self.get_positions(), vel)

    def get_positions(self) -> np.ndarray:
        """(copies, 4 n, 3) positions, nm, not wrapped into the box."""
        return np.stack([self._state(k, getPositions=True).getPositions(asNumpy=True)._value
                         for k in range(self.copies)])

    def get_velocities(self) -> np.ndarray:
        """(copies, 4 n, 3) velocities, nm/ps."""
        return np.stack([self._state(k, getVelocities=True).getVelocities(asNumpy=True)._value
                         for k in range(self.copies)])

    def get_box(self) -> np.ndarray:
        """(3,) box edges, nm."""
        vectors = self._state(0).getPeriodicBoxVectors(asNumpy=True)._value
        return np.diag(vectors).copy()

    def _state(self, copy: int, **flags):
        if self.settings.method == "classical":
            return self.context.getState(**flags)
        return self.integrator.getState(copy, **flags)

    def checkpoint_bytes(self) -> bytes:
        """OpenMM's binary checkpoint (exact restart, same platform only)."""
        return self.context.createCheckpoint()

    def load_checkpoint_bytes(self, blob: bytes) -> None:
        self.context.loadCheckpoint(blob)

    # --- dynamics ---------------------------------------------------------------------------
    def step(self, n: int) -> None:
        n = int(n)
        if self.piece is None:
            self.integrator.step(n)
            return
        while n > 0:
            k = min(n, self.piece)
            self.integrator.step(k)
            n -= k

    def minimise(self, tolerance: float = 10.0, max_iterations: int = 0) -> None:
        """Local energy minimisation of copy 0 (tolerance kJ/mol/nm); copies all get its result."""
        openmm.LocalEnergyMinimizer.minimize(self.context, tolerance, max_iterations)
        if self.settings.method == "rpmd":
            pos = self.context.getState(getPositions=True).getPositions(asNumpy=True)._value
            self.set_state(pos)

    def report(self) -> dict:
        """Instantaneous observables of the run.

        temperature_k: kinetic temperature (RPMD: bead kinetic energy / P, i.e. the physical
        temperature); kinetic_kj_mol: kinetic energy (RPMD: mean over beads / P);
        potential_kj_mol: potential energy (RPMD: mean over beads); volume_nm3; density_g_cm3;
        box_nm (3,).
        """
        if self.settings.method == "classical":
            state = self.context.getState(getEnergy=True)
            kinetic = state.getKineticEnergy()._value
            potential = state.getPotentialEnergy()._value
        else:
            vel = self.get_velocities()
            kinetic = float(np.mean(0.5 * np.einsum("i,kij->k", self.masses, vel * vel))) / self.copies
            potential = float(np.mean([self.integrator.getState(k, getEnergy=True).getPotentialEnergy()._value
                                       for k in range(self.copies)]))
        box = self.get_box()
        volume = float(np.prod(box))
        return dict(temperature_k=2.0 * kinetic / (self.dof * BOLTZMANN), volume_nm3=volume,
                    density_g_cm3=density_g_cm3(self.n_waters, volume), potential_kj_mol=potential,
                    kinetic_kj_mol=kinetic, box_nm=box)


def seed_for(seed: int, *parts: int) -> int:
    """A positive 31-bit random-number seed derived from the run seed and `parts`."""
    value = int(seed) % 2147483629
    for p in parts:
        value = (value * 1000003 + int(p) + 1) % 2147483629
    return value + 1


def is_finite_state(report: dict) -> bool:
    return all(math.isfinite(float(report[k])) for k in ("temperature_k", "potential_kj_mol", "volume_nm3"))

"""Rigid water from OpenMM's own force fields (TIP3P, TIP4P-Ew): NPT frames at 300 K and 1 bar.

The gate's foreign ensembles (``validation.gate.foreign``) use it for water of another model than
the training set's q-TIP4P/F. Protocol of :func:`openmm_water`: the O, H, H positions of a start
frame (made whole) -> constraints applied -> a short energy minimisation -> NPT equilibration ->
NPT production, one frame every ``stride_ps``. ``LangevinMiddleIntegrator`` (friction 1/ps, 2 fs
steps), ``MonteCarloBarostat`` every 25 steps, PME, rigid water (SETTLE), CPU platform.

Unlike the q-TIP4P/F runs (``validation.md.run``), this is a plain context stepped in pieces:
short, not resumable (the caller keeps finished files), and not bitwise reproducible (OpenMM's
CPU platform). Lengths nm, times ps (steps fs where named), temperatures K, pressures bar,
densities g/cm3.
"""

from __future__ import annotations

import time

import numpy as np
import openmm
from openmm import app, unit

from map_core.atoms.frames import Frames
from map_core.errors import MapSuiteError
from validation.md.boxes import water_topology, whole_waters
from validation.md.engine import density_g_cm3, seed_for
from validation.md.platform import pick_platform
from validation.md.settings import PRESSURE_BAR, TEMPERATURE_K
from validation.md.trajectory import WRAPPING, positions_to_frames
from validation.md.water_model import default_cutoff

RIGID_TIMESTEP_FS = 2.0
FRICTION_PER_PS = 1.0
BAROSTAT_INTERVAL = 25  # steps between Monte Carlo volume moves
CONSTRAINT_TOLERANCE = 1e-7
MINIMISE_ITERATIONS = 200
MINIMISE_TOLERANCE = 10.0  # kJ/mol/nm, RMS force

FORCE_FIELDS = {"tip3p": ("tip3p.xml", "TIP3P"), "tip4pew": ("tip4pew.xml", "TIP4P-Ew")}  # model -> (OpenMM file, name)
# the meta's source, as recorded before this engine moved out of validation.gate.foreign (which
# still calls it under that name), so that files made before and after the move are the same
SOURCE = "validation.gate.foreign.openmm_water"


def openmm_water(model: str, n_frames: int, stride_ps: float, equilibrate_ps: float, seed: int, start: Frames,
                 threads: int | None = None, log=None) -> Frames:
    """Rigid water of OpenMM's built-in `model` ('tip3p' or 'tip4pew') at 300 K and 1 bar.

    Starts from the O, H, H positions of the first frame of `start` (made whole; constraints
    applied, then a short energy minimisation), runs `equilibrate_ps` of NPT (Langevin middle
    integrator, 1/ps, 2 fs steps, Monte Carlo barostat every 25 steps, PME) and keeps NPT
    running for `n_frames` frames, one every `stride_ps`. CPU platform; every random-number seed
    derives from `seed`, but OpenMM's CPU platform is not bitwise reproducible from run to run
    (TIP4P-Ew even on one thread), so a rerun gives an equivalent, not an identical, trajectory.
    Returns Frames of the massive atoms only (TIP4P-Ew's M sites dropped), each frame with its
    own box (F, 3) nm, wrapped per atom into [0, L); meta records force field, temperature,
    OpenMM version, steps and density. log: callable(str) for progress lines, or None.
    """
    if model not in FORCE_FIELDS:
        raise MapSuiteError(f"model must be one of {', '.join(FORCE_FIELDS)}, got {model!r}")
    if n_frames < 1:
        raise MapSuiteError(f"need at least 1 frame, got {n_frames}")
    stride_steps = _steps(stride_ps, "stride", minimum=1)
    equilibrate_steps = _steps(equilibrate_ps, "equilibration")
    t0 = time.time()
    positions, box = _first_frame_waters(start)
    system, topology, quantity = _rigid_system(model, positions, box)
    massive = np.array([atom.element is not None for atom in topology.atoms()])
    context, integrator = _context(system, seed, threads)
    context.setPositions(quantity)
    context.computeVirtualSites()
    context.applyConstraints(CONSTRAINT_TOLERANCE)
    openmm.LocalEnergyMinimizer.minimize(context, MINIMISE_TOLERANCE, MINIMISE_ITERATIONS)
    context.setVelocitiesToTemperature(TEMPERATURE_K * unit.kelvin, seed_for(seed, 3))
    equil = _equilibrate(context, integrator, equilibrate_steps, len(positions) // 3, log, model)
    xyz, boxes = _production(context, integrator, massive, n_frames, stride_steps, log, model, t0)
    steps = dict(equilibrate=equilibrate_steps, stride=stride_steps, production=stride_steps * n_frames)
    meta = _rigid_meta(model, seed, start, boxes, equil, steps, n_waters=len(positions) // 3, n_frames=n_frames,
                       stride_ps=float(stride_ps), equilibrate_ps=float(equilibrate_ps), cutoff_nm=default_cutoff(box),
                       platform=context.getPlatform().getName(),
                       virtual_sites="dropped" if not massive.all() else "none", wall_s=round(time.time() - t0, 1))
    return positions_to_frames(xyz, boxes, meta, wrap=True)


def _steps(ps: float, what: str, minimum: int = 0) -> int:
    """Number of 2 fs steps in `ps`; MapSuiteError if not whole or below `minimum`."""
    steps = ps * 1000.0 / RIGID_TIMESTEP_FS
    if not np.isfinite(steps) or abs(steps - round(steps)) > 1e-6 or round(steps) < minimum:
        raise MapSuiteError(f"{what} {ps} ps is not a whole number (>= {minimum}) of {RIGID_TIMESTEP_FS:g} fs steps")
    return int(round(steps))


def _first_frame_waters(start: Frames):
    """(positions (3 n, 3) nm of whole molecules O, H, H, box (3,) nm) of the first frame of `start`."""
    if len(start) == 0:
        raise MapSuiteError("no start frame")
    pos, trip = whole_waters(start, 0)
    if len(trip) == 0:
        raise MapSuiteError("the start frame holds no complete water molecule")
    return pos[trip.reshape(-1)], np.asarray(start.box[0], dtype=np.float64)


def _rigid_system(model: str, positions, box):
    """(openmm.System, Modeller topology, positions as a Quantity) of rigid `model` water.

    positions: (3 n, 3) nm O, H, H of whole molecules; box (3,) nm. TIP4P-Ew's M sites are added
    by ``Modeller.addExtraParticles``. PME, cutoff ``default_cutoff(box)``, rigid water.
    """
    xml = FORCE_FIELDS[model][0]
    forcefield = app.ForceField(xml)
    modeller = app.Modeller(water_topology(len(positions) // 3, box), positions * unit.nanometer)
    modeller.addExtraParticles(forcefield)
    system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.PME,
                                     nonbondedCutoff=default_cutoff(box) * unit.nanometer,
                                     constraints=app.HBonds, rigidWater=True)
    return system, modeller.topology, modeller.positions


def _context(system, seed: int, threads: int | None):
    """(openmm.Context, integrator) at 300 K, 1 bar (barostat added to `system`), CPU platform."""
    barostat = openmm.MonteCarloBarostat(PRESSURE_BAR * unit.bar, TEMPERATURE_K * unit.kelvin, BAROSTAT_INTERVAL)
    barostat.setRandomNumberSeed(seed_for(seed, 1))
    system.addForce(barostat)
    integrator = openmm.LangevinMiddleIntegrator(TEMPERATURE_K * unit.kelvin, FRICTION_PER_PS / unit.picosecond,
                                                 RIGID_TIMESTEP_FS * unit.femtosecond)
    integrator.setRandomNumberSeed(seed_for(seed, 2))
    integrator.setConstraintTolerance(CONSTRAINT_TOLERANCE)
    platform, properties = pick_platform("CPU", threads)
    return openmm.Context(system, integrator, platform, properties), integrator


def _equilibrate(context, integrator, steps: int, n_waters: int, log, label: str) -> list:
    """Run `steps` NPT steps in 10 chunks, logging progress; return the densities after each chunk."""
    densities, done, t0 = [], 0, time.time()
    chunk = max(1, steps // 10)
    while done < steps:
        n = min(chunk, steps - done)
        integrator.step(n)
        done += n
        box = np.diag(context.getState().getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
        densities.append(_density(n_waters, box))
        _log(log, f"{label}: equilibration {done * RIGID_TIMESTEP_FS / 1000:.2f} ps, "
                  f"density {densities[-1]:.4f} g/cm3, {time.time() - t0:.0f} s")
    return densities


def _production(context, integrator, massive, n_frames: int, stride_steps: int, log, label: str, t0: float):
    """Run `n_frames` x `stride_steps` steps; return (positions (F, 3 n, 3) nm, boxes (F, 3) nm)."""
    n_waters = int(massive.sum()) // 3
    xyz, boxes = [], []
    for f in range(n_frames):
        integrator.step(stride_steps)
        pos, box = _snapshot(context, massive)
        xyz.append(pos)
        boxes.append(box)
        if (f + 1) % max(1, n_frames // 10) == 0 or f + 1 == n_frames:
            _log(log, f"{label}: frame {f + 1}/{n_frames}, density {_density(n_waters, box):.4f} g/cm3, "
                      f"{time.time() - t0:.0f} s")
    return np.stack(xyz), np.stack(boxes)


def _snapshot(context, massive: np.ndarray):
    """(positions (3 n, 3) nm of the massive atoms, box (3,) nm); MapSuiteError on NaN."""
    state = context.getState(getPositions=True)
    pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[massive]
    box = np.diag(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer))
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(box))):
        raise MapSuiteError("OpenMM run produced NaN positions (blew up)")
    return np.asarray(pos, dtype=np.float64), np.asarray(box, dtype=np.float64)


def _density(n_waters: int, box) -> float:
    """g/cm3 of `n_waters` molecules in the box (3,) nm."""
    return density_g_cm3(n_waters, float(np.prod(box)))


def _log(log, line: str) -> None:
    if log is not None:
        log(line)


def _rigid_meta(model: str, seed: int, start: Frames, boxes, equil_density: list, steps: dict, **fields) -> dict:
    """Meta of an `openmm_water` frames file; boxes (F, 3) nm of its frames."""
    n_waters = fields["n_waters"]
    density = [_density(n_waters, b) for b in boxes]
    return dict(
        foreign=model, ensemble="NPT (frames keep sampling NPT; each frame has its own box)",
        method="classical", water_model=FORCE_FIELDS[model][1],
        force_field=f"OpenMM built-in {FORCE_FIELDS[model][0]}", rigid=True,
        temperature=TEMPERATURE_K, pressure_bar=PRESSURE_BAR, openmm_version=openmm.__version__, seed=int(seed),
        source=f"{SOURCE} (OpenMM {openmm.__version__}, CPU)",
        start="first frame of " + str(start.meta.get("source", "the start frames")),
        timestep_fs=RIGID_TIMESTEP_FS, friction_per_ps=FRICTION_PER_PS, barostat_interval=BAROSTAT_INTERVAL,
        constraints=f"rigid water (SETTLE), tolerance {CONSTRAINT_TOLERANCE:g}", nonbonded="PME",
        steps=dict(steps, minimise_max_iterations=MINIMISE_ITERATIONS),
        density_g_cm3=float(np.mean(density)), density_sd_g_cm3=float(np.std(density)),
        equilibration_density_g_cm3=float(np.mean(equil_density[len(equil_density) // 2:])) if equil_density else None,
        wrapping=WRAPPING, units="nm", **fields,
    )

"""Reporters of one stage of a run, in the style of ``openmm.app``'s reporters.

Each reporter says when it wants to report next (``describeNextReport``: steps from now, as in
``openmm.app``) and does its one job when due (``report(stage, snapshot)``). Intervals are
outer time steps, taken from the run's MDSettings:

==================== ========================= ==================================================
reporter             reports every             job
==================== ========================= ==================================================
StabilityReporter    ``report_steps``, last    NaN or blow-up, then the rules of
                     step of the stage         ``validation.md.stability``: fails the stage
StateLogReporter     ``report_steps``, last    one row of state_log.csv
TrajectoryReporter   ``traj_steps``            one DCD frame (RPMD: one bead drawn at random)
CheckpointReporter   ``chunk_steps``, last     checkpoint.npz, read back; the stage boundary
ProgressReporter     ``chunk_steps``, last     a progress line on stderr, the on_checkpoint hook
==================== ========================= ==================================================

Reporters due at one step run in the order ``validation.md.run`` lists them (the order above):
a step that fails a rule writes no log row, frame or checkpoint.

Why not ``openmm.app``'s own reporters: ``validation.md.engine.Engine`` drives an
``openmm.Context`` and, for RPMD, the copies of an ``RPMDIntegrator`` itself, not an
``app.Simulation``. ``app.StateDataReporter`` reads one State of the Context, which for RPMD is
not the beads' state (``RPMDIntegrator.getState(copy)``), and its columns are not the state
log's; ``app.DCDReporter`` writes every particle of the Context (the massless M sites too),
always bead 0, and cannot continue a file that a resumed run has cut back;
``app.CheckpointReporter`` writes only OpenMM's binary checkpoint, which holds no bead positions
and loads only on the platform that wrote it. So these are small classes with the same two
methods; the frames are still written by OpenMM's ``app.DCDFile`` (``validation.md.files.DcdWriter``).

Lengths nm, times ps, temperatures K, wall times s.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NoReturn

import numpy as np

from map_core.errors import MapSuiteError
from validation.md.checkpoints import CHECKPOINT_NAME, load_ok, save_md_checkpoint
from validation.md.engine import Engine, is_finite_state
from validation.md.files import DcdWriter, StateLog
from validation.md.settings import MDSettings
from validation.md.stability import check_stability
from validation.md.summary import write_failure_summary


@dataclass
class Stage:
    """Where one stage of a run stands: what every reporter is handed (as ``openmm.app``'s
    reporters are handed the Simulation), and the one place a stage fails from."""

    name: str  # 'npt' or 'nvt'
    index: int  # its position in validation.md.settings.STAGES
    n_steps: int  # outer time steps of the stage
    step: int  # outer time steps done so far
    t_offset_ps: float  # run time at the stage's step 0, ps
    timestep_ps: float
    workdir: Path
    progress: dict  # the progress saved with every checkpoint (validation.md.run)
    last_good: int  # the step of the latest checkpoint that was read back intact
    wall_s: float = 0.0  # wall time spent stepping this stage, over every session, s
    latest: dict | None = None  # the latest state-log row (Engine.report()), shown in progress lines

    def time_ps(self, step: int | None = None) -> float:
        """Run time, ps, at `step` of the stage (default: the current step)."""
        return self.t_offset_ps + (self.step if step is None else step) * self.timestep_ps

    @property
    def checkpoint(self) -> Path:
        return self.workdir / CHECKPOINT_NAME

    def fail(self, reason: str, step: int | None = None, first: int | None = None) -> NoReturn:
        """Write a failed summary.json and raise MapSuiteError naming the stage and the step
        (default: the current one); `first`..`step` is the range of steps that failed when one
        call to the integrator failed as a whole."""
        step = self.step if step is None else step
        where = f"step {step}" if first is None or first == step else f"a step between {first} and {step}"
        message = (f"{self.name} stage blew up at {where} of {self.n_steps} (t <= {self.time_ps(step):.4f} ps): "
                   f"{reason}; the last good state ({self.name} step {self.last_good}) is kept in {self.checkpoint}")
        write_failure_summary(self.workdir, message, self.name, step, self.last_good)
        raise MapSuiteError(message)


class Snapshot:
    """The engine's state at one step, each part read at most once for all the reporters due then
    (as ``app.Simulation`` hands them one State)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @cached_property
    def observables(self) -> dict:
        """``Engine.report()``: temperature K, volume nm3, density g/cm3, energies kJ/mol, box nm."""
        return self.engine.report()

    @cached_property
    def positions(self) -> np.ndarray:
        """(copies, 4 n, 3) positions, nm, not wrapped."""
        return self.engine.get_positions()

    @cached_property
    def box(self) -> np.ndarray:
        """(3,) box edges, nm."""
        return self.engine.get_box()


class Reporter:
    """Reports every `interval` outer time steps of a stage and, if ``at_end``, also at its last step."""

    at_end = False

    def __init__(self, interval: int):
        self.interval = int(interval)

    def describeNextReport(self, stage: Stage) -> int:
        """Outer time steps from ``stage.step`` to this reporter's next report. (``openmm.app``
        returns a dict that also names what the State must include; a Snapshot reads what is used.)"""
        steps = self.interval - stage.step % self.interval
        return min(steps, stage.n_steps - stage.step) if self.at_end else steps

    def report(self, stage: Stage, snapshot: Snapshot) -> None:
        raise NotImplementedError


def unhealthy(observables: dict, settings: MDSettings) -> str | None:
    """A one-line reason if the energy, temperature or volume is NaN or the temperature exceeds
    ``settings.blowup_temperature_k``, else None."""
    if not is_finite_state(observables):
        return "energy, temperature or volume is NaN"
    if observables["temperature_k"] > settings.blowup_temperature_k:
        return (f"temperature {observables['temperature_k']:.0f} K exceeds "
                f"{settings.blowup_temperature_k:.0f} K (time step too long or overlapping atoms?)")
    return None


class StabilityReporter(Reporter):
    """Fails the stage when the run is no longer healthy: :func:`unhealthy`, NaN positions, or a rule
    of ``validation.md.stability`` (temperature jump, a molecule that left its neighbours; positions
    are the centroid of the copies). The rules' history is ``stage.progress["stability"]``, so every
    checkpoint saves it and a resumed run continues the same history."""

    at_end = True

    def __init__(self, interval: int, settings: MDSettings, n_waters: int, dof: int):
        super().__init__(interval)
        self.settings = settings
        self.n_waters = n_waters
        self.dof = dof  # kinetic degrees of freedom

    def report(self, stage: Stage, snapshot: Snapshot) -> None:
        observables = snapshot.observables
        reason = unhealthy(observables, self.settings)
        if reason:
            stage.fail(reason)
        centroid = snapshot.positions.mean(axis=0)
        if not np.all(np.isfinite(centroid)):
            stage.fail("NaN in positions")
        reason, stage.progress["stability"] = check_stability(
            stage.progress.get("stability"), stage.time_ps(), observables["temperature_k"], centroid,
            observables["box_nm"], self.n_waters, self.settings.temperature_k, self.dof)
        if reason:
            stage.fail(reason)


class StateLogReporter(Reporter):
    """Appends one row of observables to the state log (``validation.md.files.StateLog``)."""

    at_end = True

    def __init__(self, interval: int, log: StateLog):
        super().__init__(interval)
        self.log = log

    def report(self, stage: Stage, snapshot: Snapshot) -> None:
        self.log.append(stage.name, stage.step, stage.time_ps(), snapshot.observables)
        stage.latest = snapshot.observables


class TrajectoryReporter(Reporter):
    """Appends one frame of the massive atoms (`atoms`: O, H1, H2 per molecule, not wrapped) to the
    stage's DCD. RPMD: one bead per frame, drawn from a generator seeded by (`seed`, stage index,
    step), since the structure of every bead samples the same distribution."""

    def __init__(self, interval: int, dcd: DcdWriter, atoms: np.ndarray, seed: int):
        super().__init__(interval)
        self.dcd = dcd
        self.atoms = atoms
        self.seed = seed

    def report(self, stage: Stage, snapshot: Snapshot) -> None:
        positions = snapshot.positions
        if not np.all(np.isfinite(positions)):
            stage.fail("NaN in positions")
        bead = 0
        if len(positions) > 1:
            bead = int(np.random.default_rng([self.seed, stage.index, stage.step]).integers(len(positions)))
        self.dcd.append(positions[bead, self.atoms], snapshot.box)


class CheckpointReporter(Reporter):
    """Saves checkpoint.npz (``validation.md.checkpoints.save_md_checkpoint``) and reads it back;
    a checkpoint refused for a NaN fails the stage. At the stage's last step the progress moves
    on to the next stage: `boundary()` gives its progress fields."""

    at_end = True

    def __init__(self, interval: int, boundary: Callable[[], dict]):
        super().__init__(interval)
        self.boundary = boundary

    def report(self, stage: Stage, snapshot: Snapshot) -> None:
        progress = stage.progress
        progress["wall_s"][stage.name] = stage.wall_s
        progress["steps_run"][stage.name] = stage.step
        progress["chunks"] += 1
        if stage.step == stage.n_steps:
            progress.update(self.boundary())
        else:
            progress.update(stage=stage.name, step=stage.step)
        save_md_checkpoint(stage.workdir, snapshot.engine, progress)
        if not load_ok(stage.checkpoint, progress):
            stage.fail("NaN in positions or velocities")
        stage.last_good = stage.step


class ProgressReporter(Reporter):
    """After each checkpoint: a line on stderr (if `show`: step, time, the latest temperature and
    density, ns/day) and then ``on_checkpoint(stage name, step, checkpoints so far)`` if given."""

    at_end = True

    def __init__(self, interval: int, method: str, show: bool, on_checkpoint: Callable | None = None):
        super().__init__(interval)
        self.method = method
        self.show = show
        self.on_checkpoint = on_checkpoint

    def report(self, stage: Stage, snapshot: Snapshot) -> None:
        if self.show:
            print(self._line(stage), file=sys.stderr, flush=True)
        if self.on_checkpoint is not None:
            self.on_checkpoint(stage.name, stage.step, stage.progress["chunks"])

    def _line(self, stage: Stage) -> str:
        step, wall = stage.step, stage.wall_s
        rate = step * stage.timestep_ps * 1e-3 * 86400 / wall if wall > 0 else math.nan
        extra = ""
        if stage.latest is not None:
            extra = f" T={stage.latest['temperature_k']:.1f} K rho={stage.latest['density_g_cm3']:.4f} g/cm3"
        return (f"[{self.method} {stage.name}] step {step}/{stage.n_steps} ({100 * step / max(stage.n_steps, 1):.0f}%) "
                f"t={stage.time_ps():.2f} ps{extra} {rate:.2f} ns/day")

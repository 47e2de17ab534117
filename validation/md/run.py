"""Run the MD protocol (minimise -> NPT -> NVT) in a work directory, resumably.

The work directory's files are listed in ``validation.md.checkpoints``. Each stage builds one
``Engine``, restores it from the previous stage's (or a killed run's) checkpoint and steps it,
calling the reporters of ``validation.md.reporters`` at the intervals of the settings: state
log and stability rules every ``report_ps``, trajectory every ``traj_ps``, checkpoint and
progress line every ``chunk_ps`` and at every stage boundary. Before NVT the box is set to the
mean box of the second half of NPT (``validation.md.volume``).

Running again on the same work directory continues from the checkpoint (files written after it
are cut back). A NaN, an OpenMM error, a temperature above ``blowup_temperature_k``, or at a
report one of the rules of ``validation.md.stability`` (a temperature jump since the previous
report; a molecule that has left its neighbours) ends the run with a MapSuiteError naming the
stage and the step (and the molecule); the checkpoint keeps the last good state and the rules'
history, and summary.json says why (``validation.md.summary``).

Lengths nm, times ps, energies kJ/mol.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from map_core.errors import MapSuiteError
from validation.md.boxes import make_waters_whole, water_topology
from validation.md.budget import check_md_fits
from validation.md.checkpoints import (
    CHECKPOINT_NAME,
    LOG_NAME,
    load_md_checkpoint,
    resume_or_start,
    run_identity,
    save_md_checkpoint,
    trajectory_name,
    write_topology,
)
from validation.md.engine import Engine, seed_for
from validation.md.files import DcdWriter, StateLog
from validation.md.reporters import (
    CheckpointReporter,
    ProgressReporter,
    Reporter,
    Snapshot,
    StabilityReporter,
    Stage,
    StateLogReporter,
    TrajectoryReporter,
)
from validation.md.settings import STAGES, MDSettings
from validation.md.summary import write_run_summary
from validation.md.volume import mean_npt_box, rescale_molecules
from validation.md.water_model import atom_indices, with_m_sites


def run_md(positions, box_nm, settings: MDSettings, workdir, progress: bool = True,
           on_checkpoint=None) -> dict:
    """Run minimise -> NPT -> NVT for the water box `positions` in `workdir`; return the summary.

    positions: (3 n, 3) nm, O, H1, H2 per molecule (wrapped or not: molecules are made whole).
    box_nm: (3,) orthorhombic box edges, nm. settings: see MDSettings.
    progress: print one line per checkpoint on stderr.
    on_checkpoint: optional callable(stage, step, chunk) called after each checkpoint (tests use
    it to interrupt a run).
    If `workdir` holds a checkpoint of the same run, continue from it.
    """
    settings.check()
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if len(positions) == 0 or len(positions) % 3:
        raise MapSuiteError(f"need O, H1, H2 positions of whole molecules, got {len(positions)} atoms")
    if not np.all(np.isfinite(positions)):
        raise MapSuiteError("starting positions contain NaN or inf")
    n_waters = len(positions) // 3
    check_md_fits(n_waters, settings, workdir)
    box = np.asarray(box_nm, dtype=np.float64).reshape(3)
    positions = make_waters_whole(positions, box)  # bonds and M sites are computed without periodicity
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    run = _Run(n_waters, box, settings, workdir, progress, on_checkpoint)
    return run.execute(positions)


class _Run:
    """One run of `n_waters` in `workdir`: its stages in order, from the start or a checkpoint."""

    def __init__(self, n_waters, box, settings, workdir, progress, on_checkpoint):
        self.n = n_waters
        self.box0 = box
        self.s = settings
        self.dir = workdir
        self.progress = progress
        self.on_checkpoint = on_checkpoint
        self.log = StateLog(workdir / LOG_NAME)
        self.topology = water_topology(n_waters, box)
        self.atoms = atom_indices(n_waters)

    def execute(self, positions) -> dict:
        """Run (or finish) every stage from `positions` (3 n, 3) nm; return the run summary."""
        ckpt = resume_or_start(self.dir, run_identity(self.n, self.s, positions, self.box0))
        if ckpt is None:
            write_topology(self.dir, self.topology, positions)
            state = dict(positions=with_m_sites(positions)[None], velocities=None, box=self.box0)
            prog = {"stage": STAGES[0], "step": 0, "minimised": False, "nvt_box": None,
                    "wall_s": {}, "steps_run": {}, "chunks": 0, "resumed": 0}
        else:
            state = ckpt
            prog = ckpt["progress"]
            prog["resumed"] = prog.get("resumed", 0) + 1
        for index, name in enumerate(STAGES):
            if prog["stage"] == "done" or STAGES.index(prog["stage"]) > index:
                continue
            state, prog = self._stage(index, name, state, prog)
        return write_run_summary(self.dir, self.s, self.n, prog)

    def _stage(self, index: int, name: str, state: dict, prog: dict) -> tuple:
        """Run stage `name` from `state` (a checkpoint or the start) to its end; return the
        checkpoint it ends with and its progress."""
        step = prog["step"] if prog["stage"] == name else 0
        engine = self._engine(index, name, step, state, prog)
        if step == 0:
            prog.update(stage=name, step=0)
            save_md_checkpoint(self.dir, engine, prog)
        stage = Stage(name=name, index=index, n_steps=self.s.steps(self.s.stage_ps(name)), step=step,
                      t_offset_ps=sum((self.s.stage_ps(s) for s in STAGES[:index]), 0.0),
                      timestep_ps=self.s.timestep_ps, workdir=self.dir, progress=prog, last_good=step,
                      wall_s=prog["wall_s"].get(name, 0.0))
        _simulate(engine, stage, self._reporters(engine, stage))
        if stage.n_steps == 0:
            prog.update(self._next(name))
            save_md_checkpoint(self.dir, engine, prog)
        state = load_md_checkpoint(self.dir / CHECKPOINT_NAME)
        return state, state["progress"]

    def _engine(self, index: int, name: str, step: int, state: dict, prog: dict) -> Engine:
        """The engine of stage `name` holding `state`: exactly OpenMM's checkpoint when it resumes a
        classical stage on the same platform, else its positions and velocities (molecules moved
        into the mean NPT box when NVT starts). Minimised once per run; thermalised if `state`
        has no velocities."""
        box = np.asarray(state["box"], dtype=float)
        if name == "nvt" and step == 0 and prog.get("nvt_box") is not None:
            new_box = np.asarray(prog["nvt_box"])
            state = dict(state, positions=rescale_molecules(state["positions"], box, new_box, self.n))
            box = new_box
        engine = Engine(self.n, box, self.s, name, seed_for(self.s.seed, index, step, prog.get("resumed", 0)))
        prog["platform"] = engine.platform_name
        exact = state.get("openmm_checkpoint") is not None and state.get("openmm_platform") == engine.platform_name
        if step > 0 and exact:
            engine.load_checkpoint_bytes(state["openmm_checkpoint"].tobytes())
        else:
            engine.set_state(_copies(state["positions"], engine.copies),
                             None if state["velocities"] is None else _copies(state["velocities"], engine.copies), box)
        if not prog["minimised"]:
            if self.s.minimise:
                _minimise(engine)
            prog["minimised"] = True
        if state["velocities"] is None:
            engine.thermalise(seed_for(self.s.seed, 99, index))
        return engine

    def _reporters(self, engine: Engine, stage: Stage) -> list:
        """The reporters of `stage`, in the order they run when due at one step."""
        s = self.s
        dcd = DcdWriter(self.dir / trajectory_name(stage.name), self.topology, s.timestep_ps, s.traj_steps)
        return [
            StabilityReporter(s.report_steps, s, self.n, engine.dof),
            StateLogReporter(s.report_steps, self.log),
            TrajectoryReporter(s.traj_steps, dcd, self.atoms, s.seed),
            CheckpointReporter(s.chunk_steps, boundary=lambda: self._next(stage.name)),
            ProgressReporter(s.chunk_steps, s.method, self.progress, self.on_checkpoint),
        ]

    def _next(self, name: str) -> dict:
        """Progress fields for the boundary after stage `name`: the next stage with steps (or
        'done'), and after NPT the mean NPT box (nm) that NVT runs in."""
        later = [s for s in STAGES[STAGES.index(name) + 1:] if self.s.stage_ps(s) > 0]
        out = {"stage": later[0] if later else "done", "step": 0}
        if name == "npt" and self.s.npt_ps > 0 and self.s.rescale_to_mean_volume:
            out["nvt_box"] = mean_npt_box(self.dir / LOG_NAME).tolist()
        return out


def _simulate(engine: Engine, stage: Stage, reporters: list[Reporter]) -> None:
    """Step `engine` to the end of `stage`, calling every reporter whose report falls on a step.

    Unlike ``app.Simulation``, which steps straight to the next report, the loop advances in
    pieces of the greatest common divisor of the intervals: the RPMD barostat attempts one move
    per ``Engine.step`` piece and an OpenMM error names the range of one piece, so both depend
    on the pieces, which stay those of earlier versions.
    """
    grain = math.gcd(*(reporter.interval for reporter in reporters))
    while stage.step < stage.n_steps:
        due = [reporter.describeNextReport(stage) for reporter in reporters]
        advance = min(grain - stage.step % grain, stage.n_steps - stage.step)
        _advance(engine, stage, advance)
        snapshot = Snapshot(engine)
        for reporter, steps in zip(reporters, due):
            if steps == advance:
                reporter.report(stage, snapshot)


def _advance(engine: Engine, stage: Stage, steps: int) -> None:
    """Step `engine` by `steps` outer steps, adding the wall time to the stage; an OpenMM error
    fails the stage naming the range of steps it happened in."""
    t0 = time.perf_counter()
    try:
        engine.step(steps)
    except Exception as exc:  # OpenMM raises OpenMMException (e.g. "Particle coordinate is NaN")
        stage.fail(f"OpenMM error: {exc}", step=stage.step + steps, first=stage.step + 1)
    stage.wall_s += time.perf_counter() - t0
    stage.step += steps


def _minimise(engine: Engine) -> None:
    """Minimise the energy (``Engine.minimise``); MapSuiteError naming the minimise stage on an
    OpenMM error or a NaN energy or position."""
    try:
        engine.minimise()
        report = engine.report()
    except Exception as exc:
        raise MapSuiteError(f"minimise stage failed at step 0: OpenMM error: {exc} "
                            "(overlapping molecules in the starting box?)") from None
    if not math.isfinite(report["potential_kj_mol"]) or not np.all(np.isfinite(engine.get_positions())):
        raise MapSuiteError("minimise stage failed at step 0: the energy or positions became NaN "
                            "(overlapping molecules in the starting box?)")


def _copies(array, copies: int) -> np.ndarray:
    """(copies, particles, 3) from a checkpoint's state: as is, or one classical copy repeated
    for every RPMD bead."""
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.shape[0] == copies:
        return array
    if array.shape[0] == 1:  # a classical state seeding RPMD: every bead starts at it
        return np.repeat(array, copies, axis=0)
    raise MapSuiteError(f"checkpoint has {array.shape[0]} copies, the run needs {copies}")

"""Run the MD protocol (minimise -> NPT -> NVT) in a work directory, resumably.

Work directory layout (all lengths nm, times ps, energies kJ/mol):

================= ===========================================================================
run.json          the settings, number of waters and a hash of the starting positions
topology.pdb      starting structure (O, H1, H2 per HOH residue; no M site): the DCD topology
state_log.csv     one row per report: see ``validation.md.files.STATE_COLUMNS``
traj_npt.dcd      trajectory of the NPT stage, every ``traj_ps`` (massive atoms, unwrapped)
traj_nvt.dcd      trajectory of the NVT stage (RPMD: one bead per frame, chosen at random)
checkpoint.npz    last good state (positions/velocities of every copy, box, progress JSON and,
                  classical only, OpenMM's binary checkpoint for an exact restart)
summary.json      settings, platform, wall time, ns/day and block averages per stage
================= ===========================================================================

A checkpoint is written atomically every ``chunk_ps`` and at every stage boundary. Running
again on the same work directory continues from it (files written after it are cut back).
A NaN, an OpenMM error, a temperature above ``blowup_temperature_k``, or at a report one of the
rules of ``validation.md.stability`` (a temperature jump since the previous report; a molecule
that has left its neighbours) ends the run with a MapSuiteError naming the stage and the step
(and the molecule); the checkpoint keeps the last good state and the rules' history.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from openmm.app import PDBFile
from openmm.unit import nanometers

from map_core.errors import MapSuiteError
from map_core.files import atomic_path, available_memory_bytes, free_disk_bytes, write_text_atomic
from validation.md.boxes import make_waters_whole, water_topology
from validation.md.engine import Engine, is_finite_state, seed_for
from validation.md.files import DcdWriter, StateLog, file_size, read_state_log, truncate_to
from validation.md.settings import MDSettings
from validation.md.stability import check_stability
from validation.md.stats import block_average
from validation.md.water_model import MASS_H, MASS_O, PARTICLES_PER_WATER, atom_indices, with_m_sites

STAGES = ("npt", "nvt")
LOG_NAME = "state_log.csv"
CHECKPOINT_NAME = "checkpoint.npz"
# settings that may change between a killed run and its resumption
RESUMABLE_CHANGES = ("platform", "threads")


def trajectory_name(stage: str) -> str:
    return f"traj_{stage}.dcd"


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
        self.ckpt_path = workdir / CHECKPOINT_NAME

    # --- bookkeeping ----------------------------------------------------------------------
    def _identity(self, positions) -> dict:
        settings = {k: v for k, v in self.s.to_dict().items() if k not in RESUMABLE_CHANGES}
        digest = hashlib.sha256(np.round(positions, 6).tobytes() + np.round(self.box0, 6).tobytes())
        return {"n_waters": self.n, "settings": settings, "start_sha256": digest.hexdigest()}

    def _files(self):
        return [LOG_NAME] + [trajectory_name(s) for s in STAGES]

    def _sizes(self) -> dict:
        return {name: file_size(self.dir / name) for name in self._files()}

    def _start_or_resume(self, positions):
        identity = self._identity(positions)
        run_json = self.dir / "run.json"
        if self.ckpt_path.exists() and run_json.exists():
            old = json.loads(run_json.read_text())
            if old != identity:
                diff = [k for k in identity["settings"] if old.get("settings", {}).get(k) != identity["settings"][k]]
                what = f"settings {', '.join(diff)}" if diff else "starting box"
                raise MapSuiteError(f"holds a different run ({what} differ); use another work directory "
                                    "or delete this one", self.dir)
            ckpt = load_md_checkpoint(self.ckpt_path)
            for name, size in ckpt["progress"]["sizes"].items():
                truncate_to(self.dir / name, size)
            return ckpt
        for name in self._files() + [CHECKPOINT_NAME, "summary.json"]:
            (self.dir / name).unlink(missing_ok=True)
        write_text_atomic(run_json, json.dumps(identity, indent=1, sort_keys=True))
        self._write_pdb(positions)
        return None

    def _write_pdb(self, positions) -> None:
        with atomic_path(self.dir / "topology.pdb") as tmp:
            with open(tmp, "w") as fh:
                PDBFile.writeFile(self.topology, positions * nanometers, fh)

    def _save(self, engine: Engine, progress: dict) -> None:
        """Write checkpoint.npz atomically: the engine's state, `progress` and the file sizes."""
        pos, vel, box = engine.get_positions(), engine.get_velocities(), engine.get_box()
        if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
            return  # never overwrite a good state with a bad one; the caller reports the failure
        progress = dict(progress, sizes=self._sizes())
        arrays = dict(positions=pos, velocities=vel, box=box, progress=np.array(json.dumps(progress)))
        if self.s.method == "classical":
            arrays["openmm_checkpoint"] = np.frombuffer(engine.checkpoint_bytes(), dtype=np.uint8)
            arrays["openmm_platform"] = np.array(engine.platform_name)
        with atomic_path(self.ckpt_path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    # --- the protocol ---------------------------------------------------------------------
    def execute(self, positions) -> dict:
        ckpt = self._start_or_resume(positions)
        if ckpt is None:
            state = dict(positions=with_m_sites(positions)[None], velocities=None, box=self.box0)
            prog = {"stage": STAGES[0], "step": 0, "minimised": False, "nvt_box": None,
                    "wall_s": {}, "steps_run": {}, "chunks": 0, "resumed": 0}
        else:
            state = ckpt
            prog = ckpt["progress"]
            prog["resumed"] = prog.get("resumed", 0) + 1
        t_offset = {"npt": 0.0, "nvt": self.s.npt_ps}
        for index, stage in enumerate(STAGES):
            if prog["stage"] == "done" or STAGES.index(prog["stage"]) > index:
                continue
            n_steps = self.s.steps(self.s.npt_ps if stage == "npt" else self.s.nvt_ps)
            state, prog = self._stage(index, stage, n_steps, t_offset[stage], state, prog)
        return self._summary(prog)

    def _stage(self, index, stage, n_steps, t_offset, state, prog):
        s = self.s
        step = prog["step"] if prog["stage"] == stage else 0
        box = np.asarray(state["box"], dtype=float)
        if stage == "nvt" and step == 0 and prog.get("nvt_box") is not None:
            new_box = np.asarray(prog["nvt_box"])
            state = dict(state, positions=rescale_molecules(state["positions"], box, new_box, self.n))
            box = new_box
        engine = Engine(self.n, box, s, stage, seed_for(s.seed, index, step, prog.get("resumed", 0)))
        prog["platform"] = engine.platform_name
        exact = state.get("openmm_checkpoint") is not None and state.get("openmm_platform") == engine.platform_name
        if step > 0 and exact:
            engine.load_checkpoint_bytes(state["openmm_checkpoint"].tobytes())
        else:
            engine.set_state(_copies(state["positions"], engine.copies),
                             None if state["velocities"] is None else _copies(state["velocities"], engine.copies), box)
        if not prog["minimised"]:
            if s.minimise:
                self._minimise(engine)
            prog["minimised"] = True
        if state["velocities"] is None:
            engine.thermalise(seed_for(s.seed, 99, index))
        if step == 0:
            prog.update(stage=stage, step=0)
            self._save(engine, prog)
        every = {k: s.steps(getattr(s, k)) for k in ("report_ps", "traj_ps", "chunk_ps")}
        grain = math.gcd(math.gcd(every["report_ps"], every["traj_ps"]), every["chunk_ps"])
        dcd = DcdWriter(self.dir / trajectory_name(stage), self.topology, s.timestep_ps, every["traj_ps"])
        last_good = step
        report = None  # the latest state-log row, shown in progress lines
        wall = prog["wall_s"].get(stage, 0.0)
        while step < n_steps:
            advance = min(grain - step % grain, n_steps - step)
            t0 = time.perf_counter()
            try:
                engine.step(advance)
            except Exception as exc:  # OpenMM raises OpenMMException (e.g. "Particle coordinate is NaN")
                self._fail(stage, step + advance, n_steps, t_offset, f"OpenMM error: {exc}", last_good, prog,
                           first=step + 1)
            wall += time.perf_counter() - t0
            step += advance
            time_ps = t_offset + step * s.timestep_ps
            if step % every["report_ps"] == 0 or step == n_steps:
                report = engine.report()
                reason = _unhealthy(report, s)
                if reason:
                    self._fail(stage, step, n_steps, t_offset, reason, last_good, prog)
                reason, prog["stability"] = self._stability(engine, report, time_ps, prog.get("stability"))
                if reason:
                    self._fail(stage, step, n_steps, t_offset, reason, last_good, prog)
                self.log.append(stage, step, time_ps, report)
            if step % every["traj_ps"] == 0:
                self._write_frame(engine, dcd, stage, step, n_steps, t_offset, last_good, prog)
            if step % every["chunk_ps"] == 0 or step == n_steps:
                prog["wall_s"][stage] = wall
                prog["steps_run"][stage] = step
                prog["chunks"] += 1
                done = step == n_steps
                if done:
                    prog.update(self._next(stage, engine))
                else:
                    prog.update(stage=stage, step=step)
                self._save(engine, prog)
                if not load_ok(self.ckpt_path, prog):
                    self._fail(stage, step, n_steps, t_offset, "NaN in positions or velocities", last_good, prog)
                last_good = step
                self._print(stage, step, n_steps, time_ps, report, wall)
                if self.on_checkpoint is not None:
                    self.on_checkpoint(stage, step, prog["chunks"])
        if n_steps == 0:
            prog.update(self._next(stage, engine))
            self._save(engine, prog)
        state = load_md_checkpoint(self.ckpt_path)
        return state, state["progress"]

    def _next(self, stage, engine) -> dict:
        """Progress fields for the boundary after `stage`."""
        later = [s for s in STAGES[STAGES.index(stage) + 1:] if (self.s.npt_ps if s == "npt" else self.s.nvt_ps) > 0]
        out = {"stage": later[0] if later else "done", "step": 0}
        if stage == "npt" and self.s.npt_ps > 0 and self.s.rescale_to_mean_volume:
            out["nvt_box"] = mean_npt_box(self.dir / LOG_NAME).tolist()
        return out

    def _minimise(self, engine: Engine) -> None:
        try:
            engine.minimise()
            report = engine.report()
        except Exception as exc:
            raise MapSuiteError(f"minimise stage failed at step 0: OpenMM error: {exc} "
                                "(overlapping molecules in the starting box?)") from None
        if not math.isfinite(report["potential_kj_mol"]) or not np.all(np.isfinite(engine.get_positions())):
            raise MapSuiteError("minimise stage failed at step 0: the energy or positions became NaN "
                                "(overlapping molecules in the starting box?)")

    def _stability(self, engine, report, time_ps, state) -> tuple:
        """(reason or None, new state) of validation.md.stability's rules at one report; positions
        are the centroid of the copies. The state travels in the progress dict, so a checkpoint
        keeps it and a resumed run continues the same history."""
        pos = engine.get_positions().mean(axis=0)
        if not np.all(np.isfinite(pos)):
            return "NaN in positions", state
        return check_stability(state, time_ps, report["temperature_k"], pos, report["box_nm"], self.n,
                               self.s.temperature_k, engine.dof)

    def _write_frame(self, engine, dcd, stage, step, n_steps, t_offset, last_good, prog) -> None:
        pos = engine.get_positions()
        if not np.all(np.isfinite(pos)):
            self._fail(stage, step, n_steps, t_offset, "NaN in positions", last_good, prog)
        bead = 0
        if engine.copies > 1:  # one random bead per frame (structure from every bead is equivalent)
            bead = int(np.random.default_rng([self.s.seed, STAGES.index(stage), step]).integers(engine.copies))
        dcd.append(pos[bead, self.atoms], engine.get_box())

    def _fail(self, stage, step, n_steps, t_offset, reason, last_good, prog, first=None):
        """Write a failed summary and raise; `first`..`step` is the range of steps that failed."""
        t = t_offset + step * self.s.timestep_ps
        where = f"step {step}" if first is None or first == step else f"a step between {first} and {step}"
        message = (f"{stage} stage blew up at {where} of {n_steps} (t <= {t:.4f} ps): {reason}; "
                   f"the last good state ({stage} step {last_good}) is kept in {self.ckpt_path}")
        summary = dict(status="failed", error=message, stage=stage, step=step, last_good_step=last_good)
        write_text_atomic(self.dir / "summary.json", json.dumps(summary, indent=1))
        raise MapSuiteError(message)

    def _print(self, stage, step, n_steps, time_ps, report, wall) -> None:
        if not self.progress:
            return
        rate = step * self.s.timestep_ps * 1e-3 * 86400 / wall if wall > 0 else float("nan")
        extra = ""
        if report is not None:
            extra = f" T={report['temperature_k']:.1f} K rho={report['density_g_cm3']:.4f} g/cm3"
        print(f"[{self.s.method} {stage}] step {step}/{n_steps} ({100 * step / max(n_steps, 1):.0f}%) "
              f"t={time_ps:.2f} ps{extra} {rate:.2f} ns/day", file=sys.stderr, flush=True)

    def _summary(self, prog) -> dict:
        log = read_state_log(self.dir / LOG_NAME) if (self.dir / LOG_NAME).exists() else None
        stages = {}
        for stage in STAGES:
            n_steps = prog["steps_run"].get(stage, 0)
            wall = prog["wall_s"].get(stage, 0.0)
            entry = dict(ps=n_steps * self.s.timestep_ps, steps=n_steps, wall_s=round(wall, 2),
                         ns_per_day=(n_steps * self.s.timestep_ps * 1e-3 * 86400 / wall) if wall > 0 else None,
                         trajectory=trajectory_name(stage) if (self.dir / trajectory_name(stage)).exists() else None)
            if log is not None and np.any(log["stage"] == stage):
                rows = log["stage"] == stage
                for col in ("temperature_k", "density_g_cm3", "potential_kj_mol", "volume_nm3"):
                    mean, se = block_average(log[col][rows])
                    entry[col] = {"mean": mean, "se": se}
            stages[stage] = entry
        summary = dict(
            status="done", method=self.s.method, n_waters=self.n, water_model="q-TIP4P/F",
            settings=self.s.to_dict(), platform=prog.get("platform"),
            stages=stages, nvt_box_nm=prog.get("nvt_box"), resumed=prog.get("resumed", 0),
            trajectory_atoms="O, H1, H2 per molecule (no M site), positions not wrapped",
            trajectory_beads=("one random bead per frame" if self.s.method == "rpmd" else "n/a"),
            topology="topology.pdb", state_log=LOG_NAME,
            density_block_se_note="standard errors by block averaging (10 blocks)")
        write_text_atomic(self.dir / "summary.json", json.dumps(summary, indent=1, sort_keys=True))
        return summary


def _copies(array, copies: int) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.shape[0] == copies:
        return array
    if array.shape[0] == 1:  # a classical state seeding RPMD: every bead starts at it
        return np.repeat(array, copies, axis=0)
    raise MapSuiteError(f"checkpoint has {array.shape[0]} copies, the run needs {copies}")


def _unhealthy(report: dict, settings: MDSettings) -> str | None:
    if not is_finite_state(report):
        return "energy, temperature or volume is NaN"
    if report["temperature_k"] > settings.blowup_temperature_k:
        return (f"temperature {report['temperature_k']:.0f} K exceeds "
                f"{settings.blowup_temperature_k:.0f} K (time step too long or overlapping atoms?)")
    return None


def load_md_checkpoint(path) -> dict:
    """Read checkpoint.npz: positions/velocities (copies, 4 n, 3), box (3,), progress dict, and
    openmm_checkpoint/openmm_platform when present."""
    with np.load(path, allow_pickle=False) as data:
        out = {key: data[key] for key in data.files}
    out["progress"] = json.loads(str(out["progress"]))
    out["openmm_platform"] = str(out["openmm_platform"]) if "openmm_platform" in out else None
    out.setdefault("openmm_checkpoint", None)
    return out


def load_ok(path, progress: dict) -> bool:
    """True if the checkpoint at `path` holds the state of `progress` (it was not refused as NaN)."""
    try:
        saved = load_md_checkpoint(path)["progress"]
    except (OSError, ValueError, KeyError):
        return False
    return saved.get("stage") == progress.get("stage") and saved.get("step") == progress.get("step") \
        and saved.get("chunks") == progress.get("chunks")


def mean_npt_box(log_path) -> np.ndarray:
    """(3,) mean box edges, nm, over the second half (in time) of the NPT rows of a state log."""
    log = read_state_log(log_path)
    rows = np.flatnonzero(log["stage"] == "npt")
    if len(rows) == 0:
        raise MapSuiteError("no NPT rows to average the volume over", log_path)
    rows = rows[len(rows) // 2:]
    return np.array([log[f"box_{a}_nm"][rows].mean() for a in "xyz"])


def rescale_molecules(positions, old_box, new_box, n_waters: int) -> np.ndarray:
    """Move molecule centres of mass from `old_box` to `new_box` (rigid molecules, affine COMs).

    positions: (copies, 4 n, 3) or (4 n, 3) nm; boxes (3,) nm. Every copy of a molecule gets the
    same shift (from the bead-averaged centre of mass), so ring polymers keep their shape.
    """
    pos = np.asarray(positions, dtype=np.float64)
    squeeze = pos.ndim == 2
    pos = pos[None] if squeeze else pos
    xyz = pos.reshape(pos.shape[0], n_waters, PARTICLES_PER_WATER, 3)
    w = np.array([MASS_O, MASS_H, MASS_H, 0.0])
    com = np.einsum("j,knjd->knd", w, xyz).mean(axis=0) / w.sum()
    shift = com * (np.asarray(new_box) / np.asarray(old_box) - 1.0)
    out = (xyz + shift[None, :, None, :]).reshape(pos.shape)
    return out[0] if squeeze else out

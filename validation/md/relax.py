"""Relax a repaired box to the liquid's density: energy minimisation, then NPT of q-TIP4P/F water.

A repaired generated box is periodic and MD-ready but thin: the repair removes the molecules that
clash across the periodic seam (``benchmarks/seam_study.py``: 6.9 % of the molecules of four 1.6 nm
boxes of the shipped model, 0.98 -> 0.91 g/cm3; 7.6 % of 1.6 nm cubes cut from the training MD the
same way, so it is the open-faced cube's loss, not the model's). `relax_box` runs the suite's own MD on it (OpenMM, the
model of ``validation.md.water_model``, the same ``Engine`` and ``run_md`` as the gate's runs):

1. local energy minimisation (``Engine.minimise``); its potential energy per molecule is reported;
2. `ps` picoseconds of NPT at 300 K and 1 bar (``run_md`` with no NVT stage, in a temporary work
   directory, with the gate's classical settings (Langevin middle integrator, friction 1/ps,
   0.5 fs steps, isotropic Monte Carlo barostat) but a volume move every RELAX_BAROSTAT_INTERVAL
   steps instead of every 25;
3. the molecules moved rigidly into the mean box of the second half of NPT
   (``validation.md.volume``), as ``run_md`` does before its NVT stage: the box exported is the
   relaxed density's box rather than one instantaneous, fluctuating barostat box.

The barostat: the Monte Carlo barostat samples the NPT ensemble whatever its interval; more
frequent moves only reach the liquid's volume sooner, at the cost of one more energy evaluation
per move. Measured on a repaired 1.7 nm cube cut from training MD (154 molecules, 0.938 g/cm3,
CPU): every 25 steps the density still climbed after 4 ps (0.981, 0.985, 1.000 over three seeds);
every 5 steps it reached 0.97-1.0 within 0.2 ps and fluctuated there (second-half means 0.977,
0.986, 0.995 over three seeds of 4 ps).

How long: generated boxes take longer than cubes of training MD. The minimised box starts cold
(about 150 K after the velocities are drawn at 300 K) and warms at the gate's friction in about
2 ps; a repaired generated 1.6 nm box (129 molecules, 0.942 g/cm3) stayed at 0.92-0.96 g/cm3 for
those 2 ps and then rose to 0.98-1.04 (second-half mean of 6 ps: 1.023). After 3 ps the seam
study's four generated boxes were at 0.920-0.970 g/cm3 (mean 0.949): ask for about 6 ps or more.

Molecules come back whole with each O wrapped into the box. Lengths nm, energies kJ/mol.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from map_core.atoms.molecules import make_whole
from map_core.errors import MapSuiteError
from validation.md.boxes import make_waters_whole
from validation.md.checkpoints import CHECKPOINT_NAME, LOG_NAME, load_md_checkpoint
from validation.md.engine import Engine, density_g_cm3, seed_for
from validation.md.run import run_md
from validation.md.settings import PRESSURE_BAR, TEMPERATURE_K, MDSettings
from validation.md.volume import mean_npt_box, rescale_molecules
from validation.md.water_model import PARTICLES_PER_WATER, with_m_sites

# Upper bound of --relax, ps: eight times the paper profile's NPT equilibration (125 ps, seed 000).
# Longer runs are production MD (`map-suite simulate`, the gate); one more relaxation is not needed.
MAX_RELAX_PS = 1000.0
TIMESTEP_FS = 0.5  # as every gate profile
RELAX_BAROSTAT_INTERVAL = 5  # steps between Monte Carlo volume moves (see the module docstring)
REPORTS = 20  # state-log rows over the NPT stage: the mean box is averaged over the second half
# As validation.gate.md: the real-space cutoff stays below half of a box 16 % shorter than the
# repaired one (a repaired box starts thin and shrinks in NPT; OpenMM refuses a box below twice it).
CUTOFF_FRACTION = 0.42


def check_relax_ps(ps) -> float:
    """`ps` as a float if it is a length of relaxation this suite runs; MapSuiteError otherwise."""
    try:
        value = float(ps)
    except (TypeError, ValueError):
        raise MapSuiteError(f"--relax must be a number of picoseconds, got {ps!r}") from None
    step_ps = TIMESTEP_FS / 1000.0
    if not (math.isfinite(value) and step_ps <= value <= MAX_RELAX_PS):
        raise MapSuiteError(f"--relax must be a finite number of picoseconds in [{step_ps:g}, {MAX_RELAX_PS:g}] "
                            f"(one {TIMESTEP_FS:g} fs step to {MAX_RELAX_PS:g} ps), got {ps}")
    return value


def relax_settings(ps: float, box_nm, seed: int = 0, platform: str | None = None, threads: int | None = None) -> MDSettings:
    """The MDSettings of a relaxation of `ps` picoseconds of NPT (no NVT) of a box of edges `box_nm`."""
    ps = check_relax_ps(ps)
    step_ps = TIMESTEP_FS / 1000.0
    report = max(step_ps, round(ps / REPORTS / step_ps) * step_ps)
    return MDSettings(method="classical", temperature_k=TEMPERATURE_K, pressure_bar=PRESSURE_BAR, timestep_fs=TIMESTEP_FS,
                      minimise=False, barostat_interval=RELAX_BAROSTAT_INTERVAL, npt_ps=ps, nvt_ps=0.0,
                      cutoff_nm=min(1.0, CUTOFF_FRACTION * float(np.min(box_nm))), report_ps=report,
                      traj_ps=max(report, ps), chunk_ps=max(report, ps), platform=platform, threads=threads,
                      seed=int(seed)).check()


@dataclass
class Relaxed:
    """One relaxed box: positions (3 n, 3) nm, O, H, H per molecule (whole, each O in [0, L)); box (3,)
    nm; the density before and after, g/cm3; the minimised potential energy per molecule, kJ/mol; the
    NPT ps run and the OpenMM platform."""

    positions: np.ndarray
    box: np.ndarray
    density_before: float
    density_after: float
    minimised_kj_mol: float
    ps: float
    platform: str


def _minimised(positions, box, settings: MDSettings) -> tuple:
    """((3 n, 3) minimised O, H, H positions nm, potential energy kJ/mol) of the box; MapSuiteError on
    an OpenMM error or a NaN energy."""
    n = len(positions) // 3
    engine = Engine(n, box, settings, "nvt", seed_for(settings.seed, 0))
    engine.set_state(with_m_sites(positions), box_nm=box)
    try:
        engine.minimise()
        energy = float(engine.report()["potential_kj_mol"])
        out = engine.get_positions()[0].reshape(n, PARTICLES_PER_WATER, 3)[:, :3].reshape(-1, 3)
    except Exception as exc:  # OpenMM raises OpenMMException
        raise MapSuiteError(f"the energy minimisation failed: OpenMM error: {exc}") from None
    if not (math.isfinite(energy) and np.all(np.isfinite(out))):
        raise MapSuiteError("the energy minimisation failed: the energy or positions became NaN (overlapping molecules?)")
    return out, energy


def relax_box(positions, box_nm, ps: float, seed: int = 0, platform: str | None = None, threads: int | None = None,
              workdir=None) -> Relaxed:
    """Minimise, then run `ps` ps of NPT (300 K, 1 bar) of the repaired box `positions` (3 n, 3) nm, O, H,
    H per whole molecule, in `box_nm` (3,); see the module docstring.

    workdir: a folder for the run's files (kept); default a temporary folder, removed afterwards.
    MapSuiteError if the box holds no molecule or the MD fails (the message says where).
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    box = np.asarray(box_nm, dtype=np.float64).reshape(3)
    n = len(positions) // 3
    if n == 0 or len(positions) % 3:
        raise MapSuiteError(f"nothing to relax: {len(positions)} atoms are not whole molecules (need at least one)")
    settings = relax_settings(ps, box, seed, platform, threads)
    start, energy = _minimised(make_waters_whole(positions, box), box, settings)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="map-suite-relax-") as tmp:
            return _relax_in(start, box, energy, settings, Path(tmp))
    return _relax_in(start, box, energy, settings, Path(workdir))


def _relax_in(start, box, energy: float, settings: MDSettings, workdir: Path) -> Relaxed:
    """The NPT stage of `relax_box` from minimised positions `start` in `workdir`, and the molecules moved
    into the mean box of its second half."""
    n = len(start) // 3
    summary = run_md(start, box, settings, workdir, progress=False)
    state = load_md_checkpoint(workdir / CHECKPOINT_NAME)
    mean_box = mean_npt_box(workdir / LOG_NAME)
    moved = rescale_molecules(np.asarray(state["positions"])[0], np.asarray(state["box"], dtype=np.float64), mean_box, n)
    xyz = moved.reshape(n, PARTICLES_PER_WATER, 3)[:, :3].reshape(-1, 3)
    xyz = make_whole(xyz, np.tile(["O", "H", "H"], n), np.repeat(np.arange(n), 3), mean_box, wrap=True)
    volume = float(np.prod(box))
    return Relaxed(positions=xyz, box=mean_box, density_before=density_g_cm3(n, volume),
                   density_after=density_g_cm3(n, float(np.prod(mean_box))), minimised_kj_mol=energy / n,
                   ps=settings.npt_ps, platform=str(summary.get("platform")))


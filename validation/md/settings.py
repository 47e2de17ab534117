"""Settings of one MD run (a plain dataclass; profiles of a later issue fill it in).

Times are ps unless the name says fs; temperature K; pressure bar; lengths nm.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from map_core.errors import MapSuiteError

METHODS = ("classical", "rpmd")
BAROSTATS = ("isotropic", "anisotropic")
STAGES = ("npt", "nvt")  # the stages of a run, in the order they run (after the minimisation)
# The state point of the suite's MD: seed 000 (Methodology 3, "Molecular dynamics simulations:
# training set and validation") runs its classical MD and PIMD of water at 300 K and 1 bar.
TEMPERATURE_K = 300.0
PRESSURE_BAR = 1.0


@dataclass
class MDSettings:
    """Everything that defines an NPT -> NVT run of q-TIP4P/F water.

    method: 'classical' (LangevinMiddleIntegrator, or MTSLangevinIntegrator when
        ``intra_substeps`` > 1) or 'rpmd' (RPMDIntegrator with ``beads`` copies).
    timestep_fs: outer time step, fs. intra_substeps: classical only; bonds and angles are
        integrated ``intra_substeps`` times per outer step (seed 000: 0.5 fs / 0.1 fs -> 5).
    friction_per_ps: Langevin friction (RPMD: of the centroid mode in the PILE thermostat), 1/ps.
    minimise: run an energy minimisation before NPT.
    npt_ps, nvt_ps: lengths of the two stages, ps (0 skips a stage).
    barostat: 'isotropic' (MonteCarloBarostat) or 'anisotropic' (MonteCarloAnisotropicBarostat,
        classical only; RPMD always uses the isotropic RPMDMonteCarloBarostat).
    barostat_interval: steps between Monte Carlo volume moves.
    rescale_to_mean_volume: before NVT, scale molecule centres so that the box volume is the
        mean volume of the second half of NPT (otherwise NVT keeps the last NPT box).
    beads: RPMD copies (32 in seed 000; 4-8 for quick runs). contract_reciprocal: RPMD only;
        evaluate PME reciprocal space on the centroid (1 copy) instead of every bead.
    cutoff_nm: real-space cutoff; None = min(1.0, 0.45 x shortest box edge).
    report_ps: state-log and stability-rule interval; traj_ps: trajectory interval; chunk_ps:
        checkpoint (and progress line) interval; each is read as whole steps through
        ``report_steps``, ``traj_steps`` and ``chunk_steps`` (``validation.md.reporters``).
    platform: OpenMM platform name or None (CUDA > OpenCL > CPU > Reference); threads: CPU threads.
    blowup_temperature_k: a run whose temperature exceeds this is declared blown up.
    """

    method: str = "classical"
    temperature_k: float = TEMPERATURE_K
    pressure_bar: float = PRESSURE_BAR
    timestep_fs: float = 0.5
    intra_substeps: int = 1
    friction_per_ps: float = 1.0
    minimise: bool = True
    npt_ps: float = 10.0
    nvt_ps: float = 10.0
    barostat: str = "isotropic"
    barostat_interval: int = 25
    rescale_to_mean_volume: bool = True
    beads: int = 1
    contract_reciprocal: bool = False
    cutoff_nm: float | None = None
    report_ps: float = 0.1
    traj_ps: float = 1.0
    chunk_ps: float = 1.0
    platform: str | None = None
    threads: int | None = None
    seed: int = 0
    blowup_temperature_k: float = 2000.0

    def steps(self, ps: float) -> int:
        """Number of outer time steps in `ps` picoseconds (rounded to the nearest step)."""
        return int(round(ps * 1000.0 / self.timestep_fs))

    def stage_ps(self, stage: str) -> float:
        """Length, ps, of `stage` ('npt' or 'nvt'; see STAGES)."""
        return {"npt": self.npt_ps, "nvt": self.nvt_ps}[stage]

    @property
    def timestep_ps(self) -> float:
        return self.timestep_fs / 1000.0

    @property
    def report_steps(self) -> int:
        """Outer steps between state-log rows (and stability checks): ``report_ps`` in steps."""
        return self.steps(self.report_ps)

    @property
    def traj_steps(self) -> int:
        """Outer steps between trajectory frames: ``traj_ps`` in steps."""
        return self.steps(self.traj_ps)

    @property
    def chunk_steps(self) -> int:
        """Outer steps between checkpoints: ``chunk_ps`` in steps."""
        return self.steps(self.chunk_ps)

    @property
    def n_copies(self) -> int:
        """Copies of the system propagated: beads for RPMD, 1 for classical."""
        return self.beads if self.method == "rpmd" else 1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def check(self) -> "MDSettings":
        """Raise MapSuiteError on any inconsistent or out-of-range setting; return self."""
        if self.method not in METHODS:
            raise MapSuiteError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.barostat not in BAROSTATS:
            raise MapSuiteError(f"barostat must be one of {', '.join(BAROSTATS)}, got {self.barostat!r}")
        positive = dict(temperature_k=self.temperature_k, pressure_bar=self.pressure_bar,
                        timestep_fs=self.timestep_fs, report_ps=self.report_ps,
                        traj_ps=self.traj_ps, chunk_ps=self.chunk_ps,
                        blowup_temperature_k=self.blowup_temperature_k)
        for name, value in positive.items():
            if not (value > 0 and value < float("inf")):
                raise MapSuiteError(f"{name} must be a positive finite number, got {value}")
        for name in ("npt_ps", "nvt_ps", "friction_per_ps"):
            value = getattr(self, name)
            if not (value >= 0 and value < float("inf")):
                raise MapSuiteError(f"{name} must be zero or positive, got {value}")
        if self.intra_substeps < 1 or self.barostat_interval < 1:
            raise MapSuiteError("intra_substeps and barostat_interval must be at least 1")
        if self.method == "rpmd":
            if self.beads < 1:
                raise MapSuiteError(f"beads must be at least 1, got {self.beads}")
            if self.intra_substeps != 1:
                raise MapSuiteError("RPMD has no multiple-time-step integrator; use intra_substeps=1")
            if self.barostat != "isotropic":
                raise MapSuiteError("RPMD supports only the isotropic RPMDMonteCarloBarostat")
        for name in ("report_ps", "traj_ps", "chunk_ps"):
            if self.steps(getattr(self, name)) < 1:
                raise MapSuiteError(f"{name} = {getattr(self, name)} ps is shorter than one time step")
        if self.cutoff_nm is not None and not self.cutoff_nm > 0:
            raise MapSuiteError(f"cutoff_nm must be positive, got {self.cutoff_nm}")
        return self

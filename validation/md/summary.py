"""summary.json of a run: block averages per stage when it finished, the reason when it failed.

Times ps (wall times s), temperatures K, densities g/cm3, energies kJ/mol, volumes nm3.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from map_core.files import write_text_atomic
from validation.md.checkpoints import LOG_NAME, SUMMARY_NAME, trajectory_name
from validation.md.files import read_state_log
from validation.md.settings import STAGES, MDSettings
from validation.md.stats import block_average

AVERAGED = ("temperature_k", "density_g_cm3", "potential_kj_mol", "volume_nm3")  # state-log columns


def write_failure_summary(workdir: Path, message: str, stage: str, step: int, last_good: int) -> None:
    """summary.json of a failed run: `message`, the `stage` and `step` that failed, and the step of
    the last good checkpoint of that stage."""
    summary = dict(status="failed", error=message, stage=stage, step=step, last_good_step=last_good)
    write_text_atomic(workdir / SUMMARY_NAME, json.dumps(summary, indent=1))


def write_run_summary(workdir: Path, settings: MDSettings, n_waters: int, progress: dict) -> dict:
    """Write and return summary.json of a finished run from its state log and `progress`.

    Per stage: ps, steps, wall_s (s), ns_per_day, trajectory file, and the mean and block
    standard error of every AVERAGED column over the stage's state-log rows.
    """
    log_path = workdir / LOG_NAME
    log = read_state_log(log_path) if log_path.exists() else None
    stages = {stage: _stage_entry(workdir, settings, stage, progress, log) for stage in STAGES}
    summary = dict(
        status="done", method=settings.method, n_waters=n_waters, water_model="q-TIP4P/F",
        settings=settings.to_dict(), platform=progress.get("platform"),
        stages=stages, nvt_box_nm=progress.get("nvt_box"), resumed=progress.get("resumed", 0),
        trajectory_atoms="O, H1, H2 per molecule (no M site), positions not wrapped",
        trajectory_beads=("one random bead per frame" if settings.method == "rpmd" else "n/a"),
        topology="topology.pdb", state_log=LOG_NAME,
        density_block_se_note="standard errors by block averaging (10 blocks)")
    write_text_atomic(workdir / SUMMARY_NAME, json.dumps(summary, indent=1, sort_keys=True))
    return summary


def _stage_entry(workdir: Path, settings: MDSettings, stage: str, progress: dict, log) -> dict:
    n_steps = progress["steps_run"].get(stage, 0)
    wall = progress["wall_s"].get(stage, 0.0)
    ps = n_steps * settings.timestep_ps
    entry = dict(ps=ps, steps=n_steps, wall_s=round(wall, 2),
                 ns_per_day=(ps * 1e-3 * 86400 / wall) if wall > 0 else None,
                 trajectory=trajectory_name(stage) if (workdir / trajectory_name(stage)).exists() else None)
    if log is not None and np.any(log["stage"] == stage):
        rows = log["stage"] == stage
        for col in AVERAGED:
            mean, se = block_average(log[col][rows])
            entry[col] = {"mean": mean, "se": se}
    return entry

"""The files of a run's work directory, the run's identity and the checkpoint a killed run resumes from.

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
                  (``validation.md.summary``)
================= ===========================================================================

The state log and the trajectories are appended to; every checkpoint records their sizes in
bytes, and a resumed run first cuts them back to those sizes (:func:`resume_or_start`), so rows
and frames written after the last checkpoint are not duplicated.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from openmm.app import PDBFile
from openmm.unit import nanometers

from map_core.errors import MapSuiteError
from map_core.files import atomic_path, write_text_atomic
from validation.md.engine import Engine
from validation.md.files import file_size, truncate_to
from validation.md.settings import STAGES, MDSettings

RUN_NAME = "run.json"
TOPOLOGY_NAME = "topology.pdb"
LOG_NAME = "state_log.csv"
CHECKPOINT_NAME = "checkpoint.npz"
SUMMARY_NAME = "summary.json"
# settings that may change between a killed run and its resumption
RESUMABLE_CHANGES = ("platform", "threads")


def trajectory_name(stage: str) -> str:
    """File name of the DCD trajectory of `stage` ('npt' or 'nvt')."""
    return f"traj_{stage}.dcd"


def appended_files() -> list:
    """Names of the files a run appends to (cut back to a checkpoint on resume)."""
    return [LOG_NAME] + [trajectory_name(stage) for stage in STAGES]


def file_sizes(workdir) -> dict:
    """{name: size in bytes} of the appended files in `workdir` (0 for a missing one)."""
    return {name: file_size(Path(workdir) / name) for name in appended_files()}


def run_identity(n_waters: int, settings: MDSettings, positions, box_nm) -> dict:
    """What run.json records of a run: `n_waters`, the settings except RESUMABLE_CHANGES, and a
    sha256 of the starting positions (3 n, 3) nm and box (3,) nm rounded to 1e-6 nm."""
    kept = {k: v for k, v in settings.to_dict().items() if k not in RESUMABLE_CHANGES}
    digest = hashlib.sha256(np.round(positions, 6).tobytes() + np.round(box_nm, 6).tobytes())
    return {"n_waters": n_waters, "settings": kept, "start_sha256": digest.hexdigest()}


def resume_or_start(workdir: Path, identity: dict) -> dict | None:
    """The checkpoint of the run `identity` in `workdir`, with the appended files cut back to it;
    or None after clearing `workdir` for a fresh run and writing its run.json.

    MapSuiteError if `workdir` holds a checkpoint of a different run.
    """
    run_json, checkpoint = workdir / RUN_NAME, workdir / CHECKPOINT_NAME
    if checkpoint.exists() and run_json.exists():
        old = json.loads(run_json.read_text())
        if old != identity:
            diff = [k for k in identity["settings"] if old.get("settings", {}).get(k) != identity["settings"][k]]
            what = f"settings {', '.join(diff)}" if diff else "starting box"
            raise MapSuiteError(f"holds a different run ({what} differ); use another work directory "
                                "or delete this one", workdir)
        ckpt = load_md_checkpoint(checkpoint)
        for name, size in ckpt["progress"]["sizes"].items():
            truncate_to(workdir / name, size)
        return ckpt
    for name in appended_files() + [CHECKPOINT_NAME, SUMMARY_NAME]:
        (workdir / name).unlink(missing_ok=True)
    write_text_atomic(run_json, json.dumps(identity, indent=1, sort_keys=True))
    return None


def write_topology(workdir: Path, topology, positions) -> None:
    """topology.pdb (atomically): `topology` at `positions` (3 n, 3) nm."""
    with atomic_path(workdir / TOPOLOGY_NAME) as tmp, open(tmp, "w") as fh:
        PDBFile.writeFile(topology, positions * nanometers, fh)


def save_md_checkpoint(workdir: Path, engine: Engine, progress: dict) -> None:
    """Write checkpoint.npz atomically: the engine's state, `progress` and the appended files' sizes.

    A state with a NaN or inf is not written (the last good checkpoint stays; :func:`load_ok`
    tells the caller).
    """
    pos, vel, box = engine.get_positions(), engine.get_velocities(), engine.get_box()
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(vel))):
        return
    progress = dict(progress, sizes=file_sizes(workdir))
    arrays = dict(positions=pos, velocities=vel, box=box, progress=np.array(json.dumps(progress)))
    if engine.settings.method == "classical":
        arrays["openmm_checkpoint"] = np.frombuffer(engine.checkpoint_bytes(), dtype=np.uint8)
        arrays["openmm_platform"] = np.array(engine.platform_name)
    with atomic_path(workdir / CHECKPOINT_NAME) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


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

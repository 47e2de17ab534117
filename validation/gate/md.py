"""MD checks: OpenMM runs seeded from repaired generated boxes against the same protocol seeded
from training frames.

Seed boxes (``seed_box``): a cube of ``[md] box_nm`` at the low corner of a generated box's
analysed region (after the burn-in); complete molecules whose oxygen lies in the cube are
kept whole, then ``map_core.atoms.molecules.repair`` makes the cube periodic (orphans and molecules
clashing across the new periodic seam removed). The training seed is a voxel window of a
training frame put through the very same decode -> cube -> repair path.

Runs (``validation.md.run.run_md``): minimise -> NPT -> NVT at 300 K and 1 bar, classical and
RPMD, with the profile's lengths; RPMD starts from the repaired box or, in short profiles,
from the end of the classical run (``[md.rpmd] start``). Observables over the production part (second half of NPT
and all of NVT, seed 000 Table 1 averages over NPT then NVT): density from the state log
(NPT rows of the second half; NVT keeps that mean volume), mean O-H bond, H-O-H angle and
molecular dipole (q-TIP4P/F charges) from the trajectory frames, each with a block-averaged
standard error (``validation.md.stats.block_average``).

Checks: each run completes and stays stable (no NaN, no blow-up or temperature jump, no molecule
that leaves its neighbours: ``validation.md.stability``, the step named when one fails); each observable agrees with the training-seeded run:
|difference| <= max(tolerance, md_z * combined standard error). Units: nm, rad, g/cm3, Debye,
ps, kJ/mol.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from map_core.atoms.encoding import Encoding
from map_core.atoms.molecules import group_waters, repair, water_indices
from map_core.errors import MapSuiteError
from map_core.files import write_text_atomic
from validation.gate.boxes import window_frames, window_grids
from validation.gate.cache import lock, seal, verified_bytes
from validation.gate.checks import Check, shown
from validation.gate.registry import MD_METHODS, MD_OBSERVABLES, names, spec
from validation.md.checkpoints import load_md_checkpoint
from validation.md.files import read_state_log
from validation.md.run import run_md
from validation.md.settings import TEMPERATURE_K, MDSettings
from validation.md.stats import block_average
from validation.md.trajectory import load_trajectory, trajectory_to_frames
from validation.md.water_model import PARTICLES_PER_WATER
from validation.observables.geometry import compute_dipole_magnitudes, compute_hoh_angles, compute_oh_distances

METHODS = MD_METHODS
OBSERVABLES = tuple(obs for obs, *_ in MD_OBSERVABLES)
MD_CHECKS = names("md")
RESULT_NAME = "gate_md.json"
# Five blocks, not ten: in the short runs of the smoke and quick profiles, ten blocks are
# shorter than the volume's correlation time and understate the error.
N_BLOCKS = 5
CUTOFF_FRACTION = 0.42


def seed_box(grid, coder: Encoding, lower_nm, box_nm: float) -> tuple:
    """Periodic starting box from one voxel grid.

    grid: (Z, Y, X) classes of the encoding `coder`; lower_nm: (3,) x, y, z corner of the cube
    inside the grid's box. Returns (positions (3M, 3) nm in O, H, H order, box (3,) nm, repair
    report dict).
    """
    pos, elem, mol = coder.decode(grid)
    return seed_box_atoms(pos, elem, mol, lower_nm, box_nm, coder.whole_molecules)


def seed_box_atoms(pos, elem, mol, lower_nm, box_nm: float, whole_molecules: bool) -> tuple:
    """`seed_box` for atoms (positions (N, 3) nm, elements (N,), molecule ids (N,) or None):
    complete molecules whose O lies in the cube [lower_nm, lower_nm + box_nm), repaired for
    periodic MD (with `whole_molecules`, the given ids are trusted)."""
    pos, elem = np.asarray(pos, dtype=np.float64), np.asarray(elem)
    if mol is None:
        mol, _ = group_waters(pos, elem, box=None)
    waters = water_indices(elem, mol)
    lower = np.asarray(lower_nm, dtype=np.float64)
    if len(waters):
        oxy = pos[waters[:, 0]] - lower
        waters = waters[np.all((oxy >= 0) & (oxy < box_nm), axis=1)]
    atoms = waters.reshape(-1)
    box = np.full(3, float(box_nm))
    known = np.repeat(np.arange(len(waters)), 3) if whole_molecules else None
    positions, _, _, report = repair(pos[atoms] - lower, elem[atoms], box, molecule=known)
    return positions, box, report.as_dict()


WINDOW_MARGIN_NM = 0.15  # around a training cube, so molecules near its faces are whole, as in a generated box


def window_seed_box(frames, indices, box_nm: float, coder: Encoding | None, rng) -> tuple:
    """(grid (M, M, M) or None, (positions, box, report)): a window of a frame from `indices`, a
    cube of `box_nm` plus WINDOW_MARGIN_NM on each side, put through `seed_box` like a generated
    box; with `coder` None the window's atoms keep their positions (no voxels). Open frames
    (``meta["periodic"] = False``) place the cube inside the box."""
    region = (np.full(3, WINDOW_MARGIN_NM), box_nm)
    if coder is None:
        size = np.full(3, box_nm + 2 * WINDOW_MARGIN_NM)
        win = window_frames(frames, indices, size, 1, rng, region)
        return None, seed_box_atoms(win.positions[0], win.elements[0], win.molecule[0], region[0], box_nm, True)
    m = int(round((box_nm + 2 * WINDOW_MARGIN_NM) / coder.voxel_nm))
    grid = window_grids(frames, indices, (m, m, m), coder, 1, rng, region)[0]
    return grid, seed_box(grid, coder, region[0], box_nm)


def md_settings(profile, method: str, seed: int, box_nm=None):
    """validation.md.settings.MDSettings for `method` from a profile's [md] and [md.METHOD];
    `box_nm` (3,) is the starting box, which sets the real-space cutoff."""
    base, sub = profile["md"], profile[f"md.{method}"]
    # A repaired box starts below the liquid's density and shrinks in NPT: keep the cutoff below
    # half of a box 16 % shorter than the starting one (OpenMM refuses a smaller box); 1.0 nm as
    # in seed 000 once the box is 2.4 nm.
    cutoff = min(1.0, CUTOFF_FRACTION * float(np.min(box_nm))) if box_nm is not None else None
    kw = dict(method=method, temperature_k=TEMPERATURE_K, pressure_bar=1.0, timestep_fs=base["timestep_fs"], cutoff_nm=cutoff,
              npt_ps=sub["npt_ps"], nvt_ps=sub["nvt_ps"], report_ps=base["report_ps"], traj_ps=base["traj_ps"],
              chunk_ps=max(base["traj_ps"], min(t for t in (sub["npt_ps"], sub["nvt_ps"]) if t > 0) / 4.0), seed=seed,
              platform=None if base["platform"] == "auto" else base["platform"])
    if method == "classical":
        kw["intra_substeps"] = sub["intra_substeps"]
    else:
        kw.update(beads=sub["beads"], contract_reciprocal=sub["contract_reciprocal"])
    return MDSettings(**kw).check()


def run_seeded(positions, box, settings, workdir, min_waters: int, repair_report: dict, progress: bool = False) -> dict:
    """Run (or resume, or reuse) one MD run in `workdir` and measure it; the result is kept in
    `workdir`/gate_md.json so that a finished run is never repeated."""
    workdir = Path(workdir)
    done = workdir / RESULT_NAME
    kept = verified_bytes(done)
    if kept is not None:
        try:
            return json.loads(kept)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # damaged: measure again (the run itself resumes or is reused from its own files)
    n = len(positions) // 3
    result = {"waters": n, "repair": repair_report, "method": settings.method, "box_nm": np.asarray(box).tolist()}
    if n < min_waters:
        result.update(stable=False, error=f"only {n} molecules left after repair (need {min_waters})")
    else:
        try:
            summary = run_md(positions, box, settings, workdir, progress=progress)
            result.update(stable=True, wall_s={k: v.get("wall_s") for k, v in summary["stages"].items()},
                          ns_per_day={k: v.get("ns_per_day") for k, v in summary["stages"].items()},
                          platform=summary.get("platform"))
            result.update(measure_run(workdir, n))
        except MapSuiteError as exc:
            result.update(stable=False, error=str(exc))
    workdir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(done, json.dumps(result, indent=1, sort_keys=True))
    seal(done)
    return result


def run_methods(positions, box, profile, workdir, repair_report: dict, progress: bool = False) -> dict:
    """Classical and (if enabled) RPMD runs from one seed box; method -> run_seeded result.

    [md.rpmd] start = "repaired" starts RPMD from the repaired box itself (the seed's protocol,
    for runs long enough to equilibrate); "classical" starts it from the last state of the
    classical run (short profiles, whose RPMD is far too short to relax the density).
    """
    md, seed = profile["md"], profile["profile"]["seed"]
    workdir = Path(workdir)
    out = {"classical": run_seeded(positions, box, md_settings(profile, "classical", seed, box), workdir / "classical",
                                   md["min_waters"], repair_report, progress)}
    rpmd = profile["md.rpmd"]
    if rpmd["enabled"]:
        start_pos, start_box = positions, box
        if rpmd["start"] == "classical":
            if not out["classical"].get("stable"):
                out["rpmd"] = {"stable": False, "error": "the classical run it starts from did not complete",
                               "waters": out["classical"].get("waters")}
                return out
            start_pos, start_box = final_positions(workdir / "classical")
        out["rpmd"] = run_seeded(start_pos, start_box, md_settings(profile, "rpmd", seed, box), workdir / "rpmd",
                                 md["min_waters"], repair_report, progress)
    return out


def run_methods_locked(positions, box, workdir, repair_report: dict, profile, progress: bool = False) -> dict:
    """`run_methods` under the lock of `workdir`: of several gate runs on one cache (or Dask workers on one
    shared file system) one runs it, the others wait and read the finished runs."""
    with lock(workdir):
        return run_methods(positions, box, profile, workdir, repair_report, progress)


def final_positions(workdir) -> tuple:
    """(positions (3n, 3) nm O, H, H, box (3,) nm) of the last checkpoint of a classical run."""
    ckpt = load_md_checkpoint(Path(workdir) / "checkpoint.npz")
    pos = np.asarray(ckpt["positions"])[0].reshape(-1, PARTICLES_PER_WATER, 3)[:, :3]
    return pos.reshape(-1, 3), np.asarray(ckpt["box"], dtype=np.float64)


def density_not_judged(profile) -> dict:
    """{check name: reason} of the MD density checks this profile does not judge.

    RPMD that starts from the classical run's end with npt_ps = 0 runs NVT at the classical run's
    mean volume, so its density is the classical one. A short RPMD NPT is no substitute: in 1 ps
    the barostat moved the density of 85-water boxes by up to 0.08 g/cm3 after the switch from one
    bead to eight (0.986 to 1.063 g/cm3 in one training-seeded run), far more than the liquid's
    equilibrium scatter, while block averages over 0.5 ps gave standard errors of 0.002-0.005.
    """
    rp = profile["md.rpmd"]
    if rp["enabled"] and rp["npt_ps"] == 0:
        return {"md_rpmd_density": "not judged: this profile's RPMD runs NVT at the classical run's mean volume "
                                   "([md.rpmd] npt_ps = 0), so md_classical_density judges the density"}
    return {}


def measure_run(workdir, n_waters: int) -> dict:
    """Production averages (mean, standard error) and time series of a finished run."""
    workdir = Path(workdir)
    log = read_state_log(workdir / "state_log.csv")
    npt = np.flatnonzero(log["stage"] == "npt")
    prod_rows = npt[len(npt) // 2:]
    out = {"density": block_average(log["density_g_cm3"][prod_rows], N_BLOCKS) if len(prod_rows) else (float("nan"),) * 2}
    per_frame = {"oh_bond": [], "hoh_angle": [], "dipole": []}
    for stage in ("npt", "nvt"):
        if not (workdir / f"traj_{stage}.dcd").exists():
            continue
        traj = load_trajectory(workdir, stage)
        if stage == "npt":
            traj = traj[traj.n_frames // 2:]
        if traj.n_frames == 0:
            continue
        frames = trajectory_to_frames(traj, wrap=False)
        f = len(frames)
        per_frame["oh_bond"].append(compute_oh_distances(frames, periodic=True).reshape(f, -1).mean(axis=1))
        per_frame["hoh_angle"].append(compute_hoh_angles(frames, periodic=True).reshape(f, -1).mean(axis=1))
        per_frame["dipole"].append(compute_dipole_magnitudes(frames, periodic=True).reshape(f, -1).mean(axis=1))
    for name, parts in per_frame.items():
        out[name] = block_average(np.concatenate(parts), N_BLOCKS) if parts else (float("nan"), float("nan"))
    out = {k: [float(v[0]), float(v[1])] for k, v in out.items()}
    out["series"] = {"stage": log["stage"].tolist(), "time_ps": log["time_ps"].tolist(),
                     "temperature_k": log["temperature_k"].tolist(), "density_g_cm3": log["density_g_cm3"].tolist(),
                     "potential_kj_mol_per_water": (log["potential_kj_mol"] / n_waters).tolist()}
    return out


def md_checks(gen: dict, ref: dict, thresholds: dict, method: str, not_judged=()) -> list:
    """Checks of one method: the generated-seeded run completes, and each observable agrees with
    the training-seeded run within max(tolerance, md_z * combined standard error).

    not_judged: check names left out (``density_not_judged``: runs without NPT).
    """
    z = thresholds["md_z"]
    tol = thresholds["md_tolerance"]
    ok = bool(gen.get("stable"))
    stable = spec(f"md_{method}_stable")
    checks = [Check(stable.name, stable.group, stable.title, 1.0 if ok else 0.0, 1.0, stable.relation, stable.unit,
                    gen.get("error", f"{gen.get('waters')} waters") if not ok
                    else f"{gen['waters']} waters after repair; training-seeded run: "
                         + ("completed" if ref.get("stable") else f"FAILED ({ref.get('error')})"))]
    for name in OBSERVABLES:
        row = spec(f"md_{method}_{name}")
        tol_key, unit = row.threshold_key, row.unit
        if row.name in not_judged:
            continue
        value, allowance, detail, extra = float("nan"), tol[tol_key], "a run did not complete", {}
        if ok and ref.get("stable"):
            (mg, sg), (mr, sr) = gen[name], ref[name]
            se = float(np.hypot(sg, sr)) if np.isfinite(sg) and np.isfinite(sr) else float("nan")
            value = abs(mg - mr)
            allowance = max(tol[tol_key], z * se) if np.isfinite(se) else tol[tol_key]
            k, shown_unit = shown(1.0, unit)  # the text in Å and degrees, as the table shows the value
            detail = (f"generated-seeded {mg * k:.5g} +- {sg * k:.2g}, training-seeded {mr * k:.5g} +- {sr * k:.2g} "
                      f"{shown_unit}; allowance max({tol[tol_key] * k:g}, {z:g} x {se * k:.2g})")
            if np.isfinite(se) and se > 0:  # the difference in combined standard errors, two-sided normal p
                extra = {"z_score": float(value / se), "p_value": float(math.erfc(value / se / math.sqrt(2.0))),
                         "statistic": "difference / combined block-averaged standard error (normal)"}
        checks.append(Check(row.name, row.group, row.title, value, allowance, row.relation, unit, detail, extra=extra))
    return checks

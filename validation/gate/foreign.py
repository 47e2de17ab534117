"""Foreign water ensembles: frames files the release gate should tell apart from its training set.

Each ensemble is written as this project's frames file (``map_core.atoms.frames``: O, H, H per
molecule, molecule ids 0..n-1, positions float32 nm wrapped per atom into [0, L)), so that it is
cut into windows exactly like the training frames. The gate reports its power against them.

============== ===============================================================================
file           ensemble
============== ===============================================================================
reoriented     held-out training frames, every molecule rotated uniformly at random about its O
expanded3      held-out training frames, box and molecule positions scaled by 1.03 (rigid
               molecules), so the density is divided by 1.03^3
tip3p          rigid TIP3P water (OpenMM ``tip3p.xml``), 300 K, 1 bar, NPT frames
               (``validation.md.rigid_water.openmm_water``)
tip4pew        rigid TIP4P-Ew water (OpenMM ``tip4pew.xml``; M sites dropped), 300 K, 1 bar, NPT
qtip4pf_330K   q-TIP4P/F at 330 K made by ``map-suite simulate``'s own code path (50 ps NPT, then
               NVT frames at the mean NPT volume, like the training set at 300 K)
============== ===============================================================================

Held-out frames are the last 20 % of the shipped training set, as
``map_core.training.crops.split_frames`` splits them. Lengths nm, times ps, temperatures K,
pressures bar, densities g/cm3.

Command line: ``python -m validation.gate.foreign OUT_DIR [--small]`` writes the five files
(finished files are kept, so a killed run resumes; the q-TIP4P/F run also resumes from its
checkpoint).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from map_core.arguments import OneLineParser
from map_core.atoms.frames import Frames, load_frames, save_frames
from map_core.errors import MapSuiteError, run_one_line
from map_core.training.crops import split_frames
from validation.gate.reference import HELDOUT_FRACTION, SHIPPED_TRAINING_SET
from validation.md.boxes import random_rotation, whole_waters
from validation.md.rigid_water import FORCE_FIELDS, openmm_water
from validation.md.settings import PRESSURE_BAR, TEMPERATURE_K, MDSettings
from validation.md.simulate import simulate_frames
from validation.md.trajectory import WRAPPING
from validation.observables.density import compute_density

EXPANSION = 1.03  # linear factor of the expanded ensemble
HOT_K = TEMPERATURE_K + 30.0  # 330 K: the training set's temperature + 30 K

SEEDS = {"reoriented": 1401, "tip3p": 1402, "tip4pew": 1403, "qtip4pf_330K": 1404}
NAMES = ("reoriented", "expanded3", "tip3p", "tip4pew", "qtip4pf_330K")


@dataclass(frozen=True)
class Size:
    """How much of every ensemble to make. MD: n_frames every stride_ps after equilibrate_ps of
    NPT (hot_equilibrate_ps for q-TIP4P/F, which starts from a fresh box and, like the training
    set, takes its NVT volume from the second half of NPT); transforms: the first `held_out`
    held-out frames (None = all)."""

    n_frames: int
    stride_ps: float
    equilibrate_ps: float
    hot_equilibrate_ps: float
    held_out: int | None

    def md_recipe(self, name: str) -> tuple:
        """(n_frames, stride_ps, equilibrate_ps) of the MD ensemble `name`."""
        equilibrate = self.hot_equilibrate_ps if name == "qtip4pf_330K" else self.equilibrate_ps
        return self.n_frames, self.stride_ps, equilibrate


SIZES = {
    "full": Size(n_frames=40, stride_ps=1.25, equilibrate_ps=25.0, hot_equilibrate_ps=50.0, held_out=None),
    "small": Size(n_frames=2, stride_ps=0.1, equilibrate_ps=0.2, hot_equilibrate_ps=0.2, held_out=3),
}


# --- frames helpers --------------------------------------------------------------------------

def _wrapped(positions, box) -> np.ndarray:
    """(N, 3) float32 nm positions wrapped per atom into [0, L) (float32 rounding to L goes to 0)."""
    edge = np.asarray(box, dtype=np.float32).reshape(3)
    out = np.mod(np.asarray(positions, dtype=np.float32), edge)
    return np.where(out >= edge, np.float32(0), out)


def mean_density(frames: Frames) -> float:
    """Mean mass density, g/cm3, over the frames (every atom counted with its mass)."""
    return float(np.mean(compute_density(frames)))


def _transform_meta(source: Frames, name: str, **fields) -> dict:
    """Meta of a frames file made by transforming `source` (its meta kept under source_meta)."""
    meta = dict(foreign=name, ensemble="held-out training frames, transformed", method="transform of MD frames",
                water_model=source.meta.get("water_model"), source_meta=source.meta, n_frames=len(source),
                units="nm", wrapping=WRAPPING)
    meta.update(fields)
    return meta


def _rebuilt(frames: Frames, positions: list, box, meta: dict) -> Frames:
    """`frames` with new per-frame positions (wrapped per atom) and boxes (F, 3) nm; same atoms."""
    box = np.asarray(box, dtype=np.float64).reshape(-1, 3)
    return Frames([_wrapped(p, b) for p, b in zip(positions, box)], [e.copy() for e in frames.elements],
                  [m.copy() for m in frames.molecule], box, meta)


# --- transforms of training frames ----------------------------------------------------------

def reoriented(frames: Frames, seed: int) -> Frames:
    """Every molecule of every frame rotated rigidly, uniformly at random, about its oxygen.

    frames: water frames (molecule ids, O, H, H). O positions, O-H lengths and H-O-H angles are
    kept; the box is unchanged. Atoms outside complete molecules are kept where they are.
    Deterministic for `seed`. Returns new Frames wrapped per atom into [0, L).
    """
    rng = np.random.default_rng(seed)
    out = []
    for f in range(len(frames)):
        pos, trip = whole_waters(frames, f)
        oxygen = pos[trip[:, :1]]  # (M, 1, 3)
        rotation = np.stack([random_rotation(rng) for _ in range(len(trip))])  # (M, 3, 3)
        pos[trip] = oxygen + np.einsum("mij,maj->mai", rotation, pos[trip] - oxygen)
        out.append(pos)
    meta = _transform_meta(frames, "reoriented", transform="each molecule rotated uniformly at random about its O",
                           seed=int(seed))
    result = _rebuilt(frames, out, frames.box, meta)
    result.meta["density_g_cm3"] = mean_density(result)
    return result


def expanded(frames: Frames, factor: float = EXPANSION) -> Frames:
    """Box edges and molecule positions scaled by `factor` (linear; density / factor^3).

    Each molecule moves rigidly with its oxygen (O -> factor * O), so intramolecular geometry is
    unchanged; atoms outside complete molecules are scaled as they are. Returns new Frames.
    """
    if not (np.isfinite(factor) and factor > 0):
        raise MapSuiteError(f"expansion factor must be a positive number, got {factor}")
    out = []
    for f in range(len(frames)):
        pos, trip = whole_waters(frames, f)
        scaled = pos * factor
        shift = (factor - 1.0) * pos[trip[:, 0]]  # (M, 3): each molecule moves with its O
        scaled[trip] = pos[trip] + shift[:, None, :]
        out.append(scaled)
    meta = _transform_meta(frames, "expanded", transform=f"box and O positions scaled by {factor:g}, molecules rigid",
                           factor=float(factor))
    result = _rebuilt(frames, out, frames.box * factor, meta)
    result.meta["density_g_cm3"] = mean_density(result)
    return result


# --- q-TIP4P/F at another temperature through `map-suite simulate` ----------------------------

def hot_qtip4pf(n_frames: int, stride_ps: float, equilibrate_ps: float, seed: int, workdir,
                temperature_k: float = HOT_K, n_waters: int = 216, threads: int | None = None,
                progress: bool = True) -> Frames:
    """q-TIP4P/F water at `temperature_k` made by ``validation.md.simulate.simulate_frames`` (the
    function ``map-suite simulate`` calls), classical, CPU platform, 0.5 fs steps, 1 bar.

    Protocol as the training set: fresh box, minimisation, `equilibrate_ps` NPT, then `n_frames`
    NVT frames every `stride_ps` at the mean NPT volume. Runs in `workdir` (resumes from its
    checkpoint); the frames file it writes there is read back. Returns Frames with meta
    ``density_g_cm3`` (mean over frames), ``foreign`` and ``wall_s`` (MD wall time of all
    sessions, s) added.
    """
    workdir = Path(workdir)
    settings = MDSettings(method="classical", temperature_k=float(temperature_k), pressure_bar=PRESSURE_BAR,
                          platform="CPU", threads=threads, seed=int(seed))
    t0 = time.time()
    result = simulate_frames(workdir / "frames.npz", n_waters, n_frames, stride_ps, equilibrate_ps, settings,
                             workdir=workdir, progress=progress)
    frames = load_frames(result["frames_file"])
    stage_wall = {stage: info.get("wall_s") for stage, info in result["stages"].items()}
    frames.meta.update(foreign=f"qtip4pf_{temperature_k:g}K", density_g_cm3=mean_density(frames),
                       md_stage_wall_s=stage_wall, wall_s=round(sum(w or 0.0 for w in stage_wall.values()), 1),
                       session_wall_s=round(time.time() - t0, 1))
    return frames


# --- all of them -------------------------------------------------------------------------------

def _log(log, line: str) -> None:
    if log is not None:
        log(line)


def held_out_frames(path=SHIPPED_TRAINING_SET, limit: int | None = None) -> Frames:
    """The held-out frames (the last HELDOUT_FRACTION, as split_frames splits them) of the training set at `path`;
    with `limit`, only the first `limit` of them."""
    frames = load_frames(path)
    test = split_frames(len(frames), HELDOUT_FRACTION)[1][:limit]
    held = frames.select(test)
    held.meta = dict(frames.meta, source_file=Path(path).name, frames_used=[test[0], test[-1] + 1])
    return held


def _expected_meta(name: str, size: str) -> dict:
    """Meta entries a finished `name` file made at `size` holds (its size, and for MD its recipe)."""
    expected = dict(foreign_size=size)
    if name not in ("reoriented", "expanded3"):
        expected.update(zip(("n_frames", "stride_ps", "equilibrate_ps"), SIZES[size].md_recipe(name)))
    return expected


def _finished(path: Path, expected: dict) -> bool:
    """True if `path` is a loadable frames file whose meta holds the `expected` entries."""
    if not path.exists():
        return False
    try:
        meta = load_frames(path).meta
    except MapSuiteError:
        return False
    return all(meta.get(key) == value for key, value in expected.items())


def _check_out_dir(out_dir) -> Path:
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise MapSuiteError("not a directory", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def make_ensemble(name: str, size: Size, workdir: Path, threads: int | None = None, log=print) -> Frames:
    """Frames of the foreign ensemble `name` (one of NAMES) at `size`, from the shipped training set.

    workdir: where the q-TIP4P/F run keeps its checkpoint and trajectory (unused by the others).
    """
    md = (*size.md_recipe(name), SEEDS.get(name, 0))
    if name == "reoriented":
        return reoriented(held_out_frames(limit=size.held_out), SEEDS[name])
    if name == "expanded3":
        return expanded(held_out_frames(limit=size.held_out), EXPANSION)
    if name in FORCE_FIELDS:
        return openmm_water(name, *md, load_frames(SHIPPED_TRAINING_SET).select([0]), threads, log)
    if name == "qtip4pf_330K":
        return hot_qtip4pf(*md, workdir, temperature_k=HOT_K, threads=threads, progress=log is not None)
    raise MapSuiteError(f"no foreign ensemble {name!r} (known: {', '.join(NAMES)})")


@contextlib.contextmanager
def _only_builder(out_dir: Path):
    """Hold an exclusive lock on ``out_dir/.foreign.lock`` (released when the process ends, even by
    kill -9); MapSuiteError if another build already writes into `out_dir`."""
    lock = FileLock(out_dir / ".foreign.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise MapSuiteError("another build of the foreign ensembles is writing here", out_dir) from None
    try:
        yield
    finally:
        lock.release()


def build_all(out_dir, size: str = "full", log=print, threads: int | None = None) -> dict:
    """Write the five foreign ensembles (NAMES, as ``<name>.npz``) into `out_dir`; return name -> path.

    size: 'full' (MD: 40 frames every 1.25 ps after 25 ps NPT, 50 ps for q-TIP4P/F; transforms: all
    80 held-out frames) or 'small' (a handful of frames, for tests). Files already there, loadable
    and made at this size and recipe are kept; every file is written atomically, so a killed run
    leaves none half-written. One simulation at a time. log: callable(str) for progress lines, or None.
    """
    if size not in SIZES:
        raise MapSuiteError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    out_dir = _check_out_dir(out_dir)
    paths = {}
    with _only_builder(out_dir):
        for name in NAMES:
            path = out_dir / f"{name}.npz"
            paths[name] = path
            if _finished(path, _expected_meta(name, size)):
                _log(log, f"foreign: {name}: kept {path}")
                continue
            _log(log, f"foreign: {name}: making ({size})")
            t0 = time.time()
            workdir = out_dir / f"{name}.{size}.eq{SIZES[size].md_recipe(name)[2]:g}ps.partial"
            frames = make_ensemble(name, SIZES[size], workdir, threads, log)
            frames.meta.update(foreign_size=size, foreign=name, build_wall_s=round(time.time() - t0, 1))
            save_frames(path, frames)
            _log(log, f"foreign: {name}: wrote {path}: {len(frames)} frames, density "
                      f"{frames.meta['density_g_cm3']:.4f} g/cm3, {time.time() - t0:.1f} s this session"
                      + (f", MD {frames.meta['wall_s']:.1f} s" if "wall_s" in frames.meta else ""))
    return paths


def summary(paths: dict) -> dict:
    """name -> {frames, density_g_cm3, md_wall_s, build_wall_s} read back from the files (s)."""
    out = {}
    for name, path in paths.items():
        meta = load_frames(path).meta
        out[name] = dict(frames=meta.get("n_frames"), density_g_cm3=meta.get("density_g_cm3"),
                         md_wall_s=meta.get("wall_s"), build_wall_s=meta.get("build_wall_s"))
    return out


def main(argv=None) -> int:
    prog = "python -m validation.gate.foreign"
    parser = OneLineParser(prog=prog, description="Write the gate's foreign water ensembles as frames files.")
    parser.add_argument("out_dir", help="folder for reoriented.npz, expanded3.npz, tip3p.npz, tip4pew.npz, qtip4pf_330K.npz")
    parser.add_argument("--small", action="store_true", help="a handful of frames per ensemble (tests)")
    args = parser.parse_args(argv)

    def work():
        paths = build_all(args.out_dir, "small" if args.small else "full",
                          log=lambda line: print(line, file=sys.stderr, flush=True))
        print(json.dumps(summary(paths)))

    return run_one_line(prog, work, "finished files are kept, rerun to resume")


if __name__ == "__main__":
    sys.exit(main())

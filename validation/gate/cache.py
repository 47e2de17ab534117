"""On-disk cache of the gate's expensive stages.

A stage's key is the sha256 of everything it depends on (model sha256, reference sha256, the
profile sections it reads, the seed, a stage version); thresholds are never part of a key, so
a re-run with other thresholds, or after a report change, recomputes only the verdicts.
Entries are JSON (numbers) or npz (arrays), written atomically, each with the sha256 of its bytes
in a ``.sha256`` file written after it; an entry whose bytes do not match (a torn or damaged file,
a disk error) is recomputed, not trusted. A directory per key holds resumable work (sampled
batches, MD runs).

Several gate runs may share one cache at once: each entry is computed under a file lock
(``filelock``; the kernel drops it if its holder dies, even by kill -9), so a second run waits for
the first one's entry and reads it instead of computing it again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
from filelock import FileLock

from map_core.files import atomic_path, write_text_atomic

VERSION = 1  # bump when a stage's output changes meaning


def default_cache_dir() -> Path:
    """$MAP_SUITE_CACHE, else $XDG_CACHE_HOME/map-suite/gate, else ~/.cache/map-suite/gate.

    Outside the report folder on purpose: reports are small files to keep (and commit), the
    cache holds sampled boxes and MD trajectories, shared by every run on the machine (keys
    make sharing safe).
    """
    if os.environ.get("MAP_SUITE_CACHE"):
        return Path(os.environ["MAP_SUITE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "map-suite" / "gate"


def key(stage: str, *parts) -> str:
    """'STAGE-<16 hex>' from the canonical JSON of `parts`."""
    blob = json.dumps([VERSION, stage, *parts], sort_keys=True, default=str).encode()
    return f"{stage}-{hashlib.sha256(blob).hexdigest()[:16]}"


class Cache:
    """A folder of cached stage results."""

    def __init__(self, root):
        self.root = Path(root)

    def dir(self, name: str) -> Path:
        """A directory for resumable work of the stage keyed `name` (created); hold `lock(path)` while working in it."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _lock(self, name: str) -> FileLock:
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / f"{name}.lock")

    def json(self, name: str, compute):
        """The JSON value stored under `name`, computing and storing it first if missing or damaged."""
        path = self.root / f"{name}.json"
        with self._lock(name):
            data = verified_bytes(path)
            if data is not None:
                try:
                    return json.loads(data)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    pass  # its checksum was written over damaged bytes: recompute
            value = compute()
            write_text_atomic(path, json.dumps(value, sort_keys=True, default=_plain))
            seal(path)
            return json.loads(path.read_text())

    def arrays(self, name: str, compute) -> dict:
        """The arrays stored under `name` (dict of numpy arrays), computing them first if missing or damaged."""
        path = self.root / f"{name}.npz"
        with self._lock(name):
            arrays = load_verified_npz(path)
            if arrays is not None:
                return arrays
            value = compute()
            with atomic_path(path) as tmp:
                np.savez_compressed(tmp, **value)
            seal(path)
            return dict(value)


def lock(directory) -> FileLock:
    """An exclusive lock on the work directory `directory` of one stage (sampled batches, an MD run)."""
    return FileLock(Path(directory) / ".lock")


def _sum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def seal(path) -> None:
    """Record the sha256 of the finished file `path` next to it (`path`.sha256, written atomically)."""
    path = Path(path)
    write_text_atomic(_sum_path(path), hashlib.sha256(path.read_bytes()).hexdigest())


def verified_bytes(path) -> bytes | None:
    """The bytes of `path` if they match its recorded sha256; None if it is missing, unsealed or damaged."""
    path = Path(path)
    try:
        data, recorded = path.read_bytes(), _sum_path(path).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return data if hashlib.sha256(data).hexdigest() == recorded else None


def load_verified_npz(path) -> dict | None:
    """{name: array} of a sealed npz file, or None when it is missing, unsealed, damaged or unreadable."""
    data = verified_bytes(path)
    if data is None:
        return None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception:  # noqa: BLE001 - bytes that match their checksum but were written wrong: recompute
        return None


def _plain(x):
    """JSON fallback: numpy scalars and arrays as Python numbers and lists; NaN stays NaN."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")

"""Append-only outputs of a run that survive a kill: the CSV state log and DCD trajectories.

Each is appended chunk by chunk; the checkpoint records every file's byte size, and a resumed
run first cuts each file back to that size (:func:`truncate_to`) so rows or frames written
after the last checkpoint are not duplicated.
"""

from __future__ import annotations

import csv
import io
import os
import struct
from pathlib import Path

import numpy as np
from openmm import Vec3
from openmm.app import DCDFile
from openmm.unit import nanometers, picoseconds

from map_core.errors import MapSuiteError

STATE_COLUMNS = ("stage", "step", "time_ps", "temperature_k", "volume_nm3", "density_g_cm3",
                 "potential_kj_mol", "kinetic_kj_mol", "box_x_nm", "box_y_nm", "box_z_nm")


def file_size(path) -> int:
    path = Path(path)
    return path.stat().st_size if path.exists() else 0


def truncate_to(path, size: int) -> None:
    """Cut `path` back to `size` bytes (removing it if `size` is 0)."""
    path = Path(path)
    if size == 0:
        path.unlink(missing_ok=True)
        return
    if file_size(path) < size:
        raise MapSuiteError(f"shorter ({file_size(path)} bytes) than its checkpoint says ({size}); "
                            "the work directory was changed by hand", path)
    with open(path, "r+b") as fh:
        fh.truncate(size)
    if path.suffix == ".dcd":
        _fix_dcd_frame_count(path)


class StateLog:
    """CSV of instantaneous observables, one row per report (columns ``STATE_COLUMNS``)."""

    def __init__(self, path):
        self.path = Path(path)

    def append(self, stage: str, step: int, time_ps: float, report: dict) -> None:
        new = not self.path.exists() or self.path.stat().st_size == 0
        buf = io.StringIO()
        writer = csv.writer(buf)
        if new:
            writer.writerow(STATE_COLUMNS)
        box = report["box_nm"]
        writer.writerow([stage, step, f"{time_ps:.4f}", f"{report['temperature_k']:.3f}",
                         f"{report['volume_nm3']:.6f}", f"{report['density_g_cm3']:.6f}",
                         f"{report['potential_kj_mol']:.4f}", f"{report['kinetic_kj_mol']:.4f}",
                         f"{box[0]:.6f}", f"{box[1]:.6f}", f"{box[2]:.6f}"])
        with open(self.path, "a", newline="") as fh:
            fh.write(buf.getvalue())


def read_state_log(path) -> dict:
    """Columns of a state log: {'stage': (R,) str, other columns: (R,) float64}."""
    path = Path(path)
    if not path.exists():
        raise MapSuiteError("no state log", path)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != STATE_COLUMNS:
        raise MapSuiteError("not a state log (wrong header)", path)
    body = rows[1:]
    out = {"stage": np.array([r[0] for r in body], dtype=str)}
    for j, name in enumerate(STATE_COLUMNS[1:], start=1):
        out[name] = np.array([float(r[j]) for r in body], dtype=np.float64)
    return out


class DcdWriter:
    """Appends frames of the massive atoms (O, H1, H2 per molecule) to a DCD file."""

    def __init__(self, path, topology, timestep_ps: float, interval_steps: int):
        self.path = Path(path)
        self.topology = topology
        self.timestep_ps = timestep_ps
        self.interval = interval_steps

    def append(self, positions_nm, box_nm) -> None:
        """positions_nm: (N, 3) nm; box_nm: (3,) nm."""
        append = self.path.exists() and self.path.stat().st_size > 0
        with open(self.path, "r+b" if append else "wb") as fh:
            dcd = DCDFile(fh, self.topology, self.timestep_ps * picoseconds, 0, self.interval, append=append)
            box = [float(x) for x in box_nm]
            dcd.writeModel(np.asarray(positions_nm, dtype=np.float64) * nanometers,
                           unitCellDimensions=Vec3(*box) * nanometers)


def _dcd_layout(fh):
    """(header bytes, bytes per frame) of an OpenMM-written (CHARMM, little-endian) DCD file."""
    fh.seek(0)
    head = fh.read(100)
    comments_bytes = struct.unpack("<i", head[92:96])[0]
    fh.seek(104 + comments_bytes)
    n_atoms = struct.unpack("<i", fh.read(4))[0]
    header = 104 + comments_bytes + 8  # ... title record, then the record (4, n_atoms, 4)
    has_box = struct.unpack("<i", head[48:52])[0] == 1
    frame = (56 if has_box else 0) + 3 * (4 * n_atoms + 8)
    return header, frame


def _fix_dcd_frame_count(path) -> None:
    """Rewrite the frame count of a DCD header after truncation (OpenMM reads it to append)."""
    with open(path, "r+b") as fh:
        header, frame = _dcd_layout(fh)
        size = fh.seek(0, os.SEEK_END)
        n_frames, rest = divmod(size - header, frame)
        if rest:
            raise MapSuiteError(f"DCD of {size} bytes does not end on a frame boundary", path)
        fh.seek(8)
        fh.write(struct.pack("<i", n_frames))
        fh.seek(12)
        first, interval = struct.unpack("<2i", fh.read(8))
        fh.seek(20)  # the step of the last frame, as OpenMM writes it
        fh.write(struct.pack("<i", first + max(n_frames - 1, 0) * interval))


def dcd_frame_count(path) -> int:
    """Frames in a DCD file, from its size."""
    path = Path(path)
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        header, frame = _dcd_layout(fh)
        size = fh.seek(0, os.SEEK_END)
    return (size - header) // frame


def read_dcd(path) -> tuple[np.ndarray, np.ndarray]:
    """Read an OpenMM-written DCD: (positions (F, N, 3) nm float32, box (F, 3) nm float64).

    A plain reader of the layout :class:`DcdWriter` produces (mdtraj reads the same files but
    prints plugin chatter on stdout).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        header, frame = _dcd_layout(fh)
        fh.seek(104 + struct.unpack("<i", _read(fh, 92))[0])
        n_atoms = struct.unpack("<i", fh.read(4))[0]
        has_box = struct.unpack("<i", _read(fh, 48))[0] == 1
        fh.seek(header)
        raw = fh.read()
    n_frames = len(raw) // frame
    xyz = np.empty((n_frames, n_atoms, 3), dtype=np.float32)
    box = np.zeros((n_frames, 3))
    for f in range(n_frames):
        chunk = raw[f * frame:(f + 1) * frame]
        offset = 0
        if has_box:
            cell = struct.unpack("<i6di", chunk[:56])
            box[f] = np.array([cell[1], cell[3], cell[6]]) / 10.0  # Å -> nm
            offset = 56
        for axis in range(3):
            start = offset + axis * (4 * n_atoms + 8) + 4
            xyz[f, :, axis] = np.frombuffer(chunk[start:start + 4 * n_atoms], dtype="<f4") / 10.0
    return xyz, box


def _read(fh, offset: int, n: int = 4) -> bytes:
    fh.seek(offset)
    return fh.read(n)

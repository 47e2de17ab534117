"""Any bytes, one clear error: property-based fuzzing of every file loader (issue 16).

Each loader gets mutated copies of a real file of its kind (truncation at any offset, byte flips,
random bytes spliced in), an empty file, a directory, and files of other kinds. Whatever the
bytes, the loader either returns or raises MapSuiteError naming the file: no other exception
escapes. `pytest -m slow` runs many more examples.
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.io import write as ase_write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from map_core.atoms.frames import load_frames
from map_core.atoms.voxels import encode
from map_core.cluster import read_scheduler_file
from map_core.errors import MapSuiteError
from map_core.model.checkpoint import load_model
from map_core.model.default import default_model_path
from validation.gate.expected import load_expected_failures
from validation.gate.profile import load_profile, shipped_path
from validation.gate.results import load_results
from validation.md.export import export_frames
from validation.md.imports import read_boxes
from validation.motif.run import read_step
from validation.motif.scan import load_scan

ROOT = Path(__file__).resolve().parents[1]
FRAMES = ROOT / "tests" / "data" / "water_md_small.npz"
EXPECTED = ROOT / "map_core" / "data" / "default_model_known_failures.toml"
RESULTS = ROOT / "reports" / "default-quick" / "results.json"
MOTIF = ROOT / "reports" / "motif-default"

def _import_source(fmt: str, folder: Path) -> Path:
    """A PDB, extended XYZ, LAMMPS dump or data, or .npy class-grid file of real water in `folder` (made once)."""
    path = folder / {"pdb": "water.pdb", "extxyz": "water.xyz", "npy": "grids.npy", "lammps": "water.lammpstrj",
                     "lammps-data": "water.data"}[fmt]
    if not path.exists():
        frames = load_frames(FRAMES).select([0])
        if fmt == "lammps-data":  # ASE's writer, atom style full with masses, as LAMMPS users write them
            atoms = Atoms(symbols=list(frames.elements[0]), positions=frames.positions[0] * 10, cell=frames.box[0] * 10, pbc=True)
            atoms.new_array("mol-id", frames.molecule[0].astype(int) + 1)
            ase_write(path, atoms, format="lammps-data", atom_style="full", specorder=["O", "H"], masses=True, units="real")
        elif fmt == "npy":
            grid, _ = encode(frames.positions[0], frames.elements[0], frames.box[0], 0.05)
            np.save(path, np.array([0, 2, 1], dtype=np.uint8)[grid])  # the seed's class order
        else:
            export_frames(frames, fmt, path)
    return path


def _scheduler_file(folder: Path) -> Path:
    """A Dask scheduler file as `dask scheduler --scheduler-file` writes it."""
    path = folder / "scheduler.json"
    path.write_text('{"type": "Scheduler", "id": "Scheduler-1", "address": "tcp://10.0.0.5:8786", "services": {}, '
                    '"started": 1764630000.0, "workers": {}}')
    return path


# name -> (source file, given a scratch folder; loader)
LOADERS = {
    "checkpoint": (lambda _: default_model_path(), lambda p: load_model(p)),
    "frames": (lambda _: FRAMES, lambda p: load_frames(p)),
    "profile": (lambda _: shipped_path("smoke"), lambda p: load_profile(p)),
    "results": (lambda _: RESULTS, lambda p: load_results(p)),
    "known_failures": (lambda _: EXPECTED, lambda p: load_expected_failures(p, "smoke")),
    "motif_scan": (lambda _: MOTIF / "scan.json", lambda p: load_scan(p)),
    "motif_step": (lambda _: MOTIF / "iteration_01.npz", lambda p: read_step(p, 1)),
    "scheduler_file": (_scheduler_file, read_scheduler_file),
    **{f"import_{fmt}": (lambda folder, fmt=fmt: _import_source(fmt, folder),
                         lambda p, fmt=fmt: read_boxes(p, fmt=fmt, voxel_nm=0.05, types={1: "O", 2: "H"}))
       for fmt in ("pdb", "extxyz", "npy", "lammps", "lammps-data")},
}
EXAMPLES = int(os.environ.get("MAP_SUITE_FUZZ_EXAMPLES", "12"))


@st.composite
def mutations(draw, size: int):
    """(kind, offset, payload): truncate at offset, flip bytes at offsets, or splice random bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "splice"]))
    offset = draw(st.integers(0, max(size - 1, 0)))
    payload = draw(st.binary(min_size=1, max_size=64))
    return kind, offset, payload


def mutate(data: bytes, kind: str, offset: int, payload: bytes) -> bytes:
    if kind == "truncate":
        return data[:offset]
    if kind == "flip":
        out = bytearray(data)
        for i, b in enumerate(payload):
            j = (offset + 97 * i) % len(out)
            out[j] ^= b or 0xFF
        return bytes(out)
    return data[:offset] + payload + data[offset + len(payload):]


def assert_clean(load, path):
    """`load(path)` returns or raises MapSuiteError naming `path`, on one line."""
    try:
        load(path)
    except MapSuiteError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc), str(exc)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_mutated_files_end_in_one_clear_error(name, tmp_path_factory):
    make, load = LOADERS[name]
    source = make(tmp_path_factory.getbasetemp())
    data = source.read_bytes()
    work = tmp_path_factory.mktemp(f"fuzz_{name}")

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(m=mutations(len(data)))
    def run(m):
        path = work / ("bad" + source.suffix)
        path.write_bytes(mutate(data, *m))
        assert_clean(load, path)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LOADERS))
def test_mutated_files_many_examples(name, tmp_path_factory):
    global EXAMPLES
    old, EXAMPLES = EXAMPLES, 300
    try:
        test_mutated_files_end_in_one_clear_error(name, tmp_path_factory)
    finally:
        EXAMPLES = old


def _other_kinds(tmp_path) -> dict:
    """Files of the wrong kind for every loader: empty, a directory, text, random bytes, a .npz of
    other arrays, a torch file of another program, JSON and TOML that are not ours."""
    other = {}
    other["empty"] = tmp_path / "empty.bin"
    other["empty"].write_bytes(b"")
    other["directory"] = tmp_path / "a_directory"
    other["directory"].mkdir()
    other["text"] = tmp_path / "passwd.txt"
    other["text"].write_text("root:x:0:0:root:/root:/bin/bash\n")
    other["random"] = tmp_path / "random.bin"
    other["random"].write_bytes(np.random.default_rng(0).bytes(4096))
    other["npz"] = tmp_path / "other.npz"
    np.savez(other["npz"], a=np.arange(3), positions=np.full((2, 3), np.nan))
    other["torch"] = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3), "epoch": 4}, other["torch"])
    other["json"] = tmp_path / "other.json"
    other["json"].write_text('{"verdict": 3, "checks": "none"}')
    other["toml"] = tmp_path / "other.toml"
    other["toml"].write_text('[smoke]\norphan_rate = 5\n[profile]\nname = 1\n')
    other["nan_frames"] = tmp_path / "nan_frames.npz"
    frames = dict(np.load(FRAMES))
    frames["box"] = np.full_like(frames["box"], -np.inf)
    np.savez(other["nan_frames"], **frames)
    return other


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_files_of_other_kinds_end_in_one_clear_error(name, tmp_path):
    _, load = LOADERS[name]
    for kind, path in _other_kinds(tmp_path).items():
        try:
            load(path)
        except MapSuiteError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc), (kind, str(exc))
        else:
            assert (name, kind) == ("known_failures", "empty"), f"{name} accepted {kind}"  # no known failures: valid


def test_a_loader_that_let_an_exception_escape_would_be_caught(tmp_path):
    """The property above can fail: a loader without its catch-all lets numpy's zlib error out."""
    data = FRAMES.read_bytes()
    path = tmp_path / "bad.npz"
    path.write_bytes(mutate(data, "flip", len(data) // 2, b"\xff" * 16))
    with pytest.raises(Exception) as info:
        with np.load(path, allow_pickle=False) as npz:
            {k: npz[k] for k in npz.files}
    assert not isinstance(info.value, MapSuiteError)
    with pytest.raises(MapSuiteError):
        load_frames(path)


def test_a_valid_copy_still_loads(tmp_path):
    for name, (make, load) in LOADERS.items():
        source = make(tmp_path)
        copy = tmp_path / (name + "_copy" + source.suffix)
        shutil.copy(source, copy)
        load(copy)

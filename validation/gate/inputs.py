"""What a gate run starts from, checked before any work: model, profile, reference frames.

With no model the shipped default model is used (``map_core.model.default.default_model_path``);
with no reference, the model's own training data: the checkpoint's provenance ``data_path``
(as written, relative to the checkpoint, or relative to the package root), else the shipped
training set ``map_core/data/water_classical_216.npz``, whichever has the sha256 recorded in
the checkpoint. Every problem is one MapSuiteError line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from map_core.atoms.frames import load_frames
from map_core.errors import MapSuiteError
from map_core.files import sha256_file
from map_core.model.checkpoint import check_voxel_size, load_model
from map_core.model.default import default_model_path
from map_core.training.crops import split_frames, voxelise
from validation.gate.boxes import box_geometry
from validation.gate.profile import load_profile

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_TRAINING_SET = PACKAGE_ROOT / "map_core" / "data" / "water_classical_216.npz"


@dataclass
class GateInputs:
    """A loaded model and reference and a validated profile, ready for a gate run."""

    model_path: Path
    model_sha256: str
    model: object
    payload: dict
    profile: object
    reference_path: Path
    reference_sha256: str
    reference_source: str
    frames: object
    train_indices: list
    heldout_indices: list


def resolve_inputs(model=None, profile="quick", reference=None, seed=None) -> GateInputs:
    """Load and check everything a gate run needs; raise MapSuiteError (one line) on any problem.

    model: checkpoint path or None for the shipped default; profile: shipped name or TOML path;
    reference: frames file or None for the model's training data; seed: overrides the profile's.
    """
    prof = load_profile(profile).with_seed(seed)
    model_path = Path(model) if model is not None else default_model_path()
    net, payload = load_model(model_path)
    box_geometry(net.config, prof["sampling"])  # refuses regions under 4 voxels
    ref_path, source = _find_reference(reference, payload, model_path)
    frames = load_frames(ref_path)
    voxel = net.config.voxel_nm
    if "voxel_nm" in frames.meta:
        check_voxel_size(voxel, float(frames.meta["voxel_nm"]), ref_path)
    check_water(frames, ref_path)
    if np.any(frames.box.min(axis=1) < 4 * voxel):
        raise MapSuiteError(f"reference boxes are smaller than 4 voxels of {voxel} nm", ref_path)
    voxelise(frames, net.config.coder(), ref_path)  # refuses frames whose atoms collide at the model's voxel
    fraction = float((payload["provenance"].get("settings") or {}).get("test_fraction", 0.2))
    train_idx, held_idx = split_frames(len(frames), fraction)
    return GateInputs(model_path=model_path, model_sha256=sha256_file(model_path), model=net, payload=payload,
                      profile=prof, reference_path=ref_path, reference_sha256=sha256_file(ref_path),
                      reference_source=source, frames=frames, train_indices=train_idx, heldout_indices=held_idx)


def check_water(frames, path) -> None:
    """Refuse reference frames holding atoms other than water's O and H (one MapSuiteError line)."""
    elements = set(np.unique(np.concatenate(frames.elements)))
    if not elements <= {"O", "H"}:
        raise MapSuiteError(f"reference frames hold {sorted(elements - {'O', 'H'})}; the gate compares water (O, H)", path)


def _find_reference(reference, payload, model_path: Path) -> tuple:
    """(path, how it was found) of the reference frames."""
    if reference is not None:
        path = Path(reference)
        if not path.exists():
            raise MapSuiteError("no such reference frames file", path)
        return path, "given (--reference)"
    prov = payload.get("provenance") or {}
    want = prov.get("data_sha256")
    recorded = prov.get("data_path")
    candidates = []
    if recorded:
        p = Path(recorded)
        candidates += [(p, "checkpoint provenance"), (model_path.parent / p, "checkpoint provenance, beside the model"),
                       (PACKAGE_ROOT / p, "checkpoint provenance, package root"),
                       (model_path.parent / p.name, "checkpoint provenance, beside the model")]
    candidates.append((SHIPPED_TRAINING_SET, "shipped training set"))
    mismatched = []
    for path, how in candidates:
        if path.is_file():
            if want is None or sha256_file(path) == want:
                return path, how
            mismatched.append(str(path))
    if mismatched:
        raise MapSuiteError(f"the model's training data was not found: {', '.join(dict.fromkeys(mismatched))} "
                            "differ(s) from the checkpoint's data_sha256; pass --reference FRAMES.npz", model_path)
    raise MapSuiteError(f"the model's training data {recorded!r} was not found and no shipped training set exists; "
                        "pass --reference FRAMES.npz", model_path)

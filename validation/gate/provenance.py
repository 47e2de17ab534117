"""Provenance of a gate run: model, reference data, profile seed, package versions, machine."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from importlib import metadata

import openmm

from map_core.files import shown_path


def provenance(inp, command: str | None = None) -> dict:
    """Model, data, profile, packages, seed and machine of a run."""
    versions = {"python": sys.version.split()[0]}
    for pkg in ("map-suite", "torch", "numpy", "scipy", "openmm", "mdtraj", "freud-analysis", "jinja2", "matplotlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    payload = inp.payload or {}
    prov = payload.get("provenance") or {}
    train_keys = ("data_path", "data_sha256", "steps", "seed", "test_cross_entropy", "baseline_cross_entropy",
                  "train_loss_last", "frames", "train_frames", "test_frames", "wall_time_s", "class_frequencies")
    try:
        platforms = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    except Exception:  # provenance must never stop a report
        platforms = []
    if inp.model is not None:
        judged = {"model": {"path": shown_path(inp.model_path), "sha256": inp.model_sha256, "config": inp.model.config.to_dict(),
                            "receptive_field": payload.get("receptive_field"),
                            "training": {k: prov.get(k) for k in train_keys if k in prov},
                            "training_settings": prov.get("settings"), "training_data_meta": prov.get("data_meta")}}
    else:  # boxes from another generator (validation.gate.sources.WindowSource)
        src = inp.source
        judged = {"model": None, "boxes": {"path": shown_path(src.path), "sha256": src.identity, "boxes": len(src.frames),
                                           "meta": src.frames.meta, "judging": src.judging}}
    ref = inp.reference.summary()
    ref["is_training_data"] = prov.get("data_sha256") == inp.reference.sha256 if payload else None
    return {
        **judged,
        "reference": ref,
        "seed": inp.profile.seed,
        "versions": versions,
        "machine": {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "node": platform.node(), "openmm_platforms": platforms},
        "command": command,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    }

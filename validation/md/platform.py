"""Choice of the OpenMM platform: by name, or the fastest one present."""

from __future__ import annotations

import openmm

from map_core.errors import MapSuiteError

PREFERENCE = ("CUDA", "OpenCL", "CPU", "Reference")


def available_platforms() -> list[str]:
    """Names of the OpenMM platforms this installation can use."""
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def pick_platform(name: str | None = None, threads: int | None = None):
    """Return (openmm.Platform, properties dict).

    name: 'CUDA', 'OpenCL', 'CPU' or 'Reference' (case-insensitive); None picks the first
    present in CUDA > OpenCL > CPU > Reference. threads: CPU threads (CPU platform only).
    Raises MapSuiteError naming the available platforms if `name` is not present.
    """
    present = available_platforms()
    if name is None:
        chosen = next(p for p in PREFERENCE if p in present)
    else:
        match = [p for p in present if p.lower() == name.lower()]
        if not match:
            raise MapSuiteError(f"OpenMM platform {name!r} is not available (available: {', '.join(present)})")
        chosen = match[0]
    properties = {}
    if chosen == "CPU" and threads:
        properties["Threads"] = str(int(threads))
    if chosen in ("CUDA", "OpenCL"):
        properties["Precision"] = "mixed"
    return openmm.Platform.getPlatformByName(chosen), properties


def describe_platform(context) -> dict:
    """{"platform", "device", "precision"} of an OpenMM Context: on CUDA and OpenCL the GPU's name and
    precision (OpenMM's DeviceName and Precision properties); on the CPU platform its thread count
    (precision None: not a property there)."""
    platform = context.getPlatform()
    name = platform.getName()
    info = {"platform": name, "device": name.lower(), "precision": None}
    if name in ("CUDA", "OpenCL"):
        info["device"] = platform.getPropertyValue(context, "DeviceName")
        info["precision"] = platform.getPropertyValue(context, "Precision")
    elif name == "CPU":
        info["device"] = f"cpu, {platform.getPropertyValue(context, 'Threads')} threads"
    return info

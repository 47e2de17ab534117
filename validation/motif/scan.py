"""Rare-motif scan (seed 000, Results 2): the density of water in probe cubes over training frames.

Seed 000 probes cubes of 25^3 voxels of 0.025 nm (0.625 nm) and finds a dominant local density
of 0.996 g/cm3 and low-density motifs of 0.614 g/cm3 with a probability of about 4.5 %. Here the
probe is a cube of `probe_nm` (default: the model's voxel times round(0.625 nm / voxel), so that the
motif is a whole number of voxels) centred on a grid of points `stride_nm` apart in every
periodic frame. A probe's density counts the molecules whose oxygen lies in the cube, each with
the mass of one water (18.01528 g/mol), over the cube's volume: with 7 molecules in a 0.6 nm cube
that is 0.968 g/cm3, and the values come in steps of one molecule (0.138 g/cm3 at 0.6 nm).

Sites: probes at or below the threshold (``threshold_g_cm3``, or the density at ``quantile``), at
most one per frame: its densest such probe (the first on the grid among equals), i.e. the tail's
typical low-density motif, as seed 000's (0.614 g/cm3 is 5 molecules in its 0.625 nm probe; the
threshold at the default quantile here is 5 molecules in 0.60 nm). Sorted densest first, then by
frame; at most ``max_sites``. A lower ``threshold`` reaches rarer motifs (down to empty cubes). The motif of a site: the complete molecules whose oxygen
lies in its probe cube, made whole, with positions relative to the cube's centre (nm).
Units: nm, g/cm3.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from map_core.atoms.encoding import Encoding
from map_core.atoms.molecules import make_whole, water_indices
from map_core.errors import MapSuiteError
from map_core.files import write_text_atomic
from validation.observables.density import AVOGADRO

WATER_G_MOL = 18.01528
SEED_PROBE_NM = 0.625  # seed 000: 25 voxels of 0.025 nm
SEED_000 = {"probe_nm": SEED_PROBE_NM, "dominant_g_cm3": 0.996, "low_g_cm3": 0.614, "low_probability": 0.045}


def default_probe_nm(voxel_nm: float) -> float:
    """Seed 000's 0.625 nm probe as a whole number of the model's voxels (0.60 nm at 0.05 nm)."""
    return max(1, round(SEED_PROBE_NM / voxel_nm)) * voxel_nm


def molecule_density(n_molecules, probe_nm: float) -> np.ndarray:
    """g/cm3 of `n_molecules` waters in a cube of side `probe_nm` nm."""
    return np.asarray(n_molecules) * WATER_G_MOL / AVOGADRO / (probe_nm ** 3 * 1e-21)


def _oxygens(frames, f: int) -> tuple:
    """(whole positions (N, 3) nm, (M, 3) water atom indices, box (3,)) of frame f."""
    pos, el, mol, box = frames.positions[f], frames.elements[f], frames.molecule[f], np.asarray(frames.box[f], float)
    try:
        trip = water_indices(el, mol, strict=False)
    except ValueError as exc:
        raise MapSuiteError(f"frame {f}: {exc}") from None
    return make_whole(pos, el, mol, box), trip, box


def probe_centres(box, stride_nm: float) -> np.ndarray:
    """(P, 3) centres, nm, of a periodic grid about `stride_nm` apart (a whole number per edge)."""
    axes = [(np.arange(n) + 0.5) * (L / n) for L, n in ((L, max(1, round(L / stride_nm))) for L in box)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def probe_counts(frames, probe_nm: float, stride_nm: float) -> list:
    """Per frame, ((P, 3) centres nm, (P,) molecules whose oxygen is in each probe cube)."""
    out = []
    for f in range(len(frames)):
        pos, trip, box = _oxygens(frames, f)
        if np.any(probe_nm >= box):
            raise MapSuiteError(f"a probe of {probe_nm:g} nm does not fit in frame {f}'s box {box.round(3).tolist()} nm")
        centres = probe_centres(box, stride_nm)
        oxygen = np.mod(pos[trip[:, 0]], box)
        tree = cKDTree(oxygen, boxsize=box)
        # Chebyshev ball of radius probe/2 = the cube; a hair less so that a cube holds [c - h, c + h)
        counts = tree.query_ball_point(np.mod(centres, box), r=0.5 * probe_nm * (1 - 1e-12), p=np.inf, return_length=True)
        out.append((centres, np.asarray(counts, dtype=np.int64)))
    return out


def scan_frames(frames, probe_nm: float, stride_nm: float | None = None, quantile: float | None = 0.045,
                threshold: float | None = None, max_sites: int = 50, counts: list | None = None) -> dict:
    """The scan as a JSON-ready dict: distribution, tail, and low-density sites (see module doc).

    stride_nm: default probe_nm / 4. counts: ``probe_counts`` of these frames, if already made. quantile: sites at or below the density of this quantile
    (default 0.045, seed 000's probability); threshold (g/cm3) replaces it when given.
    """
    stride_nm = probe_nm / 4 if stride_nm is None else stride_nm
    if not (np.isfinite(probe_nm) and probe_nm > 0 and np.isfinite(stride_nm) and stride_nm > 0):
        raise MapSuiteError(f"probe ({probe_nm}) and stride ({stride_nm}) must be positive nm")
    per_frame = probe_counts(frames, probe_nm, stride_nm) if counts is None else counts
    counts = np.concatenate([c for _, c in per_frame])
    dens = molecule_density(counts, probe_nm)
    values, freq = np.unique(counts, return_counts=True)
    peak = int(values[np.argmax(freq)])
    if threshold is None:
        threshold = float(np.quantile(dens, quantile))
    tail = float(np.mean(dens <= threshold + 1e-9))
    sites = []
    for f, (centres, c) in enumerate(per_frame):
        low = np.flatnonzero(molecule_density(c, probe_nm) <= threshold + 1e-9)
        if len(low):
            i = int(low[np.argmax(c[low])])
            sites.append({"frame": f, "centre_nm": [float(v) for v in centres[i]],
                          "density_g_cm3": float(molecule_density(c[i], probe_nm)), "molecules": int(c[i])})
    sites = sorted(sites, key=lambda s: (-s["density_g_cm3"], s["frame"]))[:max_sites]
    return {
        "probe_nm": float(probe_nm), "stride_nm": float(stride_nm), "frames": len(frames), "probes": int(len(counts)),
        "molecules_per_probe": {"values": values.tolist(), "counts": freq.tolist()},
        "density_g_cm3": {"values": molecule_density(values, probe_nm).tolist(), "mean": float(dens.mean()),
                          "std": float(dens.std()), "dominant": float(molecule_density(peak, probe_nm))},
        "threshold_g_cm3": float(threshold), "quantile": quantile, "tail_probability": tail,
        "sites": sites, "seed_000": SEED_000,
    }


def motif_atoms(frames, site: dict, probe_nm: float) -> tuple:
    """(positions (3M, 3) nm relative to the probe's centre, elements (3M,)) of the complete
    molecules whose oxygen lies in the site's probe cube, O then H H per molecule."""
    f = int(site["frame"])
    if not 0 <= f < len(frames):
        raise MapSuiteError(f"site frame {f} is not in the data ({len(frames)} frames)")
    pos, trip, box = _oxygens(frames, f)
    centre = np.asarray(site["centre_nm"], float)
    rel_o = (pos[trip[:, 0]] - centre + box / 2) % box - box / 2  # minimum image
    inside = np.all((rel_o >= -probe_nm / 2) & (rel_o < probe_nm / 2), axis=1)
    trip = trip[inside]
    rel = pos[trip] - pos[trip[:, :1]] + rel_o[inside][:, None, :]  # whole molecules about their O
    return rel.reshape(-1, 3), np.tile(np.array(["O", "H", "H"]), len(trip))


def voxelise_motif(positions, elements, coder: Encoding, probe_nm: float, box_shape) -> tuple:
    """((m, m, m) uint8 classes, the motif's centre in the grid, nm) of a motif (positions relative
    to its centre, nm) as the model
    encodes training frames: the probe's round(probe_nm / voxel) voxels, plus room for hydrogens
    that stick out of it (atom classes only), plus one empty layer on the high side where needed
    so that the motif can sit at the exact centre of `box_shape` (Z, Y, X) voxels."""
    v = coder.voxel_nm
    core = max(1, round(probe_nm / v))
    pad = 0 if coder.whole_molecules else math.ceil(0.11 / v)  # O-H 0.1 nm: H of a molecule whose O is inside
    side = core + 2 * pad
    if any((int(n) - side) % 2 for n in box_shape):
        side += 1
    shifted = np.asarray(positions, float).reshape(-1, 3) + (core / 2 + pad) * v
    molecule = np.repeat(np.arange(len(shifted) // 3), 3)
    grid, _ = coder.encode(shifted, np.asarray(elements), np.full(3, side * v), periodic=False, clip=True, molecule=molecule)
    return grid.astype(np.uint8), (core / 2 + pad) * v


SCAN_FORMAT = "map-suite motif scan"


def write_scan(path, scan: dict) -> None:
    """Write a scan (``scan_frames`` plus ``data``) as JSON, atomically."""
    write_text_atomic(Path(path), json.dumps({"format": SCAN_FORMAT, **scan}, indent=1, sort_keys=True))


def load_scan(path) -> dict:
    """Read a scan file; any defect is one MapSuiteError naming the file."""
    path = Path(path)
    try:
        scan = json.loads(path.read_text())
    except FileNotFoundError:
        raise MapSuiteError("no such file", path) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MapSuiteError(f"not a readable scan file ({exc.__class__.__name__})", path) from None
    try:
        if scan.get("format") != SCAN_FORMAT:
            raise ValueError("not made by map-suite motif scan")
        probe = float(scan["probe_nm"])
        if not (math.isfinite(probe) and probe > 0):
            raise ValueError(f"probe_nm {probe} is not a positive length")
        if not isinstance(scan["data"]["sha256"], str) or not isinstance(scan["data"]["path"], str):
            raise ValueError("no data file recorded")
        for k, site in enumerate(scan["sites"]):
            centre = [float(c) for c in site["centre_nm"]]
            if len(centre) != 3 or not all(math.isfinite(c) for c in centre):
                raise ValueError(f"site {k} has no finite centre")
            if isinstance(site["frame"], bool) or int(site["frame"]) != site["frame"] or site["frame"] < 0:
                raise ValueError(f"site {k} names no frame")
            float(site["density_g_cm3"])
        for key in ("density_g_cm3", "tail_probability", "threshold_g_cm3", "seed_000"):
            scan[key]  # noqa: B018 - present, as the report needs them
    except (AttributeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise MapSuiteError(f"not a valid scan file ({exc.__class__.__name__}: {exc})", path) from None
    return scan

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

import itertools
import json
import math
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames_check import BOX_NM
from map_core.atoms.molecules import make_whole, water_indices
from map_core.atoms.voxels import check_memory_budget
from map_core.errors import MapSuiteError
from map_core.files import write_text_atomic
from map_core.values import is_real, shown_value
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


def _oxygens(frames, f: int, first: int = 0, source=None) -> tuple:
    """(whole positions (N, 3) nm, (M, 3) water atom indices, box (3,)) of frame f (frame first + f of `source`)."""
    pos, el, mol, box = frames.positions[f], frames.elements[f], frames.molecule[f], np.asarray(frames.box[f], float)
    try:
        trip = water_indices(el, mol, strict=False)
    except ValueError as exc:
        raise MapSuiteError(f"frame {first + f}: {exc}", source) from None
    return make_whole(pos, el, mol, box), trip, box


def probe_centres(box, stride_nm: float) -> np.ndarray:
    """(P, 3) centres, nm, of a periodic grid about `stride_nm` apart (a whole number per edge)."""
    axes = [(np.arange(n) + 0.5) * (L / n) for L, n in ((L, max(1, round(L / stride_nm))) for L in box)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def probe_counts(frames, probe_nm: float, stride_nm: float, first: int = 0, source=None) -> list:
    """Per frame, ((P, 3) centres nm, (P,) molecules whose oxygen is in each probe cube).

    first, source: the number of the first of `frames` in their file, and the file, for refusals."""
    out = []
    for f in range(len(frames)):
        pos, trip, box = _oxygens(frames, f, first, source)
        if np.any(probe_nm >= box):
            raise MapSuiteError(f"a probe of {probe_nm:g} nm does not fit in frame {first + f}'s box "
                                f"{box.round(3).tolist()} nm", source)
        # the centres (3 floats) and counts (1 int) of every probe: refused before a huge box allocates them
        n_probes = float(np.prod([max(1.0, np.round(L / stride_nm)) for L in box]))
        check_memory_budget(32 * n_probes, f"{n_probes:.3g} probes of frame {first + f}", source)
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
        "probe_nm": float(probe_nm), "stride_nm": float(stride_nm), "frames": len(frames), "probes": len(counts),
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


# Probe and stride edges, nm: a frames file's box edges (the smallest voxel up to 1000 nm); a probe
# must fit in a box.
LENGTH_NM = BOX_NM
MOLECULES_MAX = 2**31 - 1  # molecules in one probe: at most a frame's (molecule ids are int32)
RELATIVE = 1e-6  # tolerance of the numbers a scan derives from its histogram (JSON keeps 17 digits)


def load_scan(path) -> dict:
    """Read a scan file, every field checked (`check_scan`); any defect is one MapSuiteError naming the file."""
    path = Path(path)
    try:
        scan = json.loads(path.read_text())
    except FileNotFoundError:
        raise MapSuiteError("no such file", path) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MapSuiteError(f"not a readable scan file ({exc.__class__.__name__})", path) from None
    try:
        check_scan(scan)
    except (TypeError, ValueError) as exc:
        raise MapSuiteError(f"not a valid scan file: {exc}", path) from None
    except OverflowError as exc:  # an integer past what a float holds, in a relation
        raise MapSuiteError(f"not a valid scan file ({exc})", path) from None
    return scan


def check_scan(scan) -> None:
    """ValueError (or TypeError) unless `scan` holds what ``scan_frames`` and the motif scan command write.

    Each field has its type and range (lengths within LENGTH_NM, counts whole and positive,
    probabilities in [0, 1]), and the relations hold that make a scan one histogram: the counts add
    up to the probes; each density, the mean, spread and dominant density follow from the molecule
    counts and the probe; the tail probability is the share of probes at or below the threshold;
    each site lies in its own frame of the scan, at or below the threshold, holding a listed count.
    """
    if not isinstance(scan, dict) or scan.get("format") != SCAN_FORMAT:
        raise ValueError("not made by map-suite motif scan")
    probe = _length(scan, "probe_nm")
    _length(scan, "stride_nm")
    frames, probes = _whole(scan, "frames", 1), _whole(scan, "probes", 1)
    if probes < frames:
        raise ValueError(f"{probes} probes in {frames} frames: every frame holds at least one")
    quantile = scan.get("quantile")
    if quantile is not None and not (is_real(quantile) and 0 < quantile < 1):
        raise ValueError(f"quantile {shown_value(quantile)} is not a fraction in (0, 1)")
    table = _table(scan, "molecules_per_probe")
    molecules, counts = _wholes(table, "values", 0), _wholes(table, "counts", 1)
    if molecules and max(molecules) > MOLECULES_MAX:
        raise ValueError(f"a probe of {max(molecules)} molecules: more than a frame holds ({MOLECULES_MAX})")
    if not molecules or len(counts) != len(molecules) or any(b <= a for a, b in itertools.pairwise(molecules)):
        raise ValueError("molecules_per_probe needs increasing molecule counts, each with its number of probes")
    if sum(counts) != probes:
        raise ValueError(f"molecules_per_probe counts add up to {sum(counts)} probes, not {probes}")
    density = np.asarray(molecule_density(molecules, probe), dtype=np.float64)
    weights = np.asarray(counts, dtype=np.float64) / probes
    mean = float(weights @ density)
    expected = {"mean": mean, "std": float(np.sqrt(weights @ (density - mean) ** 2)),
                "dominant": float(density[int(np.argmax(counts))])}
    dens = _table(scan, "density_g_cm3")
    values = dens.get("values")
    if not isinstance(values, list) or len(values) != len(density) or not all(
            is_real(v) and _close(v, d) for v, d in zip(values, density)):
        raise ValueError("density_g_cm3 values are not the densities of the molecule counts in the probe")
    for key, value in expected.items():
        if not (is_real(dens.get(key)) and _close(dens[key], value)):
            raise ValueError(f"density_g_cm3 {key} {shown_value(dens.get(key))} is not the histogram's ({value:.6g})")
    threshold = scan.get("threshold_g_cm3")
    if not (is_real(threshold) and threshold >= 0):
        raise ValueError(f"threshold_g_cm3 {shown_value(threshold)} is not a density")
    tail = float(weights[density <= threshold + 1e-9].sum())
    if not (is_real(scan.get("tail_probability")) and _close(scan["tail_probability"], tail)):
        raise ValueError(f"tail_probability {shown_value(scan.get('tail_probability'))} is not the share of probes at or "
                         f"below the threshold ({tail:.6g})")
    _check_sites(scan.get("sites"), frames, probe, threshold, set(molecules))
    seed = _table(scan, "seed_000")
    if set(seed) != set(SEED_000) or not all(is_real(seed[k]) and _close(seed[k], v) for k, v in SEED_000.items()):
        raise ValueError(f"seed_000 is not seed 000's numbers {SEED_000}")
    data = _table(scan, "data")
    if not (isinstance(data.get("path"), str) and data["path"].strip() and "\0" not in data["path"]):
        raise ValueError("data path is no file name")
    if not (isinstance(data.get("sha256"), str) and len(data["sha256"]) == 64
            and all(c in "0123456789abcdef" for c in data["sha256"])):
        raise ValueError("data sha256 is not a sha256 (64 hex digits)")


def _check_sites(sites, frames: int, probe: float, threshold: float, molecules: set) -> None:
    """Sites: at most one per frame of the scan, each a probe centre (nm) holding a listed count of molecules
    at its density, at or below the threshold."""
    if not isinstance(sites, list) or len(sites) > frames:
        raise ValueError(f"sites must be a list of at most one site per frame ({frames})")
    seen = set()
    for k, site in enumerate(sites):
        if not isinstance(site, dict):
            raise TypeError(f"site {k} is not a site")
        frame, n = site.get("frame"), site.get("molecules")
        if not (_integer(frame) and 0 <= frame < frames) or frame in seen:
            raise ValueError(f"site {k} frame {shown_value(frame)} is not one more of the scan's frames 0..{frames - 1}")
        seen.add(frame)
        centre = site.get("centre_nm")
        if not (isinstance(centre, list) and len(centre) == 3
                and all(is_real(c) and 0 < c <= LENGTH_NM[1] for c in centre)):
            raise ValueError(f"site {k} centre_nm {shown_value(centre)} is not a point (3 lengths, nm) of a box")
        if not (_integer(n) and n in molecules):
            raise ValueError(f"site {k} molecules {shown_value(n)} is not a count of the histogram")
        d = site.get("density_g_cm3")
        if not (is_real(d) and _close(d, float(molecule_density(n, probe))) and d <= threshold + 1e-9):
            raise ValueError(f"site {k} density_g_cm3 {shown_value(d)} is not the density of its {n} molecules at or below "
                             f"the threshold")


def _integer(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _close(a, b) -> bool:
    return math.isclose(a, b, rel_tol=RELATIVE, abs_tol=1e-12)


def _length(scan: dict, key: str) -> float:
    value, (lo, hi) = scan.get(key), LENGTH_NM
    if not (is_real(value) and lo <= value <= hi):
        raise ValueError(f"{key} {shown_value(value)} is not a length from {lo:g} to {hi:g} nm")
    return float(value)


def _whole(scan: dict, key: str, lowest: int) -> int:
    value = scan.get(key)
    if not (_integer(value) and value >= lowest):
        raise ValueError(f"{key} {shown_value(value)} is not a whole number >= {lowest}")
    return value


def _wholes(table: dict, key: str, lowest: int) -> list:
    values = table.get(key)
    if not (isinstance(values, list) and all(_integer(v) and v >= lowest for v in values)):
        raise ValueError(f"{key} must be a list of whole numbers >= {lowest}")
    return values


def _table(scan: dict, key: str) -> dict:
    value = scan.get(key)
    if not isinstance(value, dict):
        raise TypeError(f"{key} is not a table")
    return value



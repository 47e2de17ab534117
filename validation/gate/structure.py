"""Structure checks: generated boxes against training windows, both voxelised the same way.

`measure_structure` reduces one ensemble (the analysed regions of its boxes, plus the whole
boxes for the defect map) to histograms, curves and per-box numbers that add up and fit in
JSON; `structure_checks` turns two such measurements into checks. Observables come from the
``validation.observables`` modules with ``periodic=False``; the RDF uses the edge-corrected open-box
estimator of ``validation.observables.rdf``.

Every atom of the analysed region is a reference, and its neighbours are the atoms of the
region: the observables see the region inside a padded box (``padded``), so none of
its atoms counts as near a face and molecules near the region's faces simply have fewer
neighbours. Generated and training regions have the same shape, so the comparison is fair,
and in the small regions of the smoke profile this keeps every molecule instead of the few
lying 0.35 nm from every face. (Large regions of the paper profile are nearly all bulk.)

Distances between distributions: RMS difference of g(r) over [rdf_r_min, rdf_r_max];
Wasserstein-1 (earth mover's) distance in the observable's unit for bonds, angles,
tetrahedral order and hydrogen bonds; KL divergence D(P_train || P_gen) for Steinhardt q4, q6
as in seed 000 Fig. 5. Lengths nm, angles radians, energies kJ/mol.
"""

from __future__ import annotations

import math

import numpy as np

from map_core.atoms.frames import Frames
from validation.gate.checks import Check, histogram, kl_hist, rms_difference, wasserstein_hist
from validation.observables.density import compute_density
from validation.observables.energy import compute_intermolecular_energy
from validation.observables.frame_tools import distance_to_faces, molecule_counts
from validation.observables.geometry import compute_hoh_angles, compute_oh_distances
from validation.observables.hbonds import compute_hbonds
from validation.observables.order import compute_steinhardt, compute_tetrahedral_order
from validation.observables.rdf import g_from_counts, open_rdf_counts

STRUCTURE_CHECKS = ("density", "orphan_rate", "g_OO", "g_OH", "g_HH", "oh_bond", "hoh_angle", "q4", "q6",
                    "tetrahedral", "hbonds", "energy", "classifier")
RDF_PAIRS = {"g_OO": ("O", "O"), "g_OH": ("O", "H"), "g_HH": ("H", "H")}
STEINHARDT_R_CUT = 0.35  # nm, oxygen neighbours for q_l (seed 000: 3.5 Å)
MAX_DENSITY = 3.0  # g/cm3; denser boxes get density and orphans only (see measure_structure)

# name -> (lo, hi, bins) of the fixed histogram grids (q4/q6 bins come from the profile)
HIST = {
    "oh_bond": (0.05, 0.15, 100),           # nm
    "hoh_angle": (0.0, math.pi, 180),       # rad, 1-degree bins
    "tetrahedral": (-1.5, 1.0, 125),
    "hbonds": (-0.5, 12.5, 13),             # bonds per molecule (donated + accepted)
    "defect_distance": (0.0, 1.0, 40),      # nm from the nearest face of the whole box
}


def measure_structure(region, whole, structure: dict, geometry) -> dict:
    """Histograms and per-box numbers of one ensemble.

    region: Frames of the analysed regions (open boxes); whole: Frames of the whole boxes;
    structure: the profile's [structure] section; geometry: validation.gate.boxes.BoxGeometry.
    """
    out = {"boxes": len(region), "molecules": int(molecule_counts(region).sum())}
    out["atoms"] = int(region.counts.sum())
    out["density_per_box"] = compute_density(region, periodic=False).tolist()
    orphans = [int(np.count_nonzero(m < 0)) for m in region.molecule]
    out["orphan_atoms"] = orphans
    out["region_atoms"] = region.counts.tolist()
    # Boxes far denser than any liquid (a broken model at high temperature) would take minutes
    # to analyse and fail anyway: only density and orphans are measured for them, and every
    # other check of the ensemble then fails as not measured.
    dense = np.asarray(out["density_per_box"]) > MAX_DENSITY
    out["too_dense_boxes"] = int(dense.sum())
    sane = region.select(np.flatnonzero(~dense)) if dense.any() else region
    if len(sane) == 0:
        out.update(rdf=None, hist=None, energy_per_box=[None] * len(region), defects=defect_map(whole, geometry))
        return out
    rdf = {}
    for name, pair in RDF_PAIRS.items():
        r, counts, expected = open_rdf_counts(sane, pair, structure["rdf_r_max_nm"], structure["rdf_bin_nm"])
        rdf[name] = {"r": r.tolist(), "counts": counts.tolist(), "expected": expected.tolist()}
    out["rdf"] = rdf
    open_region = padded(sane)
    hist = {
        "oh_bond": histogram(compute_oh_distances(sane, periodic=False), *HIST["oh_bond"]),
        "hoh_angle": histogram(compute_hoh_angles(sane, periodic=False), *HIST["hoh_angle"]),
        "tetrahedral": histogram(compute_tetrahedral_order(open_region, periodic=False), *HIST["tetrahedral"]),
        "hbonds": histogram(compute_hbonds(open_region, periodic=False).sum(axis=1), *HIST["hbonds"]),
    }
    for l in (4, 6):
        q = compute_steinhardt(open_region, l=l, r_cut=STEINHARDT_R_CUT, periodic=False)
        hist[f"q{l}"] = histogram(q[np.isfinite(q)], 0.0, 1.0, structure["q_bins"])
    out["hist"] = {k: v.tolist() for k, v in hist.items()}
    energy = compute_intermolecular_energy(sane, periodic=False, platform="Reference")
    out["energy_per_box"] = [None if not np.isfinite(e) else float(e) for e in energy] + [None] * int(dense.sum())
    out["defects"] = defect_map(whole, geometry)
    return out


def padded(frames, pad: float = 1.0):
    """The same atoms in boxes `pad` nm larger on every side (positions shifted by `pad`), so
    that open-box observables treat no atom as near a face."""
    return Frames([np.asarray(p) + pad for p in frames.positions], list(frames.elements), list(frames.molecule),
                  np.asarray(frames.box) + 2.0 * pad, dict(frames.meta))


def defect_map(whole, geometry) -> dict:
    """Where orphan atoms sit in the whole boxes: counts of orphans and of all atoms against the
    distance to the nearest face (nm), and against the plane depth z (nm) within the analysed
    columns (x and y inside the region, so the side faces do not blur the depth profile)."""
    col_lo, col_hi = geometry.region_lower_nm[0], geometry.region_upper_nm[0]
    lo, hi, bins = HIST["defect_distance"]
    z_max = float(np.max(whole.box[:, 2]))
    dist_all = np.zeros(bins)
    dist_orph = np.zeros(bins)
    z_all = np.zeros(bins)
    z_orph = np.zeros(bins)
    for pos, mol, box in zip(whole.positions, whole.molecule, whole.box):
        d = distance_to_faces(pos, box)
        orphan = np.asarray(mol) < 0
        dist_all += histogram(d, lo, hi, bins)
        dist_orph += histogram(d[orphan], lo, hi, bins)
        cols = np.all((pos[:, :2] >= col_lo) & (pos[:, :2] < col_hi), axis=1)
        z_all += histogram(pos[cols, 2], 0.0, z_max, bins)
        z_orph += histogram(pos[cols & orphan, 2], 0.0, z_max, bins)
    return {"distance_edges": np.linspace(lo, hi, bins + 1).tolist(), "distance_atoms": dist_all.tolist(),
            "distance_orphans": dist_orph.tolist(), "z_edges": np.linspace(0.0, z_max, bins + 1).tolist(),
            "z_atoms": z_all.tolist(), "z_orphans": z_orph.tolist(),
            "orphans": int(dist_orph.sum()), "atoms": int(dist_all.sum())}


def rdf_curve(meas: dict, name: str) -> tuple:
    """(r nm, g) of one measured RDF."""
    entry = meas["rdf"][name]
    return np.asarray(entry["r"]), g_from_counts(entry["counts"], entry["expected"])


def _mean(values) -> float:
    v = np.array([x for x in values if x is not None], dtype=float)
    return float(v.mean()) if len(v) else float("nan")


def structure_values(gen: dict, ref: dict, structure: dict) -> dict:
    """name -> (value, detail) of every structure check except the classifier."""
    out = {}
    rho_g, rho_r = _mean(gen["density_per_box"]), _mean(ref["density_per_box"])
    out["density"] = (abs(rho_g / rho_r - 1.0) if rho_r > 0 else float("nan"),
                      f"generated {rho_g:.4f} g/cm3, training {rho_r:.4f} g/cm3 (whole region, every atom)")
    rate_g = sum(gen["orphan_atoms"]) / max(sum(gen["region_atoms"]), 1) if sum(gen["region_atoms"]) else float("nan")
    rate_r = sum(ref["orphan_atoms"]) / max(sum(ref["region_atoms"]), 1)
    out["orphan_rate"] = (rate_g, f"orphan atoms per atom in the region: generated {rate_g:.4f}, training {rate_r:.4f}")
    if gen.get("rdf") is None or gen.get("too_dense_boxes"):
        why = f"not measured: {gen.get('too_dense_boxes')} of {gen['boxes']} boxes are denser than {MAX_DENSITY} g/cm3"
        for name in ("g_OO", "g_OH", "g_HH", "oh_bond", "hoh_angle", "tetrahedral", "hbonds", "q4", "q6", "energy"):
            out[name] = (float("nan"), why)
        return out
    for name in RDF_PAIRS:
        r, g_gen = rdf_curve(gen, name)
        _, g_ref = rdf_curve(ref, name)
        mask = r >= structure["rdf_r_min_nm"]
        out[name] = (rms_difference(g_gen, g_ref, mask),
                     f"RMS difference of g(r) over {structure['rdf_r_min_nm'] * 10:.1f}-{structure['rdf_r_max_nm'] * 10:.1f} Å")
    for name, unit in (("oh_bond", "nm"), ("hoh_angle", "rad"), ("tetrahedral", ""), ("hbonds", "per molecule")):
        lo, hi, bins = HIST[name]
        hg, hr = np.asarray(gen["hist"][name]), np.asarray(ref["hist"][name])
        w1 = wasserstein_hist(hg, hr, (hi - lo) / bins)
        out[name] = (w1, f"Wasserstein-1 distance; means: generated {_hist_mean(hg, lo, hi):.4g}, "
                         f"training {_hist_mean(hr, lo, hi):.4g} {unit}".rstrip())
    for name in ("q4", "q6"):
        hg, hr = np.asarray(gen["hist"][name]), np.asarray(ref["hist"][name])
        out[name] = (kl_hist(hr, hg), f"KL divergence D(P_train || P_gen) over {int(hg.sum())} generated and "
                                      f"{int(hr.sum())} training oxygens")
    # Median over boxes: one clash (two molecules in one place) adds thousands of kJ/mol to its
    # box's mean, which would drown every other box; clashes show in g(r) at short range.
    e_g = float("nan") if any(e is None for e in gen["energy_per_box"]) else _median(gen["energy_per_box"])
    e_r = _median(ref["energy_per_box"])
    clashes = sum(1 for e in gen["energy_per_box"] if e is not None and e > 0)
    out["energy"] = (abs(e_g - e_r), f"intermolecular energy per molecule, median over boxes: generated {e_g:.2f}, "
                                     f"training {e_r:.2f} kJ/mol; {clashes} generated boxes with positive energy "
                                     "(open regions, so surface molecules count too)")
    return out


def _median(values) -> float:
    v = np.array([x for x in values if x is not None], dtype=float)
    return float(np.median(v)) if len(v) else float("nan")


def _hist_mean(counts, lo, hi) -> float:
    counts = np.asarray(counts, float)
    if counts.sum() <= 0:
        return float("nan")
    centres = np.linspace(lo, hi, len(counts) + 1)
    centres = 0.5 * (centres[1:] + centres[:-1])
    return float((counts * centres).sum() / counts.sum())


TITLES = {
    "density": ("density away from the burned-in region", "relative deviation", "density_rel"),
    "orphan_rate": ("orphan-defect rate", "fraction of atoms", "orphan_rate"),
    "g_OO": ("O-O radial distribution g(r)", "RMS", "g_OO"),
    "g_OH": ("O-H radial distribution g(r)", "RMS", "g_OH"),
    "g_HH": ("H-H radial distribution g(r)", "RMS", "g_HH"),
    "oh_bond": ("O-H bond-length distribution", "nm", "oh_bond_w1_nm"),
    "hoh_angle": ("H-O-H angle distribution", "rad", "hoh_angle_w1_rad"),
    "q4": ("Steinhardt q4 distribution", "nats", "q4_kl"),
    "q6": ("Steinhardt q6 distribution", "nats", "q6_kl"),
    "tetrahedral": ("tetrahedral order q distribution", "", "tetrahedral_w1"),
    "hbonds": ("hydrogen bonds per molecule", "bonds", "hbonds_w1"),
    "energy": ("intermolecular energy per molecule", "kJ/mol", "energy_kj_mol"),
    "classifier": ("classifier two-sample test (AUC)", "AUC", "classifier_auc"),
}


def structure_checks(values: dict, thresholds: dict, control: dict | None = None) -> list:
    """Checks from `values` (name -> (value, detail)), the profile's [thresholds] and, optionally,
    the same values measured on held-out training frames."""
    checks = []
    for name in STRUCTURE_CHECKS:
        if name not in values:
            continue
        title, unit, key = TITLES[name]
        value, detail = values[name]
        ctrl = control.get(name, (None, ""))[0] if control else None
        checks.append(Check(name=name, group="structure", title=title, value=float(value), threshold=thresholds[key],
                            relation="<=", unit=unit, detail=detail, control=ctrl))
    return checks

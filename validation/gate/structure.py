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

Which checks there are, and how each is measured and compared, is the registry's
(``validation.gate.registry`` rows with ``validation.gate.measures`` measures): this module
only runs them. Lengths nm, angles radians, energies kJ/mol.
"""

from __future__ import annotations

import numpy as np

from map_core.atoms.frames import Frames
from validation.gate.checks import Check, histogram
from validation.gate.measures import Ensemble
from validation.gate.registry import names, structure_rows
from validation.observables.density import compute_density
from validation.observables.frame_tools import distance_to_faces, molecule_counts

STRUCTURE_CHECKS = names("structure")
# Part of the cache keys of structure measurements: bump when measure_structure's output changes
# (2: H-bond rings and the O-O structure factor; 3: energy per molecule pooled and capped), so no
# cached measurement of an older kind is read.
MEASUREMENT_VERSION = 3
MAX_DENSITY = 3.0  # g/cm3; denser boxes get density and orphans only (see measure_structure)
DEFECT_DISTANCE_GRID = (0.0, 1.0, 40)  # nm from the nearest face of the whole box


def measure_structure(region, whole, structure: dict, geometry) -> dict:
    """Histograms and per-box numbers of one ensemble.

    region: Frames of the analysed regions (open boxes); whole: Frames of the whole boxes;
    structure: the profile's [structure] section; geometry: validation.gate.boxes.BoxGeometry.
    """
    out = {"boxes": len(region), "molecules": int(molecule_counts(region).sum())}
    out["atoms"] = int(region.counts.sum())
    out["density_per_box"] = compute_density(region, periodic=False).tolist()
    out["orphan_atoms"] = [int(np.count_nonzero(m < 0)) for m in region.molecule]
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
    ens = Ensemble(region=sane, open_region=padded(sane), structure=structure)
    for row in structure_rows(measured=True):
        if row.measure.slot in ("classifier", "combined"):
            continue  # features and the pooled test: the session's (validation.gate.classifier, .thresholds)
        value = row.measure.measure(ens)
        if row.measure.slot in ("rdf", "hist"):
            out.setdefault(row.measure.slot, {})[row.name] = value
        else:
            out[row.measure.slot] = value
    out["energy_per_box"] = out["energy_per_box"] + [None] * int(dense.sum())
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
    lo, hi, bins = DEFECT_DISTANCE_GRID
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


def structure_values(gen: dict, ref: dict, structure: dict) -> dict:
    """name -> (value, detail) of every structure check except the classifier and the combined test."""
    rows = [r for r in structure_rows() if r.measure.slot not in ("classifier", "combined")]
    if gen.get("rdf") is None or gen.get("too_dense_boxes"):
        why = f"not measured: {gen.get('too_dense_boxes')} of {gen['boxes']} boxes are denser than {MAX_DENSITY} g/cm3"
        return {r.name: r.measure.compare(r.name, gen, ref, structure) if not r.measure.liquid else (float("nan"), why)
                for r in rows}
    return {r.name: r.measure.compare(r.name, gen, ref, structure) for r in rows}


def structure_checks(values: dict, thresholds: dict, control: dict | None = None, coder=None) -> list:
    """Checks from `values` (name -> (value, detail)), the thresholds (a [thresholds] table) and,
    optionally, the same values measured on held-out training frames. `coder`: the judging encoding
    (None: continuous), whose facts mark the checks it fixes (extra["fixed_by_encoding"])."""
    checks = []
    for row in structure_rows():
        if row.name not in values:
            continue
        value, detail = values[row.name]
        ctrl = control.get(row.name, (None, ""))[0] if control else None
        checks.append(Check(name=row.name, group="structure", title=row.title, value=float(value),
                            threshold=thresholds[row.threshold_key or row.name], relation=row.relation, unit=row.unit, detail=detail,
                            control=ctrl, extra=fixed_by_encoding(row, coder)))
    return checks


def fixed_by_encoding(row, coder) -> dict:
    """{"fixed_by_encoding": why} if the judging encoding fixes the check of `row`, else {}."""
    if coder is None or row.fixed_by is None or not getattr(coder, row.fixed_by, False):
        return {}
    return {"fixed_by_encoding": f"{coder.name} encoding: {row.fixed_by.replace('_', ' ')}"}

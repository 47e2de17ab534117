"""How each structure check is measured: one object per kind of measurement.

A measure does two things for its check (a row of ``validation.gate.registry``):

- ``measure(ens)`` reduces one ensemble to numbers that add up over windows and fit in JSON
  (counts, histograms, per-box values), stored in the measurement dict under ``slot``;
- ``compare(name, gen, ref, structure)`` turns the generated and the training measurements into
  the check's value and a one-line detail.

``ens`` (``Ensemble``) holds the analysed regions of the boxes that are not denser than any
liquid (``region``: open boxes, every atom a reference) and the same atoms in boxes padded by
1 nm (``open_region``), so that no atom counts as near a face. Lengths nm, angles radians,
energies kJ/mol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from map_core.atoms.frames import Frames
from validation.gate.checks import histogram, kl_hist, rms_difference, shown, wasserstein_hist
from validation.observables.energy import compute_intermolecular_energy
from validation.observables.geometry import compute_hoh_angles, compute_oh_distances
from validation.observables.hbonds import compute_hbonds
from validation.observables.order import compute_steinhardt, compute_tetrahedral_order
from validation.observables.rdf import g_from_counts, open_rdf_counts

STEINHARDT_R_CUT = 0.35  # nm, oxygen neighbours for q_l (seed 000: 3.5 Å)


@dataclass(frozen=True)
class Ensemble:
    """What the measures read: `region` (Frames, open analysed regions), `open_region` (the same
    atoms padded by 1 nm), `structure` (the profile's [structure] section)."""

    region: Frames
    open_region: Frames
    structure: dict


class Measure:
    """Interface. slot: key of the measurement dict the measure writes (None: the header fields
    that measure_structure always writes); liquid: measured only for boxes no denser than a liquid."""

    slot: str | None = None
    liquid: bool = True

    def measure(self, ens: Ensemble):
        raise NotImplementedError

    def compare(self, name: str, gen: dict, ref: dict, structure: dict) -> tuple:
        raise NotImplementedError


def _mean(values) -> float:
    v = np.array([x for x in values if x is not None], dtype=float)
    return float(v.mean()) if len(v) else float("nan")


def _median(values) -> float:
    v = np.array([x for x in values if x is not None], dtype=float)
    return float(np.median(v)) if len(v) else float("nan")


def hist_mean(counts, lo, hi) -> float:
    """Mean of a histogram on [lo, hi] (bin centres); NaN if empty."""
    counts = np.asarray(counts, float)
    if counts.sum() <= 0:
        return float("nan")
    centres = np.linspace(lo, hi, len(counts) + 1)
    centres = 0.5 * (centres[1:] + centres[:-1])
    return float((counts * centres).sum() / counts.sum())


class Density(Measure):
    """Relative deviation of the mean density over boxes (the header's density_per_box, g/cm3)."""

    liquid = False

    def compare(self, name, gen, ref, structure):
        rho_g, rho_r = _mean(gen["density_per_box"]), _mean(ref["density_per_box"])
        return (abs(rho_g / rho_r - 1.0) if rho_r > 0 else float("nan"),
                f"generated {rho_g:.4f} g/cm3, training {rho_r:.4f} g/cm3 (whole region, every atom)")


class Orphans(Measure):
    """Orphan atoms per atom in the analysed regions (the header's orphan_atoms, region_atoms)."""

    liquid = False

    def compare(self, name, gen, ref, structure):
        rate_g = sum(gen["orphan_atoms"]) / max(sum(gen["region_atoms"]), 1) if sum(gen["region_atoms"]) else float("nan")
        rate_r = sum(ref["orphan_atoms"]) / max(sum(ref["region_atoms"]), 1)
        return rate_g, f"orphan atoms per atom in the region: generated {rate_g:.4f}, training {rate_r:.4f}"


@dataclass(frozen=True)
class Rdf(Measure):
    """RMS difference of g(r) over [rdf_r_min_nm, rdf_r_max_nm], from the edge-corrected open-box
    pair counts of validation.observables.rdf."""

    pair: tuple
    slot = "rdf"

    def measure(self, ens):
        st = ens.structure
        r, counts, expected = open_rdf_counts(ens.region, self.pair, st["rdf_r_max_nm"], st["rdf_bin_nm"])
        return {"r": r.tolist(), "counts": counts.tolist(), "expected": expected.tolist()}

    def compare(self, name, gen, ref, structure):
        r, g_gen = rdf_curve(gen, name)
        _, g_ref = rdf_curve(ref, name)
        mask = r >= structure["rdf_r_min_nm"]
        return (rms_difference(g_gen, g_ref, mask),
                f"RMS difference of g(r) over {structure['rdf_r_min_nm'] * 10:.1f}-{structure['rdf_r_max_nm'] * 10:.1f} Å")


def rdf_curve(meas: dict, name: str) -> tuple:
    """(r nm, g) of one measured RDF."""
    entry = meas["rdf"][name]
    return np.asarray(entry["r"]), g_from_counts(entry["counts"], entry["expected"])


@dataclass(frozen=True)
class Histogram(Measure):
    """A distribution of per-item values (`sample(ens)` -> 1-D array) on a fixed grid (lo, hi,
    bins; bins None: the profile's [structure] q_bins), compared by the Wasserstein-1 distance in
    the observable's unit (`distance` 'w1') or by KL divergence D(P_train || P_gen), nats ('kl',
    seed 000 Fig. 5)."""

    sample: object
    lo: float
    hi: float
    bins: int | None = None
    distance: str = "w1"
    mean_unit: str = ""
    slot = "hist"

    def grid(self, structure: dict) -> tuple:
        return self.lo, self.hi, self.bins if self.bins is not None else structure["q_bins"]

    def measure(self, ens):
        return histogram(self.sample(ens), *self.grid(ens.structure)).tolist()

    def compare(self, name, gen, ref, structure):
        hg, hr = np.asarray(gen["hist"][name]), np.asarray(ref["hist"][name])
        if self.distance == "kl":
            return kl_hist(hr, hg), (f"KL divergence D(P_train || P_gen) over {int(hg.sum())} generated and "
                                     f"{int(hr.sum())} training oxygens")
        lo, hi, bins = self.grid(structure)
        (mean_g, unit), (mean_r, _) = shown(hist_mean(hg, lo, hi), self.mean_unit), shown(hist_mean(hr, lo, hi), self.mean_unit)
        return wasserstein_hist(hg, hr, (hi - lo) / bins), (
            f"Wasserstein-1 distance; means: generated {mean_g:.4g}, training {mean_r:.4g} {unit}".rstrip())


class Energy(Measure):
    """Intermolecular q-TIP4P/F energy per molecule, kJ/mol: median over boxes of each box's mean."""

    slot = "energy_per_box"

    def measure(self, ens):
        energy = compute_intermolecular_energy(ens.region, periodic=False, platform="Reference")
        return [None if not np.isfinite(e) else float(e) for e in energy]

    def compare(self, name, gen, ref, structure):
        # Median over boxes: one clash (two molecules in one place) adds thousands of kJ/mol to its
        # box's mean, which would drown every other box; clashes show in g(r) at short range.
        e_g = float("nan") if any(e is None for e in gen["energy_per_box"]) else _median(gen["energy_per_box"])
        e_r = _median(ref["energy_per_box"])
        clashes = sum(1 for e in gen["energy_per_box"] if e is not None and e > 0)
        return abs(e_g - e_r), (f"intermolecular energy per molecule, median over boxes: generated {e_g:.2f}, "
                                f"training {e_r:.2f} kJ/mol; {clashes} generated boxes with positive energy "
                                "(open regions, so surface molecules count too)")


class Classifier(Measure):
    """Out-of-fold ROC AUC of a classifier telling generated from training molecules
    (validation.gate.classifier, seed 003); measured by the session from per-molecule features."""

    slot = "classifier"


def steinhardt(l: int):
    """Sampler of Steinhardt q_l of the oxygens with neighbours (within STEINHARDT_R_CUT)."""
    def sample(ens):
        q = compute_steinhardt(ens.open_region, l=l, r_cut=STEINHARDT_R_CUT, periodic=False)
        return q[np.isfinite(q)]
    return sample


def oh_distances(ens):
    return compute_oh_distances(ens.region, periodic=False)


def hoh_angles(ens):
    return compute_hoh_angles(ens.region, periodic=False)


def tetrahedral_order(ens):
    return compute_tetrahedral_order(ens.open_region, periodic=False)


def hbonds_per_molecule(ens):
    return compute_hbonds(ens.open_region, periodic=False).sum(axis=1)


HBONDS_GRID = (-0.5, 12.5, 13)   # bonds per molecule (donated + accepted)
TETRAHEDRAL_GRID = (-1.5, 1.0, 125)
OH_BOND_GRID = (0.05, 0.15, 100)  # nm
HOH_ANGLE_GRID = (0.0, math.pi, 180)  # rad, 1-degree bins

"""The gate's energy check: per-molecule shares pooled over boxes, each capped at ENERGY_CAP."""

import math

import numpy as np
import pytest

from map_core.atoms.frames import Frames
from validation.gate.measures import ENERGY_CAP, Energy, Ensemble, pooled_energy
from validation.observables.energy import compute_molecule_energies

R_EQ, THETA_EQ = 0.09419, math.radians(107.4)


def molecule(o, angle=0.0):
    """O, H, H of a rigid q-TIP4P/F molecule at `o` (nm), turned by `angle` about z."""
    h = [R_EQ * np.array([math.cos(angle + a), math.sin(angle + a), 0.0]) for a in (0.0, THETA_EQ)]
    return np.array([o, o + h[0], o + h[1]])


def region(*molecules, box=3.0):
    pos = np.concatenate(molecules).astype(np.float32)
    n = len(molecules)
    return Frames([pos], [np.tile(["O", "H", "H"], n)], [np.repeat(np.arange(n), 3)], np.full((1, 3), box), {})


def ensemble(frames):
    return Ensemble(region=frames, open_region=frames, structure={})


# A hydrogen-bonded dimer (the donor's H along x at the acceptor, whose H point away), far from the rest.
DIMER = (molecule(np.array([0.5, 0.5, 0.5])),
         np.array([0.78, 0.5, 0.5]) + np.array([[0, 0, 0], [0.03, 0.0, 0.089], [0.03, 0.0, -0.089]]))
# Two molecules 0.05 nm apart: a clash of about +10^4 kJ/mol each.
CLASH = (molecule(np.array([2.2, 2.2, 2.2])), molecule(np.array([2.25, 2.2, 2.2]), angle=1.0))


def test_each_box_entry_is_the_capped_sum_the_molecules_and_the_clashes():
    frames = region(*DIMER, *CLASH)
    shares = compute_molecule_energies(frames)[0]
    assert (shares[2:] > 1e3).all() and (shares[:2] < 0).all()
    [entry] = Energy().measure(ensemble(frames))
    assert entry[1:] == [4, 2]
    assert entry[0] == pytest.approx(shares[:2].sum() + 2 * ENERGY_CAP)


def test_a_clash_moves_the_pooled_mean_by_its_share_of_molecules_only():
    """Capped: two clashing molecules among four count as two unbound ones; uncapped they would
    put the mean above +5000 kJ/mol."""
    clean, clashing = Energy().measure(ensemble(region(*DIMER))), Energy().measure(ensemble(region(*DIMER, *CLASH)))
    e_clean, _, _ = pooled_energy(clean)
    e_clash, molecules, clashes = pooled_energy(clashing)
    assert (molecules, clashes) == (4, 2)
    assert e_clash == pytest.approx(e_clean / 2, rel=0.01)  # the dimer's energy over twice the molecules
    value, detail = Energy().compare("energy", {"energy_per_box": clashing}, {"energy_per_box": clean}, {})
    assert value == pytest.approx(abs(e_clash - e_clean)) and value < 50
    assert "2 generated molecules with positive energy" in detail


def test_pooling_weights_boxes_by_their_molecules_and_an_unmeasured_box_is_nan():
    boxes = [[-40.0, 2, 0], [-10.0, 1, 0]]
    assert pooled_energy(boxes) == (pytest.approx(-50.0 / 3), 3, 0)
    assert math.isnan(pooled_energy(boxes + [None])[0])
    assert math.isnan(pooled_energy([[0.0, 0, 0]])[0])

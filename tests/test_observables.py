"""Observables against cases with known answers."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from map_core.atoms.frames import Frames
from map_core.errors import MapSuiteError
from validation.md.boxes import ideal_molecule, make_water_box, random_rotation
from validation.md.stats import block_average
from validation.observables.density import compute_density
from validation.observables import energy as energy_module
from validation.observables.energy import compute_intermolecular_energy, compute_molecule_energies
from validation.observables.frame_tools import crop_frames, molecule_counts, water_molecules
from validation.observables.geometry import compute_dipole_magnitudes, compute_dipoles, compute_hoh_angles, compute_oh_distances
from validation.observables.hbonds import compute_hbonds
from validation.observables.order import compute_steinhardt, compute_tetrahedral_order
from validation.observables.rdf import compute_rdf, fibonacci_sphere, first_peak, inside_fraction

R_EQ, THETA_EQ = 0.09419, math.radians(107.4)


def one_frame(positions, box, elements=None, molecule=None):
    """Arrays of one frame; observables store positions as float32 (as frames files do)."""
    n = len(positions)
    elements = np.tile(["O", "H", "H"], n // 3) if elements is None else np.asarray(elements)
    molecule = np.repeat(np.arange(n // 3), 3) if molecule is None else np.asarray(molecule)
    return (np.asarray(positions, float), elements, molecule, np.asarray(box, float))


def random_molecules(n, box, seed):
    """n rigid ideal molecules at uniform random positions/orientations (an ideal gas of molecules)."""
    rng = np.random.default_rng(seed)
    mol = ideal_molecule()
    return np.concatenate([mol @ random_rotation(rng).T + rng.uniform(0, box, 3) for _ in range(n)])


# --- geometry ---------------------------------------------------------------------------------
def test_ideal_geometry_bonds_angles_and_dipole():
    positions, box = make_water_box(30, seed=1)
    data = one_frame(positions, box)
    np.testing.assert_allclose(compute_oh_distances(data), R_EQ, atol=3e-7)  # float32 positions
    np.testing.assert_allclose(compute_hoh_angles(data), THETA_EQ, atol=1e-5)
    # gamma q_H |d1 + d2| with |d1 + d2| = 2 r_eq cos(theta/2), in Debye
    expected = 0.73612 * 0.5564 * 2 * R_EQ * math.cos(THETA_EQ / 2) * 48.0321
    np.testing.assert_allclose(compute_dipole_magnitudes(data), expected, rtol=2e-5)
    assert expected == pytest.approx(2.1940, abs=1e-4)


def test_hand_computed_dipole():
    # O at 0, H at (0.1, 0, 0) and (0, 0.1, 0); M = 0.13194 (0.1, 0.1, 0) nm.
    # mu = 0.5564 (0.1, 0, 0) + 0.5564 (0, 0.1, 0) - 1.1128 * 0.013194 (1, 1, 0) e nm
    #    = (0.05564 - 0.0146823) (1, 1, 0) = 0.0409577 (1, 1, 0) e nm
    #    = 1.967285 (1, 1, 0) D;  |mu| = 1.967285 * sqrt(2) = 2.782161 D
    data = one_frame([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(compute_dipoles(data)[0], [1.967285, 1.967285, 0.0], atol=2e-6)
    assert compute_dipole_magnitudes(data)[0] == pytest.approx(2.782161, abs=3e-6)


def test_molecule_wrapped_across_a_face_is_whole_under_minimum_image():
    mol = ideal_molecule() + np.array([0.01, 1.0, 1.0])
    box = np.array([2.0, 2.0, 2.0])
    wrapped = np.mod(mol, box)  # one H goes to x ~ 1.93
    assert np.ptp(wrapped[:, 0]) > 1.0
    np.testing.assert_allclose(compute_oh_distances(one_frame(wrapped, box)), R_EQ, atol=3e-7)
    np.testing.assert_allclose(compute_hoh_angles(one_frame(wrapped, box)), THETA_EQ, atol=1e-5)
    assert compute_oh_distances(one_frame(wrapped, box), periodic=False).max() > 1.0


def test_orphans_and_incomplete_molecules_are_left_out():
    positions, box = make_water_box(4, seed=2)
    elements = list(np.tile(["O", "H", "H"], 4)) + ["H", "O", "H"]
    molecule = list(np.repeat(np.arange(4), 3)) + [-1, 7, 7]  # an orphan H and an O-H fragment
    extra = np.array([[0.1, 0.1, 0.1], [0.5, 0.5, 0.5], [0.55, 0.5, 0.5]])
    data = one_frame(np.concatenate([positions, extra]), box, elements, molecule)
    assert compute_oh_distances(data).shape == (4, 2)
    assert molecule_counts(data).tolist() == [4]
    assert water_molecules(np.array(["H", "H", "O"]), np.array([3, 3, 3])).tolist() == [[2, 0, 1]]


# --- RDF --------------------------------------------------------------------------------------
def test_rdf_of_an_ideal_gas_is_one_periodic_and_not():
    rng = np.random.default_rng(0)
    box = np.array([4.0, 4.0, 4.0])
    frames = Frames.from_arrays([rng.uniform(0, 4.0, (8000, 3)) for _ in range(6)],
                                [np.array(["O"] * 8000)] * 6, None, np.tile(box, (6, 1)))
    for periodic in (True, False):
        r, g = compute_rdf(frames, ("O", "O"), r_max=0.8, bin_width=0.05, periodic=periodic)
        assert np.all(np.abs(g[r > 0.2] - 1.0) < 0.05), (periodic, g)
        assert abs(g.mean() - 1.0) < (0.005 if periodic else 0.02)  # interior-only references are fewer


def test_intermolecular_rdf_of_an_ideal_gas_of_molecules_is_one():
    box = np.array([4.0, 4.0, 4.0])
    n = 2000
    frames = Frames.from_arrays([random_molecules(n, box, s) for s in range(4)],
                                [np.tile(["O", "H", "H"], n)] * 4,
                                [np.repeat(np.arange(n), 3)] * 4, np.tile(box, (4, 1)))
    for pair in (("O", "H"), ("H", "H")):
        for periodic in (True, False):
            r, g = compute_rdf(frames, pair, r_max=0.8, bin_width=0.1, periodic=periodic)
            assert abs(g.mean() - 1.0) < 0.02, (pair, periodic, g)
            assert np.all(np.abs(g[1:] - 1.0) < 0.06), (pair, periodic, g)
            assert g[0] < 1.15  # no intramolecular O-H (0.094 nm) or H-H (0.152 nm) peak


def test_rdf_of_a_cubic_lattice_integrates_to_six_first_neighbours():
    a, n = 0.3, 6
    grid = (np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * a
    data = one_frame(grid, [n * a] * 3, ["O"] * len(grid), np.arange(len(grid)))
    r, g = compute_rdf(data, ("O", "O"), r_max=0.35, bin_width=0.0125)
    rho = (len(grid) - 1) / (n * a) ** 3  # partner density: every other atom (pairs N (N - 1))
    shells = 4 / 3 * np.pi * ((r + 0.00625) ** 3 - (r - 0.00625) ** 3)
    assert np.sum(g * shells) * rho == pytest.approx(6.0, rel=1e-9)
    assert first_peak(r, g)[0] == pytest.approx(0.29375)  # the bin holding r = a


def test_rdf_refuses_r_max_beyond_half_box_and_empty_interior():
    positions, box = make_water_box(30, seed=3)
    with pytest.raises(MapSuiteError, match="half"):
        compute_rdf(one_frame(positions, box), r_max=0.6)
    with pytest.raises(MapSuiteError, match="from every face"):
        compute_rdf(one_frame(positions, box), r_max=0.6, periodic=False)


# --- density ----------------------------------------------------------------------------------
def probed_fraction(points, box, radii, directions):
    """The edge correction by its definition: every probe point + r * direction tested, radius by radius."""
    out = np.empty((len(points), len(radii)))
    for k, r in enumerate(radii):
        probe = np.asarray(points, float)[:, None, :] + r * directions[None, :, :]
        out[:, k] = np.all((probe >= 0) & (probe < box), axis=2).mean(axis=1)
    return out


def test_inside_fraction_equals_every_probe_bit_for_bit():
    rng = np.random.default_rng(3)
    box, radii = np.array([1.4, 1.2, 1.6]), (np.arange(48) + 0.5) * 0.0125
    points = rng.uniform(0, 1, (300, 3)) * box
    np.testing.assert_array_equal(inside_fraction(points, box, radii),
                                  probed_fraction(points, box, radii, fibonacci_sphere()))
    # ties: grid points, axis directions and radii that put probes exactly on a face; points on, and
    # outside, the faces; unsorted and negative radii
    directions = np.vstack([np.eye(3), -np.eye(3), fibonacci_sphere(32)])
    grid = np.stack(np.meshgrid(*[np.arange(0, 1.0, 0.125)] * 3), -1).reshape(-1, 3)
    outside = np.vstack([grid, [[-0.125, 0.5, 0.5], [1.0, 0.25, 0.5], [0.5, 0.5, 1.125]]])
    # near-ties where rounding decides: radii at the points' own face distances along the directions,
    # where the probe test and the division r < (1 - p) / d disagree for about 1 in 10^5 probes
    near = rng.uniform(0, 1, (40, 3))
    with np.errstate(divide="ignore"):
        faces = np.where(directions > 0, (1 - near[:, None, :]) / directions, near[:, None, :] / -directions)
    at_faces = np.sort(faces[np.isfinite(faces) & (faces > 0)])
    for pts, r in [(grid, np.arange(0, 1.01, 0.125)), (outside, np.arange(1.0, -0.01, -0.125)),
                   (grid, np.arange(0, 1.01, 0.125) - 0.25), (near, at_faces)]:
        np.testing.assert_array_equal(inside_fraction(pts, 1.0, r, directions), probed_fraction(pts, 1.0, r, directions))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-0.2, 1.2, allow_subnormal=False)] * 3), min_size=1, max_size=12),
       st.lists(st.floats(0, 1.5, allow_subnormal=False), min_size=1, max_size=10))
def test_inside_fraction_property(points, radii):
    """Any points (inside, on or outside the faces) and any radii: the same as every probe."""
    points, radii = np.array(points), np.array(radii)
    directions = np.vstack([np.eye(3), -np.eye(3), fibonacci_sphere(24)])
    np.testing.assert_array_equal(inside_fraction(points, 1.0, radii, directions),
                                  probed_fraction(points, 1.0, radii, directions))


def test_density_of_a_fresh_box_and_of_an_inner_region():
    positions, box = make_water_box(216, seed=4, density_g_cm3=1.0)
    assert compute_density(one_frame(positions, box))[0] == pytest.approx(1.0, rel=1e-5)
    # a 2 nm box whose inner 1 nm cube holds 0.5 nm-apart oxygens (8 atoms) and nothing else
    inner = (np.stack(np.meshgrid(*[np.arange(2)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * 0.5 + 0.5
    data = one_frame(inner, [2.0] * 3, ["O"] * 8, -np.ones(8))
    expected = 8 * 15.99943 / 6.02214076e23 / 1e-21  # g/cm3 in 1 nm^3
    assert compute_density(data, periodic=False, margin=0.5)[0] == pytest.approx(expected)
    assert compute_density(data, periodic=False)[0] == pytest.approx(expected / 8)
    cropped = crop_frames(data, [0.5] * 3, [1.5] * 3)
    assert compute_density(cropped, periodic=False)[0] == pytest.approx(expected)


# --- order ------------------------------------------------------------------------------------
def test_steinhardt_of_a_simple_cubic_lattice():
    a, n = 0.3, 5
    grid = (np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * a
    data = one_frame(grid, [n * a] * 3, ["O"] * len(grid), np.arange(len(grid)))
    q4 = compute_steinhardt(data, l=4)
    q6 = compute_steinhardt(data, l=6)
    np.testing.assert_allclose(q4, math.sqrt(7 / 12), atol=1e-5)  # 0.76376
    np.testing.assert_allclose(q6, math.sqrt(1 / 8), atol=1e-5)  # 0.35355
    interior = compute_steinhardt(data, l=6, periodic=False)
    assert len(interior) == 27  # only the 3^3 oxygens at least 0.35 nm inside
    np.testing.assert_allclose(interior, math.sqrt(1 / 8), atol=1e-5)


def test_tetrahedral_order_of_diamond_is_one_and_of_an_ideal_gas_zero():
    a = 0.6  # diamond cubic lattice constant, nm (neighbours at a sqrt(3)/4 = 0.26 nm)
    basis = np.array([[0, 0, 0], [0, .5, .5], [.5, 0, .5], [.5, .5, 0]])
    basis = np.concatenate([basis, basis + 0.25])
    cells = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    sites = ((cells[:, None, :] + basis[None]).reshape(-1, 3)) * a
    data = one_frame(sites, [3 * a] * 3, ["O"] * len(sites), np.arange(len(sites)))
    np.testing.assert_allclose(compute_tetrahedral_order(data), 1.0, atol=1e-9)
    rng = np.random.default_rng(1)
    gas = one_frame(rng.uniform(0, 3, (4000, 3)), [3.0] * 3, ["O"] * 4000, -np.ones(4000))
    assert abs(compute_tetrahedral_order(gas).mean()) < 0.03
    assert abs(compute_tetrahedral_order(gas, periodic=False).mean()) < 0.03


# --- hydrogen bonds ---------------------------------------------------------------------------
def dimer(oo=0.28, tilt_deg=0.0, shift=np.zeros(3)):
    """Donor O at origin with H1 pointing at the acceptor O along x, tilted by tilt_deg in xy."""
    t = math.radians(tilt_deg)
    h1 = R_EQ * np.array([math.cos(t), math.sin(t), 0.0])
    h2 = R_EQ * np.array([math.cos(t + THETA_EQ), math.sin(t + THETA_EQ), 0.0])
    acceptor = np.array([oo, 0, 0]) + np.array([[0, 0, 0], [0.03, 0.0, 0.089], [0.03, 0.0, -0.089]])
    return np.concatenate([[np.zeros(3), h1, h2], acceptor]) + shift


@pytest.mark.parametrize("oo,tilt,expected", [(0.28, 0, [[1, 0], [0, 1]]), (0.28, 25, [[1, 0], [0, 1]]),
                                              (0.28, 35, [[0, 0], [0, 0]]), (0.36, 0, [[0, 0], [0, 0]])])
def test_hydrogen_bond_criterion_on_a_dimer(oo, tilt, expected):
    box = [3.0, 3.0, 3.0]
    assert compute_hbonds(one_frame(dimer(oo, tilt, np.array([1.0, 1.5, 1.5])), box)).tolist() == expected


def test_hydrogen_bond_across_a_periodic_face():
    box = np.array([2.0, 2.0, 2.0])
    pos = np.mod(dimer(0.28, 0, np.array([1.86, 1.0, 1.0])), box)  # acceptor wraps to x ~ 0.14
    assert compute_hbonds(one_frame(pos, box)).tolist() == [[1, 0], [0, 1]]
    assert compute_hbonds(one_frame(pos, box), periodic=False).sum() == 0


# --- energy -----------------------------------------------------------------------------------
def test_intermolecular_energy_of_a_dimer_matches_numpy():
    pos = dimer(0.29, 5.0, np.array([1.0, 1.0, 1.0]))
    mol = pos.reshape(2, 3, 3)
    gamma, sigma, eps = 0.73612, 0.31589, 0.1852 * 4.184
    m = gamma * mol[:, 0] + (1 - gamma) / 2 * (mol[:, 1] + mol[:, 2])
    sites = [np.stack([mol[i, 1], mol[i, 2], m[i]]) for i in range(2)]
    q = np.array([0.5564, 0.5564, -1.1128])
    r_oo = np.linalg.norm(mol[0, 0] - mol[1, 0])
    e = 4 * eps * ((sigma / r_oo) ** 12 - (sigma / r_oo) ** 6)
    e += sum(138.935456 * q[a] * q[b] / np.linalg.norm(sites[0][a] - sites[1][b]) for a in range(3) for b in range(3))
    got = compute_intermolecular_energy(one_frame(pos, [3.0] * 3), periodic=False)
    assert got[0] == pytest.approx(e / 2, rel=1e-5)  # positions pass through float32
    assert -30 < e < -10  # a hydrogen-bonded dimer, kJ/mol


@pytest.mark.parametrize("block", [energy_module.PAIR_BLOCK, 7])
def test_molecule_energies_split_the_openmm_energy(monkeypatch, block):
    # Per-molecule shares add up to OpenMM's non-periodic energy of the frame, in blocks or not;
    # a lone O and an orphan H take no share.
    monkeypatch.setattr(energy_module, "PAIR_BLOCK", block)
    pos = random_molecules(40, 1.6, seed=3) * 0.9 + 0.1
    el = list(np.tile(["O", "H", "H"], 40)) + ["H", "O"]
    mol = list(np.repeat(np.arange(40), 3)) + [-1, 77]
    data = one_frame(np.concatenate([pos, [[0.5, 0.5, 0.5], [1.0, 1.2, 0.3]]]), [2.0] * 3, el, mol)
    shares = compute_molecule_energies(data)[0]
    total = compute_intermolecular_energy(data, periodic=False)[0] * 40
    assert shares.shape == (40,)
    assert shares.sum() == pytest.approx(total, rel=1e-5)
    assert np.ptp(shares) > 1.0  # molecules differ: the shares are not the frame's mean copied


def test_molecule_energies_of_a_dimer_are_half_its_pair_energy_each():
    pos = dimer(0.29, 3.0, np.array([1.0, 1.0, 1.0]))
    shares = compute_molecule_energies(one_frame(pos, [3.0] * 3))[0]
    pair = compute_intermolecular_energy(one_frame(pos, [3.0] * 3), periodic=False)[0] * 2
    np.testing.assert_allclose(shares, [pair / 2, pair / 2], rtol=1e-5)


def test_periodic_energy_of_a_dilute_dimer_approaches_the_isolated_one_and_ignores_orphans():
    pos = dimer(0.29, 5.0, np.array([1.0, 1.0, 1.0]))
    isolated = compute_intermolecular_energy(one_frame(pos, [4.0] * 3), periodic=False)[0]
    periodic = compute_intermolecular_energy(one_frame(pos, [4.0] * 3), periodic=True)[0]
    assert periodic == pytest.approx(isolated, abs=0.02)  # images and dispersion correction are tiny
    el = ["O", "H", "H", "O", "H", "H", "H", "O"]
    mol = [0, 0, 0, 1, 1, 1, -1, 5]  # an orphan H and a lone O
    extra = np.array([[1.05, 1.0, 1.0], [1.2, 1.3, 1.0]])
    with_orphans = compute_intermolecular_energy(one_frame(np.concatenate([pos, extra]), [4.0] * 3, el, mol))
    assert with_orphans[0] == pytest.approx(periodic, rel=1e-12)


def test_block_average():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 1.0, 10000)
    mean, se = block_average(x, 10)
    assert mean == pytest.approx(3.0, abs=0.05)
    assert se == pytest.approx(0.01, rel=0.5)
    assert math.isnan(block_average([1.0])[1])

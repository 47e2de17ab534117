"""S(q) against cases with known answers: ideal gas, a lattice, closed forms, real MD water, bad input."""

import math
from pathlib import Path

import numpy as np
import pytest
from waters import R_OH, THETA, water

from map_core.atoms.frames import Frames, load_frames
from map_core.errors import MapSuiteError
from validation.observables.frame_tools import crop_frames
from validation.observables.rdf import open_rdf_counts
from validation.observables.structure_factor import (
    compute_structure_factor,
    compute_xray_structure_factor,
    first_peak_q,
    partner_density,
    structure_factor_from_rdf,
    xray_form_factor,
)

MD_WATER = Path(__file__).resolve().parent / "data" / "water_md_small.npz"  # 216 q-TIP4P/F, 1.854 nm box


def oxygens(points, box):
    """Arrays of one frame of lone oxygens (one molecule id each)."""
    return np.asarray(points, float), np.array(["O"] * len(points)), np.arange(len(points)), np.asarray(box, float)


# --- ideal gas --------------------------------------------------------------------------------
def test_ideal_gas_is_one_within_its_noise_in_the_debye_and_the_open_g_r_paths():
    n, box, n_frames = 300, 2.2, 4
    rng = np.random.default_rng(7)
    frames = Frames.from_arrays([rng.uniform(0, box, (n, 3)) for _ in range(n_frames)], [np.array(["O"] * n)] * n_frames,
                                [np.arange(n)] * n_frames, np.full((n_frames, 3), box))
    q = np.linspace(8.0, 60.0, 105)

    # Debye (periodic): S - 1 = (2/N) sum_{i<j} [sinc(q r_ij) - mean], r_ij uniform in the box cube and
    # pair terms uncorrelated, so var S = 2 (N-1)/N var_cube(sinc(q r)) / frames; var from random vectors.
    _, s_debye = compute_structure_factor(frames, q=q)
    r = np.linalg.norm(rng.uniform(-box / 2, box / 2, (20000, 3)), axis=1)
    sigma = np.sqrt(2 * (n - 1) / n * np.var(np.sinc(np.outer(q, r) / np.pi), axis=1) / n_frames)
    z = (s_debye - 1) / sigma  # measured: rms 0.99, max 2.2; sigma 0.010 (60 nm^-1) to 0.077 (8 nm^-1)
    assert np.sqrt(np.mean(z ** 2)) < 1.5 and np.abs(z).max() < 4.5

    # open box, edge-corrected g(r) transformed (R = 1.1 nm): pair counts are Poisson-like, var n_k =
    # 2 E_k (ordered pairs), so var S = sum_k 2 E_k (4 pi rho r_k^2 dr sinc(q r_k) / E_k)^2.
    frames = frames.select([0, 1])  # the edge correction costs 1 s a frame here
    _, s_open = compute_structure_factor(frames, q=q, periodic=False)
    rk, _, expected = open_rdf_counts(frames, ("O", "O"), 1.1, 0.0125)
    coef = 4 * np.pi * partner_density(frames, "O", "O") * rk ** 2 * 0.0125 / expected * np.sinc(np.outer(q, rk) / np.pi)
    z = (s_open - 1) / np.sqrt((2 * expected * coef ** 2).sum(axis=1))  # measured: rms 0.88, max 2.4; sigma 0.017 to 0.13
    assert np.sqrt(np.mean(z ** 2)) < 1.5 and np.abs(z).max() < 4.5


# --- lattice ----------------------------------------------------------------------------------
def test_simple_cubic_oxygens_give_bragg_peaks_at_2_pi_hkl_over_a():
    a, n = 0.3, 7  # odd n: every atom's minimum-image cube holds the lattice offsets -3..3, no tie at L/2
    grid = (np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) + 0.5) * a
    q, s = compute_structure_factor(oxygens(grid, [n * a] * 3), q=np.linspace(12.0, 44.0, 129))
    resolution = 2 * math.pi / (n * a)  # 3.0 nm^-1: a finite cube of lattice smears each shell this wide
    for hkl2, window in ((1, (15, 25)), (2, (25, 33))):  # (100) at 20.94, (110) at 29.62 nm^-1
        position, height = first_peak_q(q, s, window)
        # measured: 20.5 / 3.41 and 29.5 / 4.38; the offset changes sign with n (finite-cube side lobes)
        assert position == pytest.approx(2 * math.pi / a * math.sqrt(hkl2), abs=0.2 * resolution)
        assert height > 3.0  # a liquid's first peak is below about 3


# --- the transform, closed forms ----------------------------------------------------------------
def test_transform_of_g_equal_one_is_one_and_of_a_hard_sphere_step_its_closed_form():
    dr, rho, sigma = 0.0005, 33.4, 0.3
    r = (np.arange(2000) + 0.5) * dr  # up to 1.0 nm; sigma falls on a bin edge
    q = np.linspace(2.0, 80.0, 157)
    assert np.array_equal(structure_factor_from_rdf(r, np.ones_like(r), rho, q), np.ones_like(q))
    assert np.array_equal(structure_factor_from_rdf(r, np.ones_like(r), rho, q, window="lorch"), np.ones_like(q))
    step = np.where(r < sigma, 0.0, 1.0)
    x = q * sigma
    exact = 1 - 4 * np.pi * rho * (np.sin(x) - x * np.cos(x)) / q ** 3
    np.testing.assert_allclose(structure_factor_from_rdf(r, step, rho, q), exact, atol=2e-4)  # midpoint rule


def test_form_factors_in_nm_inverse_match_the_international_tables():
    # f at sin(theta)/lambda = 0, 0.1, 0.2, 0.5 Å^-1 (q = 40 pi s nm^-1), Int. Tables C Table 6.1.1.1
    q = 40 * np.pi * np.array([1e-9, 0.1, 0.2, 0.5])
    np.testing.assert_allclose(xray_form_factor("O", q), [8.0, 7.250, 5.634, 2.338], atol=0.015)
    np.testing.assert_allclose(xray_form_factor("H", q), [1.0, 0.811, 0.481, 0.071], atol=0.005)


def test_xray_total_of_an_ideal_gas_of_rigid_molecules_is_one_plus_their_own_scattering():
    # random molecules: the intermolecular partials are 1 (noise only), what is left is the
    # intramolecular Debye sum of one rigid q-TIP4P/F molecule, (1/3)(4 f_O f_H sinc(q r_OH) + 2 f_H^2 sinc(q r_HH)) / <f>^2
    m, box, n_frames = 120, 2.0, 2
    rng = np.random.default_rng(3)
    positions = [np.concatenate([water(rng.uniform(0, box, 3), rng) for _ in range(m)]) for _ in range(n_frames)]
    frames = Frames.from_arrays(positions, [np.tile(["O", "H", "H"], m)] * n_frames, [np.repeat(np.arange(m), 3)] * n_frames,
                                np.full((n_frames, 3), box))
    q, s_x = compute_xray_structure_factor(frames, q=np.linspace(12.0, 42.0, 61))
    f_o, f_h = xray_form_factor("O", q), xray_form_factor("H", q)
    r_hh = 2 * R_OH * math.sin(THETA / 2)
    own = (4 * f_o * f_h * np.sinc(q * R_OH / np.pi) + 2 * f_h ** 2 * np.sinc(q * r_hh / np.pi)) / 3 / ((f_o + 2 * f_h) / 3) ** 2
    residual = s_x - 1 - own  # rms of `own` 0.34 (0.75 at 12 nm^-1); measured rms residual 0.09-0.10 over seeds 3-5
    assert np.sqrt(np.mean(residual ** 2)) < 0.2


# --- real MD water ------------------------------------------------------------------------------
def test_md_water_s_oo_first_peak_and_the_open_region_agrees_with_the_periodic_box():
    frames = load_frames(MD_WATER)
    q, s_debye = compute_structure_factor(frames)
    peak, height = first_peak_q(q, s_debye)
    assert 19.0 < peak < 23.0 and 1.0 < height < 1.5  # measured 21.5 nm^-1, 1.18
    assert first_peak_q(q, s_debye, (25, 35))[0] == pytest.approx(29.5, abs=1.0)  # the second maximum

    region = crop_frames(frames, [0.05] * 3, [1.8] * 3)  # an open 1.75 nm cube: R = 0.875 nm
    _, s_open = compute_structure_factor(region, q=q, periodic=False)
    open_peak, _ = first_peak_q(q, s_open)
    assert abs(open_peak - peak) < 2 * math.pi / 0.875  # measured 22.25 against 21.5 nm^-1
    above = q > 12.0  # both resolve nothing below about 4 pi / L
    assert np.abs(s_open - s_debye)[above].max() < 0.1  # measured 0.045


def test_md_water_xray_total_peaks_near_two_inverse_angstrom():
    frames = load_frames(MD_WATER).select([0, 4])
    q, s_x = compute_xray_structure_factor(frames, q=np.linspace(10.0, 40.0, 121))
    peak, height = first_peak_q(q, s_x)
    assert 19.5 < peak < 22.5 and height > 1.5  # measured 20.5 nm^-1, 1.88 (5 frames: 21.0); experiment near 20
    assert first_peak_q(q, s_x, (25, 35))[0] == pytest.approx(29.5, abs=1.0)  # measured 29.75
    assert np.all(np.isfinite(s_x))


# --- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, message", [
    ({"q": [-1.0, 5.0]}, "finite and positive"),
    ({"q": [float("nan"), 5.0]}, "finite and positive"),
    ({"pair": ("O", "C")}, "not in the data"),
    ({"r_max": 1.0}, "half the box"),  # periodic: 1.0 nm > 1.854 / 2
    ({"r_max": 1.0, "periodic": False}, "half the smallest box edge"),
    ({"q": [5.0, 6.0, 8.0]}, "evenly spaced"),
    ({"r_max": 0.8, "window": "hann"}, "window"),
])
def test_bad_input_is_one_line_mapsuiteerror(kwargs, message):
    frames = load_frames(MD_WATER).select([0])
    with pytest.raises(MapSuiteError, match=message) as info:
        compute_structure_factor(frames, **kwargs)
    assert "\n" not in str(info.value)


def test_bad_input_of_the_transform_and_the_xray_total():
    r = (np.arange(40) + 0.5) * 0.0125
    with pytest.raises(MapSuiteError, match="not finite"):
        structure_factor_from_rdf(r, np.where(r < 0.2, np.nan, 1.0), 33.4, [10.0])
    with pytest.raises(MapSuiteError, match="evenly spaced"):
        structure_factor_from_rdf(r ** 2, np.ones(40), 33.4, [10.0])
    with pytest.raises(MapSuiteError, match="O and H atoms only"):
        compute_xray_structure_factor(oxygens([[0.1, 0.1, 0.1], [0.5, 0.5, 0.5]], [1.0] * 3))

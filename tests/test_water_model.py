"""q-TIP4P/F in OpenMM against an independent numpy evaluation, and CPU against Reference."""

import math

import numpy as np
import openmm
import pytest

from map_core.errors import MapSuiteError
from validation.md.boxes import make_water_box
from validation.md.water_model import GROUP_DIRECT, GROUP_INTRA, GROUP_RECIP, PARAMS, build_system, default_cutoff, with_m_sites

KCAL = 4.184
COULOMB = 138.935456  # kJ mol^-1 nm e^-2


def distorted_waters(n, seed, spacing=0.32):
    """n molecules with random bond lengths/angles on a line of sites (whole molecules), (3n, 3) nm."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        r1, r2 = rng.uniform(0.085, 0.105, 2)
        theta = math.radians(rng.uniform(95, 115))
        local = np.array([[0, 0, 0], [r1, 0, 0], [r2 * math.cos(theta), r2 * math.sin(theta), 0]])
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        out.append(local @ q.T + np.array([i * spacing, rng.uniform(-0.02, 0.02), 0.0]) + 0.3)
    return np.concatenate(out)


def numpy_intra(xyz):
    """Quartic-Morse bonds + harmonic angle, kJ/mol, written from Habershon et al. (2009) Table I."""
    d_r, a, r_eq = 116.09 * KCAL, 22.87, 0.09419
    k_theta, theta_eq = 87.85 * KCAL, math.radians(107.4)
    energy = 0.0
    for o, h1, h2 in xyz.reshape(-1, 3, 3):
        for h in (h1, h2):
            dr = np.linalg.norm(h - o) - r_eq
            energy += d_r * (a**2 * dr**2 - a**3 * dr**3 + 7.0 / 12.0 * a**4 * dr**4)
        u, v = h1 - o, h2 - o
        theta = math.acos(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
        energy += 0.5 * k_theta * (theta - theta_eq) ** 2
    return energy


def numpy_intermolecular(xyz):
    """LJ between oxygens + Coulomb between H (+0.5564) and M (-1.1128) sites, all pairs, kJ/mol."""
    sigma, eps, gamma = 0.31589, 0.1852 * KCAL, 0.73612
    mol = xyz.reshape(-1, 3, 3)
    m_site = gamma * mol[:, 0] + (1 - gamma) / 2 * (mol[:, 1] + mol[:, 2])
    sites = np.stack([mol[:, 1], mol[:, 2], m_site], axis=1)
    charges = np.array([0.5564, 0.5564, -1.1128])
    energy = 0.0
    for i in range(len(mol)):
        for j in range(i + 1, len(mol)):
            r = np.linalg.norm(mol[i, 0] - mol[j, 0])
            energy += 4 * eps * ((sigma / r) ** 12 - (sigma / r) ** 6)
            for a in range(3):
                for b in range(3):
                    energy += COULOMB * charges[a] * charges[b] / np.linalg.norm(sites[i, a] - sites[j, b])
    return energy


def energy(system, positions, platform="Reference", groups=None):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(with_m_sites(positions))
    context.computeVirtualSites()
    kwargs = {} if groups is None else {"groups": set(groups)}
    return context.getState(getEnergy=True, **kwargs).getPotentialEnergy()._value


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intramolecular_energy_matches_numpy(seed):
    xyz = distorted_waters(4, seed)
    system = build_system(4, None)
    assert energy(system, xyz, groups=[GROUP_INTRA]) == pytest.approx(numpy_intra(xyz), rel=1e-9, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_isolated_cluster_nonbonded_energy_matches_numpy(seed):
    """Non-periodic system: LJ + Coulomb with the M site at gamma, every intermolecular pair."""
    xyz = distorted_waters(4, seed)
    system = build_system(4, None)
    assert energy(system, xyz, groups=[GROUP_DIRECT, GROUP_RECIP]) == pytest.approx(
        numpy_intermolecular(xyz), rel=1e-7)
    assert energy(system, xyz) == pytest.approx(numpy_intra(xyz) + numpy_intermolecular(xyz), rel=1e-7)


def test_periodic_lennard_jones_with_cutoff_and_dispersion_correction_matches_numpy():
    positions, box = make_water_box(30, seed=4)
    system = build_system(30, box)
    nb = next(f for f in system.getForces() if isinstance(f, openmm.NonbondedForce))
    for i in range(nb.getNumParticles()):  # switch charges off: only LJ remains
        _, sigma, eps = nb.getParticleParameters(i)
        nb.setParticleParameters(i, 0.0, sigma, eps)
    cutoff = nb.getCutoffDistance()._value
    sigma, eps = PARAMS.sigma_oo, PARAMS.eps_oo
    ox = positions.reshape(-1, 3, 3)[:, 0]
    lj = 0.0
    for i in range(len(ox)):
        d = ox[i + 1:] - ox[i]
        r = np.linalg.norm(d - box * np.round(d / box), axis=1)
        r = r[r < cutoff]
        lj += np.sum(4 * eps * ((sigma / r) ** 12 - (sigma / r) ** 6))
    # OpenMM's dispersion correction: 8 pi N^2 / V <4 eps sigma^n> over the N(N+1)/2 particle
    # pairs including self pairs, N counting every particle (H and M have eps = 0)
    n_o, n_all = len(ox), system.getNumParticles()
    pair_fraction = n_o * (n_o + 1) / (n_all * (n_all + 1))
    dispersion = 8 * math.pi * n_all**2 * pair_fraction * eps / np.prod(box) * (
        sigma**12 / (9 * cutoff**9) - sigma**6 / (3 * cutoff**3))
    assert energy(system, positions, groups=[GROUP_DIRECT, GROUP_RECIP]) == pytest.approx(lj + dispersion, rel=1e-6)


def test_m_site_is_placed_by_openmm_at_gamma():
    xyz = distorted_waters(2, 3)
    context = openmm.Context(build_system(2, None), openmm.VerletIntegrator(0.001),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(with_m_sites(xyz) + np.where(np.arange(8)[:, None] % 4 == 3, 0.5, 0.0))  # M off
    context.computeVirtualSites()
    pos = context.getState(getPositions=True).getPositions(asNumpy=True)._value.reshape(2, 4, 3)
    mol = xyz.reshape(2, 3, 3)
    expected = 0.73612 * mol[:, 0] + 0.13194 * (mol[:, 1] + mol[:, 2])
    np.testing.assert_allclose(pos[:, 3], expected, atol=1e-12)


def test_cpu_platform_matches_reference_energy_and_forces():
    positions, box = make_water_box(30, seed=5)
    system = build_system(30, box, ewald_tolerance=1e-5)
    results = {}
    for name in ("Reference", "CPU"):
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(name))
        context.setPositions(with_m_sites(positions))
        context.computeVirtualSites()
        state = context.getState(getEnergy=True, getForces=True)
        results[name] = (state.getPotentialEnergy()._value, state.getForces(asNumpy=True)._value)
    e_ref, f_ref = results["Reference"]
    e_cpu, f_cpu = results["CPU"]
    assert e_cpu == pytest.approx(e_ref, rel=1e-4)
    scale = np.abs(f_ref).max()
    assert np.abs(f_cpu - f_ref).max() < 1e-3 * scale


def test_force_groups_split_the_energy_and_reciprocal_space_is_its_own_group():
    positions, box = make_water_box(30, seed=6)
    system = build_system(30, box)
    parts = [energy(system, positions, groups=[g]) for g in (GROUP_INTRA, GROUP_DIRECT, GROUP_RECIP)]
    assert sum(parts) == pytest.approx(energy(system, positions), rel=1e-9)
    assert abs(parts[2]) > 1.0  # PME reciprocal space really is in group 2
    assert system.getNumConstraints() == 0
    assert system.getNumParticles() == 120
    assert [system.getParticleMass(i)._value for i in range(4)] == pytest.approx([15.99943, 1.007947, 1.007947, 0.0])


def test_cutoff_rules():
    assert default_cutoff([3.0, 3.0, 3.0]) == 1.0
    assert default_cutoff([1.8, 2.0, 2.2]) == pytest.approx(0.81)
    with pytest.raises(MapSuiteError, match="half"):
        build_system(10, [1.5, 1.5, 1.5], cutoff_nm=0.8)
    with pytest.raises(MapSuiteError):
        build_system(0, [2.0, 2.0, 2.0])

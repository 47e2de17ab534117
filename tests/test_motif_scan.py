"""Motif scan and convergence numbers: a planted cavity is found, the motif is its molecules, the
KL divergence and the shell densities match hand-made cases, and bad input is refused in one line."""

import json

import numpy as np
import pytest
from waters import water_lattice

from map_core.atoms.encoding import Encoding
from map_core.atoms.frames import Frames, save_frames
from map_core.errors import MapSuiteError
from validation.gate.checks import kl_hist
from validation.motif.convergence import radial_density
from validation.motif.scan import (
    default_probe_nm,
    load_scan,
    molecule_density,
    motif_atoms,
    scan_frames,
    voxelise_motif,
    write_scan,
)

SPACING = 0.31  # nm: 1 molecule per 0.0298 nm3, 1.00 g/cm3


def _cavity_frames(n_frames=2, seed=0):
    """Lattice water (6^3 sites) with, in frame 1, the 8 molecules nearest a chosen point removed."""
    rng = np.random.default_rng(seed)
    frames, cavity = [], np.array([1.24, 0.62, 0.93])  # a lattice corner point: 8 sites around it
    for f in range(n_frames):
        pos, el, mol, box = water_lattice(6, SPACING, rng, jitter=0.02)
        if f == 1:
            o = pos[0::3]
            gone = np.all(np.abs(o - cavity) < SPACING, axis=1)
            keep = ~np.repeat(gone, 3)
            pos, el = pos[keep], el[keep]
            mol = np.repeat(np.arange(keep.sum() // 3), 3)
        frames.append((pos, el, mol, box))
    pos, el, mol, box = (list(x) for x in zip(*frames))
    return Frames.from_arrays(pos, el, mol, np.stack(box)), cavity


def test_the_scan_finds_a_planted_cavity():
    frames, cavity = _cavity_frames()
    probe = 0.6
    scan = scan_frames(frames, probe, stride_nm=0.155, threshold=0.1)
    assert scan["density_g_cm3"]["mean"] == pytest.approx(1.0, abs=0.1)
    assert scan["sites"], scan
    best = min(scan["sites"], key=lambda s: s["density_g_cm3"])
    assert best["frame"] == 1
    assert np.max(np.abs(np.asarray(best["centre_nm"]) - cavity)) <= 0.155
    assert best["density_g_cm3"] <= 0.1
    assert all(s["frame"] == 1 for s in scan["sites"])  # frame 0 has no low-density probe
    # the motif: the complete molecules left in that cube, whole, about its centre
    pos, el = motif_atoms(frames, best, probe)
    assert len(pos) == 3 * best["molecules"]
    assert np.all(np.abs(pos[0::3]) < probe / 2)
    assert np.all(np.linalg.norm(pos[1::3] - pos[0::3], axis=1) < 0.1)
    # voxelised like the training data: O voxels of the water classes sit inside the probe's voxels
    coder = Encoding("water", 0.05)
    grid, offset = voxelise_motif(pos, el, coder, probe, (40, 40, 40))
    assert grid.shape == (12, 12, 12) and offset == pytest.approx(0.3)
    assert (grid > 0).sum() == best["molecules"]
    grid, _ = voxelise_motif(pos, el, coder, probe, (41, 41, 41))  # odd box: one more layer to centre it
    assert grid.shape == (13, 13, 13)


def test_densities_come_in_molecules():
    assert molecule_density(7, 0.6) == pytest.approx(7 * 18.01528 / 6.02214076e23 / 0.216e-21)
    assert default_probe_nm(0.05) == pytest.approx(0.60) and default_probe_nm(0.025) == pytest.approx(0.625)


def test_kl_matches_a_hand_made_case():
    """D(P||Q) for P = (1/2, 1/2), Q = (1/4, 3/4) is 1/2 ln 2 + 1/2 ln(2/3); counts large enough
    that the half-count smoothing is negligible, and exact with it added by hand."""
    p, q = np.array([50_000, 50_000]), np.array([25_000, 75_000])
    exact = 0.5 * np.log(2) + 0.5 * np.log(2 / 3)
    assert kl_hist(p, q) == pytest.approx(exact, rel=1e-4)
    ps, qs = (p + 0.5) / (p.sum() + 1), (q + 0.5) / (q.sum() + 1)
    assert kl_hist(p, q) == pytest.approx(float(np.sum(ps * np.log(ps / qs))), rel=1e-12)
    assert kl_hist(p, p) == 0.0


def test_shell_density_of_a_uniform_liquid():
    rng = np.random.default_rng(0)
    n = 200_000
    box = np.full(3, 4.0)
    points = rng.uniform(0, 4.0, size=(n, 3))
    rho = n * 18.01528 / 6.02214076e23 / (64e-21)
    dens = radial_density(points, [2.0, 2.0, 2.0], np.arange(0, 1.6, 0.2), box)
    np.testing.assert_allclose(dens[2:], rho, rtol=0.05)


def test_scan_files_refuse_bad_content(tmp_path):
    frames, _ = _cavity_frames()
    scan = scan_frames(frames, 0.6, threshold=0.3)
    scan["data"] = {"path": "x.npz", "sha256": "0" * 64}
    good = tmp_path / "scan.json"
    write_scan(good, scan)
    assert load_scan(good)["sites"] == json.loads(json.dumps(scan["sites"]))
    for text in ("", "{", "[]", json.dumps({"format": "other"}), good.read_text().replace('"probe_nm": 0.6', '"probe_nm": -1'),
                 good.read_text().replace('"frame": 1', '"frame": "one"')):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(MapSuiteError, match="bad.json") as info:
            load_scan(bad)
        assert "\n" not in str(info.value)


def test_a_probe_larger_than_the_box_is_refused():
    frames, _ = _cavity_frames(1)
    with pytest.raises(MapSuiteError, match="does not fit"):
        scan_frames(frames, 2.0)


@pytest.fixture
def cavity_file(tmp_path):
    frames, _ = _cavity_frames()
    path = tmp_path / "frames.npz"
    save_frames(path, frames)
    return path

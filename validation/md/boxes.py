"""Starting boxes of water and their OpenMM/mdtraj topology.

A fresh box holds `n` rigid molecules in the q-TIP4P/F equilibrium geometry (r_eq, theta_eq)
with random orientations. Centres sit on a jittered simple-cubic lattice when its spacing is
at least ``MIN_LATTICE_SPACING``; otherwise (e.g. 30 or 100 molecules, whose lattice would be
too fine) molecules are inserted at random positions, rejecting overlaps. The box edge is
chosen for the requested density (default 1 g/cm3). Lengths nm.
"""

from __future__ import annotations

import math

import numpy as np
from openmm import Vec3
from openmm.app import Topology, element

from map_core.atoms.frames import Frames
from map_core.atoms.molecules import make_whole, water_indices
from map_core.atoms.neighbors import minimum_image
from map_core.errors import MapSuiteError
from validation.md.water_model import MASS_WATER, PARAMS

AVOGADRO = 6.02214076e23
MIN_LATTICE_SPACING = 0.28  # nm; below this neighbouring molecules clash
MIN_OO = 0.25  # nm, closest O-O allowed at insertion
MIN_OTHER = 0.16  # nm, closest intermolecular pair involving H allowed at insertion


def box_edge_for_density(n_waters: int, density_g_cm3: float = 1.0) -> float:
    """Edge, nm, of the cube holding `n_waters` molecules at `density_g_cm3`."""
    volume_cm3 = n_waters * MASS_WATER / AVOGADRO / density_g_cm3
    return (volume_cm3 * 1e21) ** (1.0 / 3.0)


def ideal_molecule() -> np.ndarray:
    """(3, 3) O, H1, H2 positions, nm, at r_eq and theta_eq; O at the origin."""
    half = 0.5 * PARAMS.theta_eq
    r = PARAMS.r_eq
    return np.array([[0.0, 0.0, 0.0], [r * math.sin(half), 0.0, r * math.cos(half)],
                     [-r * math.sin(half), 0.0, r * math.cos(half)]])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _clashes(mol, placed, box) -> bool:
    """True if molecule (3,3) comes too close to any of placed (k,3,3), periodic."""
    if len(placed) == 0:
        return False
    d_oo = np.linalg.norm(minimum_image(placed[:, 0] - mol[0], box), axis=-1)
    if d_oo.min() < MIN_OO:
        return True
    other = placed.reshape(-1, 3)
    for a in range(3):
        d = np.linalg.norm(minimum_image(other - mol[a], box), axis=-1).reshape(-1, 3)
        d[:, 0] = np.inf if a == 0 else d[:, 0]  # O-O handled above
        if d.min() < MIN_OTHER:
            return True
    return False


def make_water_box(n_waters: int, seed: int, density_g_cm3: float = 1.0, max_tries: int = 20000):
    """Build a fresh cubic box of water.

    Returns (positions (3 n, 3) nm in O, H1, H2 order, box (3,) nm); molecules are whole (an H
    may lie outside [0, L) when its oxygen is near a face). Deterministic for a seed.
    Raises MapSuiteError if `n_waters` < 1 or the molecules cannot be placed.
    """
    if n_waters < 1:
        raise MapSuiteError(f"--waters must be at least 1, got {n_waters}")
    if not density_g_cm3 > 0:
        raise MapSuiteError(f"density must be positive, got {density_g_cm3}")
    rng = np.random.default_rng(seed)
    edge = box_edge_for_density(n_waters, density_g_cm3)
    box = np.full(3, edge)
    template = ideal_molecule()
    template = template - template.mean(axis=0)
    n_side = math.ceil(round(n_waters ** (1.0 / 3.0), 9))
    spacing = edge / n_side
    placed = np.zeros((0, 3, 3))
    if spacing >= MIN_LATTICE_SPACING:
        sites = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
        sites = (sites[rng.permutation(len(sites))[:n_waters]] + 0.5) * spacing
        centres = sites + rng.uniform(-0.05, 0.05, size=sites.shape) * spacing
    else:
        centres = None
    for i in range(n_waters):
        for _ in range(max_tries):
            centre = centres[i] if centres is not None else rng.uniform(0, edge, size=3)
            mol = template @ random_rotation(rng).T + centre
            if not _clashes(mol, placed, box):
                break
        else:
            raise MapSuiteError(f"could not place water {i + 1} of {n_waters} without overlaps "
                                f"at {density_g_cm3} g/cm3")
        placed = np.concatenate([placed, mol[None]], axis=0)
    shift = np.floor(placed[:, 0] / edge) * edge  # wrap by oxygen so molecules stay whole
    return (placed - shift[:, None, :]).reshape(-1, 3), box


def make_waters_whole(positions, box_nm) -> np.ndarray:
    """(3 n, 3) nm O, H1, H2 positions with each H moved to the periodic image nearest its O (no wrap)."""
    n = len(np.asarray(positions).reshape(-1, 3)) // 3
    return make_whole(positions, np.tile(["O", "H", "H"], n), np.repeat(np.arange(n), 3), box_nm, wrap=False)


def whole_waters(frames: Frames, f: int) -> tuple:
    """(positions (N, 3) float64 nm of frame `f` with molecules whole and every O in [0, L),
    (M, 3) O, H, H atom indices of its complete molecules); MapSuiteError naming the frame if a
    molecule id is not one O and two H."""
    pos = make_whole(frames.positions[f], frames.elements[f], frames.molecule[f], frames.box[f], wrap=True)
    try:
        return pos, water_indices(frames.elements[f], frames.molecule[f])
    except ValueError as exc:
        raise MapSuiteError(f"frame {f}: {exc}") from None


def water_topology(n_waters: int, box_nm=None):
    """``openmm.app.Topology`` of `n_waters` HOH residues with atoms O, H1, H2 (no M site).

    Used for trajectory files (PDB + DCD) that hold the massive atoms only.
    """
    top = Topology()
    chain = top.addChain()
    for _ in range(n_waters):
        res = top.addResidue("HOH", chain)
        o = top.addAtom("O", element.oxygen, res)
        h1 = top.addAtom("H1", element.hydrogen, res)
        h2 = top.addAtom("H2", element.hydrogen, res)
        top.addBond(o, h1)
        top.addBond(o, h2)
    if box_nm is not None:
        top.setUnitCellDimensions(Vec3(*[float(x) for x in box_nm]))
    return top

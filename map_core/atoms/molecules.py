"""Group atoms into water molecules, count orphans, and repair generated boxes for MD.

Positions in nm, angles in radians. A water is one O with two H within `max_oh` of it whose
H-O-H angle lies in `angle_range`; H atoms are given to the nearest free O first (greedy over
O-H distances), so each H belongs to at most one water.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from map_core.atoms.neighbors import minimum_image, pairs_within

MAX_OH_NM = 0.14  # q-TIP4P/F bonds reach ~0.115 nm; voxel decoding adds up to sqrt(3)/2 * 0.025 nm per atom
ANGLE_RANGE_RAD = (np.deg2rad(60.0), np.deg2rad(150.0))  # a plausibility window, not a quality bound
DECODED_ANGLE_RANGE_RAD = (np.deg2rad(45.0), np.deg2rad(165.0))


def decoded_water_limits(voxel: float | None) -> tuple:
    """(max_oh nm, angle_range rad) for atoms decoded from voxels of side `voxel` nm.

    Decoding moves each atom up to half a voxel diagonal, so a bond can look up to
    sqrt(3) * voxel longer and its angle far off; None gives the limits for continuous positions.
    """
    if voxel is None:
        return MAX_OH_NM, ANGLE_RANGE_RAD
    return 0.12 + np.sqrt(3.0) * voxel, DECODED_ANGLE_RANGE_RAD


# Intermolecular distances that no liquid-water configuration has, even after voxelisation (nm).
CLASH_NM = {("O", "O"): 0.20, ("O", "H"): 0.11, ("H", "H"): 0.11}


@dataclass
class GroupReport:
    molecules: int
    orphan_o: int
    orphan_h: int

    @property
    def orphans(self) -> int:
        return self.orphan_o + self.orphan_h

    def as_dict(self) -> dict:
        return {**asdict(self), "orphans": self.orphans}


def group_waters(positions, elements, box=None, max_oh: float = MAX_OH_NM, angle_range=ANGLE_RANGE_RAD):
    """Assign molecule ids to atoms.

    positions: (N, 3) nm; elements: (N,) 'O'/'H'; box: (3,) nm for periodic boundaries or None.
    Returns (molecule (N,) int32 with -1 for orphans, GroupReport). Molecule ids count from 0
    in the order of their O atoms.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    elements = np.asarray(elements)
    o_idx = np.nonzero(elements == "O")[0]
    h_idx = np.nonzero(elements == "H")[0]
    molecule = -np.ones(len(positions), dtype=np.int32)
    i, j, d = pairs_within(positions[o_idx], positions[h_idx], max_oh, box)
    order = np.argsort(d, kind="stable")
    first_h = -np.ones(len(o_idx), dtype=np.int64)
    second_h = -np.ones(len(o_idx), dtype=np.int64)
    h_taken = np.zeros(len(h_idx), dtype=bool)
    lo, hi = angle_range
    for k in order:
        o, h = i[k], j[k]
        if h_taken[h] or second_h[o] >= 0:
            continue
        if first_h[o] < 0:
            first_h[o] = h
            h_taken[h] = True
            continue
        v1 = minimum_image(positions[h_idx[first_h[o]]] - positions[o_idx[o]], box)
        v2 = minimum_image(positions[h_idx[h]] - positions[o_idx[o]], box)
        cos = np.dot(v1, v2) / (np.linalg.norm(v1) * np.linalg.norm(v2))
        if lo <= np.arccos(np.clip(cos, -1.0, 1.0)) <= hi:
            second_h[o] = h
            h_taken[h] = True
    complete = np.nonzero(second_h >= 0)[0]
    for mol_id, o in enumerate(complete):
        molecule[[o_idx[o], h_idx[first_h[o]], h_idx[second_h[o]]]] = mol_id
    n_mol = len(complete)
    report = GroupReport(
        molecules=n_mol,
        orphan_o=int(len(o_idx) - n_mol),
        orphan_h=int(len(h_idx) - 2 * n_mol),
    )
    return molecule, report


def make_whole(positions, elements, molecule, box, wrap: bool = True) -> np.ndarray:
    """(N, 3) nm positions with every molecule whole: its other atoms at their minimum images
    from its O, and with `wrap` every O (and atom outside a molecule) wrapped into [0, box) first.
    Atoms with molecule id -1, and molecules without exactly one O, are not moved but by the wrap.
    positions (N, 3) nm, box (3,) nm."""
    box = np.asarray(box, dtype=np.float64).reshape(3)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3).copy()
    if wrap:
        pos = np.mod(pos, box)
    molecule, elements = np.asarray(molecule), np.asarray(elements)
    oxygen = np.flatnonzero((elements == "O") & (molecule >= 0))
    ids, count = np.unique(molecule[oxygen], return_counts=True)
    anchor = np.full(int(molecule.max()) + 1 if len(molecule) else 0, -1, dtype=np.int64)
    single = np.isin(molecule[oxygen], ids[count == 1])
    anchor[molecule[oxygen[single]]] = oxygen[single]
    atoms = np.flatnonzero(molecule >= 0)
    atoms = atoms[anchor[molecule[atoms]] >= 0]
    o = anchor[molecule[atoms]]
    pos[atoms] = pos[o] + minimum_image(pos[atoms] - pos[o], box)
    return pos


def water_indices(elements, molecule, strict: bool = True) -> np.ndarray:
    """(M, 3) atom indices (O, H, H) of every complete molecule, in molecule-id order (H by index).

    strict: a molecule id that is not one O and two H raises ValueError; otherwise it is skipped.
    """
    elements = np.asarray(elements)
    molecule = np.asarray(molecule)
    atoms = np.flatnonzero(molecule >= 0)
    order = atoms[np.lexsort((elements[atoms] != "O", molecule[atoms]))]  # by id, O first, then H by index
    ids, starts, counts = np.unique(molecule[order], return_index=True, return_counts=True)
    trip = order[np.minimum(starts[:, None] + np.arange(3), len(order) - 1)] if len(order) else np.zeros((0, 3), np.int64)
    elem = elements[trip] if len(trip) else np.zeros((0, 3), dtype="<U2")
    whole = (counts == 3) & (elem[:, 0] == "O") & (elem[:, 1] == "H") & (elem[:, 2] == "H")
    if strict and not whole.all():
        raise ValueError(f"molecule {ids[~whole][0]} is not one O and two H")
    return trip[whole].astype(np.int64)


@dataclass
class RepairReport:
    molecules_in: int
    orphans_removed: int
    clash_molecules_removed: int
    seam_molecules_removed: int
    molecules_out: int

    def as_dict(self) -> dict:
        return asdict(self)


SEAM_PASS, ANY_PASS = 1, 2  # the passes of `greedy_removal`: clashes only across the seam, then any clash


def pair_limits(elements, i, j, clash_nm=CLASH_NM) -> np.ndarray:
    """(P,) clash distance (nm) of each atom pair (i[k], j[k]) by their elements (`clash_nm`, either order)."""
    kinds, code = np.unique(elements, return_inverse=True)
    table = np.array([[clash_nm.get((p, q), clash_nm.get((q, p), np.nan)) for q in kinds] for p in kinds], dtype=np.float64)
    return table[code[i], code[j]] if len(kinds) else np.zeros(0)


def greedy_removal(a, b, seam, n: int) -> np.ndarray:
    """Which of `n` molecules to remove so that no clashing pair (a[k], b[k]) is left: in a first pass only
    pairs that clash across the periodic seam (`seam[k]`), then all; each step removes the molecule in the
    most remaining clashes (the lowest id on a tie). Returns (n,) int: 0 kept, SEAM_PASS or ANY_PASS for the
    pass that removed it. Counts are updated as molecules go (each step is one pass over the pairs)."""
    a, b, seam = np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(seam, bool)
    removed = np.zeros(n, dtype=np.int64)
    for label, eligible in ((SEAM_PASS, seam), (ANY_PASS, np.ones_like(seam))):
        active = eligible & (removed[a] == 0) & (removed[b] == 0)
        counts = np.bincount(a[active], minlength=n) + np.bincount(b[active], minlength=n)
        while len(counts) and counts.max() > 0:
            worst = int(np.argmax(counts))
            removed[worst] = label
            touch = active & ((a == worst) | (b == worst))
            counts -= np.bincount(np.where(a[touch] == worst, b[touch], a[touch]), minlength=n)
            counts[worst] = 0
            active &= ~touch
    return removed


def repair(positions, elements, box, clash_nm=CLASH_NM, voxel: float | None = None, molecule=None):
    """Make a generated (open-boundary) box safe to start periodic MD from.

    voxel: side (nm) of the voxels the atoms were decoded from (widens the grouping limits, see
    `decoded_water_limits`); None for continuous positions. molecule: (N,) ids of molecules already
    known to be whole (decoded fragment classes), used instead of grouping the atoms.
    Removes orphan atoms, then whole molecules that clash with another molecule when the box is
    made periodic (`box` (3,) nm): first those clashing only across the periodic seam, then any
    other clash, greedily removing the molecule with the most clashes.
    Returns (positions (3M, 3), elements (3M,), molecule (3M,), RepairReport), atoms ordered
    O, H, H per molecule.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    elements = np.asarray(elements)
    if molecule is None:
        max_oh, angle_range = decoded_water_limits(voxel)
        molecule, grouped = group_waters(positions, elements, box=None, max_oh=max_oh, angle_range=angle_range)
    else:
        molecule = np.asarray(molecule)
        whole = len(np.unique(molecule[molecule >= 0]))
        grouped = GroupReport(molecules=whole, orphan_o=int(np.count_nonzero((molecule < 0) & (elements == "O"))),
                              orphan_h=int(np.count_nonzero((molecule < 0) & (elements == "H"))))
    waters = water_indices(elements, molecule)
    atoms = waters.reshape(-1)
    pos = positions[atoms]
    elem = elements[atoms]
    mol = np.repeat(np.arange(len(waters)), 3)
    cutoff = max(clash_nm.values())
    i, j, d = pairs_within(pos, pos, cutoff, box)
    inter = mol[i] < mol[j]
    i, j, d = i[inter], j[inter], d[inter]
    limit = pair_limits(elem, i, j, clash_nm)
    clash = d < limit if len(d) else np.zeros(0, bool)
    i, j = i[clash], j[clash]
    open_d = np.linalg.norm(pos[i] - pos[j], axis=1)
    across_seam = open_d >= cutoff  # the clash exists only through the periodic image
    removed = greedy_removal(mol[i], mol[j], across_seam, len(waters))
    seam_removed = int(np.count_nonzero(removed == SEAM_PASS))
    keep = removed == 0
    keep_atoms = np.repeat(keep, 3)
    new_mol = np.repeat(np.arange(int(keep.sum())), 3).astype(np.int32)
    report = RepairReport(
        molecules_in=len(waters),
        orphans_removed=grouped.orphans,
        clash_molecules_removed=int(np.count_nonzero(removed)) - seam_removed,
        seam_molecules_removed=seam_removed,
        molecules_out=int(keep.sum()),
    )
    return pos[keep_atoms], elem[keep_atoms], new_mol, report

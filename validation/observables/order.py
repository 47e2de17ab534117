"""Orientational order of oxygens: Steinhardt q_l and the tetrahedral order parameter q.

* Steinhardt bond-orientational order q_l (P. J. Steinhardt, D. R. Nelson, M. Ronchetti,
  Phys. Rev. B 28, 784 (1983)) of every oxygen over its oxygen neighbours within r_cut
  (seed 000: 3.5 Å = 0.35 nm), computed with ``freud.order.Steinhardt``.
* Tetrahedral order q = 1 - 3/8 sum_{j<k} (cos psi_jk + 1/3)^2 over the four nearest oxygen
  neighbours (J. R. Errington and P. G. Debenedetti, Nature 409, 318 (2001)); q = 1 for a
  perfect tetrahedron and <q> = 0 for uncorrelated (ideal-gas) neighbours.

Outputs are per oxygen (every 'O', molecule or orphan), concatenated over frames. With
``periodic=False`` only oxygens whose neighbourhood lies wholly inside the box are reported:
for q_l those at least r_cut from every face, for q those whose 4th neighbour is nearer than
the nearest face. Lengths nm.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from validation.observables.frame_tools import as_frames, distance_to_faces, frame, wrap


def compute_steinhardt(data, l: int = 6, r_cut: float = 0.35, periodic: bool = True) -> np.ndarray:
    """(sum n_O,) Steinhardt q_l of oxygens with oxygen neighbours within `r_cut` nm.

    An oxygen with no neighbour gets NaN.
    """
    import freud  # local: freud takes 0.7 s to import, which `map-suite --help` need not pay

    frames = as_frames(data)
    out = []
    for f in range(len(frames)):
        pos, el, _, box = frame(frames, f)
        ox = pos[el == "O"]
        if periodic:
            ox = wrap(ox, box)
            fbox = freud.box.Box(*box)
            keep = np.ones(len(ox), bool)
        else:  # a padded periodic box: images are > r_cut apart, so no neighbour across a face
            fbox = freud.box.Box(*(box + 4.0 * r_cut))
            keep = distance_to_faces(ox, box) >= r_cut
        if len(ox) == 0:
            continue
        points = ox - 0.5 * box  # freud boxes are centred at the origin
        nlist = freud.locality.AABBQuery(fbox, points).query(
            points, {"r_max": r_cut, "exclude_ii": True}).toNeighborList()
        st = freud.order.Steinhardt(l)
        st.compute((fbox, points), neighbors=nlist)
        q = np.array(st.particle_order, dtype=np.float64).reshape(-1)
        counts = np.bincount(nlist.query_point_indices, minlength=len(ox))
        q[counts == 0] = np.nan
        out.append(q[keep])
    return np.concatenate(out) if out else np.zeros(0)


def compute_tetrahedral_order(data, periodic: bool = True) -> np.ndarray:
    """(sum n_O,) Errington-Debenedetti tetrahedral order q of oxygens (dimensionless, <= 1).

    Oxygens with fewer than four other oxygens in the frame are skipped.
    """
    frames = as_frames(data)
    out = []
    pairs = [(j, k) for j in range(4) for k in range(j + 1, 4)]
    for f in range(len(frames)):
        pos, el, _, box = frame(frames, f)
        ox = pos[el == "O"]
        if len(ox) < 5:
            continue
        if periodic:
            ox = wrap(ox, box)
        tree = cKDTree(ox, boxsize=box if periodic else None)
        dist, idx = tree.query(ox, k=5)
        d = ox[idx[:, 1:]] - ox[:, None, :]
        if periodic:
            d = d - box * np.round(d / box)
        u = d / np.linalg.norm(d, axis=-1, keepdims=True)
        cos = np.stack([np.einsum("nd,nd->n", u[:, j], u[:, k]) for j, k in pairs], axis=1)
        q = 1.0 - 3.0 / 8.0 * np.sum((cos + 1.0 / 3.0) ** 2, axis=1)
        if not periodic:
            q = q[dist[:, 4] < distance_to_faces(ox, box)]
        out.append(q)
    return np.concatenate(out) if out else np.zeros(0)

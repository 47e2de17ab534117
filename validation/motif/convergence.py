"""Convergence of motif-conditioned generation over its iterations (seed 000, Fig. 5).

- Steinhardt q4 and q6 of the oxygens, neighbours within 0.35 nm (freud, through
  ``validation.observables.order.compute_steinhardt``): histograms on fixed bins of [0, 1], and
  the KL divergence D(P_ref || P_gen) per iteration (``validation.gate.checks.kl_hist``, nats, with
  half a count added to every bin) against two references: the training frame the motif came from,
  and the training set as a whole. Generated boxes are open: only oxygens at least 0.35 nm from
  every face count (their whole neighbourhood was generated). Training frames are periodic.
- The local density of water around the motif: molecules whose oxygen lies in spherical shells
  about the motif's centre, times the mass of one water, over the shell volume (g/cm3), out to the
  largest sphere inside the box, from 0.2 nm (a smaller shell holds one molecule or none); for the
  source frame with the minimum image.
- The KL noise floor: one generated box judges about 70 oxygens, and a histogram of 40 bins filled
  by so few draws is far from its parent distribution even when they are drawn from it (the
  bias of the plug-in KL is about (bins - 1) / 2n nats). ``kl_floor`` is the median KL of
  FLOOR_DRAWS multinomial samples of that many oxygens from each reference itself: a generated box
  is indistinguishable from the reference, at this size, when its KL is near the floor.
Units: nm, g/cm3, nats.
"""

from __future__ import annotations

import numpy as np

from validation.gate.checks import kl_hist
from validation.motif.scan import WATER_G_MOL
from validation.observables.density import AVOGADRO
from validation.observables.order import compute_steinhardt

R_CUT_NM = 0.35  # seed 000: neighbours within 3.5 Å
Q_EDGES = np.linspace(0.0, 1.0, 41)
LS = (4, 6)
R_MIN_NM = 0.2
FLOOR_DRAWS = 200


def order_histograms(frames, periodic: bool) -> dict:
    """{l: (40,) counts of q_l on Q_EDGES} of every oxygen with a neighbour (see module doc)."""
    out = {}
    for ql in LS:
        q = compute_steinhardt(frames, l=ql, r_cut=R_CUT_NM, periodic=periodic)
        out[ql] = np.histogram(q[np.isfinite(q)], bins=Q_EDGES)[0]
    return out


def radial_density(oxygens, centre, edges, box=None) -> np.ndarray:
    """(len(edges) - 1,) g/cm3 of water in spherical shells `edges` (nm) about `centre` (3,) nm,
    counting molecules by their oxygen (N, 3) nm; `box` (3,) nm: periodic minimum image."""
    d = np.asarray(oxygens, float).reshape(-1, 3) - np.asarray(centre, float)
    if box is not None:
        box = np.asarray(box, float)
        d = (d + box / 2) % box - box / 2
    counts = np.histogram(np.linalg.norm(d, axis=1), bins=edges)[0]
    volume = 4.0 / 3.0 * np.pi * np.diff(np.asarray(edges, float) ** 3) * 1e-21  # cm3
    return counts * WATER_G_MOL / AVOGADRO / volume


def convergence(iterations: list, source, training, centre_nm, source_centre_nm, shell_nm: float = 0.1) -> dict:
    """JSON-ready numbers of Fig. 5 and the density profile.

    iterations: per iteration, one open generated box (Frames of one frame, or anything
    ``compute_steinhardt`` takes); source: the training frame the motif came from (one periodic
    frame); training: the training frames (periodic); centre_nm (3,): the motif's centre in the
    generated boxes (x, y, z); source_centre_nm: in the source frame.
    """
    ref_frame, ref_set = order_histograms(source, True), order_histograms(training, True)
    box = np.asarray(iterations[0].box[0], float)
    r_max = float(np.min(np.minimum(centre_nm, box - np.asarray(centre_nm))))
    edges = np.arange(R_MIN_NM, r_max + 1e-9, shell_nm)
    src_box = np.asarray(source.box[0], float)
    src_o = source.positions[0][source.elements[0] == "O"]
    out = {"q_edges": Q_EDGES.tolist(), "r_cut_nm": R_CUT_NM, "shell_edges_nm": edges.tolist(),
           "reference_frame": {f"q{ql}": ref_frame[ql].tolist() for ql in LS},
           "reference_set": {f"q{ql}": ref_set[ql].tolist() for ql in LS},
           "source_density_g_cm3": radial_density(src_o, source_centre_nm, edges, src_box).tolist(),
           "iterations": []}
    n_judged = []
    for k, frames in enumerate(iterations, start=1):
        gen = order_histograms(frames, False)
        oxygens = frames.positions[0][frames.elements[0] == "O"]
        row = {"iteration": k, "oxygens_judged": int(gen[4].sum()),
               "density_g_cm3": radial_density(oxygens, centre_nm, edges).tolist()}
        for ql in LS:
            row[f"q{ql}"] = gen[ql].tolist()
            row[f"kl_q{ql}_frame"] = kl_hist(ref_frame[ql], gen[ql])
            row[f"kl_q{ql}_set"] = kl_hist(ref_set[ql], gen[ql])
        out["iterations"].append(row)
        n_judged.append(row["oxygens_judged"])
    n = int(np.median(n_judged)) if n_judged else 0
    out["kl_floor"] = {"oxygens": n, "draws": FLOOR_DRAWS,
                       **{f"q{ql}_{name}": kl_floor(ref[ql], n) for ql in LS
                          for name, ref in (("frame", ref_frame), ("set", ref_set))}}
    return out


def kl_floor(reference_counts, n: int, draws: int = FLOOR_DRAWS, seed: int = 0) -> float:
    """Median D(P_ref || P_sample) over `draws` histograms of `n` draws from the reference itself."""
    ref = np.asarray(reference_counts, float)
    if n < 1 or ref.sum() <= 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    return float(np.median([kl_hist(ref, rng.multinomial(n, ref / ref.sum())) for _ in range(draws)]))

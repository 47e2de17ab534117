"""Static structure factor S(q): partials S_ab(q) of water and its X-ray weighted total.

q is the angular wavenumber in nm^-1, q = 4 pi sin(theta) / lambda (10 nm^-1 = 1 Å^-1); lengths nm.

Partial (``compute_structure_factor``): the structure factor of the b atoms seen from the a atoms,

    S_ab(q) = 1 + (1/N_a) sum_{i in a} sum_{j in b, inter} sin(q r_ij)/(q r_ij)  (forward peak removed)
            = 1 + 4 pi rho_b int_0^R r^2 (g_ab(r) - 1) sin(qr)/(qr) dr,

over intermolecular pairs only, like ``rdf.py`` (same molecule id >= 0 and self pairs left out),
with rho_b the density of allowed partners per a atom (the density that normalises g_ab). For
S_OO (one O per molecule) this is the usual structure factor of the oxygens, (1/N_O) <|sum_O
exp(i q.r)|^2>, and it does not matter whether intramolecular pairs count. It is normalised by the
partner density, not the total atomic density of Faber and Ziman: S_ab^FZ - 1 = (S_ab - 1) / x_b
(x_b the atom fraction of b, 1/3 for O in water), so S_OO^FZ - 1 is three times S_OO - 1. The
partner density keeps S_OO equal to what ``structure_factor_from_rdf`` makes of the gate's g_OO.

Two estimators:

* periodic boxes, ``r_max=None``: the Debye sum over all pairs in the minimum image, from
  ``freud.diffraction.StaticStructureFactorDebye``, less the ideal-gas term that freud leaves in
  (see ``debye_partial``). Not ``StaticStructureFactorDirect``: that gives S only at the box's
  wave vectors, |k| = 2 pi/L sqrt(m), about 0.3 nm^-1 apart near 20 nm^-1 in a 1.85 nm box (bins
  of 0.25 nm^-1 there come out empty) and only 4.8, 5.9, 6.8, 7.6 ... nm^-1 at low q, each
  shell averaging a few k vectors (noisy). The Debye sum averages over all directions and takes
  any q grid.
* open boxes (generated boxes, training windows) and any box with ``r_max``: the g(r) of
  ``rdf.py`` (edge-corrected ``open_rdf_counts`` when open, ``compute_rdf`` when periodic)
  transformed by ``structure_factor_from_rdf``. The transform only knows g up to R = r_max, so q
  is resolved to about 2 pi / R, and a region of edge L (R <= L/2) resolves nothing below
  q_min ~ 4 pi / L (1.9 nm region: 6.8 nm^-1), the same limit as freud's ``min_valid_k``.

No window by default. Water's S_OO has a weak first maximum near 21-22 nm^-1 before a higher
one near 29 nm^-1; the Lorch window smooths S over about 2 pi / R and merges the two for the R the
gate can afford (R <= 1.5 nm, half its largest region): on the shipped q-TIP4P/F frames (R = 0.6
and 0.9 nm) and on Soper's 2013 experimental g_OO (R = 0.6 to 1.5 nm) the windowed S_OO keeps
only the 27-29 nm^-1 maximum (at R = 2.4 nm a weak one returns at 22 nm^-1). Without the window
the first maximum stays at 21.5-22.5 nm^-1 for R >= 0.7 nm and is gone at R = 0.6 nm. The
unwindowed ripples are small for water because g_OO - 1 is small beyond 0.8 nm (R = 0.9 nm
against freud's Debye S_OO: within 0.015 above 12 nm^-1). Use ``window="lorch"`` for noisy g(r)
when the shape of S matters more than its first peak.

X-ray total (``compute_xray_structure_factor``): see there.
"""

from __future__ import annotations

import numpy as np

from map_core.atoms.neighbors import minimum_image
from map_core.errors import MapSuiteError
from validation.observables.frame_tools import as_frames, frame, wrap
from validation.observables.rdf import allowed_pairs, compute_rdf, g_from_counts, open_rdf_counts

Q_DEFAULT = np.linspace(4.0, 60.0, 225)  # nm^-1, step 0.25 nm^-1 (0.025 Å^-1)
BIN_WIDTH = 0.0125  # nm, the RDF bins of the g(r) path (seed 000's 0.125 Å)
WINDOWS = ("lorch", None)

# Cromer-Mann coefficients (a1, b1, a2, b2, a3, b3, a4, b4, c) of the neutral free atoms,
# International Tables for Crystallography Vol. C, Table 6.1.1.4: f(s) = sum a_i exp(-b_i s^2) + c
# with s = sin(theta)/lambda in Å^-1 and b_i in Å^2.
CROMER_MANN = {
    "H": (0.489918, 20.6593, 0.262003, 7.74039, 0.196767, 49.5519, 0.049879, 2.20159, 0.001305),
    "O": (3.0485, 13.2771, 2.2868, 5.7011, 1.5463, 0.3239, 0.867, 32.9089, 0.2508),
}


def structure_factor_from_rdf(r, g, density: float, q, r_max: float | None = None,
                              window: str | None = None) -> np.ndarray:
    """(Q,) S(q) = 1 + 4 pi rho int_0^R r^2 (g(r) - 1) sin(qr)/(qr) W(r) dr.

    r: (B,) evenly spaced bin centres, nm (as ``compute_rdf`` and ``open_rdf_counts`` return);
    g: (B,) g(r); density: rho, number density of the partner atoms, nm^-3 (for g_OO of water
    about 33.4); q: (Q,) nm^-1; r_max: R, nm (default the upper edge of the last bin; bins whose
    centre lies beyond R are dropped); window: "lorch" for W(r) = sin(pi r/R)/(pi r/R)
    (E. Lorch, J. Phys. C 2, 229 (1969)), None for W = 1. Midpoint rule over the bins.

    Cutting g - 1 off at R convolves S with the transform of a step: every feature of S gets side
    lobes (truncation ripples) about 2 pi / R apart, and S oscillates by about 4 pi rho R^2 |g(R) - 1|
    / (qR); worst where g - 1 is still large at R. The Lorch window takes g - 1 smoothly to 0 at R
    and removes the ripples, at the cost of smoothing S over about 2 pi / R (peaks lower and wider;
    for water it erases the first S_OO maximum, see the module docstring). Either way S is resolved
    to about 2 pi / R, and a region of edge L (R <= L/2) says nothing below q ~ 4 pi / L; compare
    two S(q) only when both came from the same R and window.
    """
    r, g, q = np.asarray(r, float).reshape(-1), np.asarray(g, float).reshape(-1), check_q(q)
    if len(r) != len(g) or len(r) < 2:
        raise MapSuiteError(f"r and g need the same length, at least 2 (got {len(r)} and {len(g)})")
    dr = r[1] - r[0]
    if dr <= 0 or not np.allclose(np.diff(r), dr, rtol=1e-6, atol=1e-9):
        raise MapSuiteError("r must be evenly spaced increasing bin centres (nm)")
    if window not in WINDOWS:
        raise MapSuiteError(f"window must be 'lorch' or None, not {window!r}")
    if not np.isfinite(density) or density <= 0:
        raise MapSuiteError(f"density must be a positive number of atoms per nm^3, not {density}")
    big_r = r[-1] + 0.5 * dr if r_max is None else float(r_max)
    keep = r < big_r
    if not (np.isfinite(big_r) and big_r > 0 and keep.any()):
        raise MapSuiteError(f"r_max {r_max} nm leaves no bins of r")
    if not np.all(np.isfinite(g[keep])):
        raise MapSuiteError(f"g(r) is not finite everywhere below r_max = {big_r:.4g} nm (no pairs expected there?)")
    r, h = r[keep], g[keep] - 1.0
    w = np.sinc(r / big_r) if window == "lorch" else 1.0  # np.sinc(x) = sin(pi x)/(pi x)
    kernel = np.sinc(np.outer(q, r) / np.pi)  # sin(qr)/(qr)
    return 1.0 + 4.0 * np.pi * density * dr * (kernel @ (r ** 2 * h * w))


def compute_structure_factor(data, pair=("O", "O"), q=None, periodic: bool = True, r_max: float | None = None,
                             window: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Intermolecular partial structure factor S_ab(q) of element pair `pair`, pooled over frames.

    Returns (q (Q,) nm^-1, S (Q,)); q defaults to ``Q_DEFAULT`` (4 to 60 nm^-1). Periodic with
    r_max None: freud's Debye sum (q must then be evenly spaced; S is NaN below freud's valid
    limit 4 pi / L). Otherwise the g(r) transform with R = r_max (default half the smallest box
    edge; periodic needs r_max below that) and `window` (unused by the Debye sum). Normalisation
    and choice of estimator: module docstring. Raises MapSuiteError for bad q, r_max or elements.
    """
    frames = as_frames(data)
    q = Q_DEFAULT.copy() if q is None else check_q(q)
    present = set(np.unique(np.concatenate([np.asarray(e) for e in frames.elements])).tolist())
    if len(pair) != 2 or any(e not in present for e in pair):
        raise MapSuiteError(f"pair {tuple(pair)} names elements not in the data (present: {', '.join(sorted(present))})")
    a_el, b_el = pair
    if periodic and r_max is None:
        return q, debye_partial(frames, a_el, b_el, q)
    half = 0.5 * float(np.min(frames.box))
    r_max = half if r_max is None else float(r_max)
    if not np.isfinite(r_max) or r_max <= 2 * BIN_WIDTH or (not periodic and r_max > half):
        raise MapSuiteError(f"r_max {r_max} nm must lie between {2 * BIN_WIDTH} nm and half the smallest box edge "
                            f"({half:.4g} nm)")
    if periodic:  # compute_rdf refuses r_max at or above half the box
        r, g = compute_rdf(frames, pair, r_max, BIN_WIDTH, periodic=True)
    else:
        r, counts, expected = open_rdf_counts(frames, pair, r_max, BIN_WIDTH)
        g = g_from_counts(counts, expected)
    return q, structure_factor_from_rdf(r, g, partner_density(frames, a_el, b_el), q, r_max, window)


def compute_xray_structure_factor(data, q=None, periodic: bool = True, r_max: float | None = None,
                                  window: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """X-ray weighted total structure factor of water in the Faber-Ziman form, (q (Q,) nm^-1, S_X (Q,)).

        S_X(q) = 1 + [I(q)/N - <f^2>] / <f>^2,   <f> = x_O f_O + x_H f_H,  <f^2> = x_O f_O^2 + x_H f_H^2,
        I(q)/N - <f^2> = sum_ab x_a f_a f_b (S_ab(q) - 1) + (1/N) sum_{intra i != j} f_i f_j sin(q r_ij)/(q r_ij)

    with S_ab the intermolecular partials of ``compute_structure_factor`` (same estimator, q,
    r_max and window), x_a atom fractions, N atoms, and the intramolecular pairs (O-H and H-H of
    every molecule id, as they are in each frame) summed exactly, as the experiment sees them.
    f_O(q), f_H(q): independent (free) atom form factors, Cromer-Mann (``xray_form_factor``).
    S_X tends to 1 at large q; an ideal gas of molecules gives 1 + the intramolecular term.

    What differs from the experimental analysis (e.g. L. B. Skinner et al., J. Chem. Phys. 138,
    074506 (2013)): the experiment measures the same total (intramolecular pairs included) but
    normalises with modified atomic form factors (electron density pulled from H to O by the
    bonds, a correction that fades over a few Å^-1) and removes Compton and self scattering
    by models; here free-atom form factors, and the intramolecular distances are those of the
    frames (classical vibration, no zero-point spread). So S_X of a model and the experimental
    S_X differ in amplitude at low and intermediate q; peak positions stay comparable. Only O and
    H atoms are allowed.
    """
    frames = as_frames(data)
    q = Q_DEFAULT.copy() if q is None else check_q(q)
    elements = np.concatenate([np.asarray(e) for e in frames.elements])
    unknown = sorted(set(np.unique(elements).tolist()) - set(CROMER_MANN))
    if unknown or not {"O", "H"} <= set(elements.tolist()):
        raise MapSuiteError(f"the X-ray S(q) of water needs O and H atoms only (unknown: {', '.join(unknown) or 'none'})")
    x = {e: float(np.mean(elements == e)) for e in ("O", "H")}
    f = {e: xray_form_factor(e, q) for e in ("O", "H")}
    mean_f = x["O"] * f["O"] + x["H"] * f["H"]
    sum_ab = np.zeros(len(q))
    for a, b, times in (("O", "O", 1), ("O", "H", 2), ("H", "H", 1)):  # O-H counts for O-H and H-O
        _, s_ab = compute_structure_factor(frames, (a, b), q, periodic, r_max, window)
        sum_ab += times * x[a] * f[a] * f[b] * (s_ab - 1.0)
    intra = np.zeros(len(q))
    for k in range(len(frames)):
        pos, el, mol, box = frame(frames, k)
        i, j = same_molecule_pairs(mol)
        d = np.linalg.norm(minimum_image(pos[j] - pos[i], box if periodic else None), axis=1)
        for a, b in (("O", "H"), ("H", "H")):  # ordered pairs: each unordered pair twice
            sel = ((el[i] == a) & (el[j] == b)) | ((el[i] == b) & (el[j] == a))
            intra += 2.0 * f[a] * f[b] * np.sinc(np.outer(q, d[sel]) / np.pi).sum(axis=1)
    return q, 1.0 + (sum_ab + intra / len(elements)) / mean_f ** 2


def xray_form_factor(element: str, q) -> np.ndarray:
    """(Q,) free-atom X-ray form factor (electrons) of 'O' or 'H' at q (nm^-1), Cromer-Mann.

    The tables take s = sin(theta)/lambda in Å^-1: s = q / (4 pi) with q in Å^-1 = q[nm^-1] / (40 pi).
    """
    if element not in CROMER_MANN:
        raise MapSuiteError(f"no X-ray form factor for element {element!r} (known: {', '.join(CROMER_MANN)})")
    c = CROMER_MANN[element]
    s2 = (np.asarray(q, float) / (40.0 * np.pi)) ** 2
    return c[8] + sum(c[2 * k] * np.exp(-c[2 * k + 1] * s2) for k in range(4))


def first_peak_q(q, S, window=(15.0, 35.0), half_width: float = 1.0) -> tuple[float, float]:
    """(position nm^-1, height) of the first maximum of S(q) inside `window` (nm^-1).

    A maximum is a point that is the highest within +-`half_width` nm^-1 (all of which must lie
    on the q grid), as ``rdf.first_peak`` does in r: wiggles narrower than that are skipped. NaN
    points are left out. Returns (nan, nan) if there is none.

    Water, for comparison: the X-ray total of experiment has its main peak near 20 nm^-1
    (2.0 Å^-1) and a second maximum near 28-30 nm^-1 (G. Hura et al., J. Chem. Phys. 113, 9140
    (2000); Skinner et al. 2013; read off the published figures, no stored table). Measured here:
    Soper's 2013 intermolecular partials (``validation.observables.experiment``) transformed with
    R = 2.4 nm, no window, give S_OO maxima at 22.5 and 29.25 nm^-1 and, with free-atom form
    factors and a rigid molecule, S_X at 20.75 and 28.75 nm^-1; the shipped q-TIP4P/F frames
    give S_OO at 21.5 and 29.5 nm^-1 and S_X at 21.0 and 29.25 nm^-1 (periodic Debye).
    """
    q, S = np.asarray(q, float), np.asarray(S, float)
    ok = np.isfinite(S)
    q, S = q[ok], S[ok]
    for i in np.flatnonzero((q >= window[0]) & (q <= window[1])):
        near = np.abs(q - q[i]) <= half_width
        if q[i] - half_width >= q[0] and q[i] + half_width <= q[-1] and S[i] >= S[near].max():
            return float(q[i]), float(S[i])
    return float("nan"), float("nan")


# --- the pieces -----------------------------------------------------------------------------
def check_q(q) -> np.ndarray:
    """q as a (Q,) float array; MapSuiteError unless non-empty, finite and positive (nm^-1)."""
    q = np.asarray(q, dtype=float).reshape(-1)
    if len(q) == 0 or not np.all(np.isfinite(q)) or np.any(q <= 0):
        raise MapSuiteError("q must be finite and positive wavenumbers in nm^-1")
    return q


def partner_density(frames, a_el: str, b_el: str) -> float:
    """Allowed (a, b) partners per a atom per volume, nm^-3, pooled over frames (weight: a atoms).

    The density that normalises the g(r) of ``rdf.py``, so that S_ab = 1 for an ideal gas.
    """
    pairs_per_volume, n_ref = 0.0, 0
    for k in range(len(frames)):
        _, el, mol, box = frame(frames, k)
        a, b = np.flatnonzero(el == a_el), np.flatnonzero(el == b_el)
        pairs_per_volume += allowed_pairs(a, b, mol) / np.prod(box)
        n_ref += len(a)
    return pairs_per_volume / n_ref


def same_molecule_pairs(molecule) -> tuple[np.ndarray, np.ndarray]:
    """(i (P,), j (P,)) every unordered pair of atoms sharing a molecule id >= 0."""
    molecule = np.asarray(molecule)
    idx = np.flatnonzero(molecule >= 0)
    order = idx[np.argsort(molecule[idx], kind="stable")]  # each molecule's atoms now adjacent
    i, j = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for step in range(1, len(order)):
        same = molecule[order[:-step]] == molecule[order[step:]]
        if not same.any():  # molecules are contiguous runs: no pair further apart either
            break
        i.append(order[:-step][same])
        j.append(order[step:][same])
    return np.concatenate(i), np.concatenate(j)


def debye_partial(frames, a_el: str, b_el: str, q) -> np.ndarray:
    """(Q,) S_ab(q) of periodic frames from freud's Debye sum, less the ideal-gas term.

    freud sums sin(q r)/(q r) over all (a, b) pairs at minimum-image distances, i.e. over the box
    (a cube of edge L) around each a atom, self pairs included, and subtracts nothing. An ideal
    gas then gives S - 1 = rho_b V <prod_i sinc(q n_i L_i / 2)>_n (the box's own scattering,
    averaged over directions n): in a 1.85 nm box of 216 oxygens -14 at 5 nm^-1, 3.6 at 8 nm^-1
    and still -0.2 at 19 nm^-1, which would move the first peak of S_OO. That term is removed
    here, per frame, together with self and intramolecular pairs, so that S - 1 is the transform
    of g - 1 over the box (no window). NaN below 4 pi / L (freud's ``min_valid_k``).
    """
    import freud  # local: freud takes 0.7 s to import, which `map-suite --help` need not pay

    if len(q) < 2 or not np.allclose(np.diff(q), q[1] - q[0], rtol=1e-6) or q[1] <= q[0]:
        raise MapSuiteError("the periodic Debye S(q) needs q evenly spaced and increasing, at least 2 values "
                            "(or give r_max for the g(r) transform)")
    total, n_ref, q_valid, last_box = np.zeros(len(q)), 0, 0.0, None
    for k in range(len(frames)):
        pos, el, mol, box = frame(frames, k)
        a, b = np.flatnonzero(el == a_el), np.flatnonzero(el == b_el)
        if len(a) == 0 or len(b) == 0:
            continue
        points = wrap(pos, box) - 0.5 * box  # freud boxes are centred at the origin
        sf = freud.diffraction.StaticStructureFactorDebye(len(q), q[-1], q[0])
        sf.compute((freud.box.Box(*box), points[b]), query_points=points[a], N_total=len(a))
        pair_sum = len(a) * np.asarray(sf.S_k, dtype=np.float64)  # sum over all (a, b) pairs
        i, j = same_molecule_pairs(mol)
        sel = ((el[i] == a_el) & (el[j] == b_el)) | ((el[i] == b_el) & (el[j] == a_el))
        d = np.linalg.norm(minimum_image(pos[j[sel]] - pos[i[sel]], box), axis=1)
        intra = (1 + (a_el == b_el)) * np.sinc(np.outer(q, d) / np.pi).sum(axis=1)  # ordered: a-a pairs twice
        self_pairs = len(a) if a_el == b_el else 0
        if not np.array_equal(box, last_box):  # NVT frames share one box: integrate once
            last_box, ideal = box, box_average_sinc(q, box)
        total += pair_sum - self_pairs - intra - allowed_pairs(a, b, mol) * ideal
        n_ref += len(a)
        q_valid = max(q_valid, float(sf.min_valid_k))
    if n_ref == 0:
        raise MapSuiteError(f"no {a_el}-{b_el} pairs in the data")
    return np.where(q >= q_valid * (1 - 1e-6), 1.0 + total / n_ref, np.nan)


def box_average_sinc(q, box) -> np.ndarray:
    """(Q,) (1/V) int over the box [-L/2, L/2]^3 of sin(q|r|)/(q|r|) d^3r.

    Equal to the direction average of prod_i sinc(q n_i L_i / 2); Gauss-Legendre in cos(theta)
    and phi over one octant (the integrand is even in each n_i), with enough nodes for the
    q L / 2 radians of oscillation at the largest q.
    """
    q, box = np.asarray(q, float), np.asarray(box, float)
    n = 24 + int(q.max() * box.max() / 2.0)
    x, w = np.polynomial.legendre.leggauss(n)
    mu, w_mu = 0.5 * (x + 1.0), 0.5 * w  # cos(theta) in [0, 1]
    phi, w_phi = 0.25 * np.pi * (x + 1.0), 0.25 * np.pi * w  # phi in [0, pi/2]
    s = np.sqrt(1.0 - mu ** 2)
    n_vec = np.stack([np.outer(s, np.cos(phi)), np.outer(s, np.sin(phi)), np.outer(mu, np.ones(n))], -1).reshape(-1, 3)
    weight = np.outer(w_mu, w_phi).reshape(-1) * 2.0 / np.pi  # octant solid angle is pi/2
    prod = np.prod(np.sinc(q[:, None, None] * n_vec[None] * box / (2.0 * np.pi)), axis=2)
    return prod @ weight

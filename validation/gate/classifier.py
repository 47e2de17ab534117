"""Classifier two-sample test: can a small network tell generated from training local environments?

After seed 003 (Swanson et al., Soft Matter 2020: a classifier separates two structure
ensembles; AUC 0.5 = indistinguishable), but on per-molecule descriptors, which need far
less data than images of whole boxes: a classifier two-sample test (Lopez-Paz and Oquab,
ICLR 2017). Each complete molecule of an analysed region gets ``N_FEATURES`` numbers
(``FEATURE_NAMES``), all rotation- and translation-invariant except the dipole direction:

- ``d_OO_1..12``: distances to its 12 nearest other oxygens, sorted (nm; the 5th, d5, tells
  water's low- from high-density local structures);
- ``cos_OOO_1..6``: the cosines of the 6 O-O-O angles at its oxygen between its 4 nearest
  oxygens, sorted, and ``q_tet``: their Errington-Debenedetti tetrahedral order;
- ``n_O_030``, ``n_O_035``, ``n_O_045``: the number of other oxygens within 0.30, 0.35, 0.45 nm;
- ``d_OH_1..4``: distances from its oxygen to the 4 nearest hydrogens of other molecules (nm);
- ``r_OH_short``, ``r_OH_long``: its two O-H bonds (nm), ``a_HOH``: its H-O-H angle (rad);
- ``dipole_x``, ``dipole_y``, ``dipole_z``: the unit vector along its dipole (bisector) in box
  axes: a raster-order bias of the generator shows up here even if every rotation-invariant
  statistic is right;
- ``hb_donated``, ``hb_accepted``: its hydrogen bonds by the geometric criterion O-O < 0.35 nm
  and angle H-O_donor...O_acceptor < 30 deg (donated: 0-2, one per hydrogen; accepted: hydrogens
  of other complete molecules bonded to its oxygen);
- ``r_HO_near``, ``r_HO_far``: the distance from each of its hydrogens to the nearest other
  oxygen (sorted, nm) and ``a_OHO_near``, ``a_OHO_far``: the O-H...O angle at that hydrogen
  (rad; pi when linear);
- ``mean4_d_OO_1..5``, ``mean4_q_tet``: d_OO_1..5 and q_tet averaged over the molecule and its 4
  nearest oxygens: a slightly larger environment, less noisy per molecule.

Neighbours are the atoms inside the region, so molecules near its faces see fewer of them
(generated and training regions have the same shape, so this treats both alike). Distances are
capped at ``D_MAX_NM`` and a missing neighbour counts as one at ``D_MAX_NM`` (a missing angle:
cosine -1/3, the tetrahedral value), so the features are always finite. Oxygens and hydrogens
of incomplete molecules count as neighbours; only complete molecules get a row.

An MLP (N_FEATURES -> hidden -> hidden -> 1) is trained on the molecules of some boxes and
scored on the molecules of the others (grouped k-fold by box, so neighbours in one box never
sit on both sides); the out-of-fold scores of all molecules give one ROC AUC.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.stats import binomtest, rankdata

from validation.observables.frame_tools import as_frames, frame, water_molecules

FEATURES_VERSION = 2  # part of the session's feature cache key: bump whenever the features change

K_OXYGENS = 12                  # sorted distances to this many nearest other oxygens
K_HYDROGENS = 4                 # ... and to this many nearest hydrogens of other molecules
D_MAX_NM = 0.6                  # distances are capped here; a missing neighbour sits here
SHELLS_NM = (0.30, 0.35, 0.45)  # oxygen counts within these radii
HBOND_OO_NM = 0.35              # geometric hydrogen bond: O-O below this ...
HBOND_ANGLE_RAD = np.deg2rad(30.0)  # ... and angle H-O_donor...O_acceptor below this
K_MEAN = 4                      # mean4_*: averaged over the molecule and its 4 nearest oxygens
MISSING_COS = -1.0 / 3.0        # cosine of an O-O-O angle with a missing neighbour

FEATURE_NAMES = (
    *(f"d_OO_{k}" for k in range(1, K_OXYGENS + 1)),
    *(f"cos_OOO_{k}" for k in range(1, 7)), "q_tet",
    *(f"n_O_{round(r * 100):03d}" for r in SHELLS_NM),
    *(f"d_OH_{k}" for k in range(1, K_HYDROGENS + 1)),
    "r_OH_short", "r_OH_long", "a_HOH",
    "dipole_x", "dipole_y", "dipole_z",
    "hb_donated", "hb_accepted",
    "r_HO_near", "r_HO_far", "a_OHO_near", "a_OHO_far",
    *(f"mean4_d_OO_{k}" for k in range(1, 6)), "mean4_q_tet",
)
N_FEATURES = len(FEATURE_NAMES)
DIPOLE_FEATURES = ("dipole_x", "dipole_y", "dipole_z")  # the only ones that depend on the box's axes


def molecule_features(data, limit: int | None = None, seed: int = 0) -> tuple:
    """(X (n, N_FEATURES) float64, box (n,) int) for the complete molecules of every open box.

    limit: at most about this many molecules in all (a random subset of each box's share), so
    that boxes of a broken model holding thousands of "molecules" stay cheap to classify.
    """
    frames = as_frames(data)
    rng = np.random.default_rng([seed, 5])
    per_box = None if limit is None else max(1, int(np.ceil(limit / max(len(frames), 1))))
    rows, boxes = [], []
    for f in range(len(frames)):
        pos, el, mol, _ = frame(frames, f)
        x = frame_features(pos, el, mol)
        if per_box is not None and len(x) > per_box:
            x = x[np.sort(rng.choice(len(x), per_box, replace=False))]
        rows.append(x)
        boxes.append(np.full(len(x), f, dtype=np.int64))
    if not rows:
        return np.zeros((0, N_FEATURES)), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(boxes)


def frame_features(positions, elements, molecule) -> np.ndarray:
    """(M, N_FEATURES) features of the complete molecules of one open box (rows in the order of
    ``water_molecules``); no rows when it has no complete molecule or fewer than 2 oxygens."""
    pos = np.asarray(positions, dtype=np.float64)
    el = np.asarray(elements)
    w = water_molecules(el, molecule)
    oxy = np.flatnonzero(el == "O")
    hyd = np.flatnonzero(el == "H")
    n_o = len(oxy)
    if len(w) == 0 or n_o < 2:
        return np.zeros((0, N_FEATURES))
    po = pos[oxy]
    tree = cKDTree(po)
    # every oxygen's K nearest other oxygens, nearest first (missing: index n_o, distance inf)
    nb, d = _nearest_others(tree, po, np.arange(n_o), K_OXYGENS)
    dist = np.minimum(d, D_MAX_NM)
    cos = _angle_cosines(po, nb[:, :4])
    q_all = 1.0 - 3.0 / 8.0 * ((cos + 1.0 / 3.0) ** 2).sum(axis=1)
    # the molecules' own geometry
    slot = np.searchsorted(oxy, w[:, 0])  # each molecule's oxygen among the oxygens
    o, h1, h2 = pos[w[:, 0]], pos[w[:, 1]], pos[w[:, 2]]
    u1, b1 = _unit(h1 - o)
    u2, b2 = _unit(h2 - o)
    hoh = np.arccos(np.clip(np.einsum("nd,nd->n", u1, u2), -1.0, 1.0))
    dipole, _ = _unit(u1 + u2)
    # hydrogen bonds donated by each hydrogen to the oxygens among its oxygen's neighbours
    nbm, dm = nb[slot], d[slot]
    u_oo, _ = _unit(po[np.minimum(nbm, n_o - 1)] - o[:, None, :])
    close = (nbm < n_o) & (dm < HBOND_OO_NM)
    bond1 = close & (np.einsum("nkd,nd->nk", u_oo, u1) > np.cos(HBOND_ANGLE_RAD))
    bond2 = close & (np.einsum("nkd,nd->nk", u_oo, u2) > np.cos(HBOND_ANGLE_RAD))
    donated = bond1.any(axis=1).astype(np.float64) + bond2.any(axis=1)
    accepted = np.bincount(np.concatenate([nbm[bond1], nbm[bond2]]), minlength=n_o)[slot].astype(np.float64)
    # each hydrogen's nearest other oxygen, sorted by distance
    r1, a1 = _nearest_acceptor(tree, po, slot, o, h1)
    r2, a2 = _nearest_acceptor(tree, po, slot, o, h2)
    swap = r2 < r1
    r_ho = np.stack([np.where(swap, r2, r1), np.where(swap, r1, r2)], axis=1)
    a_oho = np.stack([np.where(swap, a2, a1), np.where(swap, a1, a2)], axis=1)
    d_oh = _other_hydrogens(pos, hyd, w, o)
    shells = np.stack([(d[slot] < r).sum(axis=1) for r in SHELLS_NM], axis=1).astype(np.float64)
    # d_OO_1..5 and q_tet averaged over the molecule and its nearest oxygens
    own = np.concatenate([dist[:, :5], q_all[:, None]], axis=1)
    near = nb[slot, :K_MEAN]
    have = (near < n_o)[..., None]
    mean4 = (np.where(have, own[np.minimum(near, n_o - 1)], 0.0).sum(axis=1) + own[slot]) / (1.0 + have.sum(axis=1))
    x = np.concatenate([dist[slot], np.sort(cos[slot], axis=1), q_all[slot, None], shells, d_oh,
                        np.stack([np.minimum(b1, b2), np.maximum(b1, b2), hoh], axis=1), dipole,
                        np.stack([donated, accepted], axis=1), r_ho, a_oho, mean4], axis=1)
    return np.ascontiguousarray(x, dtype=np.float64)


def _unit(v) -> tuple:
    """(unit vectors, norms) along the last axis; a zero vector stays zero."""
    n = np.linalg.norm(v, axis=-1)
    return v / np.maximum(n, 1e-12)[..., None], n


def _nearest_others(tree, points, own, k: int) -> tuple:
    """(indices (P, k), distances (P, k)) of the k nearest tree points to each point other than
    point `own` (P,) of the tree itself; missing ones have index tree.n and distance inf."""
    n = tree.n
    kk = min(k + 1, n)
    d, i = tree.query(points, k=kk)
    d, i = d.reshape(len(points), kk), i.reshape(len(points), kk)
    order = np.argsort(i == np.asarray(own)[:, None], axis=1, kind="stable")  # itself last
    d, i = np.take_along_axis(d, order, 1)[:, :kk - 1], np.take_along_axis(i, order, 1)[:, :kk - 1]
    if kk - 1 < k:
        d = np.pad(d, ((0, 0), (0, k - kk + 1)), constant_values=np.inf)
        i = np.pad(i, ((0, 0), (0, k - kk + 1)), constant_values=n)
    return i, d


def _angle_cosines(po, near) -> np.ndarray:
    """(P, 6) cosines of the O-O-O angles at each oxygen between its 4 nearest (indices `near`,
    index len(po) when missing; such angles get MISSING_COS)."""
    n_o = len(po)
    have = near < n_o
    u, _ = _unit(po[np.minimum(near, n_o - 1)] - po[:, None, :])
    j, k = np.triu_indices(near.shape[1], 1)
    cos = np.einsum("pad,pad->pa", u[:, j], u[:, k])
    return np.where(have[:, j] & have[:, k], cos, MISSING_COS)


def _nearest_acceptor(tree, po, slot, o, h) -> tuple:
    """(distance nm, O-H...O angle rad) from each hydrogen `h` (M, 3) to the nearest oxygen other
    than its own (index `slot` among the oxygens); none: (D_MAX_NM, 0)."""
    nb, d = _nearest_others(tree, h, slot, 1)
    nb, d = nb[:, 0], d[:, 0]
    ok = nb < tree.n
    u_ho, _ = _unit(o - h)
    u_ha, _ = _unit(po[np.minimum(nb, tree.n - 1)] - h)
    angle = np.arccos(np.clip(np.einsum("nd,nd->n", u_ho, u_ha), -1.0, 1.0))
    return np.minimum(d, D_MAX_NM), np.where(ok, angle, 0.0)


def _other_hydrogens(pos, hyd, w, o) -> np.ndarray:
    """(M, K_HYDROGENS) distances, nm, from each molecule's oxygen to the nearest hydrogens of
    other molecules (capped at D_MAX_NM; missing ones at D_MAX_NM)."""
    if len(hyd) == 0:
        return np.full((len(w), K_HYDROGENS), D_MAX_NM)
    kk = min(K_HYDROGENS + 2, len(hyd))
    d, i = cKDTree(pos[hyd]).query(o, k=kk)
    d, i = d.reshape(len(o), kk), i.reshape(len(o), kk)
    atom = hyd[np.minimum(i, len(hyd) - 1)]
    skip = (atom == w[:, 1:2]) | (atom == w[:, 2:3]) | (i >= len(hyd))
    order = np.argsort(skip, axis=1, kind="stable")  # its own hydrogens (and misses) last
    d = np.where(np.take_along_axis(skip, order, 1), np.inf, np.take_along_axis(d, order, 1))[:, :K_HYDROGENS]
    if d.shape[1] < K_HYDROGENS:
        d = np.pad(d, ((0, 0), (0, K_HYDROGENS - d.shape[1])), constant_values=np.inf)
    return np.minimum(d, D_MAX_NM)


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve from the ranks of the scores (ties share ranks)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def null_auc_sd(n1: int, n0: int) -> float:
    """Standard deviation of the AUC of an uninformative classifier (Hanley and McNeil 1982)."""
    return float(np.sqrt((n1 + n0 + 1) / (12.0 * n1 * n0))) if n1 and n0 else float("nan")


def classifier_test(x_gen, box_gen, x_ref, box_ref, hidden: int = 32, epochs: int = 300, folds: int = 2,
                    max_samples: int = 2000, seed: int = 0, min_samples: int = 10) -> dict:
    """Out-of-fold ROC AUC of an MLP separating generated (label 1) from training (0) molecules.

    Both classes are subsampled to the same size (at most `max_samples`); boxes are dealt to
    `folds` folds per class. Returns auc, null_sd, n per class and a reason when it could not run.
    """
    rng = np.random.default_rng([seed, 3])
    n = min(len(x_gen), len(x_ref), max_samples)
    if n < min_samples:
        return {"auc": float("nan"), "null_sd": float("nan"), "n": int(n),
                "reason": f"only {n} molecules with a complete neighbourhood per class (need {min_samples})"}
    pick_g = rng.choice(len(x_gen), n, replace=False)
    pick_r = rng.choice(len(x_ref), n, replace=False)
    x = np.concatenate([x_gen[pick_g], x_ref[pick_r]])
    y = np.concatenate([np.ones(n), np.zeros(n)])
    fold = np.concatenate([_deal(box_gen[pick_g], folds, rng), _deal(box_ref[pick_r], folds, rng)])
    scores = np.full(len(y), np.nan)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny problem; threads only fight the other jobs of a shared machine
    try:
        for k in range(folds):
            test = fold == k
            train = ~test
            if not test.any() or len(np.unique(y[train])) < 2:
                continue
            scores[test] = _fit_predict(x[train], y[train], x[test], hidden, epochs, seed * 1000 + k)
    finally:
        torch.set_num_threads(threads)
    ok = np.isfinite(scores)
    auc = roc_auc(scores[ok], y[ok] > 0.5)
    correct = int(np.count_nonzero((scores[ok] > 0.0) == (y[ok] > 0.5)))  # the MLP's output is a logit
    return {"auc": auc, "null_sd": null_auc_sd(int((y[ok] > 0.5).sum()), int((y[ok] < 0.5).sum())), "n": int(n),
            "correct": correct, "scored": int(ok.sum()), "p_value": accuracy_p_value(correct, int(ok.sum()))}


def accuracy_p_value(correct: int, scored: int) -> float:
    """Exact one-sided p-value of `correct` right answers out of `scored` out-of-fold predictions on
    balanced classes: under the null (both samples from one distribution) each prediction is right
    with probability 1/2 independently of the training folds, so the count is Binomial(scored, 1/2)
    (Lopez-Paz and Oquab, ICLR 2017). NaN when nothing was scored."""
    if scored <= 0:
        return float("nan")
    return float(binomtest(correct, scored, 0.5, alternative="greater").pvalue)


def _deal(boxes, folds: int, rng) -> np.ndarray:
    """Fold number of each sample: whole boxes go to one fold, in a random order."""
    ids = np.unique(boxes)
    order = rng.permutation(ids)
    fold_of = {b: i % folds for i, b in enumerate(order)}
    return np.array([fold_of[b] for b in boxes], dtype=np.int64)


def _fit_predict(x_train, y_train, x_test, hidden: int, epochs: int, seed: int) -> np.ndarray:
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    xt = torch.as_tensor((x_train - mean) / std, dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Linear(x_train.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-3)
    batch = 256
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch):
            idx = perm[start:start + batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xt[idx])[:, 0], yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return net(torch.as_tensor((x_test - mean) / std, dtype=torch.float32))[:, 0].numpy().astype(np.float64)

"""Classifier two-sample test: can a small network tell generated from training local environments?

After seed 003 (Swanson et al., Soft Matter 2020: a classifier separates two structure
ensembles; AUC 0.5 = indistinguishable), but on per-molecule descriptors, which need far
less data than images of whole boxes: a classifier two-sample test (Lopez-Paz and Oquab,
ICLR 2017). Each complete molecule of an analysed region gets 18 numbers (neighbours are
those inside the region, so molecules near its faces see fewer of them; generated and
training regions have the same shape, so this treats both alike):

- distances to its 4 nearest other oxygens and 4 nearest other-molecule hydrogens (nm),
- the Errington-Debenedetti tetrahedral order of those 4 oxygens,
- its two O-H bonds (sorted, nm) and H-O-H angle (rad),
- the unit vector along its dipole (bisector) in box axes: a raster-order bias of the
  generator shows up here even if every rotation-invariant statistic is right,
- the number of oxygens within 0.35 nm,
- the distance from each of its hydrogens to the nearest other oxygen (sorted, nm).

An MLP (18 -> hidden -> hidden -> 1) is trained on the molecules of some boxes and scored on
the molecules of the others (grouped k-fold by box, so neighbours in one box never sit on
both sides); the out-of-fold scores of all molecules give one ROC AUC.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.stats import binomtest, rankdata

from validation.observables.frame_tools import as_frames, frame, water_molecules

N_FEATURES = 18


def molecule_features(data, limit: int | None = None, seed: int = 0) -> tuple:
    """(X (n, 18) float64, box (n,) int) for the complete molecules of every open box.

    limit: at most about this many molecules in all (a random subset of each box's share), so
    that boxes of a broken model holding thousands of "molecules" stay cheap.
    """
    frames = as_frames(data)
    rng = np.random.default_rng([seed, 5])
    per_box = None if limit is None else max(1, int(np.ceil(limit / max(len(frames), 1))))
    rows, boxes = [], []
    for f in range(len(frames)):
        pos, el, mol, box = frame(frames, f)
        w = water_molecules(el, mol)
        if per_box is not None and len(w) > per_box:
            w = w[np.sort(rng.choice(len(w), per_box, replace=False))]
        oxy_idx = np.flatnonzero(el == "O")
        hyd_idx = np.flatnonzero(el == "H")
        if len(w) == 0 or len(oxy_idx) < 5 or len(hyd_idx) < 6:
            continue
        o_tree, h_tree = cKDTree(pos[oxy_idx]), cKDTree(pos[hyd_idx])
        d_o, i_o = o_tree.query(pos[w[:, 0]], k=5)         # first hit: the oxygen itself
        d_h, i_h = h_tree.query(pos[w[:, 0]], k=6)         # includes its own two hydrogens
        for m, (o, h1, h2) in enumerate(w):
            own = {h1, h2}
            other_h = [d for d, j in zip(d_h[m], i_h[m]) if hyd_idx[j] not in own][:4]
            if len(other_h) < 4:
                continue
            nb = pos[oxy_idx[i_o[m, 1:5]]] - pos[o]
            u = nb / np.linalg.norm(nb, axis=1, keepdims=True)
            cos = [u[j] @ u[k] for j in range(4) for k in range(j + 1, 4)]
            q = 1.0 - 3.0 / 8.0 * sum((c + 1.0 / 3.0) ** 2 for c in cos)
            v1, v2 = pos[h1] - pos[o], pos[h2] - pos[o]
            b1, b2 = np.linalg.norm(v1), np.linalg.norm(v2)
            angle = np.arccos(np.clip(v1 @ v2 / (b1 * b2), -1.0, 1.0))
            bis = v1 / b1 + v2 / b2
            bis = bis / max(np.linalg.norm(bis), 1e-12)
            n_close = len(o_tree.query_ball_point(pos[o], 0.35)) - 1
            hb = sorted(_nearest_other_oxygen(o_tree, oxy_idx, pos[h], o) for h in (h1, h2))
            rows.append([*d_o[m, 1:5], *other_h, q, *sorted((b1, b2)), angle, *bis, n_close, *hb])
            boxes.append(f)
    if not rows:
        return np.zeros((0, N_FEATURES)), np.zeros(0, dtype=np.int64)
    return np.asarray(rows, dtype=np.float64), np.asarray(boxes, dtype=np.int64)


def _nearest_other_oxygen(o_tree, oxy_idx, point, own_o) -> float:
    """Distance, nm, from `point` to the nearest oxygen that is not atom `own_o`."""
    dist, idx = o_tree.query(point, k=2)
    return float(dist[1] if oxy_idx[idx[0]] == own_o else dist[0])


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

"""Figures of `map-suite toy` (seed 001, Fig. 10-11 style), PNG and PDF, from the results dict and grids.

Panels: (a) training sample, (b) PixelCNN sample, (c) correlation-expansion sample (Eq. 21),
(d) pair correlation g(r), (e) neighbour-count distributions, (f) row-wise and block log-probability
against distance from the boundary in receptive fields (Fig. 11d), (g) total variation between a
generated chain's context distribution and the exact stationary one, with its n^-1/2 bound,
(h) training loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from map_core.files import atomic_path
from validation.theory.lattice_stats import neighbour_count_distribution, pair_correlation


def _norm(values: np.ndarray) -> np.ndarray:
    lo, hi = values.min(), values.max()
    return (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)


def plot_toy(results: dict, grids: dict, stem) -> list:
    """Write stem.png and stem.pdf; grids: 'train', 'pixelcnn', 'expansion', 'broken', 'held' (B, H, W). Returns the paths."""
    import matplotlib  # local: the backend must be chosen before pyplot is imported
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stem = Path(stem)
    fig, axes = plt.subplots(2, 4, figsize=(16, 8), constrained_layout=True)
    fig.suptitle(f"{results['system']}: {results['description']}", fontsize=11)
    for ax, key, title in zip(axes[0, :3], ("train", "pixelcnn", "expansion"),
                              ("(a) training data", "(b) PixelCNN (MAP)", "(c) correlation expansion Eq. 21")):
        ax.imshow(grids[key][0], cmap="Greys", interpolation="nearest", vmin=0, vmax=1)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])

    ax = axes[0, 3]
    styles = {"held": ("k-", "training data (held out)"), "pixelcnn": ("C0o--", "PixelCNN"),
              "expansion": ("C1s:", "expansion Eq. 21"), "broken": ("C3x-", results["structure"]["broken"]["what"])}
    for key, (style, label) in styles.items():
        r, g = pair_correlation(grids[key], 5.0)
        ax.plot(r, g, style, label=label, ms=4)
    ax.axhline(1.0, color="0.7", lw=0.8)
    ax.set_xlabel("r (lattice sites)")
    ax.set_ylabel("g(r)")
    ax.set_title("(d) pair correlation")
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    s = results["structure"]
    width = 0.2
    for i, (key, (_, label)) in enumerate(styles.items()):
        dist = neighbour_count_distribution(grids[key], s["neighbour_radius"])
        ax.bar(np.arange(len(dist)) + (i - 1.5) * width, dist, width, label=label)
    ax.set_title("(e) neighbour counts: TV PixelCNN {:.3f} (threshold {:.3f})".format(
        s["pixelcnn"]["neighbour_counts"], s["thresholds"]["neighbour_counts"]), fontsize=9)
    ax.set_xlabel(f"occupied sites within {s['neighbour_radius']} (max-norm) of a particle")
    ax.set_ylabel("fraction")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    conv = results["convergence"]
    rows = np.arange(len(conv["row_mean"])) / conv["rows_back"]
    ax.plot(rows, _norm(np.asarray(conv["row_mean"])), "C0-", label="row $X_i$")
    full = np.arange(len(rows)) >= conv["rows_back"] - 1  # blocks of all L_c rows only
    ax.plot(rows[full], _norm(np.asarray(conv["block_mean"])[full]), "C2-", label="block $R_i$ ($L_c \\times W$)")
    ax.plot(rows, _norm(np.asarray(conv["density_mean"])), "C1:", label="row density")
    ax.axvline(conv["converged_row"] / conv["rows_back"], color="C3", ls="--",
               label=f"log p converged: {conv['receptive_fields']:.2f} receptive fields")
    ax.axvline(conv["density_receptive_fields"], color="C1", ls="-.",
               label=f"density converged: {conv['density_receptive_fields']:.2f}")
    ax.set_xlabel("distance from boundary (receptive fields)")
    ax.set_ylabel("mean over samples, normalised")
    ax.set_title("(f) row-wise log-probability (Fig. 11d)")
    ax.legend(fontsize=7)

    ax = axes[1, 2]
    tv = results["markov"]["tv_convergence"]
    n = np.asarray(tv["n"], dtype=float)
    ax.loglog(n, tv["tv"], "C0o-", label="TV(empirical, exact stationary)")
    ax.loglog(n, tv["bound"], "k--", label="bound (z = 5)")
    ax.loglog(n, tv["bound"][0] * (n / n[0]) ** -0.5, color="0.6", lw=0.8, label="$n^{-1/2}$")
    m = results["markov"]["expansion_1d"]
    ax.set_title(f"(g) 1D chain (L_c 3): gap {m['spectral_gap']:.3f}, t_mix {m['mixing_time']}", fontsize=9)
    ax.set_xlabel("chain length n")
    ax.legend(fontsize=7)

    ax = axes[1, 3]
    pc = results["pixelcnn"]
    ax.plot(np.asarray(pc["losses"]), color="C0", lw=0.6)
    ax.axhline(pc["baseline_cross_entropy"], color="C3", ls="--", label="ideal gas at this density")
    ax.axhline(pc["held_out_cross_entropy"], color="k", ls=":", label="held out")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / site)")
    ax.set_title("(h) PixelCNN training")
    ax.legend(fontsize=7)

    paths = []
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110)
        paths.append(path)
    plt.close(fig)
    return paths

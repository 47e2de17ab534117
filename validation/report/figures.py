"""Figures of the gate report, drawn from results.json alone (so `map-suite report` can redraw them).

Each ``fig_*`` function takes the results dict and returns a matplotlib Figure (no pyplot, no
display); ``save_figure`` writes it as PDF and PNG for papers and returns the SVG text that the
HTML report embeds. Axes show Å and degrees (text for people); results hold nm and radians.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from markupsafe import Markup
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from validation.gate.checks import SHOWN_UNITS
from validation.gate.measures import rdf_curve, rings_per_molecule, sq_curve
from validation.gate.registry import panels
from validation.observables.experiment import water_experiment
from validation.observables.structure_factor import structure_factor_from_rdf

WATER_OXYGENS_PER_NM3 = 33.37  # 0.997 g/cm3 (experiment, REFERENCE.md) / 18.015 g/mol
COLOURS = {"generated": "#c0392b", "training": "#1f5fa8", "heldout": "#7f8c8d"}
# Histograms in nm and radians are drawn in Å and degrees (fig_geometry); the others as they are (fig_order).
DISPLAY_SCALE = {unit: scale for unit, (scale, _) in SHOWN_UNITS.items()}
LABELS = {"generated": "generated", "training": "training (voxelised)", "heldout": "held-out training (control)"}


def inline_figures(svgs: dict, names) -> dict:
    """Inline SVG per figure name (our own matplotlib output, so not escaped); a note where one is missing."""
    missing = Markup('<p class="muted">(figure not drawn: no data)</p>')
    return {name: Markup(svgs[name]) if name in svgs else missing for name in names}


def save_figure(fig: Figure, out_dir, name: str) -> str:
    """Write figures/NAME.pdf, .svg and .png under `out_dir`; return the figure as SVG text (no XML header)."""
    folder = Path(out_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    with rc_context({"svg.hashsalt": f"map-suite-{name}", "svg.fonttype": "path"}):
        # Lay the panels out once and keep that layout for all three files: constrained layout
        # otherwise runs again in every savefig (a third of a report's drawing time).
        fig.draw_without_rendering()
        fig.set_layout_engine("none")
        fig.savefig(folder / f"{name}.pdf", metadata={"CreationDate": None, "Creator": "MAP suite"})
        fig.savefig(folder / f"{name}.png", dpi=150)
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "MAP suite"})
    text = buf.getvalue()
    (folder / f"{name}.svg").write_text(text)
    return text[text.index("<svg"):]


def _hist_xy(counts, lo, hi):
    counts = np.asarray(counts, float)
    edges = np.linspace(lo, hi, len(counts) + 1)
    density = counts / counts.sum() / np.diff(edges) if counts.sum() > 0 else counts
    return edges, density


def _legend_below(fig: Figure, axes) -> None:
    """One legend for the figure, below its panels, so that it covers no data."""
    handles, labels = {}, {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(len(handles), 4), fontsize=7,
               frameon=False)


def _fixed_note(results: dict, name: str) -> str | None:
    """Why the check `name` cannot fail for the judging encoding, or None."""
    for c in results["checks"]:
        if c["name"] == name:
            return (c.get("extra") or {}).get("fixed_by_encoding")
    return None


def _display_bins(counts, lo, hi, most: int = 40):
    """(counts, lo, hi) merged to at most `most` bins for drawing (the check reads the fine ones)."""
    counts = np.asarray(counts, float)
    factor = max(1, int(np.ceil(len(counts) / most)))
    n = len(counts) // factor * factor
    return counts[:n].reshape(-1, factor).sum(1), lo, lo + (hi - lo) * n / len(counts)


def _ensembles(structure: dict):
    """(name, measurement) of the ensembles whose distributions were measured."""
    return [(k, structure[k]) for k in ("heldout", "training", "generated")
            if k in structure and structure[k].get("rdf") is not None]


def fig_rdf(results: dict) -> Figure:
    """g_OO, g_OH, g_HH of generated boxes and training windows, with experimental curves: the X-ray
    g_OO (Skinner et al. 2014) and Soper's 2013 partials, and the published first peaks."""
    st = results["structure"]
    exp = water_experiment()
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    for ax, name in zip(fig.subplots(1, 3), ("g_OO", "g_OH", "g_HH")):
        for which, meas in _ensembles(st):
            r, g = rdf_curve(meas, name)
            ax.plot(r * 10, g, color=COLOURS[which], lw=1.0 if which == "heldout" else 1.5,
                    alpha=0.6 if which == "heldout" else 1.0, label=LABELS[which])
        if name == "g_OO":
            ax.plot(exp["r_nm"] * 10, exp["g_OO"], color="k", lw=1.0, label="experiment: X-ray (Skinner 2014, 295 K)")
            first = [i for i, label in enumerate(exp["points_label"]) if str(label).startswith("skinner2013")]
            ax.errorbar(exp["points_r_nm"][first] * 10, exp["points_g"][first], xerr=exp["points_r_err_nm"][first] * 10,
                        yerr=exp["points_g_err"][first], fmt="o", ms=3, color="k", capsize=2,
                        label="experiment: first peak (Skinner 2013)")
        ax.plot(exp["r_nm_soper"] * 10, exp[f"{name}_soper"], color="k", lw=0.9, ls="--",
                label="experiment: EPSR (Soper 2013, 298 K)")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel(f"$g_{{{name[2:]}}}(r)$")
        ax.set_xlim(0, r[-1] * 10)
    _legend_below(fig, fig.axes)
    return fig


def fig_medium(results: dict) -> Figure | None:
    """Medium-range order: S_OO(q) (with Soper's g_OO transformed the same way) and H-bond rings per
    molecule by size. None for results written before these were measured."""
    st = results["structure"]
    shown = [(which, meas) for which, meas in _ensembles(st) if "sq" in meas and "rings" in meas]
    if not shown:
        return None
    structure = results["profile"]["structure"]
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    ax_sq, ax_rings = fig.subplots(1, 2)
    for which, meas in shown:
        q, s = sq_curve(meas, structure)
        ax_sq.plot(q, s, color=COLOURS[which], lw=1.0 if which == "heldout" else 1.5, label=LABELS[which])
        sizes = np.asarray(meas["rings"]["sizes"])
        ax_rings.stairs(rings_per_molecule(meas), np.append(sizes - 0.5, sizes[-1] + 0.5), color=COLOURS[which],
                        lw=1.3, label=LABELS[which])
    ax_sq.plot(q, experiment_sq(q, structure["sq_r_max_nm"]), color="k", lw=0.9, ls="--",
               label="experiment: Soper 2013 $g_{OO}$, transformed alike")
    ax_sq.set_xlabel("q (nm$^{-1}$)")
    ax_sq.set_ylabel("$S_{OO}(q)$")
    ax_sq.set_title(f"$g_{{OO}}$ to {structure['sq_r_max_nm'] * 10:g} Å, Lorch window", fontsize=9)
    ax_rings.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_rings.set_xlabel("H-bond ring size (molecules)")
    ax_rings.set_ylabel("rings per molecule")
    _legend_below(fig, fig.axes)
    return fig


def experiment_sq(q, r_max: float) -> np.ndarray:
    """(Q,) S_OO(q) of Soper's 2013 experimental g_OO put through the gate's transform (same R, Lorch
    window, 0.997 g/cm3 of water: 33.4 oxygens per nm^3), so that it is smoothed exactly as the
    gate's curves are. Not a published S(q): a transform of a published g(r)."""
    exp = water_experiment()
    r = np.arange(0.5, int(r_max / 0.0125)) * 0.0125  # the gate's bins (centres), nm
    g = np.interp(r, exp["r_nm_soper"], exp["g_OO_soper"])
    return structure_factor_from_rdf(r, g, WATER_OXYGENS_PER_NM3, q, r_max, "lorch")


def fig_geometry(results: dict) -> Figure:
    """O-H bond (Å) and H-O-H angle (degrees) distributions."""
    st = results["structure"]
    fig = Figure(figsize=(9, 3.3), layout="constrained")
    rows = [p for p in panels() if p[1].mean_unit in DISPLAY_SCALE]
    for ax, (name, measure, xlabel) in zip(fig.subplots(1, len(rows)), rows):
        scale = DISPLAY_SCALE[measure.mean_unit]
        lo, hi = measure.lo, measure.hi
        for which, meas in _ensembles(st):
            edges, dens = _hist_xy(meas["hist"][name], lo * scale, hi * scale)
            ax.stairs(dens, edges, color=COLOURS[which], label=LABELS[which], lw=1.3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("probability density")
        note = _fixed_note(results, name)
        if note:
            ax.set_title(f"fixed by the encoding ({note.split(': ', 1)[-1]})", fontsize=8)
    fig.axes[0].set_xlim(0.7, 1.3)
    fig.axes[1].set_xlim(60, 150)
    _legend_below(fig, fig.axes)
    return fig


def fig_order(results: dict) -> Figure:
    """Steinhardt q4, q6 (with KL divergences), tetrahedral order and hydrogen bonds per molecule."""
    st = results["structure"]
    checks = {c["name"]: c for c in results["checks"]}
    rows = [p for p in panels() if p[1].mean_unit not in DISPLAY_SCALE]
    fig = Figure(figsize=(3 * len(rows), 3.2), layout="constrained")
    axes = fig.subplots(1, len(rows))
    for ax, (name, measure, xlabel) in zip(axes, rows):
        integer = measure.mean_unit == "per molecule"  # counts: one bar per integer, as probabilities
        top = 0
        for which, meas in _ensembles(st):
            counts = np.asarray(meas["hist"][name], float)
            if integer:
                values = np.arange(len(counts)) + measure.lo + 0.5
                prob = counts / counts.sum() if counts.sum() > 0 else counts
                ax.stairs(prob, np.append(values - 0.5, values[-1] + 0.5), color=COLOURS[which], label=LABELS[which], lw=1.3)
                top = max(top, int(values[counts > 0].max()) if counts.any() else 0)
            else:
                edges, dens = _hist_xy(*_display_bins(counts, measure.lo, measure.hi))
                ax.stairs(dens, edges, color=COLOURS[which], label=LABELS[which], lw=1.3)
        if integer:
            ax.set_xlim(-0.5, top + 1.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("fraction of molecules")
        else:
            ax.set_ylabel("probability density")
        if measure.distance == "kl" and name in checks and checks[name]["value"] is not None:
            ax.set_title(f"$D_{{KL}}$(train || gen) = {checks[name]['value']:.3f}", fontsize=9)
        ax.set_xlabel(xlabel)
    _legend_below(fig, axes)
    return fig


def fig_defects(results: dict) -> Figure:
    """Where orphan atoms sit: rate against distance to the nearest face and against depth z."""
    st = results["structure"]
    geo = results["geometry"]
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for which in ("training", "generated"):
        d = st[which]["defects"]
        for ax, key in zip(axes, ("distance", "z")):
            edges = np.asarray(d[f"{key}_edges"]) * 10
            atoms, orph = np.asarray(d[f"{key}_atoms"]), np.asarray(d[f"{key}_orphans"])
            rate = np.where(atoms > 0, orph / np.maximum(atoms, 1), np.nan)
            ax.stairs(rate * 100, edges, color=COLOURS[which], label=f"{LABELS[which]}: {d['orphans']} of {d['atoms']} atoms")
    none = all(st[w]["defects"]["orphans"] == 0 for w in ("training", "generated"))
    for ax in axes:
        ax.axvline(geo["burn_in_nm"] * 10, color="k", ls="--", lw=0.9, label="burn-in")
        ax.set_ylabel("orphan atoms (%)")
        ax.set_ylim(bottom=0.0, top=1.0 if none else None)  # a rate of zero on a +-0.04 % axis says nothing
        if none:
            ax.text(0.5, 0.6, "no orphan atoms in either ensemble", transform=ax.transAxes, ha="center", fontsize=9)
    axes[0].set_xlabel("distance to the nearest face of the generated box (Å)")
    axes[1].set_xlabel("depth z in the analysed columns (Å)")
    _legend_below(fig, axes)
    return fig


def fig_md(results: dict) -> Figure | None:
    """Temperature, density and potential energy per water against time for every MD run."""
    md = results.get("md") or {}
    runs = [(src, method, r) for src in ("generated", "training") for method, r in (md.get(src) or {}).items()
            if r.get("series")]
    if not runs:
        return None
    fig = Figure(figsize=(11, 6), layout="constrained")
    axes = fig.subplots(3, 2, sharex="col")
    for col, method in enumerate(("classical", "rpmd")):
        for src, m, r in runs:
            if m != method:
                continue
            s = r["series"]
            for row, (key, label) in enumerate((("temperature_k", "T (K)"), ("density_g_cm3", "density (g/cm³)"),
                                                ("potential_kj_mol_per_water", "potential (kJ/mol per water)"))):
                axes[row, col].plot(s["time_ps"], s[key], color=COLOURS[src], lw=0.8, label=f"{src}-seeded")
                axes[row, col].set_ylabel(label)
        axes[0, col].set_title("classical" if method == "classical" else "RPMD")
        axes[2, col].set_xlabel("time (ps): NPT, then NVT")
    _legend_below(fig, axes.ravel())
    return fig


def fig_markov(results: dict) -> Figure:
    """Mean log-probability per plane for empty and training-seeded boundaries, with the burn-in."""
    mk = results["markov"]
    if "empty" not in mk:  # not applicable (given boxes) or skipped
        return None
    voxel = results["geometry"]["voxel_nm"]
    fig = Figure(figsize=(7, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, colour, label in (("empty", COLOURS["generated"], "empty boundary"),
                                ("seeded", COLOURS["training"], "training voxels around the box")):
        planes = np.asarray(mk[name]["plane_logp"])
        z = (np.arange(planes.shape[1]) + 0.5) * voxel * 10
        for row in planes:
            ax.plot(z, row, color=colour, lw=0.4, alpha=0.35)
        ax.plot(z, planes.mean(axis=0), color=colour, lw=1.8, label=f"{label} (mean of {len(planes)})")
    ax.axvline(mk["empty"]["burn_in"] * voxel * 10, color="k", ls="--", lw=0.9, label="burn-in")
    ax.axvline(mk["empty"]["region_end"] * voxel * 10, color="k", ls=":", lw=0.9, label="end of analysed region")
    ax.set_xlabel("plane depth z (Å)")
    ax.set_ylabel("mean log p per voxel (nats)")
    ax.legend(fontsize=7)
    return fig


FIGURES = (("rdf", fig_rdf, "structure"), ("medium", fig_medium, "structure"), ("geometry", fig_geometry, "structure"),
           ("order", fig_order, "structure"),
           ("defects", fig_defects, "structure"), ("md", fig_md, "md"), ("markov", fig_markov, "markov"))


def draw_all(results: dict, out_dir) -> dict:
    """name -> SVG text of every figure the results have data for (PDF and PNG written too)."""
    out = {}
    for name, draw, group in FIGURES:
        if group not in results.get("groups", []):
            continue
        fig = draw(results)
        if fig is not None:
            out[name] = save_figure(fig, out_dir, name)
    return out

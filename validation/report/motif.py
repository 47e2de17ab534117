"""The report of motif-conditioned generation: one self-contained HTML file rendered from motif.json.

Input: the dict that ``validation.motif.run.run_motif_job`` writes to ``motif.json`` (job settings,
the scan site and its motif, per-step log-probabilities, the scan summary, and the convergence
numbers of ``validation.motif.convergence``). Output: ``motif.html`` in the same style as the gate
report (``templates/motif.html.j2``; figures inline as SVG, no scripts, nothing fetched from a
network) and the figures as PDF and PNG under ``figures/``:

- ``motif_q``: probability densities of q4 and q6 per iteration, against the source frame and
  the training set (seed 000, Fig. 5A-B);
- ``motif_kl``: KL divergence D(P_ref || P_gen) of q4 and q6 against iteration (Fig. 5C);
- ``motif_density``: the local density around the motif against the distance from its centre.

motif.json keeps nm; the report shows distances in Å and densities in g/cm3. Missing numbers
(None, NaN) read "n/a".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from map_core.files import write_text_atomic
from validation.motif.scan import SEED_000
from validation.report.figures import inline_figures, save_figure

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "motif.html.j2"
REFERENCES = {"frame": ("source frame", "k", "--"), "set": ("training set", "#7f8c8d", "-")}
Q_COLOURS = {"q4": "#1f5fa8", "q6": "#c0392b"}
CMAP = "viridis"
PROVENANCE_KEYS = ("model_sha256", "data_sha256", "seed", "temperature", "shape", "voxel_nm", "encoding",
                   "iterations")


def _float(value) -> float:
    """`value` as a float; NaN for None or anything that is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def number(value, fmt: str = ".4f", scale: float = 1.0) -> str:
    """`value` * `scale` formatted for people, or "n/a" for None, NaN and infinities."""
    v = _float(value)
    return f"{v * scale:{fmt}}" if math.isfinite(v) else "n/a"


def _convergence(result: dict) -> dict:
    return result.get("convergence") or {}


def _iteration_colours(n: int):
    """(colours of iterations 1..n graded along CMAP, a ScalarMappable for the colour bar)."""
    cmap = colormaps[CMAP]
    norm = BoundaryNorm(np.arange(n + 1) + 0.5, cmap.N)
    return [cmap(norm(k)) for k in range(1, n + 1)], ScalarMappable(norm=norm, cmap=cmap)


def _colourbar(fig: Figure, mappable, axes, n: int) -> None:
    bar = fig.colorbar(mappable, ax=axes, label="iteration", pad=0.02)
    if n <= 10:
        bar.set_ticks(range(1, n + 1))
    else:
        bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _top(ax, values) -> None:
    """y from 0 to a little above the largest finite value (autoscaling otherwise)."""
    v = np.asarray([_float(x) for x in values], float)
    v = v[np.isfinite(v)]
    ax.set_ylim(0, 1.1 * v.max() if v.size and v.max() > 0 else None)


def _density(counts, edges) -> np.ndarray:
    """Probability density of a histogram `counts` on `edges` (zeros where it is empty)."""
    counts = np.asarray(counts, float)
    total = counts.sum()
    return counts / total / np.diff(edges) if total > 0 else np.zeros_like(counts)


def fig_motif_q(result: dict) -> Figure | None:
    """q4 and q6 of every iteration (colour graded) with the source frame and the training set."""
    conv = _convergence(result)
    its = conv.get("iterations") or []
    if not conv.get("q_edges") or not its:
        return None
    edges = np.asarray(conv["q_edges"], float)
    colours, mappable = _iteration_colours(len(its))
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, q, label in zip(axes, ("q4", "q6"), ("$q_4$", "$q_6$")):
        for row, colour in zip(its, colours):
            ax.stairs(_density(row[q], edges), edges, color=colour, lw=1.1)
        for ref, (name, colour, style) in REFERENCES.items():
            counts = (conv.get(f"reference_{ref}") or {}).get(q)
            if counts is not None:
                ax.stairs(_density(counts, edges), edges, color=colour, ls=style, lw=1.8, label=name)
        ax.set_xlabel(label)
        ax.set_xlim(edges[0], edges[-1])
    axes[0].set_ylabel("probability density")
    axes[0].legend(fontsize=7, loc="best")
    _colourbar(fig, mappable, axes, len(its))
    return fig


def fig_motif_kl(result: dict) -> Figure | None:
    """D(P_ref || P_gen) of q4 and q6 against iteration, for both references (NaN: a gap)."""
    its = _convergence(result).get("iterations") or []
    if not its:
        return None
    x = [row.get("iteration", k) for k, row in enumerate(its, start=1)]
    fig = Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for q in ("q4", "q6"):
        for ref, (name, _, style) in REFERENCES.items():
            y = [_float(row.get(f"kl_{q}_{ref}")) for row in its]
            ax.plot(x, y, color=Q_COLOURS[q], ls=style, marker="o" if ref == "frame" else "s", ms=4, lw=1.3,
                    label=f"${q[0]}_{q[1]}$ vs {name}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("$D_{KL}(P_{ref}\\,||\\,P_{gen})$ (nats)")
    ax.set_xlim(min(x) - 0.5, max(x) + 0.5)
    if len(x) <= 12:
        ax.set_xticks(x)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    floor = _convergence(result).get("kl_floor") or {}
    for q in ("q4", "q6"):  # what a box of as many oxygens drawn from the training set itself scores
        if math.isfinite(_float(floor.get(f"{q}_set"))):
            ax.axhline(_float(floor[f"{q}_set"]), color=Q_COLOURS[q], ls=":", lw=1.0,
                       label=f"${q[0]}_{q[1]}$ noise floor ({floor.get('oxygens')} O from the set)")
    values = [row.get(f"kl_{q}_{ref}") for row in its for q in ("q4", "q6") for ref in REFERENCES]
    values += [floor.get(f"{q}_set") for q in ("q4", "q6")]
    if not any(math.isfinite(_float(v)) for v in values):
        ax.text(0.5, 0.5, "no KL divergence: no oxygen could be judged", transform=ax.transAxes, ha="center", color="#666")
    _top(ax, values)
    ax.legend(fontsize=7)
    return fig


def fig_motif_density(result: dict) -> Figure | None:
    """Water density in shells about the motif's centre: every iteration, the source frame, the scan's mean."""
    conv = _convergence(result)
    edges = np.asarray(conv.get("shell_edges_nm") or [], float) * 10.0
    its = conv.get("iterations") or []
    if len(edges) < 2 or not its:
        return None
    r = 0.5 * (edges[:-1] + edges[1:])
    colours, mappable = _iteration_colours(len(its))
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for row, colour in zip(its, colours):
        ax.plot(r, [_float(v) for v in row["density_g_cm3"]], color=colour, lw=1.1, marker=".", ms=3)
    if conv.get("source_density_g_cm3") is not None:
        ax.plot(r, [_float(v) for v in conv["source_density_g_cm3"]], color="k", ls="--", lw=1.8, label="source frame")
    mean = _float(((result.get("scan") or {}).get("density_g_cm3") or {}).get("mean"))
    if math.isfinite(mean):
        ax.axhline(mean, color="#7f8c8d", ls=":", lw=1.3, label=f"scan mean ({mean:.3f} g/cm³)")
    ax.set_xlabel("distance from the motif's centre (Å)")
    ax.set_ylabel("local density (g/cm³)")
    ax.set_xlim(0, edges[-1])
    _top(ax, [v for row in its for v in row["density_g_cm3"]] + list(conv.get("source_density_g_cm3") or []) + [mean])
    ax.legend(fontsize=7)
    _colourbar(fig, mappable, ax, len(its))
    return fig


FIGURES = (("motif_q", fig_motif_q), ("motif_kl", fig_motif_kl), ("motif_density", fig_motif_density))


def draw_motif_figures(result: dict, out_dir) -> dict:
    """name -> SVG text of the report's figures (PDF and PNG written under out_dir/figures too);
    a figure without data is left out."""
    out = {}
    for name, draw in FIGURES:
        fig = draw(result)
        if fig is not None:
            out[name] = save_figure(fig, out_dir, name)
    return out


def _step_rows(result: dict) -> list:
    """One row per step: step (i), then the iterations with their convergence numbers."""
    conv = {row.get("iteration"): row for row in _convergence(result).get("iterations") or []}
    rows = []
    for s in result.get("steps") or []:
        k = s.get("step")
        c = conv.get(k, {}) if k else {}
        voxels = s.get("voxels_sampled")
        logp = _float(s.get("log_prob"))
        per_voxel = logp / voxels if voxels and math.isfinite(logp) else None
        rows.append({"label": "step (i)" if k == 0 else f"iteration {k}", "turns": s.get("turns", ""),
                     "voxels": voxels if voxels is not None else "n/a", "log_prob": number(logp, ".1f"),
                     "log_prob_voxel": number(per_voxel, ".4f"),
                     "oxygens": c.get("oxygens_judged", "n/a") if k else "",
                     **{f"kl_{q}_{ref}": number(c.get(f"kl_{q}_{ref}")) if k else ""
                        for q in ("q4", "q6") for ref in REFERENCES},
                     "file": s.get("file", "")})
    return rows


def _site(result: dict) -> dict:
    d = result.get("site_detail") or {}
    centre = d.get("centre_nm") or []
    return {"index": result.get("site", "n/a"), "frame": d.get("frame", "n/a"),
            "centre": ", ".join(number(v, ".2f", 10.0) for v in centre) or "n/a",
            "density": number(d.get("density_g_cm3"), ".3f"), "molecules": d.get("molecules", "n/a")}


def _scan(result: dict) -> dict:
    scan = result.get("scan") or {}
    dens = scan.get("density_g_cm3") or {}
    seed = {**SEED_000, **(scan.get("seed_000") or {})}
    probe = scan.get("probe_nm", result.get("probe_nm"))
    return {"probe": number(probe, ".3f"), "probe_a": number(probe, ".2f", 10.0),
            "dominant": number(dens.get("dominant"), ".3f"), "mean": number(dens.get("mean"), ".3f"),
            "std": number(dens.get("std"), ".3f"), "threshold": number(scan.get("threshold_g_cm3"), ".3f"),
            "tail": number(scan.get("tail_probability"), ".1f", 100.0),
            "seed_probe": number(seed.get("probe_nm"), ".3f"), "seed_dominant": number(seed.get("dominant_g_cm3"), ".3f"),
            "seed_low": number(seed.get("low_g_cm3"), ".3f"), "seed_tail": number(seed.get("low_probability"), ".1f", 100.0)}


def _motif(result: dict) -> dict:
    m = result.get("motif") or {}
    return {"molecules": m.get("molecules", "n/a"), "voxels": " × ".join(str(v) for v in m.get("voxels") or []) or "n/a",
            "occupied": m.get("occupied_voxels", "n/a"),
            "origin": ", ".join(str(v) for v in m.get("origin_zyx") or []) or "n/a",
            "centre": ", ".join(number(v, ".2f", 10.0) for v in m.get("centre_nm") or []) or "n/a"}


def _job(result: dict) -> dict:
    shape = result.get("shape") or []
    voxel = _float(result.get("voxel_nm"))
    return {"shape": " × ".join(str(v) for v in shape) or "n/a", "voxel_a": number(voxel, ".2f", 10.0),
            "box_a": " × ".join(number(n * voxel, ".1f", 10.0) for n in shape) or "n/a",
            "iterations": result.get("iterations", "n/a"), "temperature": result.get("temperature", "n/a"),
            "seed": result.get("seed", "n/a"), "encoding": result.get("encoding", "n/a")}


def render_motif_html(result: dict, svgs: dict) -> str:
    """The report as an HTML string (figures: name -> SVG text, as ``draw_motif_figures`` returns)."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    figures = inline_figures(svgs, [name for name, _ in FIGURES])
    provenance = {k: result.get(k) for k in PROVENANCE_KEYS if k in result}
    conv = _convergence(result)
    return env.get_template(TEMPLATE).render(
        site=_site(result), scan=_scan(result), motif=_motif(result), job=_job(result), steps=_step_rows(result),
        figures=figures, r_cut_a=number(conv.get("r_cut_nm"), ".1f", 10.0),
        floor_oxygens=(conv.get("kl_floor") or {}).get("oxygens", "as many"),
        provenance_json=json.dumps(provenance, indent=1, sort_keys=True, default=str))


def render_motif_report(result: dict, out_dir) -> Path:
    """Draw the figures and write motif.html into `out_dir`; return its path."""
    out_dir = Path(out_dir)
    svgs = draw_motif_figures(result, out_dir)
    path = out_dir / "motif.html"
    write_text_atomic(path, render_motif_html(result, svgs))
    return path

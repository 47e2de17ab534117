"""The gate report: one self-contained HTML file rendered from results.json.

Jinja2 with autoescaping renders ``validation/report/templates/report.html.j2``; figures are inlined
as SVG (no scripts, no external files, nothing fetched from a network), and also written as
PDF and PNG under ``figures/`` for papers. Numbers are shown in Å and degrees; results.json
keeps nm and radians.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from map_core.files import write_text_atomic
from validation.gate.checks import shown
from validation.gate.measures import rdf_curve, sq_curve, sq_q_grid
from validation.observables.experiment import compare_g_oo, water_experiment
from validation.observables.rdf import first_peak
from validation.observables.structure_factor import first_peak_q
from validation.report.figures import FIGURES, draw_all, experiment_sq, inline_figures

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"
GROUP_TITLES = {"structure": "Structure of generated boxes", "markov": "Markov chain of the model",
                "md": "Molecular dynamics seeded from generated boxes"}


def display(value, unit: str) -> tuple:
    """(text, unit) for people: nm -> Å, rad -> degrees, others as they are."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a", ""
    v, symbol = shown(value, unit)
    text = f"{v:.4g}" if v == 0 or 1e-3 <= abs(v) < 1e5 else f"{v:.3e}"
    return text, symbol


def _rows(results: dict) -> list:
    rows = []
    for c in results["checks"]:
        value, unit = display(c["value"], c["unit"])
        threshold, _ = display(c["threshold"], c["unit"])
        control = display(c["control"], c["unit"])[0] if c.get("control") is not None else ""
        ctrl_fails = c.get("control") is not None and not (
            c["control"] <= c["threshold"] if c["relation"] == "<=" else c["control"] >= c["threshold"])
        extra = c.get("extra") or {}
        pv, z = extra.get("p_value"), extra.get("z_score")
        rows.append(dict(c, fixed=extra.get("fixed_by_encoding"), value_text=value, threshold_text=threshold, control_text=control, unit_text=unit,
                         control_fails=ctrl_fails, p_text="" if pv is None else f"{pv:.3g}",
                         z_text="" if z is None else f"{z:+.2f}", statistic=extra.get("statistic", "")))
    return rows


def markdown_table(results: dict) -> str:
    """The verdict table of a results.json as Markdown (for a README or a paper's supplement):
    one row per check with value, relation and threshold (Å and degrees for lengths and angles),
    the held-out control and the verdict."""
    rows = _rows(results)
    evidence = [x for x in rows if not x["fixed"]]
    fixed = f", {len(rows) - len(evidence)} more fixed by the encoding" if len(evidence) < len(rows) else ""
    lines = [f"Verdict: **{results['verdict'].upper()}** ({sum(x['passed'] for x in evidence)} of "
             f"{len(evidence)} checks passed{fixed}; profile {results['profile']['profile']['name']}, "
             f"{_judged_sha(results)}).", "",
             "| group | check | value | threshold | held-out control | p-value | verdict |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        verdict = "fixed by the encoding" if row["fixed"] else "pass" if row["passed"] else "**FAIL**"
        unit = f" {row['unit_text']}" if row["unit_text"] else ""
        control = f"{row['control_text']}{unit}" if row["control_text"] else ""
        lines.append(f"| {row['group']} | `{row['name']}` | {row['value_text']}{unit} | {row['relation']} "
                     f"{row['threshold_text']}{unit} | {control} | {row['p_text']} | {verdict} |")
    return "\n".join(lines) + "\n"


def _judged_sha(results: dict) -> str:
    prov = results["provenance"]
    if prov.get("model"):
        return f"model sha256 {prov['model']['sha256'][:12]}"
    return f"boxes sha256 {prov['boxes']['sha256'][:12]}"


def _table1(results: dict) -> list:
    out = []
    for r in results.get("table1", []):
        if "failed" in r:
            out.append({"run": r["run"], "failed": r["failed"]})
            continue

        def cell(key, se_key, scale=1.0, digits=4):
            v, se = r.get(key), r.get(se_key)
            if v is None:
                return "n/a"
            return f"{v * scale:.{digits}f}" + (f" ± {se * scale:.{digits}f}" if se is not None else "")

        out.append({"run": r["run"], "density": cell("density_g_cm3", "density_se"),
                    "bond": cell("oh_bond_nm", "oh_bond_se", 10.0), "angle": cell("hoh_angle_deg", "hoh_angle_se", 1.0, 2),
                    "dipole": cell("dipole_debye", "dipole_se", 1.0, 3), "waters": r.get("waters")})
    return out


def _experiment(results: dict) -> list:
    """Rows of the report's comparison with experiment (shown, not judged): each ensemble's g_OO against
    the X-ray curve (MLIPAudit-style RMSE and first peak) and its S_OO first maximum."""
    st = results.get("structure") or {}
    structure = (results.get("profile") or {}).get("structure", {})
    rows = []
    for which, label in (("generated", "generated boxes"), ("training", "training windows"), ("heldout", "held-out windows")):
        meas = st.get(which)
        if not meas or not meas.get("rdf"):
            continue
        score = compare_g_oo(*rdf_curve(meas, "g_OO"))
        row = {"ensemble": label, "rmse": f"{score['rmse']:.3f}", "range": f"{score['range_nm'][0] * 10:.1f}-"
               f"{score['range_nm'][1] * 10:.1f}", "peak": f"{score['peak_nm'] * 10:.2f} Å ({score['peak_g']:.2f})",
               "in_window": score["peak_in_window"], "sq_peak": "n/a"}
        if "sq" in meas and "sq_r_max_nm" in structure:
            q, s = sq_curve(meas, structure)
            pos, height = first_peak_q(q, s, (q[0], q[-1]))
            row["sq_peak"] = f"{pos:.1f} nm⁻¹ ({height:.2f})"
        rows.append(row)
    if rows:
        exp = water_experiment()
        peak = first_peak(exp["r_nm"], exp["g_OO"])
        q = sq_q_grid(structure) if "sq_r_max_nm" in structure else None
        sq_peak = "n/a" if q is None else "{:.1f} nm⁻¹ ({:.2f})".format(
            *first_peak_q(q, experiment_sq(q, structure["sq_r_max_nm"]), (q[0], q[-1])))
        rows.append({"ensemble": "experiment (X-ray g_OO, Skinner 2014; S_OO from Soper 2013 g_OO)", "rmse": "0",
                     "range": "", "peak": f"{peak[0] * 10:.2f} Å ({peak[1]:.2f})", "in_window": True, "sq_peak": sq_peak})
    return rows


def render_html(results: dict, svgs: dict) -> str:
    """The report as an HTML string."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    rows = _rows(results)
    groups = [(g, GROUP_TITLES[g], [r for r in rows if r["group"] == g]) for g in results.get("groups", [])]
    return env.get_template(TEMPLATE).render(
        r=results, groups=groups, rows=rows, table1=_table1(results), experiment=_experiment(results),
        figures=inline_figures(svgs, [name for name, _, _ in FIGURES]), svg_names=sorted(svgs),
        evidence=[x for x in rows if not x["fixed"]], fixed=[x for x in rows if x["fixed"]],
        passed=sum(1 for x in rows if x["passed"] and not x["fixed"]), failed=[x for x in rows if not x["passed"]],
        too_tight=[x for x in rows if x["control_fails"]],
        profile_json=json.dumps(results.get("profile", {}), indent=1, sort_keys=True),
        provenance_json=json.dumps(results.get("provenance", {}), indent=1, sort_keys=True),
    )


def render_report(results: dict, out_dir) -> Path:
    """Draw the figures and write report.html into `out_dir`; return its path."""
    out_dir = Path(out_dir)
    svgs = draw_all(results, out_dir)
    path = out_dir / "report.html"
    write_text_atomic(path, render_html(results, svgs))
    return path

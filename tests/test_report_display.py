"""What the report shows people (issue 26): checks that an encoding fixes are marked and not counted
as evidence, details use the table's units (Å, degrees), and figures are drawn as a paper needs them."""

import math
from pathlib import Path

import numpy as np
import pytest

from map_core.atoms.encoding import Encoding
from validation.gate.registry import BY_NAME, structure_rows
from validation.gate.results import load_results
from validation.gate.structure import structure_checks
from validation.gate.registry import panels
from validation.report.figures import draw_all, fig_order
from validation.report.html import markdown_table, render_html

RESULTS = Path(__file__).resolve().parents[1] / "reports" / "default-quick" / "results.json"


def _values():
    return {r.name: (0.0, "") for r in structure_rows()}


def _thresholds():
    return {r.threshold_key or r.name: 1.0 for r in structure_rows()}


@pytest.mark.parametrize("coder, fixed", [
    (Encoding("water", 0.05), {"orphan_rate", "oh_bond", "hoh_angle"}),  # whole, rigid molecules
    (Encoding("atoms", 0.04), set()),  # atoms placed voxel by voxel: bonds, angles and orphans are evidence
    (None, set()),  # continuous judging: nothing is decoded
])
def test_checks_fixed_by_the_judging_encoding_are_marked(coder, fixed):
    checks = structure_checks(_values(), _thresholds(), coder=coder)
    assert {c.name for c in checks if c.extra.get("fixed_by_encoding")} == fixed


def test_report_does_not_count_fixed_checks_as_evidence():
    results = load_results(RESULTS)  # a version-1 file of a water-class model: upgraded, flags derived
    fixed = [c["name"] for c in results["checks"] if c["extra"].get("fixed_by_encoding")]
    assert set(fixed) == {"orphan_rate", "oh_bond", "hoh_angle"}
    evidence = [c for c in results["checks"] if c["name"] not in fixed]
    table = markdown_table(results)
    assert f"({sum(c['passed'] for c in evidence)} of {len(evidence)} checks passed, {len(fixed)} more fixed by the " \
           "encoding;" in table
    for name in fixed:
        assert next(line for line in table.splitlines() if f"`{name}`" in line).endswith("| fixed by the encoding |")
    html = render_html(results, {})
    assert f"{sum(c['passed'] for c in evidence)} of {len(evidence)} checks passed ({len(fixed)} more fixed" in html


def test_histogram_details_are_in_the_table_units():
    """A mean O-H bond of 0.0957 nm reads 0.957 Å, an angle of 1.8238 rad 104.5°, as the unit column."""
    for name, mean, shown in (("oh_bond", 0.0957, "0.957 Å"), ("hoh_angle", math.radians(104.5), "104.5 °")):
        measure = BY_NAME[name].measure
        lo, hi, bins = measure.grid({})
        hist = np.zeros(bins)
        hist[int((mean - lo) / (hi - lo) * bins)] = 10
        centre = lo + (int((mean - lo) / (hi - lo) * bins) + 0.5) * (hi - lo) / bins
        _, detail = measure.compare(name, {"hist": {name: hist}}, {"hist": {name: hist}}, {})
        scale = 10.0 if name == "oh_bond" else 180.0 / math.pi
        assert f"{centre * scale:.4g} {shown.split()[1]}" in detail, detail
        assert " nm" not in detail and " rad" not in detail


def test_figures_are_written_for_papers(tmp_path):
    svgs = draw_all(load_results(RESULTS), tmp_path)
    assert {"rdf", "geometry", "order", "defects"} <= set(svgs)
    for name in svgs:
        for ext in ("pdf", "png", "svg"):
            assert (tmp_path / "figures" / f"{name}.{ext}").stat().st_size > 0


def test_order_panels_bin_as_the_data_needs():
    """H-bond counts: one bin per integer, the axis ending after the largest count seen; the fine
    tetrahedral grid (125 bins) merged for drawing; a y label and no legend on every panel."""
    results = load_results(RESULTS)
    fig = fig_order(results)
    names = [name for name, measure, _ in panels() if measure.mean_unit not in ("nm", "rad")]
    axes = dict(zip(names, fig.axes))
    hb = axes["hbonds"]
    largest = max(int(np.flatnonzero(np.asarray(results["structure"][w]["hist"]["hbonds"]))[-1])
                  for w in ("generated", "training", "heldout"))
    assert hb.get_xlim() == (-0.5, largest + 1.5)
    for step in hb.patches:
        edges = step.get_path().vertices[:, 0]
        assert np.allclose(edges, np.round(edges - 0.5) + 0.5)
    assert all(len(p.get_path().vertices) // 2 - 1 <= 40 for p in axes["tetrahedral"].patches)
    assert all(ax.get_ylabel() and ax.get_legend() is None for ax in fig.axes)
    assert len(fig.legends) == 1


def test_a_gate_run_without_md_renders():
    """A profile with [md] enabled = false gives an md section without `not_judged`: it renders (it
    once ended in a template error after results.json was written, exit code 1 like a FAIL)."""
    results = load_results(RESULTS)
    results["md"] = {"checks": [], "skipped": "disabled in the profile"}
    results["checks"] = [c for c in results["checks"] if c["group"] != "md"]
    html = render_html(results, {})
    assert "disabled in the profile" in html and "Not judged:" not in html

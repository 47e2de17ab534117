"""Reports for people: the gate's HTML report and figures, data and model cards, a whole gate run.

- ``html``: one self-contained HTML file from results.json (Jinja2, inline SVG);
- ``figures``: the report's figures (matplotlib), also as PDF and PNG;
- ``cards``: measured data and model cards (``python -m validation.report.cards``);
- ``motif``: the report of `map-suite motif generate` (same style, its own figures);
- ``run``: ``run_gate``, the session, results.json and the report in one call.
"""

from validation.report.html import markdown_table, render_html, render_report
from validation.report.motif import render_motif_report
from validation.report.run import run_gate

__all__ = ["markdown_table", "render_html", "render_motif_report", "render_report", "run_gate"]

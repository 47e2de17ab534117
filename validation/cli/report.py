"""`map-suite report`: re-render report.html and the figures from a results.json, without recomputing."""

from __future__ import annotations

from pathlib import Path

from validation.gate.results import load_results
from validation.report.html import markdown_table, render_report


def add_arguments(p) -> None:
    p.add_argument("results", help="results.json written by `map-suite validate` or `pytest validation`")
    p.add_argument("--out", default=None, help="folder for report.html and figures/ (default: beside RESULTS)")
    p.add_argument("--markdown", action="store_true", help="also print the verdict table as Markdown")


def run(args) -> int:
    results = load_results(args.results)
    out = Path(args.out) if args.out else Path(args.results).parent
    path = render_report(results, out)
    print(f"wrote {path} (verdict {results['verdict'].upper()})")
    if args.markdown:
        print(markdown_table(results), end="")
    return 0

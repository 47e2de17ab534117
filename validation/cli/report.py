"""`map-suite report`: re-render report.html and the figures from a results.json, without recomputing."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from map_core.errors import MapSuiteError
from map_core.files import check_output_path
from validation.gate.results import load_results
from validation.report.html import markdown_table, render_report


def add_arguments(p) -> None:
    p.add_argument("results", help="results.json written by `map-suite validate` or `pytest validation`")
    p.add_argument("--out", default=None, help="folder for report.html and figures/ (default: beside RESULTS)")
    p.add_argument("--markdown", action="store_true", help="also print the verdict table as Markdown")


def run(args) -> int:
    out = check_output_path(Path(args.results).parent if args.out is None else args.out, "folder")  # "" is refused
    results = load_results(args.results)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    # Rendered in a scratch folder and moved into place only when complete: a results file that
    # loads but holds values the figures cannot draw leaves the old report as it was (and no new folder).
    stage = Path(tempfile.mkdtemp(prefix=".report-", dir=out))
    try:
        try:
            render_report(results, stage)
        except Exception as exc:  # noqa: BLE001 - any defect of the content becomes one line
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            if created:
                shutil.rmtree(out, ignore_errors=True)
            raise MapSuiteError(f"results that cannot be rendered ({exc.__class__.__name__}: {first})",
                                args.results) from None
        for item in sorted(stage.rglob("*")):
            if item.is_file():
                target = out / item.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    path = out / "report.html"
    print(f"wrote {path} (verdict {results['verdict'].upper()})")
    if args.markdown:
        print(markdown_table(results), end="")
    return 0

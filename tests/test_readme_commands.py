"""Every `map-suite` command that the README and GATE.md show parses as written (issue 26).

Commands are read from the documents themselves: lines of ```bash blocks (with their `\\`
continuations, comments dropped) and inline code spans that start with `map-suite` and give at
least one argument after the command. Each goes through the real parser (`validation.cli.main.build_parser`), so a
renamed, removed or mistyped option or a bad choice in a document fails here; shipped files they
read (map_core/..., benchmarks/...) must exist. Elided commands ("...") are left out. The commands'
work itself runs in the other tests at small sizes (generate, export, validate, report, motif).
"""

import re
import shlex
from pathlib import Path

import pytest

from validation.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "validation" / "GATE.md", ROOT / "map_core" / "data" / "MODEL_CARD.md"]


def _bash_lines(text: str) -> list:
    out, block, pending = [], False, ""
    for line in text.splitlines():
        if line.strip().startswith("```"):
            block, pending = not block and line.strip() in ("```bash", "```sh"), ""
            continue
        if not block:
            continue
        line = pending + line.split(" #")[0].rstrip() if pending else line.split(" #")[0].rstrip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        for part in line.split("&&"):
            out.append(part.strip())
    return out


def commands() -> list:
    found = []
    for doc in DOCUMENTS:
        text = doc.read_text()
        lines = _bash_lines(text) + re.findall(r"`(map-suite [^`]+)`", text)
        for line in lines:
            if line.startswith("map-suite ") and len(line.split()) > 2 and "..." not in line:
                found.append((doc.name, line))
    return sorted(set(found))


@pytest.mark.parametrize("doc, line", commands())
def test_documented_command_parses(doc, line, capsys):
    argv = shlex.split(line)[1:]
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0 and {"--help", "--version"} & set(argv):  # argparse prints and ends these
            return
        pytest.fail(f"{doc}: `{line}` does not parse ({capsys.readouterr().err.strip().splitlines()[-1]}; exit {exc.code})")
    for arg in argv:
        if arg.startswith(("map_core/", "benchmarks/")):
            assert (ROOT / arg).exists(), f"{doc}: `{line}` reads {arg}, which is not in the repository"


def test_the_documents_show_commands():
    """The reader above finds the README's main commands (it cannot silently find none)."""
    shown = {line.split()[1] for _, line in commands()}
    assert {"validate", "generate", "train", "export", "report", "evaluate", "motif", "simulate", "toy"} <= shown

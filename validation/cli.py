"""The `map-suite` command line: a thin layer over plain Python functions.

Each subcommand lives in its own module `validation.cli_<name>` exposing
``add_arguments(parser)`` and ``run(args) -> int``; those modules keep heavy imports (torch,
OpenMM) inside ``run`` so that ``map-suite --help`` stays fast. Errors of type MapSuiteError end the program with one line
on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from map_core.errors import MapSuiteError

COMMANDS = {
    "simulate": ("validation.cli_simulate", "run OpenMM q-TIP4P/F water (classical or RPMD) and write a frames file"),
    "train": ("validation.cli_train", "train a 3D PixelCNN MAP model on a frames file"),
    "generate": ("validation.cli_generate", "generate voxel boxes with a trained model and decode them to atoms"),
    "evaluate": ("validation.cli_evaluate", "cross-entropy of a model on a frames file against the class-frequency baseline"),
    "validate": ("validation.cli_validate", "run the release gate on a model and write its HTML report; exit code = verdict"),
    "report": ("validation.cli_report", "re-render a gate report from its results.json without recomputing"),
    "toy": ("validation.cli_toy", "make data, models and figures for the Markov-chain toy systems of seed 001"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand's module is imported and its options added."""
    parser = argparse.ArgumentParser(prog="map-suite", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module)
        if only is None or name == only:
            _load(module).add_arguments(sp)
    return parser


def _load(module: str):
    return importlib.import_module(module)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and argv[0] in COMMANDS else ""
    args = build_parser(only=command).parse_args(argv)
    try:
        return int(_load(args._module).run(args) or 0)
    except MapSuiteError as exc:
        print(f"map-suite {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"map-suite {args.command}: interrupted; finished work is kept, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `map-suite` command line: a thin layer over plain Python functions.

Each subcommand is one module of ``validation.cli`` with ``add_arguments(parser)`` and
``run(args) -> int``. Errors of type MapSuiteError end the program with one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from map_core.arguments import OneLineParser
from map_core.errors import run_one_line
from validation.cli import evaluate, export, generate, motif, report, simulate, toy, train, validate

PACKAGE = "map-suite"

COMMANDS = {
    "simulate": (simulate, "run OpenMM q-TIP4P/F water (classical or RPMD) and write a frames file"),
    "train": (train, "train a 3D PixelCNN MAP model on a frames file"),
    "generate": (generate, "generate voxel boxes with a trained model and decode them to atoms"),
    "evaluate": (evaluate, "cross-entropy of a model on a frames file against the class-frequency baseline"),
    "validate": (validate, "run the release gate on a model and write its HTML report; exit code = verdict"),
    "report": (report, "re-render a gate report from its results.json without recomputing"),
    "export": (export, "write generated boxes or MD frames as PDB, DCD, XTC, GRO, extended XYZ or a LAMMPS dump"),
    "motif": (motif, "scan the training data for rare low-density motifs and generate water around one "
                     "(the 3D water MAP paper, seed 000, Fig. 4-5)"),
    "toy": (toy, "make data, models and figures for the Markov-chain toy systems of the MAP theory paper (seed 001)"),
}

DESCRIPTION = """\
MAP suite: train 3D MAP (Morphological Autoregressive Protocol) PixelCNN models
of water voxel boxes, generate boxes with them, and validate the boxes against
OpenMM water."""

# ASCII only: help must print on any terminal encoding.
EPILOG = """\
The specification papers, cited in the help texts by their seed numbers:
  seed 000  the 3D water MAP paper this suite reproduces: Madanchi et al.,
            "Simulations of Disordered Matter in 3D with the Morphological
            Autoregressive Protocol (MAP) and Convolutional Neural Networks"
  seed 001  the Markov-chain theory of MAP: Kilgour and Simine, "Inside the
            Black Box: A Physical Basis for the Effectiveness of Deep
            Generative Models of Amorphous Materials"

Run `map-suite COMMAND --help` for the options of a command."""


def package_version() -> str:
    """The installed package's version (importlib.metadata), or 'unknown (not installed)'."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> OneLineParser:
    """The parser of every subcommand; each sets ``args.command``."""
    parser = OneLineParser(prog="map-suite", description=DESCRIPTION, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"map-suite {package_version()}",
                        help="print the installed map-suite version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    return run_one_line(f"map-suite {args.command}", lambda: COMMANDS[args.command][0].run(args))


if __name__ == "__main__":
    sys.exit(main())

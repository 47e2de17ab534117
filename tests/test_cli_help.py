"""`map-suite --help` for a new user: every option of every command and sub-command has a help line
that shows its default, every command has a description, `--version` prints the installed version,
and validate's help lists the profiles the profile loader knows."""

import argparse
import importlib
import re
from importlib import metadata

import pytest

from map_core.errors import MapSuiteError
from validation.cli.main import build_parser, main
from validation.gate.profile import SHIPPED, load_profile, shipped_path

cli = importlib.import_module("validation.cli.main")  # the module: the package's `main` is the function


def parsers(parser, name="map-suite"):
    """(command line, parser) of the parser and of every sub-parser, recursively."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


PARSERS = list(parsers(build_parser()))
OPTIONS = [(name, action) for name, parser in PARSERS for action in parser._actions
           if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))]
OPTION_IDS = [f"{name} {(action.option_strings or [action.dest])[-1]}" for name, action in OPTIONS]


def shown_default(default) -> str:
    """The default as a user types it: list defaults (nargs) space-separated."""
    return " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)


def test_the_walk_finds_every_command_and_sub_command():
    names = {name for name, _ in PARSERS}
    assert {"map-suite train", "map-suite generate", "map-suite validate", "map-suite motif scan",
            "map-suite motif generate", "map-suite toy"} <= names
    assert len(OPTIONS) > 100


@pytest.mark.parametrize("name,parser", PARSERS, ids=[name for name, _ in PARSERS])
def test_every_command_has_a_description(name, parser):
    assert parser.description and parser.description.strip(), f"{name} has no description"


@pytest.mark.parametrize("name,action", OPTIONS, ids=OPTION_IDS)
def test_every_option_has_help(name, action):
    assert action.help and action.help.strip() and action.help != argparse.SUPPRESS, \
        f"{name} {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("name,action", OPTIONS, ids=OPTION_IDS)
def test_every_default_is_shown(name, action):
    default = action.default
    if default is None or default is False or default is argparse.SUPPRESS:
        return
    text = action.help or ""
    assert "default" in text.lower() and ("%(default)s" in text or shown_default(default) in text), \
        f"{name} {action.option_strings}: help {text!r} does not show the default {default!r}"


def test_help_texts_format_without_error():
    for name, parser in PARSERS:
        assert parser.format_help(), name  # a stray % in a help text would raise here


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"map-suite {metadata.version('map-suite')}\n"


def test_version_falls_back_when_the_package_is_not_installed(monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.metadata, "version", missing)
    assert cli.package_version() == "unknown (not installed)"


def test_validate_help_lists_the_profiles_the_loader_knows():
    validate = dict(PARSERS)["map-suite validate"]
    (profile,) = [a for a in validate._actions if "--profile" in a.option_strings]
    listed = re.search(r"shipped profile \(([^;)]*)", profile.help % {"default": profile.default}).group(1)
    assert listed.split(", ") == list(SHIPPED)
    folder = shipped_path(SHIPPED[0]).parent
    assert sorted(p.stem for p in folder.glob("*.toml")) == sorted(SHIPPED)
    with pytest.raises(MapSuiteError) as err:  # the loader's message for a typo lists the same profiles
        load_profile("quik")
    assert f"shipped profiles: {', '.join(SHIPPED)}" in str(err.value)
    assert profile.default in SHIPPED

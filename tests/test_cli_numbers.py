"""Every numeric option of every command refuses NaN, inf and out-of-range values when parsed:
one line on stderr, exit code 2, nothing written (issue 16)."""

import argparse

import pytest

from map_core.arguments import count, real
from validation.cli.main import build_parser, main
from validation.gate import calibrate


def numeric_options(parser: argparse.ArgumentParser):
    """(command, option string, nargs, checker) for every numeric option of every subcommand."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action.type, (count, real)) and action.option_strings:
                yield name, action.option_strings[0], action.nargs, action.type


def bad_values(checker) -> list:
    if isinstance(checker, count):
        out = [str(checker.lo - 1), "1.5", "nan", "ten"]
        return out + ([str(checker.hi + 1)] if checker.hi is not None else [])
    out = ["nan", "inf", "-inf", "1e400", "x"]
    if checker.lo is not None:
        out.append(repr(checker.lo) if checker.lo_open else repr(checker.lo - 1e-3 * max(1.0, abs(checker.lo))))
    if checker.hi is not None:
        out.append(repr(checker.hi) if checker.hi_open else repr(checker.hi + 1e-3 * max(1.0, abs(checker.hi))))
    return out


OPTIONS = list(numeric_options(build_parser()))


def test_every_command_has_its_numbers_checked():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    unchecked = [f"{name} {a.option_strings}" for name, cmd in sub.choices.items() for a in cmd._actions if a.type in (int, float)]
    assert unchecked == []  # a plain int or float would let NaN, inf or a negative count through
    commands = {c for c, *_ in OPTIONS}
    assert {"train", "generate", "simulate", "evaluate", "validate", "toy"} <= commands
    assert len(OPTIONS) >= 45


@pytest.mark.parametrize("command, option, nargs, checker", OPTIONS, ids=[f"{c} {o}" for c, o, *_ in OPTIONS])
def test_out_of_range_numbers_are_refused_in_one_line(command, option, nargs, checker, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for bad in bad_values(checker):
        values = [bad] + ["4"] * ((nargs if isinstance(nargs, int) else 1) - 1)
        with pytest.raises(SystemExit) as exit_info:
            main([command, f"{option}={values[0]}" if bad.startswith("-") else option, *([] if bad.startswith("-") else values[:1]),
                  *values[1:]])
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2, (option, bad)
        assert len(err.splitlines()) == 1 and option in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_the_edges_of_each_range_are_accepted():
    for *_, checker in OPTIONS:
        if isinstance(checker, count):
            assert checker(str(checker.lo)) == checker.lo
        elif checker.lo is not None and not checker.lo_open:
            assert checker(repr(checker.lo)) == checker.lo


def test_the_calibration_tool_checks_its_numbers_too(capsys):
    for args in (["smoke", "--draws", "0"], ["smoke", "--voxel", "nan"], ["smoke", "--md-pairs", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            calibrate.main(args)
        assert exit_info.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1

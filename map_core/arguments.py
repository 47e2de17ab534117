"""Numeric command-line arguments, checked when parsed: NaN, inf and out-of-range values never reach
any work. Each checker is an argparse ``type`` that keeps its range (``.lo``, ``.hi``) so tests can
aim just outside it."""

from __future__ import annotations

import argparse
import math
import sys


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit code 2), like MapSuiteError's."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


class count:
    """An integer >= lo (and <= hi when given)."""

    def __init__(self, lo: int = 1, hi: int | None = None):
        self.lo, self.hi = lo, hi
        self.__name__ = "integer"  # argparse names the type in its messages

    def __call__(self, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < self.lo or (self.hi is not None and value > self.hi):
            raise argparse.ArgumentTypeError(f"{value} is outside {self.describe()}")
        return value

    def describe(self) -> str:
        return f"[{self.lo}, {self.hi}]" if self.hi is not None else f"the integers >= {self.lo}"


SEED = count(0, 2**63 - 1)


class real:
    """A finite number in [lo, hi], an end excluded where lo_open / hi_open."""

    def __init__(self, lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
        self.lo, self.hi, self.lo_open, self.hi_open = lo, hi, lo_open, hi_open
        self.__name__ = "number"

    def __call__(self, text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        below = self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo))
        above = self.hi is not None and (value > self.hi or (self.hi_open and value == self.hi))
        if below or above:
            raise argparse.ArgumentTypeError(f"{value:g} is outside {self.describe()}")
        return value

    def describe(self) -> str:
        lo = "-inf" if self.lo is None else f"{self.lo:g}"
        hi = "inf" if self.hi is None else f"{self.hi:g}"
        return f"{'(' if self.lo_open or self.lo is None else '['}{lo}, {hi}{')' if self.hi_open or self.hi is None else ']'}"


POSITIVE = real(0.0, lo_open=True)
NONNEGATIVE = real(0.0)
FRACTION = real(0.0, 1.0, lo_open=True, hi_open=True)

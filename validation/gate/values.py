"""Validators of profile values: (check, description) pairs that the profile schema and the check
registry share. Each check takes one TOML value and says whether it is acceptable."""

from __future__ import annotations

import math


def _pos(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _nonneg(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x >= 0


def _int_at_least(n):
    return lambda x: isinstance(x, int) and not isinstance(x, bool) and x >= n


def _real(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _prob(x):
    return _real(x) and 0.0 < x < 1.0


def choice(*options) -> tuple:
    """One of `options`, with its description."""
    names = [repr(o) for o in options]
    what = " or ".join(names) if len(names) == 2 else "one of " + ", ".join(names)
    return (lambda x: x in options), what


POS = (_pos, "a positive number")
NONNEG = (_nonneg, "zero or a positive number")
PROB = (_prob, "a number strictly between 0 and 1")
STR = (lambda x: isinstance(x, str), "a string")
BOOL = (lambda x: isinstance(x, bool), "true or false")
AUC = (lambda x: _real(x) and 0.5 < x <= 1.0, "a number in (0.5, 1]")
NEGATIVE = (lambda x: _real(x) and x < 0, "a negative number")
DEVICE = (lambda x: isinstance(x, str) and (x in ("cpu", "cuda") or (x.startswith("cuda:") and x[5:].isdigit())),
          "'cpu', 'cuda' or 'cuda:N'")


def ints(n: int) -> tuple:
    """An integer of at least `n`."""
    return _int_at_least(n), f"an integer >= {n}"

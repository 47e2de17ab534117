"""Plain values read from files (JSON, TOML, checkpoint configs), as the file validators test and show them."""

from __future__ import annotations

import json
import math


def is_real(x) -> bool:
    """A finite int or float: not a bool, not a tensor or array, not an integer too large for a float."""
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        return False
    try:
        return math.isfinite(x)
    except OverflowError:
        return False


def shown_value(value, width: int = 40) -> str:
    """A short text of a JSON value for a one-line message (a huge integer's repr may itself be refused by Python)."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= width else text[: width - 3] + "..."

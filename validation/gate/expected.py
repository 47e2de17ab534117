"""Checks a given model is known to fail: the gate's counterpart of pytest's xfail.

A model that is shipped as an example rather than as a validated water model (the default model
of this package, trained for minutes on a CPU) still runs through the whole gate in CI; its
known failures are listed, with the measured reason, in a TOML file, one table per profile::

    [smoke]
    orphan_rate = "10 % orphan atoms against 5 %: trained 40 CPU-minutes"

``pytest validation --expected-failures FILE`` marks those checks as expected failures
(non-strict xfail: a check that starts to pass is reported, not an error); every other check
must pass. The verdict and the report are unchanged: they still say FAIL.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from map_core.errors import MapSuiteError
from validation.gate.registry import CHECKS

ALL_CHECKS = tuple(c.name for c in CHECKS)


def load_expected_failures(path, profile_name: str) -> dict:
    """{check name: reason} for `profile_name` from the TOML file `path` (empty if it has no such table)."""
    path = Path(path)
    if not path.is_file():
        raise MapSuiteError("no such expected-failures file", path)
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise MapSuiteError(f"not valid TOML ({exc})", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MapSuiteError(f"unreadable expected-failures file ({exc.__class__.__name__}: {exc})", path) from None
    table = data.get(profile_name, {})
    if not isinstance(table, dict):
        raise MapSuiteError(f"[{profile_name}] must be a table of check = \"reason\"", path)
    for name, reason in table.items():
        if name not in ALL_CHECKS:
            raise MapSuiteError(f"unknown check {name!r} in [{profile_name}] (checks: {', '.join(ALL_CHECKS)})", path)
        if not isinstance(reason, str) or not reason.strip():
            raise MapSuiteError(f"[{profile_name}] {name} needs a reason (a non-empty string)", path)
    return dict(table)

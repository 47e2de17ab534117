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


MAX_REASON_CHARS = 2000  # a reason is a sentence or two of measured values, shown in pytest's summary


def load_expected_failures(path, profile_name: str) -> dict:
    """{check name: reason} for `profile_name` from the TOML file `path` (empty if it has no such table).

    Every table of the file is checked, not only `profile_name`'s: a file that CI reads for one profile
    is the same file a person edits for all of them. A top-level key is a profile's table of
    ``check = "reason"``: a known check name and a non-empty string."""
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
    except ValueError as exc:  # an integer of more than 4300 digits (Python's int-string limit)
        raise MapSuiteError(f"not a usable expected-failures file ({str(exc)[:120]})", path) from None
    except RecursionError:  # arrays nested thousands deep
        raise MapSuiteError("not a usable expected-failures file (values nested too deeply)", path) from None
    for profile, table in data.items():
        if not isinstance(table, dict):
            raise MapSuiteError(f"{profile[:40]!r} must be a table [{profile[:40]}] of check = \"reason\", not "
                                f"{type(table).__name__}", path)
        for name, reason in table.items():
            if name not in ALL_CHECKS:
                raise MapSuiteError(f"unknown check {name[:40]!r} in [{profile[:40]}] (checks: {', '.join(ALL_CHECKS)})",
                                    path)
            if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS:
                raise MapSuiteError(f"[{profile[:40]}] {name} needs a reason (a non-empty string of at most "
                                    f"{MAX_REASON_CHARS} characters)", path)
    return dict(data.get(profile_name, {}))

"""Release gate, MD: classical and RPMD runs seeded from repaired generated boxes against the same protocol
seeded from training frames."""

import pytest

from validation.conftest import run_check
from validation.gate.md import MD_CHECKS


@pytest.mark.parametrize("name", MD_CHECKS)
def test_md(gate, name, record_property):
    if not gate.profile["md"]["enabled"]:
        pytest.skip("MD is disabled in this profile ([md] enabled = false)")
    if "_rpmd_" in name and not gate.profile["md.rpmd"]["enabled"]:
        pytest.skip("RPMD is disabled in this profile ([md.rpmd] enabled = false)")
    run_check(gate, "md", name, record_property)

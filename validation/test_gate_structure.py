"""Release gate, structure: generated boxes against voxelised training frames (one test per check)."""

import pytest

from validation.conftest import run_check
from validation.gate.structure import STRUCTURE_CHECKS


@pytest.mark.parametrize("name", STRUCTURE_CHECKS)
def test_structure(gate, name, record_property):
    run_check(gate, "structure", name, record_property)

"""Release gate, Markov chain: positive probabilities, saturation after burn-in, boundary independence."""

import pytest

from validation.conftest import run_check
from validation.gate.markov import MARKOV_CHECKS


@pytest.mark.parametrize("name", MARKOV_CHECKS)
def test_markov(gate, name, record_property):
    run_check(gate, "markov", name, record_property)

"""MD checks at smoke scale with real OpenMM: a box cut from held-out training frames passes against one
cut from training frames (same decode -> cube -> repair path, the smoke profile's run lengths and
thresholds); a box with too few molecules, as broken models produce, fails."""

import numpy as np
import pytest
from gate_helpers import CODER, DATA

from map_core.atoms.frames import load_frames
from validation.gate.md import MD_CHECKS, WINDOW_MARGIN_NM, density_not_judged, md_checks, run_methods, seed_box, window_seed_box
from validation.gate.profile import load_profile

pytestmark = pytest.mark.slow  # subprocesses, OpenMM or whole gate runs: `pytest -m 'not slow' tests` skips them

SMOKE = load_profile("smoke")
THRESHOLDS = {**SMOKE["thresholds"], "md_tolerance": SMOKE["thresholds.md_tolerance"]}


def _seed(frames, indices, rng_seed):
    return window_seed_box(frames, indices, SMOKE["md"]["box_nm"], CODER, np.random.default_rng(rng_seed))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    frames = load_frames(DATA)
    root = tmp_path_factory.mktemp("md")
    out = {}
    for label, idx, rng_seed in (("training", [0, 1, 2, 3], 19), ("heldout", [4], 23)):
        _, (pos, box, rep) = _seed(frames, idx, rng_seed)
        out[label] = run_methods(pos, box, SMOKE, root / label, rep)
    return out


def test_heldout_seeded_md_agrees_with_training_seeded_md(runs):
    not_judged = density_not_judged(SMOKE)
    checks = []
    for method in ("classical", "rpmd"):
        checks += md_checks(runs["heldout"][method], runs["training"][method], THRESHOLDS, method, not_judged)
    for c in checks:
        print(c.line())
    assert list(not_judged) == ["md_rpmd_density"]
    assert [c.name for c in checks] == [n for n in MD_CHECKS if n not in not_judged]
    assert all(c.passed for c in checks), [c.line() for c in checks if not c.passed]


def test_rpmd_without_npt_has_no_density_to_judge(runs):
    """The smoke RPMD runs NVT only (npt_ps = 0): its density is not measured, so judging it would
    fail every run; the classical run measured one."""
    rpmd = runs["heldout"]["rpmd"]
    assert rpmd["stable"] and not np.isfinite(rpmd["density"][0])
    assert np.isfinite(runs["heldout"]["classical"]["density"][0])
    forced = {c.name: c for c in md_checks(rpmd, runs["training"]["rpmd"], THRESHOLDS, "rpmd")}
    assert not forced["md_rpmd_density"].passed


def test_a_box_with_too_few_molecules_fails(runs, tmp_path):
    frames = load_frames(DATA)
    grid, _ = _seed(frames, [4], 23)
    sparse = grid.copy()
    z, y, x = np.nonzero(sparse)
    # few whole molecules, as in a broken model's box
    if CODER.whole_molecules:  # fragment classes cannot leave a molecule incomplete: keep one in six
        gone = np.ones(len(z), bool)
        gone[::6] = False
    else:  # every other atom gone
        gone = np.zeros(len(z), bool)
        gone[::2] = True
    sparse[z[gone], y[gone], x[gone]] = 0
    pos, box, rep = seed_box(sparse, CODER, np.full(3, WINDOW_MARGIN_NM), SMOKE["md"]["box_nm"])
    result = run_methods(pos, box, SMOKE, tmp_path, rep)
    checks = {c.name: c for c in md_checks(result["classical"], runs["training"]["classical"], THRESHOLDS, "classical")}
    print(checks["md_classical_stable"].line())
    assert len(pos) // 3 < SMOKE["md"]["min_waters"]
    assert not any(c.passed for c in checks.values())

"""`map-suite toy`: end to end on a tiny system (real data, training and sampling), resume, one-line errors."""

import json

import numpy as np
import pytest

from validation.cli.main import main

TINY = ["--size", "12", "--n-data", "10", "--n-generate", "4", "--steps", "20", "--layers", "1", "--filters", "4",
        "--crop", "8", "--batch", "4", "--quiet"]


def test_toy_writes_data_figures_and_numbers_and_resumes(tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["toy", "--system", "hard_core", "--out", str(out), "--seed", "3", *TINY]) == 0
    line = capsys.readouterr().out
    assert "hard_core: PixelCNN pair-correlation distance" in line and "receptive fields" in line
    for name in ("hard_core.json", "hard_core.png", "hard_core.pdf", "hard_core_data.npz", "hard_core_model.pt",
                 "hard_core_generated.npz"):
        assert (out / name).stat().st_size > 0, name
    r = json.loads((out / "hard_core.json").read_text())
    assert r["expansion"]["n_coefficients"] == 5 and len(r["expansion"]["fitted"]["clusters"]) == 4
    assert r["eq15"]["c_rho_eq15"] == pytest.approx(0.5 * np.log(0.1 / 0.9))
    assert r["markov"]["expansion_1d"]["ergodic"] and r["markov"]["expansion_1d"]["diameter"] == 3
    assert not r["markov"]["expansion_1d_argmax"]["ergodic"]
    assert r["markov"]["pixelcnn_rows"]["ergodic"] and r["markov"]["pixelcnn_rows"]["n_states"] == 2 ** (2 * 2)
    assert all(tv <= b for tv, b in zip(r["markov"]["tv_convergence"]["tv"], r["markov"]["tv_convergence"]["bound"]))
    assert r["structure"]["broken"]["pass"] is False  # an ideal gas never passes as a hard-core fluid
    with np.load(out / "hard_core_data.npz") as f:
        assert f["grids"].shape == (10, 12, 12) and f["grids"].dtype == np.uint8
    with np.load(out / "hard_core_generated.npz") as f:
        assert f["pixelcnn"].shape == (4, 12 + r["convergence"]["rows_back"] * 2, 12)
        first = f["pixelcnn"].copy()
    # same arguments again: every stage is reused and the numbers are identical
    stamp = (out / "hard_core_model.pt").stat().st_mtime_ns
    assert main(["toy", "--system", "hard_core", "--out", str(out), "--seed", "3", *TINY]) == 0
    assert (out / "hard_core_model.pt").stat().st_mtime_ns == stamp
    again = json.loads((out / "hard_core.json").read_text())
    assert again["structure"] == r["structure"] and again["expansion"] == r["expansion"]
    with np.load(out / "hard_core_generated.npz") as f:
        assert np.array_equal(f["pixelcnn"], first)


def test_toy_ideal_gas_reports_the_eq7_check(tmp_path):
    assert main(["toy", "--system", "ideal-gas", "--out", str(tmp_path), "--no-figures", "--density", "0.3",
                 "--sampler", "reference", *TINY]) == 0
    r = json.loads((tmp_path / "ideal_gas.json").read_text())
    eq7 = r["eq7"]
    assert eq7["c_b_eq7"] == pytest.approx(0.5 * np.log(eq7["density"] / (1 - eq7["density"])))
    assert abs(eq7["c_rho_fitted"] - eq7["c_b_eq7"]) < 0.2
    assert not (tmp_path / "ideal_gas.png").exists()
    assert r["settings"]["sampler"] == "reference"


@pytest.mark.parametrize("args,message", [
    (["--size", "10"], "multiple of 4"),
    (["--density", "1.5"], "density"),
    (["--temperature", "0"], "temperature"),
])
def test_toy_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, message):
    try:
        rc = main(["toy", "--system", "drying", "--out", str(tmp_path), *args])
    except SystemExit as exc:  # out-of-range numbers are refused by the parser, before the command runs
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("map-suite toy: error:") and message in err and "\n" not in err


def test_toy_unknown_system_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["toy", "--system", "graphene"])
    assert exc.value.code == 2

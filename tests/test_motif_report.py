"""The motif report (validation.report.motif) renders a motif.json into one self-contained HTML file.

The result dict is synthetic but has the shape ``validation.motif.run.run_motif_job`` writes:
the renderer is under test, not the physics (tests/test_motif_protocol.py covers that).
"""

import json
import math
import re

import numpy as np

from validation.report.motif import draw_motif_figures, number, render_motif_report

FRAME = 137
ITERATIONS = 4


def synthetic_result(iterations: int = ITERATIONS, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    q_edges = np.linspace(0.0, 1.0, 41).tolist()
    shells = np.arange(0.0, 0.75, 0.1).tolist()

    def counts(centre):
        return np.histogram(np.clip(rng.normal(centre, 0.08, 300), 0, 1), bins=q_edges)[0].tolist()

    rows = []
    for k in range(1, iterations + 1):
        rows.append({"iteration": k, "oxygens_judged": 40 + k, "q4": counts(0.15 + 0.02 * k), "q6": counts(0.4 + 0.02 * k),
                     "density_g_cm3": (0.9 + 0.1 * rng.random(len(shells) - 1)).tolist(),
                     "kl_q4_frame": 0.3 / k, "kl_q4_set": 0.2 / k, "kl_q6_frame": 0.25 / k, "kl_q6_set": 0.15 / k})
    rows[0]["kl_q6_set"] = float("nan")  # as kl_hist gives when nothing could be judged
    rows[1]["kl_q4_frame"] = None
    steps = [{"step": 0, "voxels_sampled": 9000, "log_prob": -1234.5, "turns": 0, "file": "step_i.npz"}]
    steps += [{"step": k, "voxels_sampled": 20000, "log_prob": -2500.0 + 10 * k, "turns": k,
               "file": f"iteration_{k:02d}.npz"} for k in range(1, iterations + 1)]
    return {
        "format": "map-suite motif generate", "model_sha256": "ab" * 32, "data_sha256": "cd" * 32, "site": 2,
        "site_detail": {"frame": FRAME, "centre_nm": [0.45, 1.2, 0.8], "density_g_cm3": 0.6912, "molecules": 5},
        "probe_nm": 0.6, "shape": [30, 30, 30], "iterations": iterations, "seed": 11, "temperature": 1.0,
        "encoding": "classes", "voxel_nm": 0.05,
        "motif": {"molecules": 5, "voxels": [16, 16, 16], "origin_zyx": [7, 7, 7], "centre_nm": [0.75, 0.75, 0.75],
                  "occupied_voxels": 15},
        "steps": steps,
        "scan": {"probe_nm": 0.6, "density_g_cm3": {"values": [0.69, 0.83, 0.97, 1.11], "mean": 0.985, "std": 0.14,
                                                    "dominant": 0.968},
                 "tail_probability": 0.051, "threshold_g_cm3": 0.83,
                 "seed_000": {"probe_nm": 0.625, "dominant_g_cm3": 0.996, "low_g_cm3": 0.614, "low_probability": 0.045}},
        "convergence": {"q_edges": q_edges, "r_cut_nm": 0.35, "shell_edges_nm": shells,
                        "reference_frame": {"q4": counts(0.2), "q6": counts(0.45)},
                        "reference_set": {"q4": counts(0.21), "q6": counts(0.46)},
                        "source_density_g_cm3": (0.7 + 0.3 * rng.random(len(shells) - 1)).tolist(),
                        "iterations": rows},
    }


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.IGNORECASE)


def test_motif_report_is_self_contained(tmp_path):
    result = json.loads(json.dumps(synthetic_result()))  # through JSON, as motif.json is read back
    path = render_motif_report(result, tmp_path)
    assert path == tmp_path / "motif.html" and path.exists()
    html = path.read_text()
    assert "MAP suite: motif-conditioned generation" in html
    assert html.count("<svg") == 3
    assert not EXTERNAL.search(html), EXTERNAL.search(html).group(0)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert f"frame {FRAME}" in html
    assert "0.996" in html and "0.614" in html and "4.5 %" in html and "0.625 nm" in html  # seed 000's numbers
    assert "step (i)" in html and f"iteration {ITERATIONS}" in html
    assert "n/a" in html  # NaN and None KL values
    assert "[[0, −1, 0], [0, 0, 1], [−1, 0, 0]]" in html
    assert "ab" * 32 in html and "cd" * 32 in html  # provenance
    for name in ("motif_q", "motif_kl", "motif_density"):
        for ext in ("pdf", "png"):
            assert (tmp_path / "figures" / f"{name}.{ext}").stat().st_size > 0


def test_figures_without_data_are_left_out_and_the_page_says_so(tmp_path):
    result = synthetic_result()
    result["convergence"] = {}
    assert draw_motif_figures(result, tmp_path) == {}
    html = render_motif_report(result, tmp_path).read_text()
    assert "<svg" not in html and html.count("figure not drawn") == 3


def test_numbers_for_people():
    assert number(None) == "n/a" and number(float("nan")) == "n/a" and number(math.inf) == "n/a"
    assert number(0.0451, ".1f", 100.0) == "4.5" and number("x") == "n/a"

"""Published experimental structure of liquid water near room temperature, to show beside a model (never to judge it).

Provenance, units and the checks made on these curves: ``validation/observables/data/WATER_EXPERIMENT.md``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from validation.observables.rdf import first_peak

WATER_EXPERIMENT = Path(__file__).resolve().parent / "data" / "water_experiment.npz"


def water_experiment(path: Path | str = WATER_EXPERIMENT) -> dict:
    """The experimental water curves and points, lengths in nm, as a dict.

    Curves (1-D float arrays, r strictly increasing):

    - ``r_nm``, ``g_OO``, ``g_OO_err``: x-ray O-O g(r) at ``g_OO_T_K`` = 295.1 K, Skinner et al.
      2014 (``citation_skinner2014``), the same group's x-ray g_OO as the 2013 benchmark
      (``citation_skinner2013``), whose own table was not found in public;
    - ``r_nm_soper``, ``g_OO_soper``, ``g_OH_soper``, ``g_HH_soper`` (each with ``*_err``):
      Soper 2013 intermolecular partial g(r) at ``soper_T_K`` = 298 K (``citation_soper2013``).

    Points, not curves (1-D arrays, one entry per feature, NaN where the paper gives no error):
    ``points_label`` (str), ``points_r_nm``, ``points_r_err_nm``, ``points_g``, ``points_g_err``:
    the published g_OO peak and minimum positions and heights of Skinner 2013 and Soper 2013.

    Structure factor: ``q_nm_inv`` (nm^-1) and ``S_q`` are None and ``S_kind`` is ``"none"``: no
    public digital copy of a published water S(q) was found (see the card).

    ``g_OO_source`` and ``soper_source`` say where each digital copy came from. The file is read
    without pickle.
    """
    out: dict = {"q_nm_inv": None, "S_q": None, "S_kind": "none"}
    with np.load(path, allow_pickle=False) as f:
        for key in f.files:
            value = f[key]
            out[key] = value.item() if value.ndim == 0 else value.copy()
    return out


# MLIPAudit's water RDF score (../shared/REFERENCE.md): RMSE of g_OO against the X-ray curve over
# 2.5-10 Å, and the first peak's position against the 2.8-3.0 Å window.
RMSE_RANGE_NM = (0.25, 1.0)
PEAK_WINDOW_NM = (0.28, 0.30)


def compare_g_oo(r_nm, g, experiment: dict | None = None) -> dict:
    """A model's or a data set's O-O g(r) against the X-ray curve (``g_OO`` of `experiment`).

    r_nm: (B,) bin centres, nm; g: (B,) g_OO. Returns {"rmse": RMSE over the part of
    RMSE_RANGE_NM that `r_nm` covers (the experimental curve interpolated onto r_nm), "range_nm":
    that part, "peak_nm", "peak_g": the first peak (validation.observables.rdf.first_peak),
    "peak_in_window": whether it lies in PEAK_WINDOW_NM, "experiment_peak_nm", "experiment_peak_g"}.
    NaN where g has no finite value in the range.
    """
    exp = water_experiment() if experiment is None else experiment
    r, g = np.asarray(r_nm, dtype=float), np.asarray(g, dtype=float)
    lo, hi = RMSE_RANGE_NM[0], min(RMSE_RANGE_NM[1], float(r.max()) if len(r) else 0.0)
    inside = (r >= lo) & (r <= hi) & np.isfinite(g)
    diff = g[inside] - np.interp(r[inside], exp["r_nm"], exp["g_OO"])
    peak_nm, peak_g = first_peak(r, np.nan_to_num(g))
    exp_peak_nm, exp_peak_g = first_peak(exp["r_nm"], exp["g_OO"])
    return {"rmse": float(np.sqrt(np.mean(diff ** 2))) if inside.any() else float("nan"), "range_nm": [lo, hi],
            "peak_nm": peak_nm, "peak_g": peak_g,
            "peak_in_window": bool(PEAK_WINDOW_NM[0] <= peak_nm <= PEAK_WINDOW_NM[1]),
            "experiment_peak_nm": exp_peak_nm, "experiment_peak_g": exp_peak_g}

"""Seed 000's Table 1 (Madanchi et al., 3D MAP for water) beside this run's MD averages."""

from __future__ import annotations

import numpy as np

SEED_TABLE1 = [  # seed 000 (Madanchi et al.), Table 1: averages over NPT then NVT, 300 K
    {"run": "seed 000: classical MD", "density_g_cm3": 1.0003, "oh_bond_nm": 0.09623, "hoh_angle_deg": 104.825, "dipole_debye": 2.308},
    {"run": "seed 000: PIMD", "density_g_cm3": 0.9958, "oh_bond_nm": 0.09779, "hoh_angle_deg": 104.710, "dipole_debye": 2.347},
    {"run": "experiment (as cited by seed 000)", "density_g_cm3": 0.997, "oh_bond_nm": 0.097, "hoh_angle_deg": 105.1, "dipole_debye": 2.9},
]


def table1(md: dict | None) -> list:
    """Rows of seed 000's Table 1 with this run's MD beside them (values in code units, angles deg)."""
    rows = []
    if md and "generated" in md:
        for source, label in (("generated", "generated-seeded"), ("training", "training-seeded")):
            for method, runs in md[source].items():
                r = runs
                if not r.get("stable"):
                    rows.append({"run": f"this run: {method} ({label})", "failed": r.get("error", "did not complete")})
                    continue
                rows.append({"run": f"this run: {method} ({label})", "density_g_cm3": r["density"][0],
                             "density_se": r["density"][1], "oh_bond_nm": r["oh_bond"][0], "oh_bond_se": r["oh_bond"][1],
                             "hoh_angle_deg": float(np.degrees(r["hoh_angle"][0])),
                             "hoh_angle_se": float(np.degrees(r["hoh_angle"][1])),
                             "dipole_debye": r["dipole"][0], "dipole_se": r["dipole"][1], "waters": r.get("waters")})
    return rows + [dict(r) for r in SEED_TABLE1]

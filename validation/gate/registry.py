"""The gate's checks: one registry row per check.

A row says what a check is called, which group judges it, its title and unit, which profile key
holds its threshold, the relation its value must keep to that threshold, and how the value is
measured. Everything else is derived from these rows: the check lists of each group, the
profile schema's threshold tables, the "not measured" list of over-dense ensembles, the report's
distribution panels and the pass rule (``validation.gate.checks.Check.passed``).

Adding a structure observable is one ``compute_*`` module in ``validation/observables/``, one row
here (with a ``validation.gate.measures`` measure) and its threshold keys in the profiles, then a
calibration run (``python -m validation.gate.calibrate``).
"""

from __future__ import annotations

from dataclasses import dataclass

from validation.gate import measures as m
from validation.gate.checks import relation_holds
from validation.gate.values import AUC, NEGATIVE, NONNEG, POS

GROUPS = ("structure", "markov", "md")
MD_METHODS = ("classical", "rpmd")


@dataclass(frozen=True)
class CheckSpec:
    """One check.

    threshold_key: key in [thresholds] (structure checks: also in [thresholds.continuous]; MD
    observables: in [thresholds.md_tolerance]); None where the group computes the allowance (the
    combined test: from the recorded null draws, validation.gate.thresholds).
    threshold_rule: the (validator, description) of that key in the profile schema.
    measure: structure checks: a validation.gate.measures.Measure; other groups: how the value
    is measured, in words. panel: x label of the report's distribution panel, if it has one.
    fixed_by: an Encoding fact (attribute) that, when the judging encoding has it, fixes the check's
    value by construction for generated and training boxes alike: it is shown, never counted as evidence.
    """

    name: str
    group: str
    title: str
    unit: str
    threshold_key: str | None
    relation: str = "<="
    measure: object = None
    threshold_rule: tuple = POS
    panel: str | None = None
    fixed_by: str | None = None


# MD observables judged per method: name, title, unit, key in [thresholds.md_tolerance]
MD_OBSERVABLES = (("density", "density", "g/cm3", "density_g_cm3"), ("oh_bond", "mean O-H bond", "nm", "oh_bond_nm"),
                  ("hoh_angle", "mean H-O-H angle", "rad", "hoh_angle_rad"),
                  ("dipole", "mean molecular dipole", "D", "dipole_debye"))


def _md_rows() -> list:
    rows = []
    for method in MD_METHODS:
        rows.append(CheckSpec(f"md_{method}_stable", "md",
                              f"{method} NPT->NVT from a repaired generated box completes and stays stable", "", None, ">=",
                              "1 if the generated-seeded run finished without a stability failure, else 0"))
        rows += [CheckSpec(f"md_{method}_{obs}", "md", f"{method}: {title} agrees with training-seeded MD", unit, key, "<=",
                           "|generated-seeded - training-seeded| production average; allowance max(tolerance, md_z x "
                           "combined standard error)", NONNEG)
                 for obs, title, unit, key in MD_OBSERVABLES]
    return rows


CHECKS = (
    CheckSpec("density", "structure", "density away from the burned-in region", "relative deviation", "density_rel",
              measure=m.Density()),
    CheckSpec("orphan_rate", "structure", "orphan-defect rate", "fraction of atoms", "orphan_rate", measure=m.Orphans(),
              fixed_by="whole_molecules"),
    CheckSpec("g_OO", "structure", "O-O radial distribution g(r)", "RMS", "g_OO", measure=m.Rdf(("O", "O"))),
    CheckSpec("g_OH", "structure", "O-H radial distribution g(r)", "RMS", "g_OH", measure=m.Rdf(("O", "H"))),
    CheckSpec("g_HH", "structure", "H-H radial distribution g(r)", "RMS", "g_HH", measure=m.Rdf(("H", "H"))),
    CheckSpec("S_OO", "structure", "O-O structure factor S(q)", "RMS", "sq_OO", measure=m.StructureFactor()),
    CheckSpec("oh_bond", "structure", "O-H bond-length distribution", "nm", "oh_bond_w1_nm",
              measure=m.Histogram(m.oh_distances, *m.OH_BOND_GRID, mean_unit="nm"), panel="O-H bond (Å)",
              fixed_by="rigid_molecules"),
    CheckSpec("hoh_angle", "structure", "H-O-H angle distribution", "rad", "hoh_angle_w1_rad",
              measure=m.Histogram(m.hoh_angles, *m.HOH_ANGLE_GRID, mean_unit="rad"), panel="H-O-H angle (degrees)",
              fixed_by="rigid_molecules"),
    CheckSpec("q4", "structure", "Steinhardt q4 distribution", "nats", "q4_kl",
              measure=m.Histogram(m.steinhardt(4), 0.0, 1.0, distance="kl"), panel="$q_4$"),
    CheckSpec("q6", "structure", "Steinhardt q6 distribution", "nats", "q6_kl",
              measure=m.Histogram(m.steinhardt(6), 0.0, 1.0, distance="kl"), panel="$q_6$"),
    CheckSpec("tetrahedral", "structure", "tetrahedral order q distribution", "", "tetrahedral_w1",
              measure=m.Histogram(m.tetrahedral_order, *m.TETRAHEDRAL_GRID), panel="tetrahedral order q"),
    CheckSpec("hbonds", "structure", "hydrogen bonds per molecule", "bonds", "hbonds_w1",
              measure=m.Histogram(m.hbonds_per_molecule, *m.HBONDS_GRID, mean_unit="per molecule"),
              panel="H-bonds per molecule"),
    CheckSpec("rings", "structure", "hydrogen-bond ring sizes (King's shortest-path rings)", "rings per molecule",
              "rings_l1", measure=m.Rings()),
    CheckSpec("energy", "structure", "intermolecular energy per molecule", "kJ/mol", "energy_kj_mol", measure=m.Energy()),
    CheckSpec("classifier", "structure", "classifier two-sample test (AUC)", "AUC", "classifier_auc", measure=m.Classifier(),
              threshold_rule=AUC),
    CheckSpec("combined", "structure", "all structure checks pooled (Fisher's combination of their p-values)",
              "-2 sum ln p", None, measure=m.Pooled()),
    CheckSpec("markov_positive", "markov", "all class probabilities > 0 on sampled contexts", "log10 p",
              "min_log10_probability", ">=", "smallest log10 class probability over the sampled contexts", NEGATIVE),
    CheckSpec("markov_saturation", "markov", "mean log-probability per plane saturates after the burn-in",
              "relative drift", None, "<=", "relative drift of the mean log-probability per plane after the burn-in; "
              "allowance max(rel_tol, the drift significant at alpha)"),
    CheckSpec("markov_boundary", "markov", "statistics after burn-in do not depend on the boundary",
              "relative difference", None, "<=", "worst relative difference of block statistics, empty against "
              "training-seeded boundary; allowance max(rel_tol, the difference significant at alpha)"),
    *_md_rows(),
)
BY_NAME = {c.name: c for c in CHECKS}
# Parameters of the [thresholds] table that are not one check's threshold.
THRESHOLD_PARAMETERS = {"md_z": POS}  # MD allowance in combined standard errors


def spec(name: str) -> CheckSpec:
    """The row of check `name`."""
    return BY_NAME[name]


def names(group: str) -> tuple:
    """The check names of one group, in registry order."""
    return tuple(c.name for c in CHECKS if c.group == group)


def structure_rows(measured=None) -> tuple:
    """The structure rows; measured=True: only those with a slot of their own, False: the rest."""
    rows = tuple(c for c in CHECKS if c.group == "structure")
    return rows if measured is None else tuple(c for c in rows if (c.measure.slot is not None) == measured)


def threshold_schema() -> dict:
    """Profile schema of the threshold tables: section -> key -> (validator, description)."""
    structure = {c.threshold_key: c.threshold_rule for c in structure_rows() if c.threshold_key}
    markov = {c.threshold_key: c.threshold_rule for c in CHECKS if c.group == "markov" and c.threshold_key}
    md = {c.threshold_key: c.threshold_rule for c in CHECKS if c.group == "md" and c.threshold_key}
    return {"thresholds": {**structure, **markov, **THRESHOLD_PARAMETERS}, "thresholds.continuous": dict(structure),
            "thresholds.md_tolerance": md}


def panels() -> list:
    """(name, measure, x label) of the structure rows that the report draws as distribution panels."""
    return [(c.name, c.measure, c.panel) for c in structure_rows() if c.panel]


def passed(name: str, value, threshold) -> bool:
    """The pass rule of check `name`: its value keeps the row's relation to the threshold (NaN fails)."""
    return relation_holds(spec(name).relation, value, threshold)

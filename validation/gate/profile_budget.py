"""What a profile's numbers cost, estimated when it is loaded: an impossible profile is refused
before any work, in one line naming its keys and its file.

Each stage of a gate run gets an estimate (`Cost`) of the memory it holds at once and the time it
takes, from the profile's numbers alone. The model is not known yet, so sizes are those of the
cheapest run the profile allows: boxes at the profile's own calibration voxel size, a burn-in of
at least ``burn_in_nm`` and of ``burn_in_fields`` planes (every model sees at least one plane
back), liquid water's molecule density. Times use the fastest rates this project has measured
(named at each constant). The exact memory and disk checks run later, once the model is known
(``GateInputs.preflight``); these only stop what no machine can run: a profile whose stage needs
more memory than this machine has available, or whose stages together need more than
`MAX_RUN_DAYS` at those rates.

Numbers are computed as floats, so a value of 10**5000 becomes inf and is refused like any other
too-large value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from map_core.errors import MapSuiteError
from map_core.files import available_memory_bytes
from map_core.sampling.generate import SAMPLER_BYTES_PER_VOXEL
from validation.gate.boxes import WATER_NUMBER_DENSITY
from validation.gate.classifier import N_FEATURES
from validation.gate.significance import POOL_FACTOR
from validation.md.budget import MD_BASE_BYTES, MD_BYTES_PER_PARTICLE_COPY
from validation.md.water_model import PARTICLES_PER_WATER
from validation.observables.rdf import N_DIRECTIONS

# A gate run is a release check: the largest shipped profile (paper) is about 1.2 hours at the rates
# below; one estimated at over a week (~150 times that) is a typo, not a plan.
MAX_RUN_DAYS = 7.0
# Where /proc/meminfo says nothing: 1 TiB, more than any single node this project runs on.
UNKNOWN_MEMORY_BYTES = 2.0**40

# Rates (the fastest measured; the profiles' comments give the measurements):
SAMPLING_VOXELS_PER_S = 76_000.0  # fast sampler, shipped model, 16 boxes at once on one H200 (issue 17)
MD_WATER_STEPS_PER_S = 8.8e6  # RPMD on one H200: 343 waters x 32 beads at 34.6 ns/day, 0.5 fs (issue 17);
#                               classical MTS there reached 1.5e6 waters x steps per second
INTRA_SHARE = 0.05  # cost of one extra intramolecular substep relative to a whole outer step (bonded forces only)
CLASSIFIER_FLOPS_PER_S = 2e10  # one CPU thread (classifier_test sets one); 1.6e10 measured for the 64-wide MLP
MLP_STEP_S = 2.5e-4  # one Adam step of the small MLP, whatever its width: a fifth of the 1.25e-3 s measured on
#                     one thread of this project's shared 2-core machine
ANALYSIS_OPS_PER_S = 1e9  # numpy element operations per second of the edge-corrected g(r) (inside_fraction)
PREFIX_PASSES = 8  # inside_fraction's passes per coordinate: face distances, two searches, two probe tests, reductions
PY_FLOAT_BYTES = 32  # a float in a JSON-ready list (measurements are cached as JSON)
MLP_BATCH = 256  # classifier minibatch (validation.gate.classifier._fit_predict)


@dataclass(frozen=True)
class Cost:
    """One stage's estimate: the keys whose values set it ("[section] key"), what it is, bytes held
    at once and seconds."""

    keys: tuple
    what: str
    memory: float
    seconds: float


def _f(x) -> float:
    """float(x), inf for an integer too large for a float (10**5000)."""
    try:
        return float(x)
    except OverflowError:
        return math.inf


def _shown(x) -> str:
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 10**15:
        return f"~1e{int(x.bit_length() * math.log10(2))}"  # never str(x): it fails past 4300 digits
    return f"{x:g}" if isinstance(x, float) else repr(x)


def _key_text(data: dict, keys: tuple) -> str:
    """'[sampling] n_boxes = 4, region_nm = 1, [markov] seeded_boxes = 2': keys with their values."""
    parts, last = [], None
    for key in keys:
        section, name = key[1:].split("] ")
        value = _shown(data[section][name])
        parts.append(f"{name} = {value}" if section == last else f"[{section}] {name} = {value}")
        last = section
    return ", ".join(parts)


def profile_costs(data: dict) -> list:
    """The `Cost` of each stage of a gate run of the validated profile `data` (section -> key -> value)."""
    s, st, ref, mk = data["sampling"], data["structure"], data["reference"], data["markov"]
    voxel = _f(data["calibration"]["voxel_nm"])
    region = _f(s["region_nm"])
    n_boxes, windows, seeded = _f(s["n_boxes"]), _f(ref["windows"]), _f(mk["seeded_boxes"])
    costs = []

    # Sampling: canvases of (n + b) planes of (n + 2b)^2 voxels (map_core.sampling.margins), every box
    # of the run kept twice and a batch's sampler state (map_core.sampling.generate.check_fits).
    n = max(region / voxel, 1.0)
    b = max(_f(s["burn_in_nm"]) / voxel, _f(s["burn_in_fields"]))
    box = (n + 2 * b) * (n + 2 * b) * (n + b)  # products, not **: a float power that overflows raises
    boxes = n_boxes + seeded
    costs.append(Cost(("[sampling] n_boxes", "[sampling] region_nm", "[sampling] burn_in_nm", "[sampling] burn_in_fields",
                       "[sampling] batch", "[markov] seeded_boxes", "[calibration] voxel_nm"),
                      f"sampling {boxes:.3g} boxes of {box:.3g} voxels",
                      min(_f(s["batch"]), boxes) * box * SAMPLER_BYTES_PER_VOXEL + 2 * boxes * box,
                      boxes * box / SAMPLING_VOXELS_PER_S))

    # Structure: windows of generated, training, held-out and null-pool boxes, each measured alone.
    measured = n_boxes * (2 + POOL_FACTOR) + windows
    oxygens = WATER_NUMBER_DENSITY * region * region * region
    rdf_bins = _f(st["rdf_r_max_nm"]) / _f(st["rdf_bin_nm"])
    sq_bins = _f(st["sq_r_max_nm"]) / _f(st["rdf_bin_nm"])
    # inside_fraction: (atoms, bins) float64 at once; per atom, PREFIX_PASSES passes over N_DIRECTIONS x 3
    # coordinates and one count per bin; three RDF pairs (O-O, O-H with O centres, H-H with twice as
    # many) and the long O-O range behind S(q).
    ops = measured * (4 * oxygens * (3 * PREFIX_PASSES * N_DIRECTIONS + rdf_bins)
                      + oxygens * (3 * PREFIX_PASSES * N_DIRECTIONS + sq_bins))
    costs.append(Cost(("[structure] rdf_bin_nm", "[structure] rdf_r_max_nm", "[structure] sq_r_max_nm",
                       "[sampling] region_nm", "[sampling] n_boxes", "[reference] windows"),
                      f"g(r) and S(q) histograms of {max(rdf_bins, sq_bins):.3g} bins over {measured:.3g} windows",
                      2 * oxygens * max(rdf_bins, sq_bins) * 8 + measured * (9 * rdf_bins + 3 * sq_bins) * PY_FLOAT_BYTES,
                      ops / ANALYSIS_OPS_PER_S))
    costs.append(Cost(("[structure] q_bins", "[sampling] n_boxes", "[reference] windows"),
                      f"q4 and q6 histograms of {_f(st['q_bins']):.3g} bins over {measured:.3g} windows",
                      2 * measured * _f(st["q_bins"]) * PY_FLOAT_BYTES, 0.0))

    # Classifier: an MLP N_FEATURES -> h -> h -> 1 (weights, gradients and Adam's two moments: 16 bytes
    # a parameter), trained for `epochs` on the other folds, for the generated and the held-out boxes.
    h = _f(st["classifier_hidden"])
    params = (N_FEATURES + 1) * h + (h + 1) * h + h + 1
    molecules = min(_f(st["classifier_max_samples"]), oxygens * min(n_boxes, windows))
    epochs, folds = _f(st["classifier_epochs"]), _f(st["classifier_folds"])
    trained = 2 * molecules * (folds - 1) / folds  # samples of both classes each fold trains on
    flops = 2 * epochs * folds * trained * 6 * params  # forward and backward, 6 flops a parameter and sample
    steps = 2 * epochs * folds * math.ceil(min(trained, 1e300) / MLP_BATCH)  # a step costs time however small
    costs.append(Cost(("[structure] classifier_hidden", "[structure] classifier_epochs", "[structure] classifier_folds",
                       "[structure] classifier_max_samples"),
                      f"the classifier's {params:.3g} parameters trained on {molecules:.3g} molecules per class",
                      16 * params + 3 * MLP_BATCH * h * 4, max(flops / CLASSIFIER_FLOPS_PER_S, steps * MLP_STEP_S)))

    # MD: a run seeded from a generated box and one from a training window, per method.
    md = data["md"]
    if md["enabled"]:
        waters = WATER_NUMBER_DENSITY * _f(md["box_nm"]) * _f(md["box_nm"]) * _f(md["box_nm"])
        methods = [("classical", 1.0, 1.0 + INTRA_SHARE * (_f(data["md.classical"]["intra_substeps"]) - 1))]
        if data["md.rpmd"]["enabled"]:
            methods.append(("rpmd", _f(data["md.rpmd"]["beads"]), _f(data["md.rpmd"]["beads"])))
        for method, copies, work in methods:
            sub = data[f"md.{method}"]
            steps = (_f(sub["npt_ps"]) + _f(sub["nvt_ps"])) * 1000.0 / _f(md["timestep_fs"])
            keys = ("[md] box_nm", "[md] timestep_fs", f"[md.{method}] npt_ps", f"[md.{method}] nvt_ps",
                    "[md.classical] intra_substeps" if method == "classical" else "[md.rpmd] beads")
            costs.append(Cost(keys, f"{method} MD, 2 runs of {steps:.3g} steps of {waters:.3g} waters",
                              MD_BASE_BYTES + waters * PARTICLES_PER_WATER * copies * MD_BYTES_PER_PARTICLE_COPY,
                              2 * steps * waters * work / MD_WATER_STEPS_PER_S))
    return costs


def check_budget(data: dict, path, free_memory: float | None = None) -> None:
    """Refuse (MapSuiteError naming `path` and the keys) a profile with a stage that needs more memory
    than is available or whose stages together take over MAX_RUN_DAYS at the rates above.

    free_memory: bytes (default: this machine's available memory)."""
    if free_memory is None:
        free_memory = available_memory_bytes() or UNKNOWN_MEMORY_BYTES
    costs = profile_costs(data)
    for cost in costs:
        if not cost.memory <= free_memory:  # NaN or inf never fits
            raise MapSuiteError(f"{_key_text(data, cost.keys)}: {cost.what} needs at least {cost.memory / 1e9:.3g} GB of "
                                f"memory, {free_memory / 1e9:.3g} GB are available", path)
    total = sum(c.seconds for c in costs)
    if not total <= MAX_RUN_DAYS * 86400:
        worst = max(costs, key=lambda c: c.seconds if not math.isnan(c.seconds) else math.inf)
        raise MapSuiteError(f"{_key_text(data, worst.keys)}: {worst.what} would take at least "
                            f"{worst.seconds / 86400:.3g} days at the fastest measured rates (a gate run may take "
                            f"{MAX_RUN_DAYS:g})", path)

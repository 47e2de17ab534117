"""Which energy and H-bond statistic, at which sizes, sees q-TIP4P/F at 330 K (issue 28). Measured, never asserted.

Run: python -m benchmarks.energy_statistic_study [--profile quick] [--mode water|continuous] [--null 200]
     [--power 20] [--foreign DIR]

For each draw of held-out windows (the gate's own draws: ``validation.gate.error_rates`` seeds, as many windows
as the profile judges, cut and voxelised as the gate cuts them) and each draw of foreign windows (``--foreign``:
the folder ``python -m validation.gate.foreign DIR`` writes; qtip4pf_330K and tip4pew are read), the analysed
regions are reduced to candidate statistics of the intermolecular q-TIP4P/F energy per molecule
(``compute_molecule_energies``, kJ/mol) and of hydrogen bonds per molecule:

- ``median_box``: the median over boxes of each box's mean energy (the energy check before 2026-12-06);
- ``mean``: the mean over all molecules of the region; ``capped``: the same with each molecule's energy capped as the
  energy check caps it since 2026-12-06 (``validation.gate.measures.capped_energy``);
- ``interior``: the mean over molecules whose oxygen is more than 0.3 nm from every face of the region;
- ``hbonds``: the mean number of H-bonds per molecule (donated + accepted; every molecule of the region).

Each statistic's difference from the same statistic of the profile's training windows gives its null mean and
standard deviation over the held-out draws, its 1 - 0.05/13 null quantile of |difference|, and, per foreign
ensemble, the mean shift in null standard deviations and the fraction of foreign draws beyond that quantile.
Writes benchmarks/results/energy_statistic_study-PROFILE-MODE.json (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from map_core.atoms.frames import load_frames
from map_core.files import write_text_atomic
from validation.gate.boxes import region_frames
from validation.gate.error_rates import DRAW_SEED, FOREIGN_SEED, judging_inputs
from validation.gate.inputs import resolve_inputs
from validation.gate.measures import Ensemble, capped_energy, hbonds_per_molecule, pooled_energy
from validation.gate.session import GateSession
from validation.gate.structure import padded
from validation.observables.energy import compute_molecule_energies
from validation.observables.frame_tools import distance_to_faces, water_molecules

RESULTS = Path(__file__).resolve().parent / "results"
FOREIGN = ("qtip4pf_330K", "tip4pew")
INTERIOR_NM = 0.3
LEVEL = 1.0 - 0.05 / 13  # the voxelised null-quantile level at quick
STATISTICS = ("median_box", "mean", "capped", "interior", "hbonds")


def statistics(region) -> dict:
    """The candidate statistics of one ensemble's analysed regions (Frames, open boxes)."""
    energies = compute_molecule_energies(region)
    hbonds = hbonds_per_molecule(Ensemble(region=region, open_region=padded(region), structure={}))  # as the gate counts
    inner = []
    for e, pos, el, mol, box in zip(energies, region.positions, region.elements, region.molecule, region.box):
        oxygens = np.asarray(pos)[water_molecules(el, mol)[:, 0]]
        inner.append(e[distance_to_faces(oxygens, box) > INTERIOR_NM])
    every, inner = np.concatenate(energies), np.concatenate(inner)
    return {"median_box": float(np.median([e.mean() for e in energies])), "mean": float(every.mean()),
            "capped": pooled_energy([capped_energy(e) for e in energies])[0], "interior": float(inner.mean()),
            "hbonds": float(hbonds.mean()), "molecules": int(len(every))}


def summary(training: dict, null: list, foreign: dict) -> dict:
    """Per statistic: null mean and sd of (draw - training), the LEVEL quantile of |difference|, and
    per foreign ensemble the mean shift (and in null sd) and the fraction of draws beyond the quantile."""
    out = {}
    for name in STATISTICS:
        d = np.array([row[name] for row in null]) - training[name]
        q = float(np.quantile(np.abs(d), LEVEL))
        entry = {"null_mean": float(d.mean()), "null_sd": float(d.std(ddof=1)), "quantile": q, "foreign": {}}
        for label, rows in foreign.items():
            f = np.array([row[name] for row in rows]) - training[name]
            entry["foreign"][label] = {"shift": float(f.mean()), "shift_sd": float(f.mean() / d.std(ddof=1)),
                                       "beyond": float(np.mean(np.abs(f) > q))}
        out[name] = entry
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--mode", choices=("water", "continuous"), default="water",
                   help="water: voxelised at the shipped model's geometry; continuous: positions without voxels")
    p.add_argument("--null", type=int, default=200, help="held-out draws")
    p.add_argument("--power", type=int, default=20, help="draws per foreign ensemble")
    p.add_argument("--foreign", default=None, help="folder of foreign ensembles (qtip4pf_330K.npz, tip4pew.npz)")
    args = p.parse_args(argv)
    inputs = resolve_inputs(None, args.profile) if args.mode == "water" else judging_inputs(args.profile, coder=None)
    session = GateSession(inputs, tempfile.mkdtemp(prefix="map-suite-energy-study-"), groups=("structure",))
    geometry, ref = inputs.geometry, inputs.reference

    def drawn(frames, indices, seed, identity):
        source = inputs.source.draw(session, frames, indices, seed, identity)
        return statistics(region_frames(source.whole_boxes(session), geometry))

    training = statistics(region_frames(session.whole_boxes("training"), geometry))
    null = []
    for d in range(args.null):
        null.append(drawn(ref.frames, ref.heldout_indices, DRAW_SEED + d, f"{ref.sha256}:heldout"))
        print(f"null draw {d + 1}/{args.null}", flush=True)
    foreign = {}
    for name in FOREIGN if args.foreign else ():
        frames = load_frames(Path(args.foreign) / f"{name}.npz")
        foreign[name] = [drawn(frames, range(len(frames)), FOREIGN_SEED + d, f"foreign:{name}") for d in range(args.power)]
    result = {"profile": inputs.profile.name, "mode": inputs.mode, "boxes": inputs.profile["sampling"]["n_boxes"],
              "training_windows": inputs.profile["reference"]["windows"], "level": LEVEL, "training": training,
              "null": null, "foreign": foreign, "summary": summary(training, null, foreign)}
    RESULTS.mkdir(exist_ok=True)
    write_text_atomic(RESULTS / f"energy_statistic_study-{inputs.profile.name}-{args.mode}.json", json.dumps(result, indent=1))
    print(f"{'statistic':11s} {'null mean':>9s} {'null sd':>8s} {'quantile':>8s}  " + "  ".join(
        f"{n + ' shift (sd), beyond':>32s}" for n in foreign))
    for name, e in result["summary"].items():
        print(f"{name:11s} {e['null_mean']:+9.3f} {e['null_sd']:8.3f} {e['quantile']:8.3f}  " + "  ".join(
            f"{f['shift']:+12.3f} ({f['shift_sd']:+5.1f}), {f['beyond']:6.2f}" for f in e["foreign"].values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`map-suite export`: a frames file (generated boxes or MD frames) in a format MD engines read."""

from __future__ import annotations

from map_core.arguments import SEED, real
from map_core.atoms.frames import load_frames
from validation.md.export import FORMATS, SUFFIXES, check_target, export_frames
from validation.md.relax import MAX_RELAX_PS, TIMESTEP_FS

RELAX_PS = real(TIMESTEP_FS / 1000.0, MAX_RELAX_PS)  # one time step to MAX_RELAX_PS


def add_arguments(p) -> None:
    suffixes = "; ".join(f"{fmt} {', '.join(SUFFIXES[fmt])}" for fmt in FORMATS)
    p.add_argument("frames", help="frames file (.npz): generated boxes or MD frames")
    p.add_argument("--format", required=True, choices=tuple(FORMATS),
                   help="required, no default. pdb: one model per box, any atom counts (ASE reads them all: "
                        "ase.io.read(OUT, index=':'); mdtraj and OpenMM only if every box has the same atoms); "
                        "extxyz (ASE, i-PI) and lammps (a LAMMPS dump; ASE format lammps-dump-text): one frame per "
                        "box, any atom counts; dcd, xtc, gro (mdtraj): one file if every box has the same atoms, "
                        "else one file per box, OUT_000.EXT, OUT_001.EXT, ...; dcd, xtc and lammps get a topology "
                        "PDB beside them (STEM.top.pdb, STEM_K.top.pdb; none for a lammps dump of different atom "
                        "counts). Lengths in the files: Å (PDB, extxyz, lammps) or nm (dcd, xtc, gro)")
    p.add_argument("--out", required=True,
                   help=f"required, no default: the file to write, ending in the format's suffix ({suffixes}); "
                        "all files or none are written")
    p.add_argument("--repair", action="store_true",
                   help="off by default. Periodic, MD-ready boxes: orphan atoms and molecules clashing across the "
                        "seam or inside the box removed first; the counts and densities before and after are printed")
    p.add_argument("--relax", type=RELAX_PS, default=None, metavar="PS",
                   help="off by default. Relax each box after the repair (--relax implies --repair) with OpenMM: "
                        "energy minimisation, then PS picoseconds of NPT of q-TIP4P/F water at 300 K and 1 bar "
                        "(0.5 fs steps, as the gate's MD), the molecules moved into the mean box of the second half "
                        f"of the NPT; the relaxed positions and box edges are written and the density before and "
                        f"after and the minimised energy per molecule are printed. PS in ps, from "
                        f"{RELAX_PS.lo:g} to {MAX_RELAX_PS:g}. Generated boxes need more than a few ps to get back to "
                        "the liquid's density (about 1 g/cm3): 1.6 nm boxes were at 0.92-0.97 g/cm3 after 3 ps "
                        "(benchmarks/seam_study.py), one reached 1.02 in 6 ps. About 5-10 s per ps for 130 molecules "
                        "on one CPU core")
    p.add_argument("--seed", type=SEED, default=0,
                   help="random seed of the --relax MD (velocities, thermostat, barostat; box K draws from the "
                        "stream (seed, K)); the same seed gives the same boxes on the same OpenMM platform "
                        "(default: %(default)s)")


def run(args) -> int:
    check_target(args.format, args.out)  # the output path and its suffix, before the frames are read
    frames = load_frames(args.frames, allow_empty_frames=True)
    result = export_frames(frames, args.format, args.out, repair_boxes=args.repair, relax_ps=args.relax, seed=args.seed,
                           progress=True, source=args.frames)
    for k, counts in enumerate(result.boxes):
        print(counts.line(k))
    if len(result.paths) == 1:
        print(f"wrote {result.paths[0]}")
    else:
        print(f"wrote {len(result.paths)} files:")
        for path in result.paths:
            print(f"  {path}")
    return 0

"""`map-suite export`: a frames file (generated boxes or MD frames) in a format MD engines read."""

from __future__ import annotations

from map_core.atoms.frames import load_frames
from validation.md.export import FORMATS, export_frames


def add_arguments(p) -> None:
    p.add_argument("frames", help="frames file (.npz): generated boxes or MD frames")
    p.add_argument("--format", required=True, choices=tuple(FORMATS),
                   help="pdb, dcd, xtc, gro (mdtraj), extxyz (ASE; i-PI) or lammps (a LAMMPS dump); dcd, xtc and "
                        "lammps get a topology PDB beside them")
    p.add_argument("--out", required=True, help="file to write; boxes of different atom counts become OUT_K files")
    p.add_argument("--repair", action="store_true",
                   help="periodic, MD-ready boxes: orphans and molecules clashing across the seam removed first")


def run(args) -> int:
    frames = load_frames(args.frames, allow_empty_frames=True)
    paths = export_frames(frames, args.format, args.out, repair_boxes=args.repair)
    print(f"wrote {len(paths)} file(s): " + ", ".join(str(p) for p in paths))
    return 0

"""`map-suite toy`: data, fits, a PixelCNN, figures and numbers for a Markov-chain toy system of the
Markov-chain theory paper of MAP (seed 001)."""

from __future__ import annotations

import sys

import torch

from map_core.arguments import POSITIVE, SEED, count, real
from map_core.files import check_output_path
from validation.theory.pipeline import ToySettings, run_toy
from validation.theory.registry import SYSTEMS


def add_arguments(p) -> None:
    p.add_argument("--system", required=True, choices=tuple(SYSTEMS), type=lambda name: name.replace("-", "_"),
                   help="ideal_gas (Eq. 6-7), hard_core (Eq. 10-16), cold_repulsive / hot_repulsive / hot_attractive "
                        "(Table 2), drying (Table 3), numbered as in the Markov-chain theory paper of MAP (seed 001); "
                        "'-' may stand for '_'")
    p.add_argument("--out", default="toy_out", help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="random seed of the data, the training and the sampling (default: %(default)s)")
    p.add_argument("--size", type=count(4), default=32, help="grid side in sites, a multiple of 4 (default: %(default)s)")
    p.add_argument("--n-data", type=count(2), default=80, help="training samples made; 20%% are held out (default: %(default)s)")
    p.add_argument("--n-generate", type=count(1), default=16, help="boxes generated per model (default: %(default)s)")
    p.add_argument("--density", type=real(0.0, 1.0, lo_open=True), default=None,
                   help="occupation density, occupied sites per site, in (0, 1) (hard_core: rho_eff); default: the "
                        "system's, from the theory paper (seed 001)")
    p.add_argument("--sweeps", type=count(0), default=None,
                   help="Monte Carlo sweeps; default: the system's, from the theory paper, seed 001 (100; drying 2000)")
    p.add_argument("--steps", type=count(0), default=400, help="PixelCNN training steps (default: %(default)s)")
    p.add_argument("--layers", type=count(1), default=3, help="PixelCNN masked convolution layers (default: %(default)s)")
    p.add_argument("--filters", type=count(1), default=16, help="PixelCNN channels per layer (default: %(default)s)")
    p.add_argument("--crop", type=count(2), default=16, help="training crop side, sites (default: %(default)s)")
    p.add_argument("--batch", type=count(1), default=16, help="crops per training step (default: %(default)s)")
    p.add_argument("--lr", type=POSITIVE, default=3e-3, help="learning rate, per step (default: %(default)s)")
    p.add_argument("--temperature", type=POSITIVE, default=1.0,
                   help="sampling temperature, > 0 (default: %(default)s)")
    p.add_argument("--boundary", choices=["outside", "empty"], default="outside",
                   help="what surrounds the generated grid: outside: nothing; empty: empty sites (default: %(default)s)")
    p.add_argument("--burn-rows", type=count(0), default=None,
                   help="rows generated above the compared part, sites (default: 2 receptive fields)")
    p.add_argument("--sampler", choices=["fast", "reference"], default="fast",
                   help="product sampler that generates the PixelCNN boxes (default: %(default)s)")
    p.add_argument("--no-figures", action="store_true", help="write the numbers (JSON) only, no figures")
    p.add_argument("--threads", type=count(1), default=1, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    check_output_path(args.out, "folder")  # before any data is made or model trained
    torch.set_num_threads(max(1, args.threads))
    settings = ToySettings(
        system=args.system, size=args.size, n_data=args.n_data, n_generate=args.n_generate, steps=args.steps,
        layers=args.layers, filters=args.filters, crop=args.crop, batch=args.batch, lr=args.lr, density=args.density,
        sweeps=args.sweeps, temperature=args.temperature, boundary=args.boundary, sampler=args.sampler,
        burn_rows=args.burn_rows, seed=args.seed,
    )

    def log(message):
        if not args.quiet:
            print(f"toy {args.system}: {message}", file=sys.stderr, flush=True)

    r = run_toy(settings, args.out, log=log, figures=not args.no_figures)
    s = r["structure"]
    print(f"{args.system}: PixelCNN pair-correlation distance {s['pixelcnn']['pair_correlation']:.3f} "
          f"(threshold {s['thresholds']['pair_correlation']:.3f}), neighbour-count TV {s['pixelcnn']['neighbour_counts']:.3f} "
          f"(threshold {s['thresholds']['neighbour_counts']:.3f}): {'pass' if s['pixelcnn']['pass'] else 'FAIL'}; "
          f"row log-probability / density converged after {r['convergence']['receptive_fields']:.2f} / "
          f"{r['convergence']['density_receptive_fields']:.2f} receptive fields; "
          f"wrote {args.out}/{args.system}.json")
    return 0

"""`map-suite train`: train a MAP PixelCNN on a frames file."""

from __future__ import annotations

import dataclasses

import torch

from map_core.arguments import FRACTION, POSITIVE, SEED, count, real
from map_core.atoms.encoding import ENCODING_CLASSES, ENCODINGS, Encoding
from map_core.errors import MapSuiteError
from map_core.files import check_output_path
from map_core.model.checkpoint import config_problem
from map_core.model.kinds import KINDS
from map_core.model.pixelcnn import ModelConfig
from map_core.training.distributed import launch
from map_core.training.train import PRECISIONS, TrainSettings, train


def add_arguments(p) -> None:
    c, s = ModelConfig(), TrainSettings()
    p.add_argument("--data", required=True, help="frames file (.npz) of training boxes (MD frames, periodic)")
    p.add_argument("--out", required=True, help="checkpoint to write (.pt); also the resume point")
    kinds = "; ".join(f"{k.name}: {k.description.removeprefix(k.name + ': ').removeprefix(k.name + ' ')}" for k in KINDS.values())
    p.add_argument("--kind", choices=list(KINDS), default=c.kind, help=f"model kind ({kinds}); default: %(default)s")
    p.add_argument("--layers", type=count(1), default=c.layers,
                   help="number of masked 3D convolution layers of the PixelCNN (default: %(default)s)")
    p.add_argument("--filters", type=count(1), default=c.filters,
                   help="channels (feature maps) per layer of each stack (default: %(default)s)")
    p.add_argument("--kernel", type=count(3), default=c.kernel,
                   help="odd kernel side, voxels (default: %(default)s, the 3x3x3 kernels of the 3D water MAP paper, "
                        "seed 000)")
    p.add_argument("--activation", choices=["gated", "relu"], default=c.activation,
                   help="gated: tanh x sigmoid gates; relu: plain ReLU (default: %(default)s)")
    p.add_argument("--head", type=count(0), default=c.head,
                   help="width of the output head's hidden layer, the rank of the logits, channels (default: "
                        "%(default)s, meaning the same as --filters)")
    p.add_argument("--reach", type=POSITIVE, default=c.reach_nm,
                   help="two-stage: how far stage 2 looks for oxygens and earlier turns, nm (default: %(default)s)")
    p.add_argument("--dropout", type=real(0.0, 1.0, hi_open=True), default=c.dropout,
                   help="dropout probability before the last layer, in [0, 1) (default: %(default)s)")
    p.add_argument("--init-from", default="", metavar="CHECKPOINT",
                   help="start a fresh run from this model's weights where they fit (two-stage: stage 1 from a "
                        "one-stage model's trunk); default: none, random initial weights")
    classes = " or ".join(f"{e.name} ({e.summary})" for e in ENCODING_CLASSES)
    p.add_argument("--encoding", choices=list(ENCODINGS), default=c.encoding,
                   help=f"voxel classes: {classes}; default: %(default)s")
    p.add_argument("--voxel", type=POSITIVE, default=c.voxel_nm, help="voxel side, nm (default: %(default)s)")
    p.add_argument("--crop", type=count(2), default=s.crop,
                   help="side of the cubic training crops, voxels (default: %(default)s)")
    p.add_argument("--steps", type=count(0), default=s.steps,
                   help="total optimiser steps, counting those of a resumed run (default: %(default)s)")
    p.add_argument("--batch", type=count(1), default=s.batch, help="crops per optimiser step (default: %(default)s)")
    p.add_argument("--lr", type=POSITIVE, default=s.lr,
                   help=f"learning rate, per step (default: %(default)s; SGD with momentum {s.momentum})")
    p.add_argument("--lr-drop-steps", type=count(1), nargs="+", default=None, metavar="STEP",
                   help="at each of these steps the learning rate is multiplied by --lr-drop-factor (default: "
                        "never); with --resume, drops may be added for steps not yet taken")
    p.add_argument("--lr-drop-factor", type=real(0.0, 1.0, lo_open=True), default=None,
                   help=f"factor applied to the learning rate at each --lr-drop-steps step, in (0, 1] "
                        f"(default: {s.lr_drop_factor})")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=s.optimizer,
                   help=f"sgd: SGD with momentum {s.momentum}, as the 3D water MAP paper (seed 000); adam: Adam "
                        f"(default: %(default)s)")
    p.add_argument("--rotations", choices=["seed", "full", "none"], default=s.rotations,
                   help="augmentation by rotating crops: seed: the 90/180-degree rotations (7) of the 3D water MAP "
                        "paper (seed 000); full: the full cube group (24); none (default: %(default)s)")
    p.add_argument("--test-fraction", type=FRACTION, default=s.test_fraction,
                   help="fraction of the frames held out for the test cross-entropy, the last ones in time, in "
                        "(0, 1) (default: %(default)s)")
    p.add_argument("--test-crops", type=count(1), default=s.test_crops,
                   help="crops cut from the held-out frames to measure the test cross-entropy (default: %(default)s)")
    p.add_argument("--checkpoint-every", type=count(1), default=s.checkpoint_every,
                   help="write the checkpoint (the resume point) every this many steps (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=s.seed,
                   help="random seed: initial weights, dropout, crops and rotations (default: %(default)s)")
    p.add_argument("--threads", type=count(1), default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="where training runs: cpu, cuda, cuda:N (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto: bf16 autocast on CUDA, fp32 on the CPU; fp32; bf16 (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def run(args) -> int:
    check_output_path(args.out, "file")  # before the data is read and any step is taken
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config = ModelConfig(layers=args.layers, filters=args.filters, kernel=args.kernel, activation=args.activation,
                             dropout=args.dropout, voxel_nm=args.voxel, kind=args.kind, head=args.head, reach_nm=args.reach,
                             encoding=args.encoding, n_classes=Encoding(args.encoding, args.voxel).n_classes)
    except ValueError as exc:
        raise MapSuiteError(f"bad model settings: {exc}") from None
    problem = config_problem(dataclasses.asdict(config))  # never write a checkpoint that loading refuses
    if problem:
        raise MapSuiteError(f"bad model settings: {problem.replace('checkpoint config ', '')}")
    settings = TrainSettings(crop=args.crop, steps=args.steps, batch=args.batch, lr=args.lr, optimizer=args.optimizer,
                             rotations=args.rotations, test_fraction=args.test_fraction, test_crops=args.test_crops,
                             checkpoint_every=args.checkpoint_every, seed=args.seed, lr_drop_steps=tuple(args.lr_drop_steps or ()),
                             lr_drop_factor=args.lr_drop_factor or TrainSettings.lr_drop_factor, init_from=args.init_from)
    lr_drop = None
    if args.resume and (args.lr_drop_steps is not None or args.lr_drop_factor is not None):
        lr_drop = (settings.lr_drop_steps, settings.lr_drop_factor)
    prov = train(args.data, args.out, config, settings, resume=args.resume, progress=not args.no_progress, lr_drop=lr_drop,
                 device=args.device, precision=args.precision)
    if launch()[0] == 0:  # under torchrun, one line from process 0
        print(f"wrote {args.out}: {prov['steps']} steps, test cross-entropy {prov['test_cross_entropy']:.5f} nats/voxel "
              f"(class-frequency baseline {prov['baseline_cross_entropy']:.5f}), {prov['wall_time_s']:.0f} s")
    return 0

"""`map-suite evaluate`: a model's cross-entropy on a frames file against the class-frequency baseline;
for oriented molecules (water fragment classes) also split into occupancy and orientation, in nats per
molecule, beside the uniform orientation cost ln K and the baseline's split
(``map_core.sampling.likelihood.cross_entropy_split``)."""

from __future__ import annotations

import json

import numpy as np
import torch

from map_core.arguments import SEED, count
from map_core.atoms.frames import load_frames
from map_core.files import sha256_file
from map_core.model.checkpoint import check_voxel_size, load_model
from map_core.sampling.likelihood import cross_entropy_split
from map_core.training.crops import check_crop, sample_crops, split_frames, voxelise
from map_core.training.train import baseline_cross_entropy, cross_entropy
from validation.gate.reference import HELDOUT_FRACTION


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, help="checkpoint (.pt) written by `map-suite train`")
    p.add_argument("--data", required=True, help="frames file (.npz), MD frames or generated boxes; the model's own "
                   "training file is judged on the frames its training held out")
    p.add_argument("--crop", type=count(2), default=32,
                   help="side of the cubic crops scored, voxels (default: %(default)s)")
    p.add_argument("--crops", type=count(1), default=16, help="number of crops scored (default: %(default)s)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed of the crop positions (default: %(default)s)")


def run(args) -> int:
    model, payload = load_model(args.model)
    frames = load_frames(args.data)
    if "voxel_nm" in frames.meta:
        check_voxel_size(model.config.voxel_nm, float(frames.meta["voxel_nm"]), args.data)
    grids = voxelise(frames, model.config.coder(), args.data)
    check_crop(grids, args.crop, args.data)
    prov = payload["provenance"]
    frames_used = list(range(len(grids)))
    held_out = prov.get("data_sha256") == sha256_file(args.data)
    if held_out:  # the model's own training file: only the frames it held out (its own split)
        frames_used = split_frames(len(grids), float((prov.get("settings") or {}).get("test_fraction", HELDOUT_FRACTION)))[1]
    crops = sample_crops(grids, frames_used, args.crop, args.crops, np.random.default_rng(args.seed), [()])
    with torch.no_grad():  # the training loss of the model's kind, one crop at a time
        ce = float(np.mean([cross_entropy(model, torch.from_numpy(c[None])).item() for c in crops]))
    freq = np.asarray(prov.get("class_frequencies") or np.bincount(crops.ravel(), minlength=model.config.n_classes) / crops.size)
    result = {"cross_entropy": ce, "baseline_cross_entropy": baseline_cross_entropy(freq, crops), "crops": len(crops), "crop": args.crop,
              "frames": "held out by the model's training" if held_out else "all frames of the file"}
    if model.config.coder().orientations() is not None:  # where molecules sit and how they turn, nats per molecule
        result["split"] = cross_entropy_split(model, crops, "outside", freq)
    print(json.dumps(result, indent=1))
    return 0

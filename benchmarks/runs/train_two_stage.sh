#!/bin/bash
# The two-stage model's long CPU run (issue 25): stage 1 starts from the shipped one-stage model's
# trunk, stage 2 from zero. Its resumable checkpoint is benchmarks/runs/two_stage.pt, committed about
# every 30 minutes; run this script again (from any clone, with the README's environment active) and
# it continues with --resume from that checkpoint. Progress goes to stderr (log it: 2> train.log).
# THREADS=1 leaves a core free for other work (the default 2 stalls when the machine is shared).
cd "$(dirname "$0")/../.." || exit 2
OUT=${OUT:-benchmarks/runs/two_stage.pt}
R=""; [ -f "$OUT" ] && R="--resume"
exec map-suite train --data map_core/data/water_classical_216.npz --out "$OUT" \
  --kind two-stage --init-from map_core/data/default_model.pt --encoding water --voxel 0.05 --layers 12 --filters 16 \
  --kernel 3 --activation gated --dropout 0.1 --reach 0.35 --crop 32 --batch 2 --steps 30000 --optimizer adam --lr 0.001 \
  --lr-drop-steps 24000 28000 --lr-drop-factor 0.3 --rotations full --checkpoint-every 100 --seed 0 --threads "${THREADS:-2}" $R

#!/usr/bin/env bash
# Time-boxed training of the model-study candidates, one after another, on one device.
#
#   DEVICE=cuda BUDGET_S=180 OUT=runs/study bash benchmarks/train_candidates.sh [NAME ...]
#
# Each candidate trains under `timeout BUDGET_S` with a checkpoint every EVERY (100) steps, so a run cut
# off by its budget (or by the machine going away) still leaves a model; running the script again
# resumes every candidate where its checkpoint stopped (`--resume`). Its log is OUT/NAME.log.
# Then measure them on any machine: python -m benchmarks.model_study OUT/*.pt
set -uo pipefail
DEVICE=${DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-180}
OUT=${OUT:-runs/study}
DATA=${DATA:-map_core/data/water_classical_216.npz}
STEPS=${STEPS:-20000}
BATCH=${BATCH:-16}
EVERY=${EVERY:-100}
mkdir -p "$OUT"
# name -> architecture and voxel classes (atoms: empty/O/H at 0.04 nm; water: fragment classes at 0.05 nm)
declare -A ARCH=(
    [w12f16]="--layers 12 --filters 16 --encoding water --voxel 0.05 --rotations full"
    [w16f24]="--layers 16 --filters 24 --encoding water --voxel 0.05 --rotations full"
    [w12f32]="--layers 12 --filters 32 --encoding water --voxel 0.05 --rotations full"
    [l8f16]="--layers 8 --filters 16 --voxel 0.04"
    [l12f16]="--layers 12 --filters 16 --voxel 0.04"
    [l16f16]="--layers 16 --filters 16 --voxel 0.04"
    [l12f32]="--layers 12 --filters 32 --voxel 0.04"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(w12f16 w16f24 w12f32 l12f16)
for name in "${names[@]}"; do
    [ -n "${ARCH[$name]:-}" ] || { echo "unknown candidate $name (known: ${!ARCH[*]})" >&2; exit 2; }
    resume=()
    [ -f "$OUT/$name.pt" ] && resume=(--resume)
    echo "== $name: ${ARCH[$name]} on $DEVICE for at most ${BUDGET_S} s ${resume[*]}"
    # shellcheck disable=SC2086
    timeout "$BUDGET_S" python -m validation.cli train --data "$DATA" --out "$OUT/$name.pt" --device "$DEVICE" \
        ${ARCH[$name]} --kernel 3 --activation gated --dropout 0.1 --crop 32 --batch "$BATCH" \
        --steps "$STEPS" --optimizer adam --lr 0.003 --lr-drop-steps $((STEPS * 2 / 3)) --lr-drop-factor 0.3 \
        --checkpoint-every "$EVERY" --seed 0 --no-progress "${resume[@]}" >> "$OUT/$name.log" 2>&1
    echo "   exit $? (124: budget reached; the last checkpoint is kept)"
done

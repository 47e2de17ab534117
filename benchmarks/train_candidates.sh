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
declare -A ARCH=(
    [l8f16]="--layers 8 --filters 16"
    [l12f16]="--layers 12 --filters 16"
    [l16f16]="--layers 16 --filters 16"
    [l12f32]="--layers 12 --filters 32"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(l12f16 l16f16 l12f32 l8f16)
for name in "${names[@]}"; do
    [ -n "${ARCH[$name]:-}" ] || { echo "unknown candidate $name (known: ${!ARCH[*]})" >&2; exit 2; }
    resume=()
    [ -f "$OUT/$name.pt" ] && resume=(--resume)
    echo "== $name: ${ARCH[$name]} on $DEVICE for at most ${BUDGET_S} s ${resume[*]}"
    # shellcheck disable=SC2086
    timeout "$BUDGET_S" python -m validation.cli train --data "$DATA" --out "$OUT/$name.pt" --device "$DEVICE" \
        ${ARCH[$name]} --kernel 3 --activation gated --dropout 0.1 --voxel 0.04 --crop 32 --batch "$BATCH" \
        --steps "$STEPS" --optimizer adam --lr 0.003 --lr-drop-steps $((STEPS * 2 / 3)) --lr-drop-factor 0.3 \
        --checkpoint-every "$EVERY" --seed 0 --no-progress "${resume[@]}" >> "$OUT/$name.log" 2>&1
    echo "   exit $? (124: budget reached; the last checkpoint is kept)"
done

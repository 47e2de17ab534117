#!/bin/bash
# Issue 28's long calibration: 1000 fresh held-out draws of a profile (default quick) in both judging
# modes (python -m validation.gate.calibrate PROFILE --null), about 50 min per mode for quick and 35 min
# for smoke on 2 cores. Each draw is appended to benchmarks/runs/null-draws/*.jsonl as soon as it is
# judged; commit that folder about every 30 minutes and run this script again (from any clone, README
# environment active) to resume. When both files hold 1000 draws, record them and set the thresholds:
#   python -m validation.gate.calibrate PROFILE --null --work benchmarks/runs/null-draws --rule null-quantile --write
#   python -m validation.gate.calibrate PROFILE --encoding continuous --null --work benchmarks/runs/null-draws --rule null-quantile --write
# Quick's draws at its 24-box sizes are under way (from 2026-12-06; the 6-box ones were recorded 2026-12-05);
# smoke's follow (its earlier draws went stale with the energy statistic of 2026-12-06).
cd "$(dirname "$0")/../.." || exit 2
PROFILE=${1:-quick}
export OPENMM_CPU_THREADS=${OPENMM_CPU_THREADS:-1} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
python -m validation.gate.calibrate "$PROFILE" --null --work benchmarks/runs/null-draws &
python -m validation.gate.calibrate "$PROFILE" --encoding continuous --null --work benchmarks/runs/null-draws &
wait

#!/usr/bin/env bash
# Rebuild resources/models/speechcmd-lstm.pt from ../shared/data/speech_commands_12 (about 30
# minutes on one core of a 2-core machine; the peephole teacher is the slow part).
#   1. three teachers on the train speakers (validation 8%, test 15%): LSTM, GRU, peephole LSTM
#   2. the shipped LSTM: the same recipe on train + validation speakers, distilled from them
#   3. measure it on the test speakers through the classify path and write it with its plots
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1  # one thread: fastest here, and the runs are deterministic
DATA=${1:-../shared/data/speech_commands_12}
RECIPE=(--test-fraction 0.15 --n-mfcc 20 --hop-ms 20 --cmn --pooling mean --dropout 0.3 --speed 0.1 --volume 0.3 --epochs 60 --quiet)

.venv/bin/speechcmd train --data "$DATA" --validation-fraction 0.08 "${RECIPE[@]}" --out runs/bundled
mkdir -p runs/cells && rm -rf runs/cells/lstm && cp -r runs/bundled runs/cells/lstm
.venv/bin/python scripts/compare_cells.py --data "$DATA" --out runs/cells -- --validation-fraction 0.08 "${RECIPE[@]}"
.venv/bin/speechcmd train --data "$DATA" --validation-fraction 0 "${RECIPE[@]}" \
    --teacher runs/bundled/best.pt --teacher runs/cells/gru/best.pt --teacher runs/cells/peephole/best.pt \
    --out runs/refit-distill
.venv/bin/python scripts/bundle_model.py runs/refit-distill --data "$DATA"

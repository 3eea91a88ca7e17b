#!/usr/bin/env bash
# Rebuild resources/models/speechcmd-lstm.pt and its replay bank from ../shared/data (about 60
# minutes on one core of a 2-core machine; resources/models/README.md says what each step is for).
#   1. the clean-speech teacher: three models on speech_commands_12's train speakers (validation 8%,
#      test 15%): LSTM, GRU, peephole LSTM; then an LSTM on train + validation speakers distilled
#      from the three (the model shipped until 2026-11-30)
#   2. the training folder: speech_commands_12 + speech_commands_extra merged by speaker, the training
#      noise kinds (4 recordings + synthetic), synthetic words in 12 espeak-ng voices (101 other words
#      once and each command 3 times, all in the training split), and the suite's held-out noise
#   3. the shipped LSTM on the train speakers of that folder, in a room (train/config.py ROOM, noise
#      on half the clips), distilled from the clean teacher, which hears each clip before the room
#   4. measure it on the test speakers through the classify path, choose its detection operating
#      point on long recordings of the validation speakers, write it with its plots and replay bank
#   5. the robustness suite on the validation speakers (`--split test` is run once, for the card)
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1  # one thread: fastest here, and the runs are deterministic
DATA=${1:-../shared/data/speech_commands_12}
EXTRA=${2:-../shared/data/speech_commands_extra}
CLEAN=(--test-fraction 0.15 --n-mfcc 20 --hop-ms 20 --cmn --pooling mean --dropout 0.3 --speed 0.1 --volume 0.3 --epochs 60 --quiet)
ROOM=(--test-fraction 0.15 --validation-fraction 0.08 --n-mfcc 20 --hop-ms 20 --cmn --pooling mean --dropout 0.1
      --time-masks 0 --freq-masks 0 --speed 0.1 --volume 0.3 --room --noise-probability 0.5 --unknown-fraction 0.3
      --epochs 60 --quiet)

# 1. the clean teacher
.venv/bin/speechcmd train --data "$DATA" --validation-fraction 0.08 "${CLEAN[@]}" --out runs/bundled
mkdir -p runs/cells && rm -rf runs/cells/lstm && cp -r runs/bundled runs/cells/lstm
.venv/bin/python scripts/compare_cells.py --data "$DATA" --out runs/cells -- --validation-fraction 0.08 "${CLEAN[@]}"
.venv/bin/speechcmd train --data "$DATA" --validation-fraction 0 "${CLEAN[@]}" \
    --teacher runs/bundled/best.pt --teacher runs/cells/gru/best.pt --teacher runs/cells/peephole/best.pt \
    --out runs/refit-distill
# 2. the data
.venv/bin/python scripts/make_room_data.py --out runs/room-data --data "$DATA" --extra "$EXTRA" --negatives 12 --command-takes 3
# 3. the shipped model
.venv/bin/speechcmd train --data runs/room-data/merged_synthetic "${ROOM[@]}" \
    --teacher runs/refit-distill/best.pt --distill-clean --out runs/room-distill
# 4. bundle
.venv/bin/python scripts/bundle_model.py runs/room-distill --data runs/room-data/merged --policy-data runs/room-data/merged \
    --describe "Speech Commands v0.02 subsets speech_commands_12 + speech_commands_extra merged by speaker ({data}), CC BY 4.0, Pete Warden, Google; synthetic words (espeak-ng)"
.venv/bin/python scripts/replay_bank.py --data runs/room-data/merged
# 5. the robustness suite
.venv/bin/python -m bench.robustness --split validation --json runs/room-distill/robustness_validation.json

"""Write the replay bank beside a model: pooled features of clips of its own words, so that teaching
it new words keeps the old ones recognized on machines without its training data.

    .venv/bin/python scripts/replay_bank.py --data ../shared/data/speech_commands_12 [--model PATH]

The clips come from the model's training speakers only (the split is rebuilt from its metadata).
The bank is valid for the model's front-end and recurrent weights (their fingerprint is in it); run
this again whenever the bundled model is retrained.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechcmd.model.checkpoint import bundled_model_path, load_model
from speechcmd.train.adapt import AdaptConfig, build_replay_bank, save_replay_bank


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the model's training data (folder per label)")
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--per-label", type=int, default=AdaptConfig.replay_per_label)
    parser.add_argument("--copies", type=int, default=3, help="the clip itself plus augmented copies")
    args = parser.parse_args()
    path = Path(args.model) if args.model else bundled_model_path()
    bank = build_replay_bank(load_model(path), args.data, args.per_label, args.copies)
    out = save_replay_bank(path.with_suffix(".replay.pt"), bank)
    print(f"{out}: {len(bank.labels)} rows, {out.stat().st_size // 1024} KB ({bank.source})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Write a model's one-line summary into its metadata: its line in the window's Model menu (what it
is, what a window costs, its headline figures), once those figures are measured. Nothing else in
the file changes (weights, metadata, its saved_at).

    python scripts/set_summary.py resources/models/speechcmd-mfcc-lstm.pt "MFCC -> LSTM ...; 1.4 ms a window; 90% clean"
"""

from __future__ import annotations

import argparse
from pathlib import Path

from speechcmd.model.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("summary", help="one line, under 200 characters")
    args = parser.parse_args()
    line = " ".join(args.summary.split())
    if not line or len(line) >= 200:
        parser.error("the summary is one line of 1 to 199 characters")
    data = read_checkpoint(args.model)
    save_checkpoint(args.model, model_from_checkpoint(data, args.model), {**data["metadata"], "summary": line})
    print(f"{args.model}: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

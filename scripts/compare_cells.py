"""Train the LSTM, the peephole LSTM and the GRU on the same split, seed and recipe, and compare
held-out accuracy, parameters and CPU latency per 1 s window (one thread).

    python scripts/compare_cells.py --data ../shared/data/speech_commands_12 --out runs/cells -- [train options]

Options after `--` go to every `speechcmd train` run (the bundled model's recipe, for a fair
comparison). Writes runs/cells/comparison.json and prints a Markdown table for the model card.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

from bench.common import timings_ms
from speechcmd.model.checkpoint import load_model

CELLS = ("lstm", "peephole", "gru")


def latency(model) -> dict:
    torch.set_num_threads(1)
    window = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, 16_000).astype(np.float32))[None]
    with torch.inference_mode():
        fused = timings_ms(lambda: model(window), 200)
        trace = timings_ms(lambda: model.trace(window), 200)  # what the GUI runs (fast path where the cell has one)
    return {"forward_ms": fused["median_ms"], "with_gates_ms": trace["median_ms"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", default="runs/cells")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("train_options", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    extra = [a for a in args.train_options if a != "--"]
    rows = []
    for cell in args.cells.split(","):
        run = Path(args.out) / cell
        if not (run / "test_report.json").is_file():
            command = [sys.executable, "-m", "speechcmd.app.cli", "train", "--data", args.data, "--cell", cell, "--out", str(run), "--quiet", *extra]
            print(" ".join(command), file=sys.stderr, flush=True)
            subprocess.run(command, check=True, cwd=ROOT)
        model = load_model(run / "best.pt")
        report = json.loads((run / "test_report.json").read_text())
        rows.append(
            {
                "cell": cell,
                "test_accuracy": report["accuracy"],
                "validation_accuracy": model.metadata["validation_accuracy"],
                "best_epoch": model.metadata["best_epoch"],
                "parameters": sum(p.numel() for p in model.parameters()),
                **latency(model),
            }
        )
    (Path(args.out) / "comparison.json").write_text(json.dumps(rows, indent=1))
    print("| cell | test accuracy | validation accuracy | parameters | 1 s window, forward | with every gate |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['cell']} | {r['test_accuracy']:.1%} | {r['validation_accuracy']:.1%} | {r['parameters']:,} | "
            f"{r['forward_ms']:.2f} ms | {r['with_gates_ms']:.2f} ms |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

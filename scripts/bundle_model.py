"""Turn a training run into the bundled model: measure it on its held-out test speakers through
the same path `speechcmd classify` takes, record that in its metadata, and write
resources/models/speechcmd-lstm.pt with its confusion matrix and learning curves beside it.

    python scripts/bundle_model.py runs/bundled --data ../shared/data/speech_commands_12
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from speechcmd.model.checkpoint import BUNDLED_MODEL_NAME, model_from_checkpoint, read_checkpoint, save_checkpoint
from speechcmd.train.evaluate import evaluate_clips
from speechcmd.train.data import build_dataset
from speechcmd.train.loop import plot_curves
from speechcmd.train.metrics import format_report, plot_confusion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with best.pt")
    parser.add_argument("--data", required=True, type=Path, help="the dataset folder it was trained on")
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "models" / BUNDLED_MODEL_NAME)
    parser.add_argument("--split", type=json.loads, help="split parameters as JSON, for runs older than their metadata field")
    args = parser.parse_args()

    data = read_checkpoint(args.run / "best.pt")
    model = model_from_checkpoint(data, args.run / "best.pt")
    metadata = {k: v for k, v in data["metadata"].items() if k not in ("speechcmd_version", "saved_at")}
    split = metadata.get("split_parameters") or args.split
    if split is None:
        raise SystemExit("the run has no split_parameters in its metadata; pass --split '{...}'")
    metadata["split_parameters"] = split
    dataset = build_dataset(args.data, **split)
    truth = {clip.path: label for clip, label in dataset.splits["test"]}
    result, failures = evaluate_clips(model, truth)
    if failures:
        raise SystemExit(f"{len(failures)} test clips failed to load: {failures[:3]}")
    metadata.update(
        trained_on=f"Speech Commands v0.02 subset ({args.data.name}), CC BY 4.0, Pete Warden, Google",
        held_out_speakers=len(dataset.speakers("test")),
        test_accuracy=result["accuracy"],
        test_per_class=result["per_class"],
        test_confusion=result["confusion"],
        bundled_from=str(args.run),
    )
    save_checkpoint(args.out, model, metadata)
    plot_confusion(result, args.out.parent / "confusion.png", "Held-out test speakers")
    history = [json.loads(line) for line in (args.run / "metrics.jsonl").read_text().splitlines()]
    plot_curves(history, args.out.parent / "learning_curves.png")
    print(format_report(result))
    print(f"\nwrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    print(json.dumps({"test_accuracy": result["accuracy"], "n": result["n"], "speakers": metadata["held_out_speakers"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does the window say what `speechcmd classify` says? The GUI's streaming path against classify,
on the held-out speakers' clips of the bundled model.

For every clip of a test speaker (the split stored in the model's metadata, rebuilt with
`train.data.build_dataset`), it replays the window's exact path: `FileSource.from_path` (the
silence padding a played clip gets), blocks of 480 samples as the paced player hands them out,
`RecognitionWorker.step` with the model's own policy, and takes the FIRST detection. It compares
that with:
- classify on the clip file (`Classifier.classify_files`, what `speechcmd classify CLIP` prints),
- classify's long-recording scan (`Classifier.scan`) of the same samples the window played: the
  "same audio" check, which one detector and one operating point make identical.

A command clip is right when the word is detected first; an `_unknown_` clip when no command is
detected (classify: labelled `_unknown_`). Detections by classify on a clip are its top label when
that is a command.

    .venv/bin/python -m bench.gui_agreement [--limit N] [--data DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.common import REAL_DATA


def first_detection(worker, source) -> str | None:
    worker.set_source(source)
    first = None
    while worker.source is not None:
        worker.step()
        detections = worker.take().detections
        if detections and first is None:
            first = detections[0].label
    return first


def run(data: Path, limit: int | None = None) -> dict:
    import torch

    from speechcmd.app.file_source import FileSource
    from speechcmd.app.recognition_worker import RecognitionWorker
    from speechcmd.model.checkpoint import load_model
    from speechcmd.model.detection import NON_COMMANDS, DetectionPolicy
    from speechcmd.model.inference import Classifier
    from speechcmd.train.data import build_dataset

    torch.set_num_threads(1)
    model = load_model(None)
    policy = DetectionPolicy.for_model(model)
    dataset = build_dataset(data, **model.metadata["split_parameters"])
    clips = [(clip.path, dataset.labels[y]) for clip, y in dataset.splits["test"] if dataset.labels[y] != "_silence_"]
    clips = clips[:limit] if limit else clips
    worker = RecognitionWorker()
    worker.set_model(model, policy)
    classifier = Classifier(model, policy=policy)

    def as_command(label):
        return None if label is None or label in NON_COMMANDS else label

    rows = []
    started = time.perf_counter()
    for path, truth in clips:
        source = FileSource.from_path(path, paced=False)
        samples = source.samples.copy()
        gui = as_command(first_detection(worker, source))
        clip = as_command(next(classifier.classify_files([path], top_k=1))["label"])
        scan = classifier.scan([samples])
        rows.append({"truth": as_command(truth), "gui": gui, "classify": clip, "scan": scan[0].label if scan else None})
    seconds = time.perf_counter() - started

    def share(key_a, key_b):
        return sum(r[key_a] == r[key_b] for r in rows) / len(rows)

    commands = [r for r in rows if r["truth"] is not None]
    return {
        "clips": len(rows),
        "command_clips": len(commands),
        "policy": policy.to_dict(),
        "gui_right": share("gui", "truth"),
        "classify_right": share("classify", "truth"),
        "gui_agrees_with_classify": share("gui", "classify"),
        "gui_agrees_with_scan_of_same_audio": share("gui", "scan"),
        "gui_no_detection_on_command_clips": sum(r["gui"] is None for r in commands) / len(commands),
        "seconds": round(seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    parser.add_argument("--limit", type=int, help="only the first N clips (a quick look)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (args.data / "yes").is_dir():
        print(f"gui_agreement: no Speech Commands clips at {args.data} (pass --data).", file=sys.stderr)
        return 2
    result = run(args.data, args.limit)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

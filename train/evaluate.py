"""Scoring a model on labelled clips through the path `speechcmd classify` takes: for
`speechcmd evaluate`, the bundled model's measurement and its regression test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from speechcmd.model.inference import Classifier
from speechcmd.train.data import DatasetError, label_of, scan_folder
from speechcmd.train.metrics import report


def evaluate_folder(model, root: Path, device: str = "cpu") -> tuple[dict, list[dict]]:
    """Accuracy report of `model` on a folder-per-label dataset, and the inputs that failed."""
    truth = {}
    for clip in scan_folder(root):
        label = label_of(clip.word, model.labels)
        if label is not None:
            truth[clip.path] = model.labels.index(label)
    if not truth:
        raise DatasetError(f"{root}: none of its folders matches a label of the model ({', '.join(model.labels)}).")
    return evaluate_clips(model, truth, device)


def evaluate_clips(model, truth: dict[Path, int], device: str = "cpu") -> tuple[dict, list[dict]]:
    """Classify clips exactly as `speechcmd classify` does and score them against label indices."""
    classifier = Classifier(model, device=device)
    targets, predictions, failures, warnings = [], [], [], []
    for result in classifier.classify_files(list(truth), top_k=1):
        if "label" not in result:
            failures.append({"path": result["path"], "error": result.get("error", "longer than one clip; evaluate takes 1 s clips")})
            continue
        targets.append(truth[Path(result["path"])])
        predictions.append(model.labels.index(result["label"]))
        if "warning" in result:
            warnings.append({"path": result["path"], "warning": result["warning"]})
    scores = report(np.array(targets, dtype=np.int64), np.array(predictions, dtype=np.int64), model.labels)
    return ({**scores, "warnings": warnings} if warnings else scores), failures

"""Scoring a model on labelled clips through the path `speechcmd classify` takes: for
`speechcmd evaluate`, the bundled model's measurement and its regression test."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from speechcmd.model import SAMPLE_RATE
from speechcmd.model.inference import Classifier
from speechcmd.train.data import SILENCE, DatasetError, build_dataset, clip_samples, label_of, scan_folder, trained_speakers
from speechcmd.train.metrics import report


def split_files(dataset, split: str, folder: Path) -> dict[Path, int]:
    """A split as files for the classify path: {file: label index}. A silence example cut from a
    background recording (data without `_silence_` clips, like the full release) is written into
    `folder` as the 1 s file it stands for."""
    truth, noise = {}, {}
    for k, (clip, label) in enumerate(dataset.splits[split]):
        path = clip.path
        if clip.noise_cut is not None:
            path = folder / f"silence_{k}.wav"
            sf.write(str(path), clip_samples(clip, noise=noise), SAMPLE_RATE, subtype="PCM_16")
        truth[path] = label
    return truth


def evaluate_folder(model, root: Path, device: str = "cpu", split: str = "all") -> tuple[dict, list[dict]]:
    """Accuracy report of `model` on a folder-per-label dataset, and the inputs that failed.

    `split` "validation" or "test" keeps only those speakers of the model's own split (its
    `split_parameters`), as they were held out when it was trained. The report warns when the
    clips scored include speakers the model was trained on (`training_speakers` in its metadata):
    their accuracy overstates what a new speaker gets."""
    with tempfile.TemporaryDirectory() as cuts:
        if split == "all":
            clips = [clip for clip in scan_folder(root) if label_of(clip.word, model.labels) is not None]
            truth = {clip.path: model.labels.index(label_of(clip.word, model.labels)) for clip in clips}
        else:
            parameters = model.metadata.get("split_parameters")
            if not isinstance(parameters, dict):
                raise DatasetError("the model's metadata does not say how its speakers were split; evaluate it with --split all.")
            dataset = build_dataset(root, **{**parameters, "labels": list(model.labels)})
            clips = [clip for clip, _ in dataset.splits[split]]
            truth = split_files(dataset, split, Path(cuts))
        if not truth:
            where = "" if split == "all" else f" among its {split} speakers"
            raise DatasetError(f"{root}: no clip with a label of the model{where} ({', '.join(model.labels)}).")
        result, failures = evaluate_clips(model, truth, device)
    heard = trained_speakers_among(model, clips)
    if heard:
        result["trained_speakers"] = heard
    return result, failures


def trained_speakers_among(model, clips) -> dict | None:
    """How many of `clips` (silence aside) are of speakers the model was trained on, when its
    metadata lists them (a speaker hash alone would also claim people it never heard, such as a
    user's own recordings): {"clips": n, "of": total, "speakers": k}; None when none or unknown."""
    if not isinstance(model.metadata.get("training_speakers"), list):
        return None
    spoken = [clip for clip in clips if clip.word != SILENCE and clip.noise_cut is None]
    heard = trained_speakers(model.metadata, {clip.speaker for clip in spoken})
    if not heard:
        return None
    return {"clips": sum(clip.speaker in heard for clip in spoken), "of": len(spoken), "speakers": len(heard)}


def evaluate_clips(model, truth: dict[Path, int], device: str = "cpu") -> tuple[dict, list[dict]]:
    """Classify clips exactly as `speechcmd classify` does and score them against label indices."""
    classifier = Classifier(model, device=device)
    targets, predictions, failures, warnings = [], [], [], []
    for result in classifier.classify_files(list(truth), top_k=1, recordings=False):
        if "error" in result:
            failures.append({"path": result["path"], "error": result["error"]})
            continue
        targets.append(truth[Path(result["path"])])
        predictions.append(model.labels.index(result["label"]))
        if "warning" in result:
            warnings.append({"path": result["path"], "warning": result["warning"]})
    scores = report(np.array(targets, dtype=np.int64), np.array(predictions, dtype=np.int64), model.labels)
    return ({**scores, "warnings": warnings} if warnings else scores), failures

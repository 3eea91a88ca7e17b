"""A long recording with known words at known times: `speechcmd classify` finds each one, in
order, where it was spoken, and nothing else."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import write_wav
from speechcmd.app.cli import main
from speechcmd.model.checkpoint import load_model
from speechcmd.model.inference import Classifier
from speechcmd.train.data import build_dataset

WORDS = ("yes", "stop", "left", "go")
FIRST_WORD_SECONDS = 1.5
GAP_SECONDS = 3.0  # from one word's start to the next: longer than the detector's suppression
ROOM_DBFS = -55.0  # the recording's noise floor: a quiet room


def room_tone(samples: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 10 ** (ROOM_DBFS / 20), samples).astype(np.float32)


def confident_held_out_clips(data_dir, model) -> dict[str, np.ndarray]:
    """For each word, a clip of a speaker the model never trained on that it labels right with
    confidence on its own, over the same room tone: the test is about finding words in a stream
    and when they were said, not about accuracy (bench and the model card measure that)."""
    split = dict(model.metadata.get("split_parameters") or {})
    dataset = build_dataset(data_dir, **split)
    classifier = Classifier(model)
    chosen = {}
    for clip, y in dataset.splits["test"]:
        word = dataset.labels[y]
        if word not in WORDS or word in chosen or clip.noise_cut is not None:
            continue
        samples, rate = sf.read(clip.path, dtype="float32")
        if rate != 16_000 or len(samples) != 16_000:
            continue
        result = classifier.clip_result(classifier.probabilities((samples + room_tone(16_000, 1))[None])[0])
        if result.label == word and result.score > 0.9:
            chosen[word] = samples
    missing = set(WORDS) - set(chosen)
    assert not missing, f"no confidently recognized held-out clip of {missing}"
    return chosen


@pytest.mark.real_data
def test_a_long_recording_gives_each_spoken_command_once_at_its_time(speech_commands_dir, tmp_path, capsys):
    model = load_model()
    clips = confident_held_out_clips(speech_commands_dir, model)
    total = FIRST_WORD_SECONDS + GAP_SECONDS * len(WORDS) + 1.0
    recording = room_tone(int(total * 16_000))
    starts = [FIRST_WORD_SECONDS + GAP_SECONDS * index for index in range(len(WORDS))]
    for word, start in zip(WORDS, starts):
        at = int(start * 16_000)
        recording[at : at + 16_000] += clips[word]
    path = write_wav(tmp_path / "session.wav", recording)

    code = main(["classify", "--json", "--device", "cpu", str(path)])
    (result,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert code == 0
    detections = result["detections"]
    assert [d["label"] for d in detections] == list(WORDS)
    for detection, start in zip(detections, starts):
        # The detection's 1 s window ends while or shortly after the word is heard.
        assert start + 0.3 <= detection["end"] <= start + 2.0, (detection, start)
        assert detection["end"] - detection["start"] == pytest.approx(1.0, abs=0.01)
        assert 0.0 < detection["score"] <= 1.0

"""Takes (train/takes.py) and finding their spoken part (model/trim.py)."""

from __future__ import annotations

import numpy as np
import pytest

from speechcmd.model.trim import speech_bounds, speech_window
from speechcmd.train.data import build_dataset, scan_folder
from speechcmd.train.takes import TakeError, TakeStore, check_new_word, load_takes, prepare_take
from conftest import LABELS_12, tone, write_wav


def burst(before: float = 0.6, word: float = 0.4, after: float = 0.8, noise: float = 0.003, seed: int = 0) -> np.ndarray:
    """Room noise with a 'word' (a tone) from `before` to `before + word` seconds."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, noise, int((before + word + after) * 16_000)).astype(np.float32)
    start = int(before * 16_000)
    samples[start : start + int(word * 16_000)] += tone(300, word, amplitude=0.3)
    return samples


def test_the_spoken_part_is_found_within_a_frame_and_margin():
    start, end = speech_bounds(burst(), 16_000)
    assert abs(start / 16_000 - (0.6 - 0.08)) <= 0.021
    assert abs(end / 16_000 - (1.0 + 0.08)) <= 0.021


def test_a_quiet_word_in_a_quiet_room_is_found_and_hum_alone_is_not():
    assert speech_bounds(burst(noise=0.0003) * 0.05, 16_000) is not None  # about -45 dBFS
    assert speech_bounds(tone(100, 2.0, amplitude=0.2), 16_000) is None  # a steady sound is no word
    assert speech_bounds(np.zeros(16_000, np.float32), 16_000) is None


def test_the_window_is_centred_on_the_word_and_keeps_the_room_around_it():
    samples = burst(before=1.5)
    bounds = speech_bounds(samples, 16_000)
    window = speech_window(samples, bounds, 16_000)
    loud = np.flatnonzero(np.abs(window) > 0.1)
    centre = (loud[0] + loud[-1]) / 2
    assert abs(centre - 8000) < 400
    assert np.abs(window[:2000]).max() > 0  # room noise, not padding


def test_a_word_at_the_very_start_is_padded_not_lost():
    samples = burst(before=0.0, after=0.1)
    window = speech_window(samples, speech_bounds(samples, 16_000), 16_000)
    assert window.shape == (16_000,)
    assert (np.abs(window) > 0.1).sum() == (np.abs(samples) > 0.1).sum()


@pytest.mark.parametrize(
    "samples, message",
    [
        (np.zeros(0, np.float32), "the take is empty; record it again"),
        (np.zeros(24_000, np.float32), "no speech in the take"),
        (burst(word=2.5), "the spoken part lasts 2.7 s, longer than the model's 1 s window; say the word alone"),
    ],
    ids=["empty", "silent", "too long"],
)
def test_bad_takes_are_refused_with_one_sentence(samples, message):
    with pytest.raises(TakeError, match="take 1: " + message.replace("(", "\\(").replace(".", "\\.")):
        prepare_take(samples, "lights", "take 1", 16_000)


def test_a_background_take_is_kept_whole_without_a_word_in_it():
    take = prepare_take(np.random.default_rng(0).normal(0, 0.01, 40_000).astype(np.float32), "_silence_", "room", 16_000)
    assert take.window.shape == (16_000,) and take.bounds is None


@pytest.mark.parametrize(
    "name, message",
    [("yes", "'yes' is already one of the model's words"), ("  ", "Type the word"),
     ("_unknown_", "cannot be a word's name"), ("a/b", "cannot be a word's name"),
     ("x" * 65, "cannot be a word's name: a label is 65 characters long"),  # a model holding it would not load
     ("lights\x1b[2J", "cannot be a word's name: the label .* cannot be shown")],
)
def test_a_new_word_may_not_clash_with_a_label_or_a_path(name, message):
    with pytest.raises(TakeError, match=message):
        check_new_word(name, LABELS_12)


def test_new_word_names_are_tidied():
    assert check_new_word("  Hey   Computer ", LABELS_12) == "hey computer"


def test_the_store_is_a_dataset_that_train_and_evaluate_can_read(tmp_path):
    store = TakeStore(tmp_path / "takes", speaker="Ann-1")
    for k in range(3):
        store.add("lights", burst(seed=k))
        store.add("_unknown_", burst(seed=10 + k))
    first = store.add("_silence_", np.zeros(16_000, np.float32))
    assert first.name == "Ann1_nohash_0.wav"
    assert store.counts() == {"_silence_": 1, "_unknown_": 3, "lights": 3}
    clips = scan_folder(tmp_path / "takes")
    assert {clip.speaker for clip in clips} == {"Ann1"}  # one person: a speaker split keeps them together
    dataset = build_dataset(tmp_path / "takes", "lights,_unknown_,_silence_", validation_fraction=0, test_fraction=0)
    counts = dataset.counts()["train"]  # (build_dataset keeps _unknown_ to about a tenth of a split)
    assert set(counts) == {"_silence_", "_unknown_", "lights"} and counts["lights"] == 3
    store.remove(first)
    assert "_silence_" not in store.counts() and not (tmp_path / "takes" / "_silence_").exists()


def test_loading_a_folder_keeps_good_takes_and_names_the_bad(tmp_path):
    write_wav(tmp_path / "lights" / "a_nohash_0.wav", burst())
    write_wav(tmp_path / "lights" / "a_nohash_1.wav", np.zeros(16_000, np.float32))
    (tmp_path / "lights" / "a_nohash_2.wav").write_bytes(b"")
    takes, problems = load_takes(tmp_path, 16_000)
    assert [t.label for t in takes] == ["lights"]
    assert len(problems) == 2
    assert any("a_nohash_1.wav: no speech" in p for p in problems)
    assert any("a_nohash_2.wav: the file is empty" in p for p in problems)

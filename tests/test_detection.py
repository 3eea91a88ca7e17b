"""Detection policy and windowing: per-window scores become one detection per spoken word."""

import numpy as np
import pytest

from speechcmd.model.detection import CommandRecognizer, DetectionPolicy
from speechcmd.model.inference import fit_to_window, sliding_windows

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def probs(label, p=0.9):
    out = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
    out[LABELS.index(label)] = p
    return out


def feed(recognizer, sequence, hop=0.1):
    """sequence: labels (or (label, p)) per window, then the end of the audio; returns detections."""
    detections = []
    for k, item in enumerate(sequence):
        label, p = item if isinstance(item, tuple) else (item, 0.9)
        detections.append(recognizer.process(1.0 + k * hop, probs(label, p)))
    detections.append(recognizer.finish())
    return [d for d in detections if d is not None]


def test_a_word_seen_by_many_overlapping_windows_is_reported_once():
    detections = feed(CommandRecognizer(LABELS), ["_silence_"] * 5 + ["yes"] * 8 + ["_silence_"] * 5)
    assert [d.label for d in detections] == ["yes"]
    # Windows end every 0.1 s from 1.0 s; "yes" from 1.5 s. The 0.5 s average (6 windows) first
    # reaches 0.6 at 1.8 s, with 4 "yes" windows: (4 x 0.9 + 2 x 0.1 / 3) / 6. Its peak is 0.9.
    assert (detections[0].start, detections[0].end) == pytest.approx((0.8, 1.8))
    assert detections[0].score == pytest.approx(0.9)


def test_two_words_further_apart_than_the_suppression_are_both_reported():
    sequence = ["yes"] * 6 + ["_silence_"] * 10 + ["no"] * 6
    assert [d.label for d in feed(CommandRecognizer(LABELS), sequence)] == ["yes", "no"]


def test_suppression_hides_a_second_word_that_follows_too_soon():
    policy = DetectionPolicy(suppression_seconds=3.0)
    sequence = ["yes"] * 6 + ["_silence_"] * 10 + ["no"] * 6
    assert [d.label for d in feed(CommandRecognizer(LABELS, policy), sequence)] == ["yes"]


def test_silence_and_unknown_are_never_reported():
    assert feed(CommandRecognizer(LABELS), ["_silence_"] * 10 + ["_unknown_"] * 10) == []


def test_scores_below_the_threshold_are_not_reported():
    recognizer = CommandRecognizer(LABELS, DetectionPolicy(threshold=0.95))
    assert feed(recognizer, ["yes"] * 10) == []


def test_a_single_confident_window_is_averaged_away():
    sequence = ["_silence_"] * 5 + ["yes"] + ["_silence_"] * 5
    assert feed(CommandRecognizer(LABELS), sequence) == []


def test_confidence_is_the_peak_of_the_average_not_its_value_at_the_threshold_crossing():
    rising = [("yes", p) for p in (0.5, 0.6, 0.7, 0.8, 0.95, 0.99, 0.99, 0.99)] + ["_silence_"] * 12
    [detection] = feed(CommandRecognizer(LABELS), rising)
    assert detection.end == pytest.approx(1.2)  # when the average of 0.5, 0.6, 0.7 first reached 0.6
    assert detection.score == pytest.approx(np.mean([0.8, 0.95, 0.99, 0.99, 0.99]))  # the highest average
    assert detection.score > 0.9


def test_a_detection_is_pending_at_once_and_final_after_its_suppression_time():
    recognizer = CommandRecognizer(LABELS, DetectionPolicy(suppression_seconds=0.5))
    results = [recognizer.process(1.0 + k * 0.1, probs("yes")) for k in range(3)]
    assert results == [None] * 3 and recognizer.pending.label == "yes"  # shown live, still growing
    results = [recognizer.process(1.3 + k * 0.1, probs("_silence_")) for k in range(5)]
    assert [d.label for d in results if d] == ["yes"] and recognizer.pending is None


def test_windows_out_of_order_are_a_programming_error():
    recognizer = CommandRecognizer(LABELS)
    recognizer.process(2.0, probs("yes"))
    with pytest.raises(ValueError):
        recognizer.process(1.0, probs("yes"))


@pytest.mark.parametrize("bad", [{"threshold": 1.5}, {"hop_seconds": 0.0}, {"minimum_windows": 0}])
def test_bad_policy_settings_are_refused(bad):
    with pytest.raises(ValueError):
        DetectionPolicy(**bad)


def test_short_clips_are_padded_and_long_ones_cut_to_their_loudest_second():
    assert fit_to_window(np.ones(8_000, np.float32), 16_000)[8_000:].max() == 0
    clip = np.zeros(40_000, np.float32)
    clip[38_000:39_000] = 1.0  # near the end: the first second holds none of it
    window = fit_to_window(clip, 16_000)
    assert len(window) == 16_000 and window.sum() == 1_000


def test_sliding_windows_cover_a_stream_at_every_hop_whatever_the_block_size():
    signal = np.arange(40_000, dtype=np.float32)
    blocks = np.array_split(signal, 13)
    windows = list(sliding_windows(blocks, 16_000, 1_600))
    assert [end for end, _ in windows] == list(range(16_000, 40_001, 1_600))
    for end, window in windows:
        np.testing.assert_array_equal(window, signal[end - 16_000 : end])

"""Long-recording evaluation: streams keep where each word is, the scorer counts hits, wrong labels,
misses and false alarms right, the scored-once detector equals `classify`'s scan, the chosen
operating point respects its false-alarm budgets, and `speechcmd evaluate --streaming` reports."""

import json

import numpy as np
import pytest
import torch

from speechcmd.app.cli import main
from speechcmd.model.checkpoint import load_model, save_checkpoint
from speechcmd.model.detection import Detection, DetectionPolicy
from speechcmd.model.inference import Classifier
from speechcmd.train.noise import active_power_db, power_db
from speechcmd.train.streaming_eval import (
    MIN_GAP, Event, ScoredWindows, build_stream, choose_policy, detect, score_stream, score_windows,
)
from conftest import tone, write_wav
from test_data import make_folder

SR = 16_000


def at(end, label):
    return Detection(start=end - 1, end=end, label=label, score=0.9)


def test_the_scorer_counts_hits_wrong_labels_misses_and_false_alarms():
    events = [Event(2, 3, "yes"), Event(5, 6, "no"), Event(8, 9, "up"), Event(11, 12, "_unknown_"), Event(14, 15, "go")]
    detections = [
        at(0.8, "left"),  # before any word: background
        at(2.6, "yes"),  # found
        at(3.2, "yes"),  # the same word again: a repeat
        at(5.9, "down"),  # wrong label
        at(7.0, "on"),  # after "no" ended + tolerance: background
        at(11.5, "off"),  # on another word
        at(15.7, "go"),  # found, within the tolerance after the word's end
    ]  # "up" at 8 s: missed
    score = score_stream(events, detections, seconds=36.0)
    assert (score.commands, score.found, score.wrong_label, score.missed) == (4, 2, 1, 1)
    assert (score.false_alarms_background, score.false_alarms_words, score.repeats) == (2, 1, 1)
    assert score.false_alarms_per_hour == pytest.approx(4 * 100)
    assert score.to_dict()["found_rate"] == 0.5


def test_a_detection_just_past_the_tolerance_is_a_false_alarm_not_a_hit():
    events = [Event(2, 3, "yes")]
    assert score_stream(events, [at(3.74, "yes")], 10).found == 1
    assert score_stream(events, [at(3.76, "yes")], 10).false_alarms_background == 1
    assert score_stream(events, [at(2.0, "yes")], 10).false_alarms_background == 1  # decided before the word began


def test_a_built_stream_holds_each_word_where_its_event_says_with_gaps_between():
    rng = np.random.default_rng(0)
    clips = [(tone(300 + 100 * k, 1.0, amplitude=0.3), label) for k, label in enumerate(["yes", "no", "_unknown_"])]
    audio, events = build_stream(clips, 60.0, rng, background_db=-200)
    assert len(audio) == 60 * SR and len(events) > 10
    for a, b in zip(events, events[1:]):
        assert b.start - a.end >= MIN_GAP - 1e-3
    for event in events:
        expected = next(samples for samples, label in clips if label == event.label)
        start = round(event.start * SR)
        assert np.allclose(audio[start : start + SR], expected, atol=1e-5)


def test_a_stream_background_sits_the_asked_snr_under_the_words():
    rng = np.random.default_rng(0)
    clips = [(tone(440, 1.0, amplitude=0.3), "yes")]
    noise = np.random.default_rng(1).normal(0, 0.05, SR * 7).astype(np.float32)
    audio, events = build_stream(clips, 30.0, rng, background=noise, snr_db=10.0)
    gap = audio[round(events[0].end * SR) + 100 : round(events[1].start * SR) - 100]
    word_level = float(active_power_db(torch.from_numpy(clips[0][0])[None])[0])
    assert float(power_db(torch.from_numpy(gap)[None])[0]) == pytest.approx(word_level - 10, abs=0.5)


def test_policy_choice_finds_most_words_within_the_false_alarm_budget():
    """Words score 0.9 for 0.5 s; noise bursts score 0.7 for 0.5 s, between words: a threshold
    above 0.7 keeps every word and drops every false alarm."""
    labels = ["_silence_", "_unknown_", "yes"]
    ends = np.arange(10, 6000) / 10  # 10 minutes of windows every 0.1 s
    probabilities = np.tile([0.9, 0.05, 0.05], (len(ends), 1))
    events = []
    for k, start in enumerate(np.arange(2.0, 590.0, 6.0)):
        events.append(Event(start, start + 1, "yes"))
        probabilities[(ends > start + 0.5) & (ends <= start + 1.0)] = [0.05, 0.05, 0.9]
        probabilities[(ends > start + 3.5) & (ends <= start + 4.0)] = [0.25, 0.05, 0.7]
    scored = ScoredWindows(ends, probabilities, labels)
    policy, rows = choose_policy({"quiet": (scored, events, 600.0, 5.0)},
                                 {"threshold": (0.5, 0.6, 0.8), "average_seconds": (0.3,), "suppression_seconds": (1.0,)})
    assert policy.threshold == 0.8
    best = next(r for r in rows if r["policy"] == policy.to_dict())
    assert best["quiet"]["found_rate"] == 1.0 and best["quiet"]["false_alarms"] == 0
    loose = next(r for r in rows if r["policy"]["threshold"] == 0.5)
    assert loose["quiet"]["false_alarms_per_hour"] > 5


@pytest.mark.real_data
def test_windows_scored_once_decide_exactly_as_classify_scans_a_long_file(speech_commands_dir):
    from speechcmd.train.streaming_eval import load_words

    model = load_model(None)
    words = load_words(speech_commands_dir, model.labels)[::20]
    audio, events = build_stream(words, 60.0, np.random.default_rng(0))
    policy = DetectionPolicy(threshold=0.5)
    classifier = Classifier(model, policy=policy)
    scanned = classifier.scan(np.array_split(audio, 60))
    once = detect(score_windows(classifier, audio), policy)
    assert [d.to_dict() for d in scanned] == [d.to_dict() for d in once]
    assert score_stream(events, once, 60.0).found_rate > 0.6  # a trained model finds words in a quiet room


@pytest.mark.real_data
def test_a_recording_scored_along_thresholds_agrees_with_its_policy_and_fires_less_when_stricter(speech_commands_dir):
    from speechcmd.train.streaming_eval import evaluate_stream, load_words

    model = load_model(None)
    words = load_words(speech_commands_dir, model.labels)[::20]
    policy = DetectionPolicy.for_model(model)
    result = evaluate_stream(Classifier(model, policy=policy), words, 60.0, seed=3, curve=(0.3, policy.threshold, 0.95))
    loose, own, strict = result["curve"]
    assert [point["threshold"] for point in result["curve"]] == [0.3, policy.threshold, 0.95]
    assert {k: v for k, v in own.items() if k != "threshold"} == {k: v for k, v in result.items() if k not in ("policy", "curve")}
    assert loose["detections"] > strict["detections"]
    assert own["found"] > strict["found"]  # (a looser threshold may find fewer: it can fire early, on the wrong label)


def test_the_operating_point_rides_in_the_checkpoint_to_the_detector(tmp_path, tiny_model):
    chosen = DetectionPolicy(average_seconds=0.75, threshold=0.85, suppression_seconds=1.5)
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, {"detection_policy": chosen.to_dict()})
    assert DetectionPolicy.for_model(load_model(path)) == chosen


@pytest.fixture(scope="module")
def tone_folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("tones"), speakers=4, clips_per_speaker=1)


def test_evaluate_streaming_reports_found_and_false_alarms_per_hour(tmp_path, capsys, tone_folder, tiny_checkpoint):
    code = main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tone_folder), "--streaming", "--minutes", "0.5", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["commands"] > 0 and result["seconds"] == 30.0
    assert result["found"] + result["wrong_label"] + result["missed"] == result["commands"]
    assert {"false_alarms_per_hour", "false_alarms_background", "false_alarms_words", "repeats", "policy"} <= set(result)


def test_evaluate_streaming_names_a_background_without_audio(tmp_path, capsys, tone_folder, tiny_checkpoint):
    empty = tmp_path / "nothing"
    empty.mkdir()
    code = main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tone_folder), "--streaming", "--background", str(empty)])
    assert code != 0
    assert str(empty) in capsys.readouterr().err


def test_evaluate_streaming_refuses_a_split_the_model_does_not_know(capsys, tone_folder, tiny_checkpoint):
    code = main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tone_folder), "--streaming", "--split", "validation"])
    assert code != 0
    assert "split" in capsys.readouterr().err


def test_evaluate_streaming_tells_a_refit_has_no_validation_speakers(tmp_path, capsys, tone_folder, tiny_model):
    """A model refit on its validation speakers (the bundled one since 2026-12-02) is told so, not
    told that the data folder lacks clips."""
    split = {"labels": list(tiny_model.labels), "validation_fraction": 0.0, "test_fraction": 0.15, "salt": "speechcmd"}
    refit = save_checkpoint(tmp_path / "refit.pt", tiny_model, {"split_parameters": split})
    code = main(["evaluate", "--model", str(refit), "--data", str(tone_folder), "--streaming", "--split", "validation"])
    assert code != 0
    error = capsys.readouterr().err
    assert str(refit) in error and "no validation speakers" in error and "--split test" in error


def test_people_talking_is_a_few_voices_at_the_level_claimed_each_changing_talker_every_5_to_15_s():
    from speechcmd.train.noise import conversation

    talkers = [tone(frequency, 20.0, amplitude=0.3) for frequency in (300, 700, 1500, 3100)]  # one pitch per talker
    track = conversation(talkers, 120 * SR, np.random.default_rng(0), voices=1)
    assert float(power_db(torch.from_numpy(track)[None])[0]) == pytest.approx(-20.0, abs=0.1)
    # Which talker speaks, every half second, from the track's loudest frequency.
    halves = track.reshape(-1, SR // 2)
    loudest = np.fft.rfftfreq(SR // 2, 1 / SR)[np.abs(np.fft.rfft(halves, axis=1)).argmax(axis=1)]
    changes = np.flatnonzero(np.diff(loudest) != 0)
    turns = np.diff(np.concatenate([[-1], changes, [len(loudest) - 1]])) / 2  # seconds each talker held the voice
    # A turn may hand the voice to the same talker again (then two turns read as one): at least 5 s, and
    # never longer than 15 s unless two of them met; the last one is cut by the track's end.
    assert turns[:-1].min() >= 5 - 0.5 and len(turns) >= 120 / 30
    two = conversation(talkers, 60 * SR, np.random.default_rng(1), voices=2)
    spectrum = np.abs(np.fft.rfft(two[: SR * 4]))
    assert np.sum(spectrum > spectrum.max() / 4) >= 2  # two talkers heard at once


def test_evaluate_streaming_with_people_talking_behind_the_words(tmp_path, capsys, tone_folder, tiny_checkpoint):
    talkers = tmp_path / "talkers"
    for k, frequency in enumerate((250, 900)):
        write_wav(talkers / f"reader_{k}.wav", tone(frequency, 12.0, amplitude=0.2))
    code = main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tone_folder), "--streaming", "--minutes", "0.5",
                 "--talk", str(talkers), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["commands"] > 0 and result["seconds"] == 30.0

    code = main(["evaluate", "--model", str(tiny_checkpoint), "--data", str(tone_folder), "--streaming",
                 "--talk", str(talkers), "--background", str(talkers)])
    assert code == 2 and "not both" in capsys.readouterr().err

"""The detection policy at its edges: a window exactly as old as the averaging, a window exactly the
suppression time after a detection, and each setting at the ends of its legal range. Times and
probabilities here are exact in binary (0.25, 0.5, 0.75), so "exactly" means exactly."""

from types import SimpleNamespace

import numpy as np
import pytest

from speechcmd.model.detection import (
    MAX_AVERAGE_SECONDS,
    MAX_SUPPRESSION_SECONDS,
    MIN_HOP_SECONDS,
    CommandRecognizer,
    Detection,
    DetectionPolicy,
)

LABELS = ["_silence_", "_unknown_", "yes", "no"]


def probs(label: str, p: float = 1.0) -> np.ndarray:
    """`label` at probability p, the rest shared by the other labels."""
    out = np.full(len(LABELS), (1 - p) / (len(LABELS) - 1))
    out[LABELS.index(label)] = p
    return out


def single(**settings) -> DetectionPolicy:
    """A policy that decides from the first window on."""
    return DetectionPolicy(**{"minimum_windows": 1, **settings})


# --- the averaging window ---------------------------------------------------------------------


def test_a_window_exactly_average_seconds_old_still_counts_in_the_average():
    recognizer = CommandRecognizer(LABELS, single(average_seconds=0.5, threshold=1.0))
    recognizer.process(1.0, probs("yes"))
    recognizer.process(1.5, probs("no"))  # the "yes" window is exactly 0.5 s old
    np.testing.assert_allclose(recognizer.averaged(), (probs("yes") + probs("no")) / 2)


def test_a_window_older_than_average_seconds_leaves_the_average():
    recognizer = CommandRecognizer(LABELS, single(average_seconds=0.5, threshold=1.0))
    for time, label in [(1.0, "yes"), (1.25, "no"), (1.75, "no")]:
        recognizer.process(time, probs(label))
    # at 1.75 s the window of 1.0 s is 0.75 s old and gone; that of 1.25 s is exactly 0.5 s old and kept
    np.testing.assert_allclose(recognizer.averaged(), probs("no"))


def test_with_no_averaging_each_window_decides_alone():
    recognizer = CommandRecognizer(LABELS, single(average_seconds=0.0, threshold=0.75))
    recognizer.process(1.0, probs("_silence_"))
    recognizer.process(1.25, probs("yes", 0.75))
    assert recognizer.pending is not None and recognizer.pending.label == "yes"
    np.testing.assert_allclose(recognizer.averaged(), probs("yes", 0.75))


def test_no_average_is_shown_before_the_first_window_or_after_a_reset():
    recognizer = CommandRecognizer(LABELS, single())
    assert recognizer.averaged() is None
    recognizer.process(1.0, probs("yes"))
    recognizer.reset()
    assert recognizer.averaged() is None and recognizer.pending is None


def test_a_window_earlier_than_the_last_one_is_refused_even_if_later_than_the_first():
    recognizer = CommandRecognizer(LABELS, single(average_seconds=2.0, threshold=1.0))
    recognizer.process(1.0, probs("yes"))
    recognizer.process(2.0, probs("yes"))
    with pytest.raises(ValueError, match=r"time order \(1\.5 came after 2\.0\)"):
        recognizer.process(1.5, probs("yes"))


def test_windows_at_the_same_time_are_in_order():
    recognizer = CommandRecognizer(LABELS, single(average_seconds=0.0, threshold=1.0))
    recognizer.process(1.0, probs("yes"))
    recognizer.process(1.0, probs("no"))  # not an error: time did not go back
    np.testing.assert_allclose(recognizer.averaged(), (probs("yes") + probs("no")) / 2)


# --- how many windows before a decision -------------------------------------------------------


def test_with_one_window_required_the_first_confident_window_is_a_detection():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.75))
    assert recognizer.process(0.25, probs("yes")) is None  # pending, not yet final
    assert recognizer.pending == Detection(0.0, 0.25, "yes", 1.0)


def test_no_decision_is_made_until_minimum_windows_are_in_the_average():
    recognizer = CommandRecognizer(LABELS, DetectionPolicy(minimum_windows=3, average_seconds=1.0, threshold=0.75))
    recognizer.process(1.0, probs("yes"))
    recognizer.process(1.25, probs("yes"))
    assert recognizer.pending is None  # two confident windows are not enough
    recognizer.process(1.5, probs("yes"))
    assert recognizer.pending is not None and recognizer.pending.end == 1.5


def test_windows_that_have_left_the_average_do_not_count_towards_minimum_windows():
    recognizer = CommandRecognizer(LABELS, DetectionPolicy(minimum_windows=2, average_seconds=0.25, threshold=0.75))
    recognizer.process(1.0, probs("yes"))
    recognizer.process(2.0, probs("yes"))  # the first has left the average: one window in it
    assert recognizer.pending is None
    recognizer.process(2.25, probs("yes"))
    assert recognizer.pending is not None and recognizer.pending.end == 2.25


# --- the threshold ----------------------------------------------------------------------------


def test_an_average_exactly_at_the_threshold_is_a_detection():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.75))
    recognizer.process(1.0, probs("yes", 0.75))
    assert recognizer.finish() == Detection(0.0, 1.0, "yes", 0.75)


def test_an_average_just_below_the_threshold_is_not():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.75))
    recognizer.process(1.0, probs("yes", 0.74))
    assert recognizer.finish() is None


def test_a_threshold_of_one_reports_only_certain_words():
    recognizer = CommandRecognizer(LABELS, single(threshold=1.0, average_seconds=0.0))
    assert recognizer.run([(1.0, probs("yes", 0.999)), (1.25, probs("no", 0.999))]) == []
    assert [d.label for d in recognizer.run([(3.0, probs("no", 1.0))])] == ["no"]


def test_a_threshold_of_zero_reports_whichever_command_leads_but_never_silence():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.0, average_seconds=0.0, suppression_seconds=0.0))
    windows = [(1.0, probs("no", 0.3)), (1.25, probs("_silence_", 0.3)), (1.5, probs("_unknown_", 0.3))]
    assert [(d.label, d.end) for d in recognizer.run(windows)] == [("no", 1.0)]


def test_labels_named_silence_or_unknown_without_underscores_are_never_reported_either():
    labels = ["silence", "unknown", "yes"]
    recognizer = CommandRecognizer(labels, single(threshold=0.5, average_seconds=0.0, suppression_seconds=0.0))
    windows = [(1.0, np.array([1.0, 0, 0])), (2.0, np.array([0, 1.0, 0])), (3.0, np.array([0, 0, 1.0]))]
    assert [(d.label, d.end) for d in recognizer.run(windows)] == [("yes", 3.0)]


# --- suppression ------------------------------------------------------------------------------


def test_a_window_exactly_suppression_seconds_after_a_detection_finishes_it_and_may_start_the_next():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.75, average_seconds=0.0, suppression_seconds=0.5))
    assert recognizer.process(1.0, probs("yes")) is None
    assert recognizer.process(1.25, probs("no")) is None  # within the suppression: hidden
    finished = recognizer.process(1.5, probs("no"))  # exactly 0.5 s after the detection's end
    assert finished == Detection(0.0, 1.0, "yes", 1.0)
    assert recognizer.pending == Detection(0.5, 1.5, "no", 1.0)


def test_with_no_suppression_every_confident_window_is_its_own_detection():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.75, average_seconds=0.0, suppression_seconds=0.0))
    detections = recognizer.run([(1.0, probs("yes")), (1.25, probs("yes")), (1.5, probs("no"))])
    assert [(d.label, d.end) for d in detections] == [("yes", 1.0), ("yes", 1.25), ("no", 1.5)]


def test_the_peak_is_taken_over_the_suppression_time_only():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.5, average_seconds=0.0, suppression_seconds=0.5))
    recognizer.process(1.0, probs("yes", 0.5))
    recognizer.process(1.25, probs("yes", 0.75))  # within: raises the peak
    finished = recognizer.process(1.5, probs("yes", 1.0))  # at the end of the suppression: a new detection
    assert finished.score == 0.75 and recognizer.pending.score == 1.0


def test_a_lower_average_during_the_suppression_keeps_the_peak():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.5, average_seconds=0.0, suppression_seconds=1.0))
    recognizer.process(1.0, probs("yes", 0.75))
    recognizer.process(1.25, probs("yes", 0.5))
    assert recognizer.finish().score == 0.75


def test_the_top_labels_are_those_where_the_peak_was_first_reached():
    recognizer = CommandRecognizer(
        LABELS, single(threshold=0.5, average_seconds=0.0, suppression_seconds=1.0), top_k=2
    )
    recognizer.process(1.0, np.array([0.25, 0.0, 0.75, 0.0]))
    recognizer.process(1.25, np.array([0.0, 0.0, 0.75, 0.25]))  # the same peak again, another runner-up
    assert recognizer.finish().top == (("yes", 0.75), ("_silence_", 0.25))


def test_windows_too_few_for_an_average_during_the_suppression_leave_the_peak_alone():
    recognizer = CommandRecognizer(LABELS, DetectionPolicy(minimum_windows=2, average_seconds=0.25, threshold=0.5))
    recognizer.process(1.0, probs("yes", 0.75))
    recognizer.process(1.25, probs("yes", 0.75))
    recognizer.process(1.875, probs("yes", 1.0))  # alone in its average: no decision, no new peak
    assert recognizer.finish().score == 0.75


# --- what a detection says --------------------------------------------------------------------


def test_a_detection_in_the_first_second_starts_at_zero_not_before_the_recording():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.5), window_seconds=1.0)
    recognizer.process(0.5, probs("yes"))
    assert (recognizer.pending.start, recognizer.pending.end) == (0.0, 0.5)


def test_a_detection_spans_the_window_that_found_it():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.5), window_seconds=0.75)
    recognizer.process(2.0, probs("yes"))
    assert (recognizer.pending.start, recognizer.pending.end) == (1.25, 2.0)


def test_top_labels_are_listed_highest_first_as_many_as_asked():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.5), top_k=3)
    recognizer.process(1.0, np.array([0.125, 0.0, 0.625, 0.25]))
    assert recognizer.pending.top == (("yes", 0.625), ("no", 0.25), ("_silence_", 0.125))
    assert CommandRecognizer(LABELS, single(threshold=0.5)).run([(1.0, probs("yes"))])[0].top == ()


def test_a_detection_once_reported_cannot_be_changed():
    from dataclasses import FrozenInstanceError

    detection = Detection(0.0, 1.0, "yes", 0.9)
    with pytest.raises(FrozenInstanceError):
        detection.score = 1.0  # type: ignore[misc]
    assert {detection, Detection(0.0, 1.0, "yes", 0.9)} == {detection}


def test_a_detection_as_json_rounds_times_and_score_and_lists_its_top_labels():
    detection = Detection(0.12345, 1.12345, "yes", 0.987654, (("yes", 0.987654), ("no", 0.0123456)))
    assert detection.to_dict() == {
        "start": 0.123, "end": 1.123, "label": "yes", "score": 0.988, "top": [["yes", 0.9877], ["no", 0.0123]]
    }
    assert "top" not in Detection(0.0, 1.0, "yes", 0.9).to_dict()


def test_the_last_detection_of_a_stream_is_reported_when_it_ends():
    recognizer = CommandRecognizer(LABELS, single(threshold=0.5, suppression_seconds=5.0))
    assert [d.label for d in recognizer.run([(1.0, probs("yes")), (1.25, probs("_silence_"))])] == ["yes"]
    assert recognizer.finish() is None  # reported once


# --- the legal range of each setting ----------------------------------------------------------


@pytest.mark.parametrize("settings", [
    {"threshold": 0.0}, {"threshold": 1.0},
    {"average_seconds": 0.0}, {"average_seconds": MAX_AVERAGE_SECONDS},
    {"suppression_seconds": 0.0}, {"suppression_seconds": MAX_SUPPRESSION_SECONDS},
    {"minimum_windows": 1}, {"minimum_windows": 100_000},
    {"hop_seconds": MIN_HOP_SECONDS}, {"hop_seconds": 10.0},
])
def test_each_setting_may_be_at_either_end_of_its_range(settings):
    assert DetectionPolicy(**settings).to_dict()[next(iter(settings))] == next(iter(settings.values()))


@pytest.mark.parametrize("settings", [
    {"threshold": -0.01}, {"threshold": 1.01},
    {"average_seconds": -0.01}, {"average_seconds": MAX_AVERAGE_SECONDS + 0.01},
    {"suppression_seconds": -0.01}, {"suppression_seconds": MAX_SUPPRESSION_SECONDS + 0.01},
    {"minimum_windows": 0}, {"minimum_windows": 100_001}, {"minimum_windows": 2.0},
    {"hop_seconds": MIN_HOP_SECONDS - 0.001}, {"hop_seconds": 10.01},
    {"average_seconds": float("nan")}, {"threshold": float("inf")},
])
def test_a_setting_just_outside_its_range_is_refused_naming_it(settings):
    with pytest.raises(ValueError, match=next(iter(settings))):
        DetectionPolicy(**settings)


def test_the_limits_are_those_the_policy_promises():
    # averaging keeps at most 1,000 windows; a detection is quiet at most a minute
    assert (MAX_AVERAGE_SECONDS, MIN_HOP_SECONDS, MAX_SUPPRESSION_SECONDS) == (10.0, 0.01, 60.0)


def test_the_default_policy_is_the_one_documented():
    assert DetectionPolicy().to_dict() == {
        "average_seconds": 0.5, "threshold": 0.6, "suppression_seconds": 1.0, "minimum_windows": 3, "hop_seconds": 0.1
    }


@pytest.mark.parametrize(("hop_seconds", "rate", "samples"), [(0.1, 16_000, 1600), (0.08, 16_000, 1280), (0.01, 40, 1)])
def test_the_hop_in_samples_is_rounded_and_at_least_one(hop_seconds, rate, samples):
    assert DetectionPolicy(hop_seconds=hop_seconds).hop_samples(rate) == samples


# --- the policy a model brings ----------------------------------------------------------------


def fake_model(metadata=None, stream_context=False, hop_ms=80.0):
    features = SimpleNamespace(stream_context=stream_context, hop_ms=hop_ms)
    return SimpleNamespace(metadata=metadata or {}, config=SimpleNamespace(features=features))


def test_a_models_stored_policy_is_used():
    stored = {"average_seconds": 0.75, "threshold": 0.5, "suppression_seconds": 2.0, "minimum_windows": 2, "hop_seconds": 0.25}
    assert DetectionPolicy.for_model(fake_model({"detection_policy": stored})) == DetectionPolicy(**stored)


@pytest.mark.parametrize("stored", [{"threshold": 2.0}, {"no_such_setting": 1}, "0.6", None])
def test_a_model_with_an_unusable_or_no_stored_policy_gets_the_default(stored):
    assert DetectionPolicy.for_model(fake_model({"detection_policy": stored})) == DetectionPolicy()


def test_a_stream_context_models_default_hop_is_its_embedding_hop():
    assert DetectionPolicy.default_for(fake_model(stream_context=True, hop_ms=80.0)) == DetectionPolicy(hop_seconds=0.08)
    assert DetectionPolicy.for_model(fake_model({"detection_policy": {"threshold": 7}}, stream_context=True)).hop_seconds == 0.08
    assert DetectionPolicy.default_for(fake_model(stream_context=False)) == DetectionPolicy()
    assert DetectionPolicy.default_for(object()) == DetectionPolicy()


def test_an_invalid_policy_in_a_checkpoint_falls_back_to_the_default_with_a_warning_naming_the_file(tmp_path, tiny_model):
    from speechcmd.model.checkpoint import CheckpointWarning, load_model, save_checkpoint

    bad = {"average_seconds": 0.5, "threshold": 1.5, "suppression_seconds": 1.0, "minimum_windows": 3, "hop_seconds": 0.1}
    path = save_checkpoint(tmp_path / "bad_policy.pt", tiny_model, {"detection_policy": bad})
    with pytest.warns(CheckpointWarning, match=r"bad_policy\.pt.*threshold.*default policy"):
        model = load_model(path)
    assert "detection_policy" not in model.metadata
    assert DetectionPolicy.for_model(model) == DetectionPolicy()


def test_a_valid_policy_in_a_checkpoint_loads_without_a_warning(tmp_path, tiny_model, recwarn):
    from speechcmd.model.checkpoint import load_model, save_checkpoint

    good = DetectionPolicy(threshold=0.75, minimum_windows=1).to_dict()
    model = load_model(save_checkpoint(tmp_path / "good.pt", tiny_model, {"detection_policy": good}))
    assert DetectionPolicy.for_model(model) == DetectionPolicy(threshold=0.75, minimum_windows=1)
    assert not [w for w in recwarn if "policy" in str(w.message)]

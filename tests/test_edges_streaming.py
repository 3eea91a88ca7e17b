"""Live recognition at its edges: a policy changed while audio is flowing, several hops of audio
arriving in one block, and the backlog limit exactly reached. The windows a user sees and the ones
the detector decides on must stay those `classify` would score."""

import numpy as np
import pytest
import torch

from speechcmd.model.detection import DetectionPolicy
from speechcmd.model.streaming import StreamingRecognizer, display_hop_samples

RATE = 16_000


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.3, 0.3, round(seconds * RATE)).astype(np.float32)


def ends(updates) -> list[int]:
    """Each update's window end, in samples."""
    return [round(u.time * RATE) for u in updates]


def decisive(**settings) -> DetectionPolicy:
    """A policy whose average is the last window the detector saw, so `update.averaged` shows which it was."""
    return DetectionPolicy(**{"average_seconds": 0.0, "minimum_windows": 1, **settings})


def fed_to_detector(update) -> bool:
    return np.allclose(update.averaged, update.probabilities, atol=1e-7)


# --- the display hop --------------------------------------------------------------------------


@pytest.mark.parametrize(("detection_hop", "wanted", "display"), [
    (1600, 1600, 1600),  # as asked
    (1600, 480, 320),  # the largest divisor of 10 frames not above 480 samples: 2 frames
    (1600, 5000, 1600),  # never coarser than the detector
    (1600, 100, 160),  # less than a frame asked: one frame
    (1700, 800, 1700),  # a detector hop off the frame grid is drawn as it is
    (2400, 1600, 800),  # 15 frames: 5 fit, 15 do not
])
def test_the_display_hop_is_whole_frames_that_divide_the_detectors_hop(detection_hop, wanted, display):
    assert display_hop_samples(160, detection_hop, wanted) == display


# --- several hops at once ---------------------------------------------------------------------


def test_several_hops_pushed_at_once_give_one_window_per_hop_each_the_second_ending_there(tiny_model):
    audio = noise(1.7)
    live = StreamingRecognizer(tiny_model, DetectionPolicy(), with_gates=False, max_backlog_windows=100)
    updates = live.push(audio[:24_000])  # 1.5 s: six windows complete at once
    assert ends(updates) == [16_000, 17_600, 19_200, 20_800, 22_400, 24_000]
    updates += live.push(audio[24_000:])  # the rest: 1.6 s and 1.7 s, from what was kept of the first block
    assert ends(updates)[6:] == [25_600, 27_200]
    for update, end in zip(updates, ends(updates)):
        np.testing.assert_array_equal(update.window, audio[end - RATE : end])
    with torch.inference_mode():
        alone = tiny_model(torch.from_numpy(audio[27_200 - RATE : 27_200])[None]).softmax(-1)[0].numpy()
    np.testing.assert_allclose(updates[-1].probabilities, alone, atol=1e-6)
    assert live.received_samples == len(audio)


def test_audio_arriving_a_sample_at_a_time_gives_the_windows_of_one_block(tiny_model):
    audio = noise(1.2, seed=1)
    live = StreamingRecognizer(tiny_model, DetectionPolicy(), with_gates=False)
    assert live.push(audio[:15_990]) == []
    trickled = [u for k in range(15_990, len(audio)) for u in live.push(audio[k : k + 1])]
    assert ends(trickled) == [16_000, 17_600, 19_200]
    np.testing.assert_array_equal(trickled[-1].window, audio[19_200 - RATE : 19_200])


def test_no_window_is_scored_before_a_whole_second_has_arrived(tiny_model):
    live = StreamingRecognizer(tiny_model, DetectionPolicy(), with_gates=False)
    assert live.push(noise(1.0)[:-1]) == []
    assert ends(live.push(np.zeros(1, np.float32))) == [16_000]


def test_far_behind_live_audio_only_the_newest_windows_are_scored(tiny_model):
    live = StreamingRecognizer(tiny_model, DetectionPolicy(), with_gates=False)
    updates = live.push(noise(2.0))
    # 2 s at once: windows end every 0.1 s from 1.0 s, and those 5 hops (by default) or more behind 2.0 s are skipped
    assert ends(updates) == [25_600, 27_200, 28_800, 30_400, 32_000]
    assert ends(live.push(noise(0.1, seed=2))) == [33_600]  # then on, as the audio comes


def test_behind_live_audio_windows_only_drawn_are_skipped_before_the_detectors(tiny_model):
    # drawn every 50 ms, decided every 100 ms; 5 windows of backlog: 0.25 s of drawing, 0.5 s of deciding
    live = StreamingRecognizer(tiny_model, decisive(hop_seconds=0.1), hop_seconds=0.05, with_gates=False, max_backlog_windows=5)
    updates = live.push(noise(2.0))
    assert ends(updates) == [25_600, 27_200, 28_800, 29_600, 30_400, 31_200, 32_000]
    assert [fed_to_detector(u) for u in updates] == [True, True, True, False, True, False, True]


def test_the_display_windows_between_detector_windows_carry_no_detection(tiny_model):
    live = StreamingRecognizer(
        tiny_model, decisive(hop_seconds=0.2, threshold=0.0, suppression_seconds=0.0), hop_seconds=0.1,
        with_gates=False, max_backlog_windows=100,
    )
    updates = live.push(noise(2.0, seed=4))
    assert ends(updates) == list(range(16_000, 32_001, 1_600))
    assert [fed_to_detector(u) for u in updates] == [k % 2 == 0 for k in range(len(updates))]
    assert all(u.detection is None for u in updates[1::2])


# --- a policy changed on a running recognizer -------------------------------------------------


def test_a_policy_changed_mid_stream_moves_the_next_window_onto_the_new_grid_not_before_it(tiny_model):
    audio = noise(2.0, seed=3)
    live = StreamingRecognizer(tiny_model, decisive(hop_seconds=0.1), hop_seconds=0.1, with_gates=False, max_backlog_windows=100)
    before = live.push(audio[:20_000])  # 1.25 s: windows at 1.0, 1.1, 1.2 s; the next was due at 1.3 s
    assert ends(before) == [16_000, 17_600, 19_200]
    new = decisive(hop_seconds=0.07)  # 7 frames of 10 ms: drawn and decided every 70 ms
    live.policy = new
    assert live.policy is new and live.hop_samples == 1_120
    after = live.push(audio[20_000:])
    # the 70 ms grid from 1.0 s: 1.28 s has passed its turn, so the next is 1.35 s, then every 70 ms
    assert ends(after) == list(range(21_600, 32_001, 1_120))
    assert all(fed_to_detector(u) for u in after)
    for update, end in zip(after, ends(after)):
        np.testing.assert_array_equal(update.window, audio[end - RATE : end])


def test_a_policy_set_before_any_audio_starts_its_grid_at_the_first_second(tiny_model):
    live = StreamingRecognizer(tiny_model, DetectionPolicy(), with_gates=False, max_backlog_windows=100)
    live.policy = DetectionPolicy(hop_seconds=0.07)
    assert ends(live.push(noise(1.2))) == [16_000, 17_120, 18_240]


def test_a_policy_changed_on_the_window_grid_keeps_the_next_window_where_it_was(tiny_model):
    live = StreamingRecognizer(tiny_model, decisive(hop_seconds=0.1), with_gates=False, max_backlog_windows=100)
    live.push(noise(1.25))
    live.policy = decisive(hop_seconds=0.2)  # 1.3 s is on the 0.1 s display grid; the detector now every 0.2 s
    updates = live.push(noise(0.5, seed=5))
    assert ends(updates) == [20_800, 22_400, 24_000, 25_600, 27_200]
    assert [fed_to_detector(u) for u in updates] == [False, True, False, True, False]  # 1.4 and 1.6 s: 0.2 s from 1.0 s


def test_a_stricter_policy_set_mid_stream_decides_the_windows_after_it(tiny_model):
    audio = noise(2.0, seed=6)
    everything = decisive(threshold=0.0, suppression_seconds=0.0)  # whichever command leads is a detection
    live = StreamingRecognizer(tiny_model, everything, with_gates=False, max_backlog_windows=100)
    live.push(audio[:24_000])
    live.policy = decisive(threshold=1.0, suppression_seconds=0.0)  # nothing is that certain
    live.recognizer.finish()
    after = live.push(audio[24_000:])
    assert after and all(u.detection is None and u.pending is None for u in after)


def test_a_policy_is_fixed_once_made_so_a_running_recognizer_changes_only_through_its_setter():
    from dataclasses import FrozenInstanceError

    policy = DetectionPolicy()
    with pytest.raises(FrozenInstanceError):
        policy.threshold = 0.1  # type: ignore[misc]
    assert hash(policy) == hash(DetectionPolicy())


def test_a_live_detection_spans_the_one_second_window_that_found_it():
    from speechcmd.model.config import ModelConfig
    from speechcmd.model.network import SpeechCommandsModel

    torch.manual_seed(0)
    commands_only = SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), ["yes", "no"]).eval()
    anything = decisive(threshold=0.0, suppression_seconds=0.0)  # whichever command leads is a detection
    live = StreamingRecognizer(commands_only, anything, with_gates=False, max_backlog_windows=100)
    updates = live.push(noise(3.0, seed=10))
    found = [u.detection for u in updates if u.detection] + [u.pending for u in updates if u.pending]
    assert found and all(d.end - d.start == pytest.approx(1.0) for d in found)


def test_live_recognition_holds_only_the_audio_its_next_window_needs(tiny_model):
    live = StreamingRecognizer(tiny_model, DetectionPolicy(), with_gates=False)
    audio = noise(5.0, seed=11)
    for start in range(0, len(audio), 700):
        updates = live.push(audio[start : start + 700])
    # after 5 s, the next window ends at 5.1 s: it needs the audio from 4.1 s, and nothing before
    assert ends(updates)[-1] == 80_000
    assert live._buffer_start == 81_600 - RATE and live._buffer_start + len(live._buffer) == len(audio)


def test_flushing_a_stream_without_context_scores_nothing_more(tiny_model):
    live = StreamingRecognizer(tiny_model, DetectionPolicy(), with_gates=False)
    live.push(noise(1.05))
    assert live.flush() == []


def test_the_live_gates_and_mfcc_are_those_of_the_window(tiny_model):
    live = StreamingRecognizer(tiny_model, DetectionPolicy())  # gates are shown unless asked not to
    [update] = live.push(noise(1.0, seed=7))
    with torch.inference_mode():
        trace = tiny_model.trace(torch.from_numpy(update.window.copy())[None])
    np.testing.assert_allclose(update.mfcc, trace.mfcc[0].numpy(), atol=1e-6)
    assert len(update.gates) == 2
    np.testing.assert_allclose(update.gates[1]["forget_gate"], trace.layers[1]["forget_gate"][0].numpy(), atol=1e-6)
    np.testing.assert_allclose(update.probabilities, trace.probabilities[0].numpy(), atol=1e-6)


# --- the stream-context path ------------------------------------------------------------------


@pytest.fixture(scope="module")
def context_model():
    from speechcmd.model.config import FeatureConfig, ModelConfig
    from speechcmd.model.network import SpeechCommandsModel

    torch.manual_seed(0)
    features = FeatureConfig.speech_embedding(stream_context=True)
    model = SpeechCommandsModel(ModelConfig(hidden_size=8, pooling="mean", features=features), ["_silence_", "_unknown_", "yes", "no"])
    model.frontend.set_statistics(torch.full((96,), 0.5), torch.full((96,), 3.0))
    return model.eval()


def test_a_policy_changed_mid_stream_with_stream_context_draws_on_the_new_grid(context_model):
    live = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), hop_seconds=0.2, with_gates=False, max_backlog_windows=100)
    audio = noise(3.0, seed=8)
    first = live.push(audio[:32_000])
    assert set(np.diff(ends(first))) == {1_280}  # every 80 ms
    live.policy = decisive(hop_seconds=0.16)  # 2 embedding hops: 160 ms fits the 200 ms asked
    assert live.hop_samples == 2_560
    later = live.push(audio[32_000:])
    assert later and all((end - RATE) % 2_560 == 0 for end in ends(later))  # on the 160 ms grid from the start
    assert set(np.diff(ends(later))) == {2_560}
    assert all(fed_to_detector(u) for u in later)


def test_with_stream_context_far_behind_only_the_newest_windows_are_scored(context_model):
    everything = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), with_gates=False, max_backlog_windows=1_000)
    newest = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), with_gates=False, max_backlog_windows=3)
    audio = noise(3.0, seed=9)
    all_ends, newest_ends = ends(everything.push(audio)), ends(newest.push(audio))
    heard = len(audio) - context_model.config.features.lookahead_samples  # what the newest window can end at
    assert newest_ends == [end for end in all_ends if heard - end < 3 * 1_280]
    assert len(newest_ends) == 3


def test_a_stream_with_context_gives_its_first_window_at_one_second_then_one_every_hop(context_model):
    audio = noise(2.0, seed=12)
    live = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), with_gates=False, max_backlog_windows=100)
    updates = live.push(audio) + live.flush()
    assert ends(updates) == list(range(16_000, 32_001, 1_280))
    for update, end in zip(updates, ends(updates)):
        np.testing.assert_array_equal(update.window, audio[end - RATE : end])
    assert live.received_samples == len(audio) + context_model.config.features.lookahead_samples + 1_280  # flush's silence


def test_a_stream_with_context_ending_exactly_on_a_window_scores_that_window_at_its_end(context_model):
    audio = noise(1.8, seed=13)  # 28,800 samples: a window ends exactly there
    live = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), with_gates=False, max_backlog_windows=100)
    assert live.received_samples == 0
    updates = [u for start in range(0, len(audio), 1_000) for u in live.push(audio[start : start + 1_000])]
    assert live.received_samples == len(audio)
    updates += live.flush()
    assert ends(updates)[-1] == 28_800


def test_a_stream_with_context_scores_alike_with_and_without_gates(context_model):
    audio = noise(1.5, seed=14)
    plain = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), with_gates=False, max_backlog_windows=100)
    traced = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), with_gates=True, max_backlog_windows=100)
    quick, full = plain.push(audio) + plain.flush(), traced.push(audio) + traced.flush()
    assert ends(quick) == ends(full)
    for a, b in zip(quick, full):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)
        assert a.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_a_muted_stream_with_context_is_certain_silence(context_model):
    live = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), with_gates=False, max_backlog_windows=100)
    updates = live.push(np.zeros(24_000, np.float32)) + live.flush()
    assert updates and all(u.probabilities[0] > 0.999999 for u in updates)


def test_a_stream_with_context_keeps_only_the_audio_its_next_window_needs(context_model):
    live = StreamingRecognizer(context_model, decisive(hop_seconds=0.08), with_gates=False)
    audio = noise(4.0, seed=15)
    updates = [u for start in range(0, len(audio), 700) for u in live.push(audio[start : start + 700])]
    kept = live._stream
    assert kept._audio_start == ends(updates)[-1] + 1_280 - RATE  # the next window's first sample
    assert kept._audio_start + len(kept._audio) == len(audio)

"""Trimming a take at its edges: exact bounds to the sample (a frame late is wrong), empty and
sub-frame recordings, the loudness limits of what counts as speech, and the window cut at either
end of a recording. The "words" are steady blocks of level on whole 20 ms frames (320 samples at
16 kHz), so every bound is known exactly."""

import numpy as np
import pytest

from speechcmd.model.trim import frame_levels, frame_size, speech_bounds, speech_window

RATE = 16_000
FRAME = 320  # 20 ms
MARGIN = 1_280  # 80 ms


def db(level: float) -> float:
    """The amplitude of a steady signal at `level` dBFS."""
    return 10 ** (level / 20)


def recording(seconds: float = 2.0, floor: float = 0.0, **parts: tuple[int, int, float]) -> np.ndarray:
    """Digital silence (or a steady `floor` amplitude), with each part (first frame, last frame, amplitude)."""
    samples = np.full(round(seconds * RATE), floor, dtype=np.float64)
    for first, last, amplitude in parts.values():
        samples[first * FRAME : (last + 1) * FRAME] = amplitude
    return samples


def test_the_spoken_part_spans_its_first_to_its_last_loud_frame_plus_the_margin_exactly():
    bounds = speech_bounds(recording(word=(20, 29, 0.5)), RATE)
    assert bounds == (20 * FRAME - MARGIN, 30 * FRAME + MARGIN)  # 0.32 s to 0.68 s, not a frame more or less


def test_the_spoken_part_is_given_as_plain_integers():
    start, end = speech_bounds(recording(word=(20, 29, 0.5)), RATE)
    assert type(start) is int and type(end) is int


def test_a_word_at_the_very_start_is_bounded_by_the_recording_not_before_it():
    assert speech_bounds(recording(word=(0, 9, 0.5)), RATE) == (0, 10 * FRAME + MARGIN)
    assert speech_bounds(recording(word=(2, 9, 0.5)), RATE) == (0, 10 * FRAME + MARGIN)  # margin wider than the lead-in


def test_a_word_at_the_very_end_is_bounded_by_the_recording_not_after_it():
    samples = recording(seconds=1.0, word=(40, 49, 0.5))  # 50 frames: the word is the last 10
    assert speech_bounds(samples, RATE) == (40 * FRAME - MARGIN, len(samples))
    samples = np.concatenate([recording(seconds=1.0, word=(40, 49, 0.5)), np.zeros(100)])  # a part-frame tail
    assert speech_bounds(samples, RATE) == (40 * FRAME - MARGIN, len(samples))


def test_two_bursts_are_one_spoken_part_from_the_first_to_the_last():
    bounds = speech_bounds(recording(first=(20, 24, 0.5), second=(40, 44, 0.5)), RATE)
    assert bounds == (20 * FRAME - MARGIN, 45 * FRAME + MARGIN)


def test_an_empty_recording_holds_no_spoken_part():
    assert speech_bounds(np.zeros(0, np.float32), RATE) is None
    assert frame_levels(np.zeros(0, np.float32), RATE).shape == (0,)


def test_a_recording_shorter_than_one_frame_holds_no_spoken_part_however_loud():
    assert speech_bounds(np.full(FRAME - 1, 0.9, np.float32), RATE) is None
    assert frame_levels(np.full(FRAME - 1, 0.9, np.float32), RATE).shape == (0,)


def test_a_recording_of_one_frame_is_a_steady_sound_not_a_word():
    assert speech_bounds(np.full(FRAME, 0.9, np.float32), RATE) is None
    assert frame_levels(np.full(2 * FRAME - 1, 0.5, np.float32), RATE).shape == (1,)  # one level, for one whole frame


def test_frame_levels_are_the_rms_of_each_whole_frame_in_dbfs():
    samples = recording(seconds=0.1, full=(0, 0, 1.0), half=(1, 1, 0.5), quiet=(2, 2, 0.001))
    levels = frame_levels(np.concatenate([samples, np.ones(FRAME - 1)]), RATE)  # the part frame is left out
    np.testing.assert_allclose(levels, [0.0, 20 * np.log10(0.5), -60.0, -120.0, -120.0], atol=1e-9)


def test_a_frame_is_20_ms_at_any_rate_and_never_less_than_a_sample():
    assert (frame_size(16_000), frame_size(8_000), frame_size(44_100), frame_size(10)) == (320, 160, 882, 1)


# --- how loud is speech -----------------------------------------------------------------------


def test_a_word_whose_loudest_frame_is_exactly_minus_60_dbfs_is_still_found():
    assert speech_bounds(recording(word=(20, 29, 0.001)), RATE) == (20 * FRAME - MARGIN, 30 * FRAME + MARGIN)


def test_a_word_whose_loudest_frame_is_below_minus_60_dbfs_is_silence():
    assert speech_bounds(recording(word=(20, 29, db(-61.0))), RATE) is None


def test_a_quiet_ending_within_35_db_of_the_peak_belongs_to_the_word():
    samples = recording(word=(20, 29, db(-10.0)), ending=(30, 34, db(-10.0 - 34.5)))
    assert speech_bounds(samples, RATE) == (20 * FRAME - MARGIN, 35 * FRAME + MARGIN)


def test_a_sound_exactly_35_db_below_the_peak_still_belongs_to_the_word():
    samples = recording(word=(20, 29, db(-10.0)), ending=(30, 34, db(-45.0)))
    assert frame_levels(samples, RATE)[[20, 30]].tolist() == [-10.0, -45.0]  # exactly, in floating point
    assert speech_bounds(samples, RATE) == (20 * FRAME - MARGIN, 35 * FRAME + MARGIN)


def test_a_sound_more_than_35_db_below_the_peak_does_not():
    samples = recording(word=(20, 29, db(-10.0)), ending=(30, 34, db(-10.0 - 35.5)))
    assert speech_bounds(samples, RATE) == (20 * FRAME - MARGIN, 30 * FRAME + MARGIN)


def test_in_a_noisy_room_speech_must_rise_6_db_over_the_floor():
    # a floor of -30 dBFS, a word at -6: its ending 6.5 dB over the floor is speech, 5.5 dB over is room
    kept = recording(floor=db(-30.0), word=(20, 29, db(-6.0)), ending=(30, 34, db(-23.5)))
    assert speech_bounds(kept, RATE) == (20 * FRAME - MARGIN, 35 * FRAME + MARGIN)
    dropped = recording(floor=db(-30.0), word=(20, 29, db(-6.0)), ending=(30, 34, db(-24.5)))
    assert speech_bounds(dropped, RATE) == (20 * FRAME - MARGIN, 30 * FRAME + MARGIN)


def test_a_sound_exactly_6_db_over_the_floor_is_speech():
    samples = recording(floor=db(-30.0), word=(20, 29, db(-6.0)), ending=(30, 34, db(-24.0)))
    assert frame_levels(samples, RATE)[[0, 30]].tolist() == [-30.0, -24.0]  # exactly, in floating point
    assert speech_bounds(samples, RATE) == (20 * FRAME - MARGIN, 35 * FRAME + MARGIN)
    alone = recording(floor=db(-30.0), bump=(20, 29, db(-24.0)))  # and the loudest part of a recording
    assert speech_bounds(alone, RATE) == (20 * FRAME - MARGIN, 30 * FRAME + MARGIN)


def test_a_steady_sound_with_nothing_6_db_louder_is_no_word():
    assert speech_bounds(recording(floor=db(-30.0), bump=(20, 29, db(-24.5))), RATE) is None
    assert speech_bounds(recording(floor=db(-30.0), bump=(20, 29, db(-23.5))), RATE) is not None


def test_the_floor_is_the_level_below_which_a_tenth_of_the_frames_lie():
    # 100 frames: the first 10 near-silent (-60 dB), the room at -30, a word and its quiet ending. The
    # tenth percentile lies between the 10th and 11th quietest frames: -60 + 0.9 x 30 = -33 dB, so
    # speech must reach -27 dB: the ending at -25.5 does, the room does not.
    samples = recording(floor=db(-30.0), hush=(0, 9, db(-60.0)), word=(40, 49, db(-6.0)), ending=(50, 54, db(-25.5)))
    assert speech_bounds(samples, RATE) == (40 * FRAME - MARGIN, 55 * FRAME + MARGIN)


def test_a_loud_recording_is_found_at_its_loud_part_not_at_the_floor():
    samples = recording(floor=db(-50.0), word=(20, 29, db(-3.0)))
    assert speech_bounds(samples, RATE) == (20 * FRAME - MARGIN, 30 * FRAME + MARGIN)


# --- the window cut around the spoken part ----------------------------------------------------


def test_the_window_is_the_recording_centred_on_the_spoken_part():
    samples = np.arange(40_000, dtype=np.float32)
    window = speech_window(samples, (10_000, 12_000), 16_000)
    np.testing.assert_array_equal(window, samples[3_000:19_000])  # centre 11,000
    assert window.dtype == np.float32


def test_an_odd_window_is_centred_as_nearly_as_samples_allow():
    samples = np.arange(40_000, dtype=np.float32)
    np.testing.assert_array_equal(speech_window(samples, (10_000, 12_001), 15_999), samples[3_001:19_000])


def test_a_window_over_the_start_of_the_recording_is_zero_before_it():
    samples = np.arange(1, 30_001, dtype=np.float32)
    window = speech_window(samples, (0, 2_000), 16_000)  # centre 1,000: the window starts 7,000 before the recording
    assert not window[:7_000].any()
    np.testing.assert_array_equal(window[7_000:], samples[:9_000])


def test_a_window_over_the_end_of_the_recording_is_zero_after_it():
    samples = np.arange(1, 20_001, dtype=np.float32)
    window = speech_window(samples, (19_000, 20_000), 16_000)  # centre 19,500: 11,500 to 27,500
    np.testing.assert_array_equal(window[:8_500], samples[11_500:])
    assert not window[8_500:].any()


def test_a_recording_shorter_than_the_window_is_centred_in_silence():
    samples = np.arange(1, 4_001, dtype=np.float32)
    window = speech_window(samples, (1_000, 3_000), 16_000)
    np.testing.assert_array_equal(window[6_000:10_000], samples)
    assert not window[:6_000].any() and not window[10_000:].any()


@pytest.mark.parametrize(("length", "bounds"), [(20_000, (50_000, 60_000)), (0, (0, 0))])
def test_bounds_past_the_recording_or_an_empty_one_give_a_silent_window_not_an_error(length, bounds):
    window = speech_window(np.ones(length, np.float32), bounds, 16_000)
    assert window.shape == (16_000,) and not window.any()

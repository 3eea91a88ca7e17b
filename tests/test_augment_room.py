"""Training hears a room: noise at the SNR it claims (measured on the mixture), level changes and a
noise floor that behave, muted input as digital zeros, and all of it repeatable from the seed."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from speechcmd.train.augment import add_background, augment_waveform, hear_a_room, vary_speaker
from speechcmd.train.config import ROOM, AugmentConfig
from speechcmd.train.noise import (
    active_power_db, clicks, coloured_noise, impacts, mains_hum, measured_snr_db, mix_at_snr, power_db,
)

SR = 16_000
# Only what a test switches on: no reverberation, level change, floor or muting.
QUIET_ROOM = AugmentConfig(snr_db_min=-5.0, time_shift_ms=0, noise_probability=1.0, reverb_probability=0.0, gain_probability=0.0,
                           noise_floor_db_min=-200, noise_floor_db_max=-200, digital_silence_probability=0.0)
ROOM_RECIPE = AugmentConfig(**ROOM)


def words(batch: int = 8, seed: int = 0) -> torch.Tensor:
    """Word-like clips: a 0.4 s voiced burst (harmonics of 150-250 Hz) inside a second of near-silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(SR) / SR
    out = np.zeros((batch, SR), np.float32)
    for b in range(batch):
        f0, start = rng.uniform(150, 250), rng.integers(2000, 9000)
        voiced = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8)) * rng.uniform(0.05, 0.5)
        envelope = np.zeros(SR)
        envelope[start : start + 6400] = np.hanning(6400)
        out[b] = voiced * envelope + rng.normal(0, 1e-4, SR)
    return torch.from_numpy(out)


def bank(seconds: float = 20.0) -> torch.Tensor:
    rng = np.random.default_rng(1)
    return torch.from_numpy(np.concatenate([coloured_noise("pink", int(seconds * SR), rng), clicks(int(seconds * SR), rng)]))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 30.0])
def test_mixing_at_an_snr_gives_that_snr_measured_on_the_mixture(snr):
    clean = words()
    noise = torch.from_numpy(coloured_noise("white", SR * 8, np.random.default_rng(2)).reshape(8, SR))
    mixture = mix_at_snr(clean, noise, snr)
    assert torch.allclose(measured_snr_db(clean, mixture), torch.full((8,), snr), atol=0.01)
    # The word's own level is measured over the word, not the silence around it.
    assert (active_power_db(clean) > power_db(clean) + 3).all()


def test_training_noise_lies_in_the_configured_snr_range_measured_on_the_mixture():
    clean = words(64)
    config = replace(QUIET_ROOM, snr_db_min=0.0, snr_db_max=20.0)
    mixture = hear_a_room(clean, torch.zeros(64, dtype=torch.bool), bank(), config, SR, torch.Generator().manual_seed(0))
    snr = measured_snr_db(clean, mixture)
    assert (snr > -0.05).all() and (snr < 20.05).all()
    assert snr.max() - snr.min() > 10  # drawn across the range, not one value


def test_silence_examples_get_noise_at_an_absolute_level_and_words_keep_theirs():
    clean = words(32) * 0.0
    config = replace(QUIET_ROOM, silence_level_db_min=-60.0, silence_level_db_max=-30.0)
    out = hear_a_room(clean, torch.ones(32, dtype=torch.bool), bank(), config, SR, torch.Generator().manual_seed(0))
    level = power_db(out)
    assert (level > -60.1).all() and (level < -29.9).all()


def test_clips_marked_no_noise_stay_clean_and_the_others_get_the_same_noise_as_without_the_mark():
    """`--no-fragment-noise`: word fragments skip the background noise; every other clip of the batch
    is mixed exactly as it would have been."""
    clean = words(16)
    silence = torch.zeros(16, dtype=torch.bool)
    no_noise = torch.arange(16) % 2 == 0
    marked = hear_a_room(clean, silence, bank(), QUIET_ROOM, SR, torch.Generator().manual_seed(0), no_noise)
    unmarked = hear_a_room(clean, silence, bank(), QUIET_ROOM, SR, torch.Generator().manual_seed(0))
    assert torch.allclose(marked[no_noise], clean[no_noise], atol=1e-8)  # (a floor at -200 dB under them)
    assert torch.equal(marked[~no_noise], unmarked[~no_noise])
    assert (measured_snr_db(clean[~no_noise], unmarked[~no_noise]) < 31).all()  # they did get noise (QUIET_ROOM: -5 to 30 dB)
    fixed_gain = replace(QUIET_ROOM, snr_db_min=None)  # without the room recipe too
    out = add_background(clean, silence, bank(), fixed_gain, SR, torch.Generator().manual_seed(0), no_noise)
    assert torch.equal(out[no_noise], clean[no_noise]) and not torch.equal(out[~no_noise], clean[~no_noise])


def test_a_level_change_scales_the_whole_scene_by_the_drawn_gain():
    clean = words(16)
    config = replace(QUIET_ROOM, noise_probability=0.0, gain_probability=1.0, gain_db_min=-30.0, gain_db_max=-30.0)
    out = hear_a_room(clean, torch.zeros(16, dtype=torch.bool), bank(), config, SR, torch.Generator().manual_seed(0))
    assert torch.allclose(power_db(out), power_db(clean) - 30, atol=0.01)


def test_gain_is_drawn_in_decibels_over_the_whole_range():
    clean = words(256)
    config = replace(QUIET_ROOM, noise_probability=0.0, gain_probability=1.0, gain_db_min=-40.0, gain_db_max=6.0)
    out = hear_a_room(clean, torch.zeros(256, dtype=torch.bool), bank(), config, SR, torch.Generator().manual_seed(0))
    change = (power_db(out) - power_db(clean)).numpy()
    assert change.min() >= -40.01 and change.max() <= 6.01
    assert change.min() < -35 and change.max() > 0 and abs(np.median(change) + 17) < 5


def test_the_noise_floor_is_heard_under_digital_silence_at_its_level():
    zeros = torch.zeros(32, SR)
    config = replace(QUIET_ROOM, noise_probability=0.0, noise_floor_db_min=-80.0, noise_floor_db_max=-70.0)
    out = hear_a_room(zeros, torch.zeros(32, dtype=torch.bool), bank(), config, SR, torch.Generator().manual_seed(0))
    level = power_db(out)
    assert (level > -80.2).all() and (level < -69.8).all()


def test_muted_input_is_exact_digital_silence_and_only_for_silence_examples():
    clean = words(32)
    is_silence = torch.arange(32) < 16
    config = replace(ROOM_RECIPE, digital_silence_probability=1.0)
    out = hear_a_room(clean, is_silence, bank(), config, SR, torch.Generator().manual_seed(0))
    assert (out[:16] == 0).all()
    assert (out[16:].abs().amax(dim=1) > 0).all()


def test_room_augmentation_is_repeatable_from_the_seed_and_stays_in_full_scale():
    clean, is_silence = words(16), torch.arange(16) < 4
    first = augment_waveform(clean, is_silence, bank(), ROOM_RECIPE, SR, torch.Generator().manual_seed(5))
    again = augment_waveform(clean, is_silence, bank(), ROOM_RECIPE, SR, torch.Generator().manual_seed(5))
    other = augment_waveform(clean, is_silence, bank(), ROOM_RECIPE, SR, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.abs().max() <= 1.0 and first.shape == clean.shape


def test_reverberation_keeps_the_word_and_adds_a_tail():
    clean = words(8)
    config = replace(QUIET_ROOM, noise_probability=0.0, reverb_probability=1.0, reverb_rt60_max=0.6)
    out = hear_a_room(clean, torch.zeros(8, dtype=torch.bool), bank(), config, SR, torch.Generator().manual_seed(0))
    # Unit-energy impulse responses: the level stays within a few dB (some energy rings past the window).
    assert (abs(power_db(out) - power_db(clean)) < 6).all()
    # After the burst has ended the room still rings.
    last = [int(np.nonzero(np.abs(c.numpy()) > 1e-3)[0][-1]) for c in clean]
    tails = torch.stack([out[b, last[b] + 400 : last[b] + 1200] for b in range(8) if last[b] + 1200 < SR])
    assert (power_db(tails) > -70).all()


def test_synthetic_noise_kinds_come_at_minus_20_dbfs_with_their_colour():
    rng = np.random.default_rng(0)
    for samples in (coloured_noise("brown", SR * 2, rng), mains_hum(50, SR * 2, rng), clicks(SR * 2, rng)):
        assert abs(float(power_db(torch.from_numpy(samples)[None])) + 20) < 0.1
    spectrum = np.abs(np.fft.rfft(coloured_noise("brown", SR * 4, rng))) ** 2
    frequency = np.fft.rfftfreq(SR * 4, 1 / SR)
    low, high = spectrum[(frequency > 50) & (frequency < 200)].mean(), spectrum[(frequency > 2000) & (frequency < 4000)].mean()
    assert 10 * np.log10(low / high) > 20  # brown noise falls 6 dB per octave
    hum = mains_hum(60, SR * 2, rng)
    peak = np.fft.rfftfreq(len(hum), 1 / SR)[np.argmax(np.abs(np.fft.rfft(hum)))]
    assert peak % 60 == pytest.approx(0, abs=1)


def test_impacts_are_ringing_hits_between_quiet_stretches_and_never_clip():
    rng = np.random.default_rng(0)
    for samples in (impacts(SR * 10, rng), impacts(SR * 10, rng)):
        level, peak = float(power_db(torch.from_numpy(samples)[None])), float(np.abs(samples).max())
        # -20 dBFS, unless the loudest hit would pass 0.9 of full scale: then peak 0.9, quieter.
        assert peak <= 0.9 + 1e-6 and (abs(level + 20) < 0.1 or (abs(peak - 0.9) < 1e-3 and level < -20))
        frames = 10 * np.log10(np.mean(samples[: len(samples) // 160 * 160].reshape(-1, 160) ** 2, axis=1) + 1e-12)
        assert np.percentile(frames, 95) - np.percentile(frames, 10) > 20  # hits, then quiet between them
        spectrum = np.abs(np.fft.rfft(samples)) ** 2
        frequency = np.fft.rfftfreq(len(samples), 1 / SR)
        assert spectrum[(frequency > 800) & (frequency < 7000)].sum() > 0.8 * spectrum.sum()  # the resonances


def test_without_the_room_recipe_training_noise_is_the_first_models_fixed_gain_mix():
    clean, is_silence = words(16), torch.zeros(16, dtype=torch.bool)
    plain = AugmentConfig(time_shift_ms=0, noise_probability=1.0, noise_max_volume=0.0)
    assert torch.equal(augment_waveform(clean, is_silence, bank(), plain, SR, torch.Generator().manual_seed(0)), clean)


def test_the_dry_clip_is_the_same_speaker_variation_without_the_room():
    # What a clean-speech teacher hears (`--distill-clean`): the student's clip before the room.
    clean, is_silence = words(16) * 0.3, torch.zeros(16, dtype=torch.bool)  # quiet enough that nothing clips
    varied = replace(QUIET_ROOM, snr_db_min=10.0, snr_db_max=10.0, time_shift_ms=100.0, speed_range=0.1, volume_range=0.3)
    generator = torch.Generator().manual_seed(7)
    dry = vary_speaker(clean, varied, SR, generator)
    wet = add_background(dry, is_silence, bank(), varied, SR, generator)
    assert torch.equal(wet, augment_waveform(clean, is_silence, bank(), varied, SR, torch.Generator().manual_seed(7)))
    assert not torch.allclose(dry, clean, atol=1e-3)  # shifted, sped up or down, louder or quieter
    assert torch.allclose(measured_snr_db(dry, wet), torch.full((16,), 10.0), atol=0.5)  # the same clip under the noise (a loud click may clip a little)
    silent_room = replace(varied, noise_probability=0.0)
    generator = torch.Generator().manual_seed(7)
    dry = vary_speaker(clean, silent_room, SR, generator)
    assert torch.allclose(dry, add_background(dry, is_silence, bank(), silent_room, SR, generator), atol=1e-8)  # a -200 dB floor


def test_word_fragments_leave_only_the_start_or_the_end_of_a_command_at_a_window_edge_as_unknown():
    """A live detector scores a window every 0.1 s, so it hears the start of a word before the word
    is over and its end a moment after: training shows it such pieces as words that are not commands."""
    from speechcmd.train.augment import voiced_span, word_fragments

    clips = words(48, seed=3)
    targets = torch.tensor([2, 3, 0, 1] * 12)  # two commands, silence, unknown
    is_command = targets >= 2
    config = AugmentConfig(fragment_probability=1.0)
    out, labels = word_fragments(clips, targets, is_command, 1, config, SR, torch.Generator().manual_seed(0))
    again, _ = word_fragments(clips, targets, is_command, 1, config, SR, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # repeatable from the seed
    assert torch.equal(out[~is_command], clips[~is_command]) and torch.equal(labels[~is_command], targets[~is_command])
    assert (labels[is_command] == 1).all()
    first, last = voiced_span(clips, SR // 100)
    kinds = set()
    for b in torch.nonzero(is_command).flatten().tolist():
        x, y = clips[b].numpy(), out[b].numpy()
        lead = int(np.argmax(y != 0))  # zeros before the piece: the word's start at the window's end
        trail = int(np.argmax(y[::-1] != 0))  # zeros after it: the word's end at the window's start
        assert (lead == 0) != (trail == 0), "the piece sits at exactly one edge of the window"
        if lead:
            np.testing.assert_array_equal(y[lead:], x[: SR - lead])
            kept, kinds = (SR - lead) - int(first[b]), kinds | {"start"}
        else:
            np.testing.assert_array_equal(y[: SR - trail], x[trail:])
            kept, kinds = int(last[b]) - trail, kinds | {"end"}
        share = kept / int(last[b] - first[b])
        assert config.fragment_keep_min - 0.01 <= share <= config.fragment_keep_max + 0.01
    assert kinds == {"start", "end"}
    some, some_labels = word_fragments(clips, targets, is_command, 1, replace(config, fragment_probability=0.25), SR, torch.Generator().manual_seed(1))
    assert 0 < int((some_labels != targets).sum()) < int(is_command.sum())
    assert word_fragments(clips, targets, is_command, 1, replace(config, fragment_probability=0.0), SR, torch.Generator())[0] is clips

"""Batched augmentation on the training device: waveforms (batch, samples) and MFCCs.

Every function takes an explicit `torch.Generator`, so an epoch's augmentation is fixed by the
run's seed and the epoch number, and a resumed run repeats it exactly.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from speechcmd.train.config import AugmentConfig
from speechcmd.train.noise import decay_impulse_response, loud_frames, mix_at_snr, reverberate, scale_to_db


def _uniform(shape, low, high, generator, device):
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def time_shift(waveform: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each clip by its own random number of samples in [-max_shift, max_shift], zero-filled."""
    if max_shift <= 0:
        return waveform
    shift = torch.randint(-max_shift, max_shift + 1, (waveform.shape[0],), generator=generator, device=waveform.device)
    return shifted(waveform, shift)


def shifted(waveform: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Each clip moved later by its `shift` (batch,) in samples (earlier when negative), zero-filled."""
    samples = waveform.shape[1]
    source = torch.arange(samples, device=waveform.device)[None] - shift[:, None]  # (batch, samples)
    inside = (source >= 0) & (source < samples)
    return torch.gather(waveform, 1, source.clamp(0, samples - 1)) * inside


def voiced_span(waveform: torch.Tensor, frame: int, floor_db: float = 25.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Each clip's word: (first, last) sample of the frames whose energy is within `floor_db` of the
    clip's loudest frame. (batch, samples) -> two (batch,) long tensors."""
    energy, loud = loud_frames(waveform, frame, floor_db)
    loud &= energy > 0  # a silent clip has no word
    frames = energy.shape[1]
    index = torch.arange(frames, device=waveform.device)
    first = torch.where(loud, index, frames).amin(-1)
    last = torch.where(loud, index, -1).amax(-1)
    return first * frame, (last + 1) * frame


def word_fragments(waveform: torch.Tensor, targets: torch.Tensor, is_command: torch.Tensor, unknown: int,
                   config: AugmentConfig, sample_rate: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A share (`config.fragment_probability`) of command clips moved so that the window hears only
    a piece of the word, `fragment_keep_min` to `_max` of its voiced span: its start at the window's
    end (the word is still being said) or its end at the window's start (it was said a moment ago).
    Those clips become `unknown`: a live detector scores windows every 0.1 s, and a command must not
    be reported from a piece of one, nor a piece of another word be taken for one.
    Returns (waveform, targets); the inputs themselves when fragments are off."""
    if config.fragment_probability <= 0:
        return waveform, targets
    batch, samples = waveform.shape
    device = waveform.device
    chosen = is_command & (torch.rand(batch, generator=generator, device=device) < config.fragment_probability)
    first, last = voiced_span(waveform, sample_rate // 100)
    chosen &= last > first
    kept = (_uniform((batch,), config.fragment_keep_min, config.fragment_keep_max, generator, device) * (last - first)).long()
    head = torch.rand(batch, generator=generator, device=device) < 0.5
    # The word's start (up to first + kept) ends the window, or its end (from last - kept) begins it.
    moved = shifted(waveform, torch.where(head, samples - (first + kept), -(last - kept)))
    return torch.where(chosen[:, None], moved, waveform), torch.where(chosen, unknown, targets)


def noise_segments(noise: torch.Tensor, batch: int, samples: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, samples) random stretches of the concatenated noise bank."""
    start = torch.randint(0, noise.numel() - samples, (batch, 1), generator=generator, device=noise.device)
    return noise[start + torch.arange(samples, device=noise.device)[None]]


def mix_noise(
    waveform: torch.Tensor,
    noise: torch.Tensor,
    probability: float,
    max_volume: torch.Tensor | float,
    generator: torch.Generator,
) -> torch.Tensor:
    """Add a random segment of the noise bank to a random share of the clips at a random gain."""
    if probability <= 0 or noise.numel() <= waveform.shape[1]:
        return waveform
    batch, samples = waveform.shape
    segments = noise_segments(noise, batch, samples, generator)
    volume = torch.rand((batch, 1), generator=generator, device=waveform.device) * max_volume
    chosen = torch.rand((batch, 1), generator=generator, device=waveform.device) < probability
    return (waveform + segments * volume * chosen).clamp(-1, 1)


def change_volume(waveform: torch.Tensor, spread: float, generator: torch.Generator) -> torch.Tensor:
    if spread <= 0:
        return waveform
    gain = _uniform((waveform.shape[0], 1), 1 - spread, 1 + spread, generator, waveform.device)
    return (waveform * gain).clamp(-1, 1)


def change_speed(waveform: torch.Tensor, spread: float, generator: torch.Generator) -> torch.Tensor:
    """Resample the batch by one random factor (pitch and tempo together), keeping its length."""
    if spread <= 0:
        return waveform
    factor = float(_uniform((1,), 1 - spread, 1 + spread, generator, waveform.device))
    samples = waveform.shape[1]
    stretched = F.interpolate(waveform[:, None], scale_factor=1 / factor, mode="linear", align_corners=False)[:, 0]
    if stretched.shape[1] >= samples:
        return stretched[:, :samples]
    return F.pad(stretched, (0, samples - stretched.shape[1]))


def _mask(features: torch.Tensor, count: int, width: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """Zero `count` random bands of up to `width` along `dim` (1 = frames, 2 = coefficients)."""
    if count <= 0 or width <= 0:
        return features
    batch, size = features.shape[0], features.shape[dim]
    positions = torch.arange(size, device=features.device)[None]  # (1, size)
    keep = torch.ones(batch, size, dtype=torch.bool, device=features.device)
    for _ in range(count):
        length = torch.randint(0, width + 1, (batch, 1), generator=generator, device=features.device)
        start = (torch.rand((batch, 1), generator=generator, device=features.device) * (size - length + 1)).long()
        keep &= ~((positions >= start) & (positions < start + length))
    return features * (keep[:, :, None] if dim == 1 else keep[:, None, :])


def spec_augment(features: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment (Park et al. 2019) on normalized (batch, frames, coefficients): masked = mean."""
    features = _mask(features, config.time_masks, config.time_mask_frames, 1, generator)
    return _mask(features, config.freq_masks, config.freq_mask_bins, 2, generator)


def hear_a_room(waveform: torch.Tensor, is_silence: torch.Tensor, noise: torch.Tensor, config: AugmentConfig,
                sample_rate: int, generator: torch.Generator, no_noise: torch.Tensor | None = None) -> torch.Tensor:
    """What a microphone in a room adds to a clean clip, in the order it happens:

    1. reverberation (a share of clips): a decaying-noise room impulse response;
    2. background noise: under a word at an SNR relative to the word (`config.snr_db_*`); for a
       silence example, at an absolute level (`config.silence_level_db_*`), so silence spans
       everything from a quiet room to a loud one;
    3. a level change of the whole scene (a share of clips): near or far talker, low or high gain;
    4. muted input: a share of silence examples becomes digital zeros;
    5. the microphone's own hiss (`config.noise_floor_db_*`) under everything but muted input.

    waveform (batch, samples) in [-1, 1], is_silence (batch,) bool -> (batch, samples), clipped.
    `no_noise` (batch,) bool: clips that skip step 2 (the same draws are made, so the others are unchanged).
    """
    batch, samples = waveform.shape
    device = waveform.device

    def rand() -> torch.Tensor:  # (batch,) uniform draws, one per clip
        return torch.rand(batch, generator=generator, device=device)

    if config.reverb_probability > 0:
        rt60 = _uniform((batch,), 0.1, config.reverb_rt60_max, generator, device)
        wet = reverberate(waveform, decay_impulse_response(rt60, samples // 2, sample_rate, generator))
        waveform = torch.where((rand() < config.reverb_probability)[:, None], wet, waveform)
    if config.noise_probability > 0 and noise.numel() > samples:
        segments = noise_segments(noise, batch, samples, generator)
        snr = _uniform((batch,), config.snr_db_min, config.snr_db_max, generator, device)
        level = _uniform((batch,), config.silence_level_db_min, config.silence_level_db_max, generator, device)
        noisy = torch.where(is_silence[:, None], waveform + scale_to_db(segments, level), mix_at_snr(waveform, segments, snr))
        heard = rand() < config.noise_probability
        waveform = torch.where((heard if no_noise is None else heard & ~no_noise)[:, None], noisy, waveform)
    if config.gain_probability > 0:
        gain_db = _uniform((batch,), config.gain_db_min, config.gain_db_max, generator, device)
        gain = torch.where(rand() < config.gain_probability, 10 ** (gain_db / 20), 1.0)
        waveform = waveform * gain[:, None]
    muted = is_silence & (rand() < config.digital_silence_probability)
    floor_db = _uniform((batch,), config.noise_floor_db_min, config.noise_floor_db_max, generator, device)
    hiss = torch.randn((batch, samples), generator=generator, device=device) * 10 ** (floor_db / 20)[:, None]
    return torch.where(muted[:, None], 0.0, waveform + hiss).clamp(-1, 1)


def vary_speaker(waveform: torch.Tensor, config: AugmentConfig, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """Speaker and timing variation (TF's speech_commands input pipeline): volume, speed and time
    shift. Its output is the dry clip that `add_background` puts in a room."""
    waveform = change_volume(waveform, config.volume_range, generator)
    waveform = change_speed(waveform, config.speed_range, generator)
    return time_shift(waveform, round(config.time_shift_ms * sample_rate / 1000), generator)


def add_background(
    waveform: torch.Tensor,
    is_silence: torch.Tensor,
    noise: torch.Tensor,
    config: AugmentConfig,
    sample_rate: int,
    generator: torch.Generator,
    no_noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """What is heard around the clip: the room (`hear_a_room`), or, with `config.snr_db_min` None,
    TF's fixed-gain background noise; `no_noise` (batch,) bool: clips that get no background noise."""
    if config.snr_db_min is not None:
        return hear_a_room(waveform, is_silence, noise, config, sample_rate, generator, no_noise)
    volume = torch.where(is_silence[:, None], config.silence_noise_max_volume, config.noise_max_volume)
    mixed = mix_noise(waveform, noise, config.noise_probability, volume, generator)
    return mixed if no_noise is None else torch.where(no_noise[:, None], waveform, mixed)


def augment_waveform(
    waveform: torch.Tensor,
    is_silence: torch.Tensor,
    noise: torch.Tensor,
    config: AugmentConfig,
    sample_rate: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """All waveform-domain augmentations: `vary_speaker`, then `add_background`."""
    return add_background(vary_speaker(waveform, config, sample_rate, generator), is_silence, noise, config, sample_rate, generator)

"""Batched augmentation on the training device: waveforms (batch, samples) and MFCCs.

Every function takes an explicit `torch.Generator`, so an epoch's augmentation is fixed by the
run's seed and the epoch number, and a resumed run repeats it exactly.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from speechcmd.train.config import AugmentConfig


def _uniform(shape, low, high, generator, device):
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def time_shift(waveform: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each clip by its own random number of samples in [-max_shift, max_shift], zero-filled."""
    if max_shift <= 0:
        return waveform
    batch, samples = waveform.shape
    shift = torch.randint(-max_shift, max_shift + 1, (batch, 1), generator=generator, device=waveform.device)
    source = torch.arange(samples, device=waveform.device)[None] - shift  # (batch, samples)
    inside = (source >= 0) & (source < samples)
    return torch.gather(waveform, 1, source.clamp(0, samples - 1)) * inside


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
    start = torch.randint(0, noise.numel() - samples, (batch, 1), generator=generator, device=waveform.device)
    segments = noise[start + torch.arange(samples, device=waveform.device)[None]]  # (batch, samples)
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


def augment_waveform(
    waveform: torch.Tensor,
    is_silence: torch.Tensor,
    noise: torch.Tensor,
    config: AugmentConfig,
    sample_rate: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """All waveform-domain augmentations, in the order of TF's speech_commands input pipeline."""
    waveform = change_volume(waveform, config.volume_range, generator)
    waveform = change_speed(waveform, config.speed_range, generator)
    waveform = time_shift(waveform, round(config.time_shift_ms * sample_rate / 1000), generator)
    volume = torch.where(is_silence[:, None], config.silence_noise_max_volume, config.noise_max_volume)
    probability = config.noise_probability
    return mix_noise(waveform, noise, probability, volume, generator)

"""MFCC front-end: 16 kHz samples -> normalized frames of cepstral coefficients."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio
from torch import nn

from model import SAMPLE_RATE


@dataclass(frozen=True)
class FeatureConfig:
    """Front-end settings in the Speech Commands tradition (Warden 2018; Sainath & Parada 2015)."""

    sample_rate: int = SAMPLE_RATE
    window_seconds: float = 1.0  # one classification window
    frame_ms: float = 30.0  # analysis frame length
    hop_ms: float = 10.0  # frame step
    n_mels: int = 40
    n_mfcc: int = 40
    f_min: float = 20.0
    f_max: float = 7600.0
    # Subtract each window's own mean from every coefficient but c0 (cepstral mean normalization):
    # removes the microphone's and room's fixed colouring, which differs between speakers' devices.
    # c0 (energy) keeps its level so that loudness still tells silence from speech.
    window_mean_normalization: bool = False

    def __post_init__(self):
        if min(self.sample_rate, self.window_seconds, self.frame_ms, self.hop_ms, self.n_mels, self.n_mfcc) <= 0:
            raise ValueError("feature sizes and rates must be positive.")
        if self.n_mfcc > self.n_mels or not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError("need n_mfcc <= n_mels and 0 <= f_min < f_max <= half the sample rate.")

    @property
    def window_samples(self) -> int:
        return round(self.window_seconds * self.sample_rate)

    @property
    def frame_samples(self) -> int:
        return round(self.frame_ms * self.sample_rate / 1000)

    @property
    def hop_samples(self) -> int:
        return round(self.hop_ms * self.sample_rate / 1000)

    @property
    def fft_size(self) -> int:
        """Next power of two above the frame: 512 for 480 samples (the frame is zero-padded)."""
        return 1 << (self.frame_samples - 1).bit_length()

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` samples (no centre padding; at least one)."""
        return 1 + max(0, num_samples - self.fft_size) // self.hop_samples


class MFCC(nn.Module):
    """Log-mel cepstral coefficients, normalized per coefficient.

    Input: waveform (batch, samples) float32 at `config.sample_rate`, values in [-1, 1].
    Output: (batch, frames, n_mfcc); frames = 1 + (samples - fft_size) // hop: 97 for 1 s.

    The normalization statistics are buffers, so they are saved in the checkpoint with the
    weights and move to the model's device with it. `mean`=0 and `std`=1 until `set_statistics`.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        self.config = config
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=config.sample_rate,
            n_mfcc=config.n_mfcc,
            # log_mels: natural log instead of dB with top_db clipping, whose reference level
            # torchaudio takes over the whole batch and would make a clip's features batch-dependent.
            log_mels=True,
            melkwargs=dict(
                n_fft=config.fft_size,
                win_length=config.frame_samples,
                hop_length=config.hop_samples,
                n_mels=config.n_mels,
                f_min=config.f_min,
                f_max=config.f_max,
                center=False,
                window_fn=torch.hann_window,
            ),
        )
        self.register_buffer("mean", torch.zeros(config.n_mfcc))
        self.register_buffer("std", torch.ones(config.n_mfcc))

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-5))

    def raw(self, waveform: torch.Tensor) -> torch.Tensor:
        """Unnormalized coefficients (batch, frames, n_mfcc), for computing statistics."""
        if waveform.shape[-1] < self.config.fft_size:
            waveform = nn.functional.pad(waveform, (0, self.config.fft_size - waveform.shape[-1]))
        coefficients = self.mfcc(waveform).transpose(-1, -2)  # (batch, n_mfcc, frames) -> (batch, frames, n_mfcc)
        if self.config.window_mean_normalization:
            mean = coefficients.mean(dim=1, keepdim=True)  # (batch, 1, n_mfcc)
            mean[..., 0] = 0
            coefficients = coefficients - mean
        return coefficients

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return (self.raw(waveform) - self.mean) / self.std

"""MFCC front-end: 16 kHz samples -> normalized frames of cepstral coefficients."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from speechcmd.model.config import FeatureConfig


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

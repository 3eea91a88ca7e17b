"""Front-ends: 16 kHz samples -> normalized frames, the recurrent layers' input.

`MFCC`: cepstral coefficients (the classic Speech Commands front-end). `SpeechEmbedding`: a frozen
pretrained convolutional network over log-mel bands. `make_frontend` builds the one a config names.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch
import torchaudio
from torch import nn

from speechcmd.model.config import (
    EMBEDDING_MEL_FFT, EMBEDDING_MEL_HOP, EMBEDDING_SIZE, EMBEDDING_SPAN, FeatureConfig,
)  # fmt: skip


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


# The speech_embedding network's layers after its first: (output channels, kernel, max-pool after it).
# Kernels alternate along the mel axis (1 x 3, padded) and along time (3 x 1, unpadded).
EMBEDDING_LAYERS = (
    (24, (1, 3), None), (24, (3, 1), (2, 2)),
    (48, (1, 3), None), (48, (3, 1), None), (48, (1, 3), None), (48, (3, 1), (1, 2)),
    (72, (1, 3), None), (72, (3, 1), None), (72, (1, 3), None), (72, (3, 1), (2, 2)),
    (96, (1, 3), None), (96, (3, 1), None), (96, (1, 3), None), (96, (3, 1), (1, 2)),
    (96, (1, 3), None), (96, (3, 1), None), (96, (1, 3), None), (96, (3, 1), (2, 2)),
)  # fmt: skip


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _activation_(x: torch.Tensor) -> torch.Tensor:
    """The embedding's activation, in place: leaky ReLU (slope 0.2) clamped at -0.4."""
    return nn.functional.leaky_relu_(x, 0.2).clamp_min_(-0.4)


def pretrained_embedding_path() -> Path:
    """The converted weights shipped in the package (speechcmd.resources/models)."""
    return Path(str(resources.files("speechcmd.resources") / "models" / "speech_embedding.pt"))


class SpeechEmbedding(nn.Module):
    """Google's pretrained speech_embedding (Lin et al. 2020, "Training keyword spotters with
    limited and synthesized speech data"), a frozen convolutional front-end trained on some 200
    million clips: log-mel bands -> one 96-value embedding every 80 ms, normalized per value.

    Input: waveform (batch, samples) float32 at 16 kHz, values in [-1, 1].
    Output: (batch, frames, 96); frames = 13 for 1 s (`FeatureConfig.num_frames`).

    The window gets `config.context_samples` of zeros on each side, so its 13 embeddings (each
    seeing 775 ms) are centred from 11 ms to 971 ms into it. Log-mel bands as the original model
    computes them (torchaudio, matched to 5e-5): power of a 400-sample Hann frame in a 512-point
    FFT every 10 ms, 32 Slaney mel bands from 60 to 3800 Hz, in dB of 16-bit sample values,
    floored 80 dB under the window's loudest, then x/10 + 2. The network: 20 convolutions with
    leaky ReLU clamped at -0.4 and five max-pools; its weights are buffers (saved in every
    checkpoint, never trained, moved with the model), loaded by `load_pretrained`.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig.speech_embedding()):
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate, n_fft=EMBEDDING_MEL_FFT, win_length=400, hop_length=EMBEDDING_MEL_HOP,
            f_min=config.f_min, f_max=config.f_max, n_mels=config.n_mels, center=False, power=2.0, norm="slaney", mel_scale="slaney",
        )  # fmt: skip
        # The kernels are kept channels-last, the layout the convolutions run in, so no call converts
        # them: loading a state dict copies into them and `.to()` keeps it (bench/README.md).
        self.register_buffer("first_weight", _channels_last(torch.zeros(24, 1, 3, 3)))  # no bias; ReLU, then batch norm
        self.register_buffer("first_scale", torch.ones(24))  # the batch norm, folded: x * scale + shift
        self.register_buffer("first_shift", torch.zeros(24))
        channels = 24
        for k, (out, kernel, _) in enumerate(EMBEDDING_LAYERS):
            self.register_buffer(f"weight{k}", _channels_last(torch.zeros(out, channels, *kernel)))
            self.register_buffer(f"bias{k}", torch.zeros(out))
            channels = out
        self.register_buffer("last_weight", _channels_last(torch.zeros(96, 96, 3, 1)))  # no bias, no activation
        self.register_buffer("mean", torch.zeros(EMBEDDING_SIZE))
        self.register_buffer("std", torch.ones(EMBEDDING_SIZE))

    def load_pretrained(self, path: str | Path | None = None) -> SpeechEmbedding:
        """Load the network's weights (`scripts/convert_speech_embedding.py` made the file)."""
        path = Path(path) if path is not None else pretrained_embedding_path()
        weights = torch.load(path, map_location="cpu", weights_only=True)
        with torch.no_grad():
            for name, value in weights.items():
                getattr(self, name).copy_(value)
        return self

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-5))

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, mel frames, 32), the network's input scale."""
        context = self.config.context_samples
        waveform = nn.functional.pad(waveform, (context, context))
        span = EMBEDDING_MEL_FFT + (EMBEDDING_SPAN - 1) * EMBEDDING_MEL_HOP  # samples of one embedding
        if waveform.shape[-1] < span:  # fewer than 76 mel frames: pad to one embedding
            waveform = nn.functional.pad(waveform, (0, span - waveform.shape[-1]))
        power = self.mel(waveform * 32768.0).transpose(-1, -2)  # (batch, frames, 32), 16-bit scale
        db = 10 * torch.log10(power.clamp_min(1e-10))
        db = torch.maximum(db, db.amax(dim=(-1, -2), keepdim=True) - 80.0)
        return db / 10 + 2

    def raw(self, waveform: torch.Tensor) -> torch.Tensor:
        """Unnormalized embeddings (batch, frames, 96), for computing statistics."""
        # Channels last from the first layer on: oneDNN runs these small kernels fastest so, and the
        # activations are applied in place (a new tensor per op cost as much as the convolutions).
        x = _channels_last(nn.functional.pad(self.log_mel(waveform), (1, 1)).unsqueeze(1))  # (batch, 1, mel frames, 34)
        x = nn.functional.conv2d(x, self.first_weight).relu_()
        x = _activation_(torch.addcmul(self.first_shift[:, None, None], x, self.first_scale[:, None, None]))
        for k, (_, kernel, pool) in enumerate(EMBEDDING_LAYERS):
            padding = (0, 1) if kernel == (1, 3) else 0
            x = _activation_(nn.functional.conv2d(x, getattr(self, f"weight{k}"), getattr(self, f"bias{k}"), padding=padding))
            if pool is not None:
                x = nn.functional.max_pool2d(x, pool)
        x = nn.functional.conv2d(x, self.last_weight)  # (batch, 96, frames, 1)
        return x[..., 0].transpose(-1, -2).contiguous()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return (self.raw(waveform) - self.mean) / self.std


def make_frontend(config: FeatureConfig, pretrained: bool = False) -> nn.Module:
    """The front-end `config` describes; `pretrained`: load the embedding's shipped weights (not
    needed when a state dict with them is loaded next)."""
    if config.kind == "speech_embedding":
        frontend = SpeechEmbedding(config)
        return frontend.load_pretrained() if pretrained else frontend
    return MFCC(config)

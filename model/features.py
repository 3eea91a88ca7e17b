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

import numpy as np

from speechcmd.model.config import (
    EMBEDDING_FLOOR_DB, EMBEDDING_MEL_FFT, EMBEDDING_MEL_HOP, EMBEDDING_SIZE, EMBEDDING_SPAN, FeatureConfig,
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
        # torch.stft centres the analysis window in the FFT frame; `coefficients` does the same.
        spectrogram = self.mfcc.MelSpectrogram.spectrogram
        left = (config.fft_size - spectrogram.win_length) // 2
        frame_window = nn.functional.pad(spectrogram.window, (left, config.fft_size - spectrogram.win_length - left))
        self.register_buffer("frame_window", frame_window, persistent=False)  # (fft size,)

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-5))

    def coefficients(self, waveform: torch.Tensor) -> torch.Tensor:
        """torchaudio's MFCC transform (its mel filters and DCT matrix, `self.mfcc`), computed in
        a few whole-window ops instead of its general path: (batch, samples) -> (batch, frames, n_mfcc).
        The same values to float rounding (tests/test_features.py); about half the time for one window."""
        melspectrogram = self.mfcc.MelSpectrogram
        frames = waveform.unfold(-1, self.config.fft_size, self.config.hop_samples)  # (batch, frames, fft size)
        spectrum = torch.fft.rfft(frames * self.frame_window)  # (batch, frames, fft size / 2 + 1)
        power = spectrum.real.square() + spectrum.imag.square()  # |X|^2 without the square root
        log_mel = torch.log(power @ melspectrogram.mel_scale.fb + 1e-6)  # (batch, frames, n_mels); torchaudio's log offset
        return log_mel @ self.mfcc.dct_mat  # (batch, frames, n_mfcc)

    def raw(self, waveform: torch.Tensor) -> torch.Tensor:
        """Unnormalized coefficients (batch, frames, n_mfcc), for computing statistics."""
        if waveform.shape[-1] < self.config.fft_size:
            waveform = nn.functional.pad(waveform, (0, self.config.fft_size - waveform.shape[-1]))
        coefficients = self.coefficients(waveform)
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
    """The embedding's activation, in place: leaky ReLU (slope 0.2) clamped at -0.4. Out of place
    where autograd follows `x` (layers being tuned): its backward needs the unclamped values."""
    if x.requires_grad:
        return nn.functional.leaky_relu(x, 0.2).clamp_min(-0.4)
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
    floored 80 dB under the window's loudest, then x/10 + 2. With `config.stream_context` the floor
    is fixed (`EMBEDDING_FLOOR_DB`) and the caller may give the window with its context
    (`forward(..., context_included=True)`, `config.input_samples` long) instead of zeros. The network: 20 convolutions with
    leaky ReLU clamped at -0.4 and five max-pools; its weights are buffers (saved in every
    checkpoint, moved with the model), loaded by `load_pretrained`, and frozen: only training that
    asks for it (`unfreeze`, `speechcmd train --tune-embedding`) moves the last few.
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

    def unfreeze(self, convolutions: int) -> list[nn.Parameter]:
        """Make the weights and biases of the network's last `convolutions` convolutions (of 20)
        trainable parameters, for training that tunes the top of the embedding; returns them. Their
        names in the state dict stay the same, so a checkpoint saved so loads into a frozen front-end."""
        names = [("first_weight",)] + [(f"weight{k}", f"bias{k}") for k in range(len(EMBEDDING_LAYERS))] + [("last_weight",)]
        if not 1 <= convolutions <= len(names):
            raise ValueError(f"the embedding has {len(names)} convolutions: tune 1 to {len(names)}, not {convolutions}.")
        tuned = []
        for name in [name for convolution in names[-convolutions:] for name in convolution]:
            if name in self._buffers:
                self.register_parameter(name, nn.Parameter(self._buffers.pop(name)))
            tuned.append(getattr(self, name))
        return tuned

    def log_mel(self, waveform: torch.Tensor, context_included: bool = False) -> torch.Tensor:
        """(batch, samples) -> (batch, mel frames, 32), the network's input scale. The waveform
        gets zeros of context on each side unless `context_included` (stream context only)."""
        if not context_included:
            context = self.config.context_samples
            waveform = nn.functional.pad(waveform, (context, context))
        elif not self.config.stream_context:
            raise ValueError("only a front-end with stream_context takes windows with their context.")
        span = EMBEDDING_MEL_FFT + (EMBEDDING_SPAN - 1) * EMBEDDING_MEL_HOP  # samples of one embedding
        if waveform.shape[-1] < span:  # fewer than 76 mel frames: pad to one embedding
            waveform = nn.functional.pad(waveform, (0, span - waveform.shape[-1]))
        return self.bands(self.mel(waveform * 32768.0).transpose(-1, -2))  # (batch, frames, 32), 16-bit scale

    def bands(self, power: torch.Tensor) -> torch.Tensor:
        """Mel band powers (batch, frames, 32) of 16-bit samples -> the network's input scale."""
        db = 10 * torch.log10(power.clamp_min(1e-10))
        if self.config.stream_context:
            db = db.clamp_min(EMBEDDING_FLOOR_DB)
        else:
            db = torch.maximum(db, db.amax(dim=(-1, -2), keepdim=True) - 80.0)
        return db / 10 + 2

    def layers(self):
        """The network as (weight, bias, padding, pool, activation) per convolution, in order."""
        yield self.first_weight, None, 0, None, "first"
        for k, (_, kernel, pool) in enumerate(EMBEDDING_LAYERS):
            yield getattr(self, f"weight{k}"), getattr(self, f"bias{k}"), (0, 1) if kernel == (1, 3) else 0, pool, "leaky"
        yield self.last_weight, None, 0, None, None

    def convolve(self, x: torch.Tensor, weight, bias, padding, activation) -> torch.Tensor:
        x = nn.functional.conv2d(x, weight, bias, padding=padding)
        if activation == "first":  # ReLU, then the batch norm, then the embedding's activation
            x = torch.addcmul(self.first_shift[:, None, None], x.relu_(), self.first_scale[:, None, None])
        return _activation_(x) if activation else x

    def network(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Log-mel bands (batch, mel frames, 32) -> unnormalized embeddings (batch, frames, 96)."""
        # Channels last from the first layer on: oneDNN runs these small kernels fastest so, and the
        # activations are applied in place (a new tensor per op cost as much as the convolutions).
        x = _channels_last(nn.functional.pad(log_mel, (1, 1)).unsqueeze(1))  # (batch, 1, mel frames, 34)
        for weight, bias, padding, pool, activation in self.layers():
            x = self.convolve(x, weight, bias, padding, activation)
            if pool is not None:
                x = nn.functional.max_pool2d(x, pool)
        return x[..., 0].transpose(-1, -2).contiguous()  # (batch, 96, frames, 1) -> (batch, frames, 96)

    def raw(self, waveform: torch.Tensor, context_included: bool = False) -> torch.Tensor:
        """Unnormalized embeddings (batch, frames, 96), for computing statistics."""
        return self.network(self.log_mel(waveform, context_included))

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        return (raw - self.mean) / self.std

    def forward(self, waveform: torch.Tensor, context_included: bool = False) -> torch.Tensor:
        return self.normalize(self.raw(waveform, context_included))


class EmbeddingStream:
    """The embeddings of a stream of audio (a recording read in blocks, or a microphone), each
    computed once: what `SpeechEmbedding` with `stream_context` gives a window with its context,
    to float rounding. The stream starts with `context_samples` of zeros, so embedding j is the
    one centred 11 ms + j x 80 ms into it, and the window starting at j x 80 ms is embeddings
    j .. j + 12. Every convolution keeps the last input frames its kernel needs and every pool an
    odd frame left over, so each block only computes what it adds (80 ms of audio: one embedding).
    """

    def __init__(self, frontend: SpeechEmbedding):
        if not frontend.config.stream_context:
            raise ValueError("an embedding stream needs a front-end with stream_context.")
        self.frontend = frontend
        self.reset()

    def reset(self) -> None:
        self._samples = np.zeros(self.frontend.config.context_samples, dtype=np.float32)
        self._tails: dict[int, torch.Tensor] = {}  # convolution -> its last input frames
        self._odd: dict[int, torch.Tensor] = {}  # pool -> a frame waiting for its pair
        self.count = 0  # embeddings given so far

    @torch.inference_mode()
    def push(self, samples: np.ndarray) -> torch.Tensor:
        """Append samples; returns the embeddings they completed, (n, 96), normalized."""
        frontend = self.frontend
        device = frontend.mean.device
        self._samples = np.concatenate([self._samples, np.asarray(samples, dtype=np.float32)])
        frames = 1 + (len(self._samples) - EMBEDDING_MEL_FFT) // EMBEDDING_MEL_HOP if len(self._samples) >= EMBEDDING_MEL_FFT else 0
        if frames == 0:
            return torch.zeros(0, EMBEDDING_SIZE, device=device)
        used = (frames - 1) * EMBEDDING_MEL_HOP + EMBEDDING_MEL_FFT
        chunk = torch.from_numpy(self._samples[:used]).to(device)[None]
        self._samples = self._samples[frames * EMBEDDING_MEL_HOP :]
        power = frontend.mel(chunk * 32768.0).transpose(-1, -2)  # (1, frames, 32)
        x = _channels_last(nn.functional.pad(frontend.bands(power), (1, 1)).unsqueeze(1))
        for index, (weight, bias, padding, pool, activation) in enumerate(frontend.layers()):
            span = weight.shape[2]  # frames in time the kernel covers
            if span > 1:
                if index in self._tails:
                    x = torch.cat([self._tails[index], x], dim=2)
                self._tails[index] = x[:, :, -(span - 1) :]
                if x.shape[2] < span:
                    return torch.zeros(0, EMBEDDING_SIZE, device=device)
            x = frontend.convolve(x, weight, bias, padding, activation)
            if pool is not None:
                if pool[0] > 1:
                    if index in self._odd:
                        x = torch.cat([self._odd.pop(index), x], dim=2)
                    if x.shape[2] % 2:
                        self._odd[index] = x[:, :, -1:]
                        x = x[:, :, :-1]
                    if x.shape[2] == 0:
                        return torch.zeros(0, EMBEDDING_SIZE, device=device)
                x = nn.functional.max_pool2d(x, pool)
        embeddings = frontend.normalize(x[0, :, :, 0].t())
        self.count += len(embeddings)
        return embeddings


def make_frontend(config: FeatureConfig, pretrained: bool = False) -> nn.Module:
    """The front-end `config` describes; `pretrained`: load the embedding's shipped weights (not
    needed when a state dict with them is loaded next)."""
    if config.kind == "speech_embedding":
        frontend = SpeechEmbedding(config)
        return frontend.load_pretrained() if pretrained else frontend
    return MFCC(config)

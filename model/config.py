"""The settings of a model, with no heavy imports: the command line takes its defaults from here.

`FeatureConfig` describes the front-end (samples -> frames), `ModelConfig` the network on top.
Both are frozen, validated on construction and saved in every checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from speechcmd.model import SAMPLE_RATE

CELLS = ("lstm", "peephole", "gru")
POOLINGS = ("last", "mean")


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


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.1  # between recurrent layers and before the head, in training only
    pooling: str = "last"  # how the per-step outputs become one vector: last step or mean over time
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def __post_init__(self):
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {self.cell!r}.")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}.")
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError("hidden_size and num_layers must be positive.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(sorted(unknown))}.")
        values = dict(data)
        if "features" in values:
            values["features"] = FeatureConfig(**values["features"])
        return cls(**values)

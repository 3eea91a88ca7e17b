"""The settings of a model, with no heavy imports: the command line takes its defaults from here.

`FeatureConfig` describes the front-end (samples -> frames), `ModelConfig` the network on top.
Both are frozen, validated on construction and saved in every checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from speechcmd.model import SAMPLE_RATE

CELLS = ("lstm", "peephole", "gru")
POOLINGS = ("last", "mean")
FRONT_ENDS = ("mfcc", "speech_embedding")

# Google's speech_embedding front-end (Lin et al. 2020; `features.SpeechEmbedding`) is fixed by its
# pretrained weights: 32 log-mel bands (60 to 3800 Hz) of 25 ms frames every 10 ms; one 96-value
# embedding per 76 frames (775 ms), every 8 frames (80 ms).
EMBEDDING_SETTINGS = dict(frame_ms=775.0, hop_ms=80.0, n_mels=32, n_mfcc=32, f_min=60.0, f_max=3800.0)
EMBEDDING_SIZE = 96
EMBEDDING_MEL_FFT, EMBEDDING_MEL_HOP = 512, 160  # samples: the log-mel frames' FFT and step (400-sample window)
EMBEDDING_SPAN, EMBEDDING_STRIDE = 76, 8  # mel frames: what one embedding sees, and the step between two
# With stream context, the log-mel bands' fixed floor in dB of 16-bit sample values: about the level
# 16-bit quantization noise itself reaches in these bands (-5 dB), so only digital silence meets it.
EMBEDDING_FLOOR_DB = 0.0


def check_range(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    """Refuse a setting outside [low, high] (or of the wrong type) in one sentence naming it.

    Every size is bounded, not just positive: a model file's settings come from outside, and an
    absurd one (3 million mel bands, a 0-sample hop) would cost gigabytes or crash at inference."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not (math.isfinite(value) and low <= value <= high):
        what = "a whole number" if integer else "a number"
        raise ValueError(f"{name} must be {what} from {low:g} to {high:g}, not {value!r}.")


# What a model's labels may be. They come from a model file (so from anywhere): each is drawn as
# text in the window and names a folder of takes when a word is taught, so each must be a short,
# printable word and never a path.
MAX_LABELS = 1000
MAX_LABEL_LENGTH = 64


def label_problem(label: Any) -> str | None:
    """Why `label` cannot be a model's label (a phrase for a sentence), or None."""
    if not isinstance(label, str):
        return f"the label {label!r} is not text"
    if not 1 <= len(label) <= MAX_LABEL_LENGTH:
        return f"a label is {len(label):,} characters long, not 1 to {MAX_LABEL_LENGTH}"
    if not label.isprintable():
        return f"the label {ascii(label)} holds characters that cannot be shown (control characters, line breaks or bytes that are not text)"
    if "/" in label or "\\" in label or label in (".", ".."):
        return f"the label {label!r} is a path, not a word"
    return None


def check_labels(labels: Any) -> None:
    """Refuse, in one sentence, labels that are not a list of 2 to MAX_LABELS distinct short words."""
    if not isinstance(labels, (list, tuple)):
        raise ValueError("its labels are not a list of words.")
    if not 2 <= len(labels) <= MAX_LABELS:
        raise ValueError(f"it has {len(labels):,} labels, not 2 to {MAX_LABELS:,}.")
    for label in labels:
        if problem := label_problem(label):
            raise ValueError(f"{problem}.")
    if len(set(labels)) != len(labels):
        raise ValueError("its labels are not distinct.")


def known_settings(config_class, values: Any, what: str) -> dict[str, Any]:
    """`values` as keyword arguments of `config_class`, refusing a non-dictionary or an unknown name
    in one sentence: settings read from a file must not reach a constructor unchecked."""
    if not isinstance(values, dict):
        raise ValueError(f"the {what} settings are not a dictionary.")
    unknown = set(values) - {f.name for f in fields(config_class)}
    if unknown:
        raise ValueError(f"unknown {what} settings: {', '.join(sorted(map(str, unknown)))}.")
    return dict(values)


# What one window may cost: recurrent steps (frames), and spectrum values computed for them. The
# largest sensible settings (10 s windows, 30 ms frames every 10 ms, at 48 kHz) need 1,000 frames and
# 1,025,000 values; the defaults 98 and 25,137.
MAX_FRAMES = 1000
MAX_SPECTRUM_VALUES = 2_000_000


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
    # "mfcc": the cepstral front-end above. "speech_embedding": a frozen pretrained convolutional
    # front-end over log-mel bands; its frame and band settings are fixed (EMBEDDING_SETTINGS).
    kind: str = "mfcc"
    # Speech embedding only. False: each window is embedded alone, with zeros around it and log-mel
    # bands floored 80 dB under its loudest. True: a window's outer frames hear the real audio around
    # it (`context_samples` each side) and the bands have a fixed floor (`EMBEDDING_FLOOR_DB`), so
    # every frame is a function of the stream alone: a recording or a live stream is embedded once,
    # each frame computed once (`features.EmbeddingStream`), and a window is 13 consecutive frames.
    stream_context: bool = False

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in FRONT_ENDS:
            raise ValueError(f"the front-end kind must be one of {', '.join(FRONT_ENDS)}, not {self.kind!r}.")
        if self.kind == "speech_embedding":
            wrong = [f"{name}={getattr(self, name)!r}" for name, value in EMBEDDING_SETTINGS.items() if getattr(self, name) != value]
            if wrong or self.sample_rate != SAMPLE_RATE or self.window_mean_normalization:
                raise ValueError(
                    f"the speech_embedding front-end is fixed by its pretrained weights ({', '.join(wrong) or 'other settings'} "
                    f"given); build it with FeatureConfig.speech_embedding()."
                )
        check_range("sample_rate", self.sample_rate, 8_000, 48_000, integer=True)
        check_range("window_seconds", self.window_seconds, 0.1, 10.0)
        check_range("frame_ms", self.frame_ms, 5.0, 1000.0)
        # At least one sample per hop, and no gaps between frames.
        check_range("hop_ms", self.hop_ms, 1000 / self.sample_rate, self.frame_ms)
        check_range("n_mels", self.n_mels, 1, 256, integer=True)
        check_range("n_mfcc", self.n_mfcc, 1, self.n_mels, integer=True)
        check_range("f_min", self.f_min, 0.0, self.sample_rate / 2)
        check_range("f_max", self.f_max, 0.0, self.sample_rate / 2)
        if not self.f_min < self.f_max:
            raise ValueError(f"f_min ({self.f_min}) must be below f_max ({self.f_max}).")
        if not isinstance(self.stream_context, bool):
            raise ValueError(f"stream_context must be true or false, not {self.stream_context!r}.")
        if self.stream_context and self.kind != "speech_embedding":
            raise ValueError("stream_context applies to the speech_embedding front-end only.")
        if not isinstance(self.window_mean_normalization, bool):
            raise ValueError(f"window_mean_normalization must be true or false, not {self.window_mean_normalization!r}.")
        # Each setting in range is not enough: a 10 s window of 1000 ms frames every sample is 480,000
        # frames of 65,536-point spectra (100 GB) and as many recurrent steps. Bound what a window costs.
        frames = self.num_frames(self.window_samples)
        spectrum = frames * (self.fft_size // 2 + 1)
        if frames > MAX_FRAMES or spectrum > MAX_SPECTRUM_VALUES:
            raise ValueError(
                f"window_seconds, frame_ms and hop_ms together ({self.window_seconds:g} s, {self.frame_ms:g} ms, {self.hop_ms:g} ms) "
                f"make {frames:,} frames of {self.fft_size:,}-point spectra a window, more than the {MAX_FRAMES:,} frames "
                f"and {MAX_SPECTRUM_VALUES:,} spectrum values allowed; use a longer hop, shorter frames or a shorter window."
            )

    @classmethod
    def speech_embedding(cls, window_seconds: float = 1.0, stream_context: bool = False) -> FeatureConfig:
        """The settings of the pretrained speech_embedding front-end."""
        return cls(window_seconds=window_seconds, kind="speech_embedding", stream_context=stream_context, **EMBEDDING_SETTINGS)

    @property
    def feature_size(self) -> int:
        """Values per frame: the coefficients, or the embedding's 96."""
        return EMBEDDING_SIZE if self.kind == "speech_embedding" else self.n_mfcc

    @property
    def name(self) -> str:
        """What the frames are, in a sentence: "MFCC" or "speech embedding"."""
        return "speech embedding" if self.kind == "speech_embedding" else "MFCC"

    @property
    def title(self) -> str:
        """What the frames are, as a view's title: "MFCC" or "Speech embedding"."""
        return self.name[:1].upper() + self.name[1:]

    @property
    def context_samples(self) -> int:
        """Zeros the embedding front-end adds on each side of a window, half its 76-frame span, so
        that its frames are centred across the window: 6080 samples (380 ms). 0 for MFCC."""
        return EMBEDDING_SPAN // 2 * EMBEDDING_MEL_HOP if self.kind == "speech_embedding" else 0

    @property
    def input_samples(self) -> int:
        """Samples of audio one window's features depend on: the window and, with `stream_context`,
        `context_samples` of the audio on each side of it."""
        return self.window_samples + (2 * self.context_samples if self.stream_context else 0)

    @property
    def lookahead_samples(self) -> int:
        """With `stream_context`, how far past a window's end its last frame hears: a stream's window
        is scored this much later (5,792 samples, 362 ms, for 1 s windows). 0 otherwise."""
        if not self.stream_context:
            return 0
        frames = self.num_frames(self.window_samples)
        last_end = (frames - 1) * EMBEDDING_STRIDE * EMBEDDING_MEL_HOP + (EMBEDDING_SPAN - 1) * EMBEDDING_MEL_HOP + EMBEDDING_MEL_FFT
        return last_end - self.context_samples - self.window_samples

    @property
    def first_frame_centre(self) -> float:
        """The first frame's centre, in samples from the start of the window."""
        if self.kind == "speech_embedding":
            # the span of 76 mel frames (each a centred 512-point FFT, every 160 samples), less the context
            return ((EMBEDDING_SPAN - 1) * EMBEDDING_MEL_HOP + EMBEDDING_MEL_FFT) / 2 - self.context_samples
        return self.fft_size / 2

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
        """Next power of two above the frame: 512 for 480 samples (the frame is zero-padded).
        The embedding front-end's mel frames are 400 samples in a 512-point FFT."""
        if self.kind == "speech_embedding":
            return EMBEDDING_MEL_FFT
        return 1 << (self.frame_samples - 1).bit_length()

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` samples (no centre padding; at least one)."""
        if self.kind == "speech_embedding":
            mel_frames = 1 + max(0, num_samples + 2 * self.context_samples - EMBEDDING_MEL_FFT) // EMBEDDING_MEL_HOP
            return 1 + max(0, mel_frames - EMBEDDING_SPAN) // EMBEDDING_STRIDE
        return 1 + max(0, num_samples - self.fft_size) // self.hop_samples


@dataclass(frozen=True)
class ModelConfig:
    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 2
    dropout: float = 0.1  # between recurrent layers and before the head, in training only
    pooling: str = "last"  # how the per-step outputs become one vector: last step or mean over time
    features: FeatureConfig = field(default_factory=FeatureConfig)
    # A window whose loudest sample is below this (dB re full scale) is `_silence_` whatever the
    # network says: no input, a muted microphone, a room far too quiet for any word. Speech even
    # 40 dB below a normal level peaks well above it. None: no gate.
    silence_gate_dbfs: float | None = -60.0
    # The head also reads the front-end's features averaged over the window, beside the pooled
    # recurrent output. Taught models (`train.adapt`) use it: the frozen LSTM was trained to lump
    # every other word into `_unknown_`, so a new word's row finds little in its output alone.
    head_reads_frontend: bool = False

    def __post_init__(self):
        if not isinstance(self.cell, str) or self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {self.cell!r}.")
        if not isinstance(self.pooling, str) or self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {self.pooling!r}.")
        check_range("hidden_size", self.hidden_size, 1, 1024, integer=True)
        check_range("num_layers", self.num_layers, 1, 8, integer=True)
        check_range("dropout", self.dropout, 0.0, 0.9)
        if self.silence_gate_dbfs is not None:
            check_range("silence_gate_dbfs", self.silence_gate_dbfs, -150.0, 0.0)
        if not isinstance(self.features, FeatureConfig):
            raise ValueError("features must be a FeatureConfig.")
        if not isinstance(self.head_reads_frontend, bool):
            raise ValueError(f"head_reads_frontend must be true or false, not {self.head_reads_frontend!r}.")

    @property
    def head_input_size(self) -> int:
        """What the head reads: the pooled recurrent output, and with `head_reads_frontend` the mean feature."""
        return self.hidden_size + (self.features.feature_size if self.head_reads_frontend else 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        values = known_settings(cls, data, "model")
        if "features" in values:
            values["features"] = FeatureConfig(**known_settings(FeatureConfig, values["features"], "feature"))
        return cls(**values)

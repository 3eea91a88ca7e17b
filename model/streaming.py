"""Streaming recognition: live samples in, one scored window per hop out.

`StreamingRecognizer.push` takes whatever block of 16 kHz samples has arrived (from a microphone
ring buffer or a file being played) and returns one `StreamUpdate` per hop that became complete:
the 1 s window ending there, its probabilities, optionally every gate of the model for that
window, and the detection (if any) from the shared `CommandRecognizer` policy. It is plain Python
with no Qt, so the GUI runs it on a worker thread and the tests run it directly.

Two hops: windows are scored for display every `hop_samples` (a whole number of the model's MFCC
frame hops, so consecutive gate maps are the same frames shifted by whole columns), and the
detector is fed only the windows on the policy's grid (every `policy.hop_seconds` from the start
of the stream), exactly the windows `Classifier.scan` feeds it. So the window and
`speechcmd classify` find the same detections in the same audio.

Each window is computed from a fresh network state (the model classifies 1 s windows), so the gate
maps of two windows differ over the audio they share.

A model whose speech embedding has stream context (`FeatureConfig.stream_context`) is fed through
`StreamWindows` instead: the stream is embedded once, one embedding per 80 ms hop, and each window
is the 13 embeddings over it. Its windows are on the 80 ms grid and are scored when their last
embedding has heard `lookahead_samples` (362 ms) past their end.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from speechcmd.model.detection import CommandRecognizer, Detection, DetectionPolicy
from speechcmd.model.features import EmbeddingStream
from speechcmd.model.network import SpeechCommandsModel


@dataclass
class StreamWindow:
    end: int  # stream position of the window's end, in samples
    window: np.ndarray  # (window samples,) the audio of the window
    features: torch.Tensor  # (frames, feature size) its front-end features, from the stream

    @property
    def peak(self) -> float:
        """The window's loudest sample, what the silence gate reads."""
        return float(np.abs(self.window).max(initial=0.0))


class StreamWindows:
    """The windows of a stream for a model with stream context, every `every` samples (a whole
    number of its 80 ms embedding hops): the stream is embedded once, and a window is the run of
    embeddings over it, as `SpeechEmbedding` with the window's real context computes them."""

    def __init__(self, model: SpeechCommandsModel, every: int):
        features = model.config.features
        if not features.stream_context:
            raise ValueError("StreamWindows is for a model whose speech embedding has stream context.")
        self.features = features
        self.embedder = EmbeddingStream(model.frontend)
        self.every = every
        self.frame_hop = features.hop_samples
        self.window_samples = features.window_samples
        self.frames = features.num_frames(self.window_samples)
        self.lookahead = features.lookahead_samples
        self.reset()

    @property
    def every(self) -> int:
        return self._every

    @every.setter
    def every(self, every: int) -> None:
        features = self.features
        if every % features.hop_samples:
            raise ValueError(
                f"this model scores windows every {features.hop_ms:g} ms, so the detector's hop must be a whole "
                f"number of {features.hop_ms:g} ms, not {every / features.sample_rate * 1000:g} ms."
            )
        self._every = every

    def reset(self) -> None:
        self.embedder.reset()
        self._recent: torch.Tensor | None = None  # the last frames - 1 embeddings
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_start = 0  # stream position of self._audio[0]
        self.received = 0

    def push(self, samples: np.ndarray) -> list[StreamWindow]:
        """Append samples; returns the windows they completed, in order."""
        samples = np.asarray(samples, dtype=np.float32)
        self._audio = np.concatenate([self._audio, samples])
        self.received += len(samples)
        first = self.embedder.count  # index of the first new embedding
        new = self.embedder.push(samples)
        if len(new) == 0:
            return []
        recent = new if self._recent is None else torch.cat([self._recent, new])
        offset = first - (len(recent) - len(new))  # index of recent[0]
        windows = []
        for index in range(max(first, self.frames - 1), first + len(new)):
            start = (index - self.frames + 1) * self.frame_hop  # the window's first sample
            if start % self.every:
                continue
            at = start - self._audio_start
            windows.append(StreamWindow(
                end=start + self.window_samples,
                window=self._audio[at : at + self.window_samples],
                features=recent[index - self.frames + 1 - offset : index + 1 - offset],
            ))  # fmt: skip
        self._recent = recent[-(self.frames - 1) :]
        # keep the audio from the start of the next window that can still come
        next_start = (first + len(new) - self.frames + 1) * self.frame_hop
        drop = min(max(0, next_start - self._audio_start), len(self._audio))
        self._audio = self._audio[drop:]
        self._audio_start += drop
        return windows

    def finish(self) -> list[StreamWindow]:
        """The stream ended: the windows still waiting for audio after them hear silence there;
        only windows that end within the stream are given (as `inference.sliding_windows`)."""
        received = self.received
        windows = self.push(np.zeros(self.lookahead + self.frame_hop, dtype=np.float32))
        return [w for w in windows if w.end <= received]


@dataclass
class StreamUpdate:
    time: float  # seconds since the stream started, at the end of the window
    window: np.ndarray  # (window samples,)
    probabilities: np.ndarray  # (labels,) for this window
    averaged: np.ndarray  # (labels,) averaged by the detection policy
    detection: Detection | None  # a detection this window finished (final score)
    pending: Detection | None = None  # the detection under way after this window (score so far)
    mfcc: np.ndarray | None = None  # (frames, n_mfcc), with gates only
    gates: list[dict[str, np.ndarray]] = field(default_factory=list)  # per layer: name -> (frames, hidden)


class StreamingRecognizer:
    def __init__(
        self,
        model: SpeechCommandsModel,
        policy: DetectionPolicy | None = None,
        hop_seconds: float = 0.1,
        with_gates: bool = True,
        max_backlog_windows: int = 5,
    ):
        self.model = model.eval()
        self.features = model.config.features
        self.sample_rate = self.features.sample_rate
        self.window_samples = self.features.window_samples
        self.requested_hop_seconds = hop_seconds
        self.with_gates = with_gates
        # If scoring falls behind live audio, older complete windows are skipped, never queued.
        self.max_backlog_windows = max_backlog_windows
        policy = DetectionPolicy.default_for(model) if policy is None else policy
        self.recognizer = CommandRecognizer(model.labels, policy, self.window_samples / self.sample_rate)
        self.policy = policy
        self.reset()

    @property
    def policy(self) -> DetectionPolicy:
        return self.recognizer.policy

    @policy.setter
    def policy(self, policy: DetectionPolicy) -> None:
        self.recognizer.policy = policy
        self.detection_hop_samples = policy.hop_samples(self.sample_rate)
        self.hop_samples = display_hop_samples(
            self.features.hop_samples, self.detection_hop_samples, round(self.requested_hop_seconds * self.sample_rate)
        )
        if hasattr(self, "_next_end"):  # mid-stream: the next window moves onto the new grid
            steps = -(-(self._next_end - self.window_samples) // self.hop_samples)
            self._next_end = self.window_samples + steps * self.hop_samples
        if getattr(self, "_stream", None) is not None:
            self._stream.every = self.hop_samples

    def reset(self) -> None:
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream position of self._buffer[0], in samples
        self._next_end = self.window_samples
        self._stream = StreamWindows(self.model, self.hop_samples) if self.features.stream_context else None
        self.recognizer.reset()

    @property
    def received_samples(self) -> int:
        return self._stream.received if self._stream is not None else self._buffer_start + len(self._buffer)

    def push(self, samples: np.ndarray) -> list[StreamUpdate]:
        if self._stream is not None:
            return self._push_stream(samples)
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float32)])
        total = self.received_samples
        updates = []
        while self._next_end <= total:
            start = self._next_end - self.window_samples - self._buffer_start
            for_detector = self._on_detector_grid(self._next_end)
            # Behind live audio, windows only drawn are skipped first; the detector's only far behind.
            behind = (total - self._next_end) // (self.detection_hop_samples if for_detector else self.hop_samples)
            if behind < self.max_backlog_windows:
                window = self._buffer[start : start + self.window_samples]
                updates.append(self._score(self._next_end, window, for_detector))
            self._next_end += self.hop_samples
        keep_from = self._next_end - self.window_samples - self._buffer_start
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:]
            self._buffer_start += keep_from
        return updates

    def _push_stream(self, samples: np.ndarray) -> list[StreamUpdate]:
        """`push` for a model with stream context: every embedding is computed, and of the windows
        they complete, those too far behind live audio are skipped as in `push`."""
        windows = self._stream.push(samples)
        total = self._stream.received - self.features.lookahead_samples  # audio the windows can end at
        updates = []
        for window in windows:
            for_detector = self._on_detector_grid(window.end)
            behind = (total - window.end) // (self.detection_hop_samples if for_detector else self.hop_samples)
            if behind < self.max_backlog_windows:
                updates.append(self._score_stream(window, for_detector))
        return updates

    def flush(self) -> list[StreamUpdate]:
        """The stream ended: with stream context, the windows still waiting for audio after them
        are scored as if silence followed (as `classify` scores a recording's end). Call before `finish`."""
        if self._stream is None:
            return []
        return [self._score_stream(w, self._on_detector_grid(w.end)) for w in self._stream.finish()]

    def _on_detector_grid(self, end: int) -> bool:
        return (end - self.window_samples) % self.detection_hop_samples == 0

    def finish(self) -> Detection | None:
        """The stream ended: the detection under way, if any, is final."""
        return self.recognizer.finish()

    @torch.inference_mode()
    def _score(self, end: int, window: np.ndarray, for_detector: bool) -> StreamUpdate:
        batch = torch.from_numpy(window.copy())[None].to(self.model.head.weight.device)
        if self.with_gates:
            return self._traced(end, window, for_detector, self.model.trace(batch))
        return self._update(end, window, for_detector, self.model(batch).softmax(-1)[0].cpu().numpy())

    @torch.inference_mode()
    def _score_stream(self, window: StreamWindow, for_detector: bool) -> StreamUpdate:
        """`_score` with stream context: the window's embeddings come from the stream."""
        peak = torch.tensor([window.peak], device=window.features.device)
        if self.with_gates:
            return self._traced(window.end, window.window, for_detector, self.model.trace_features(window.features[None], peak))
        probabilities = self.model.logits_of_stream(window.features[None], peak).softmax(-1)[0].cpu().numpy()
        return self._update(window.end, window.window, for_detector, probabilities)

    def _traced(self, end: int, window: np.ndarray, for_detector: bool, trace) -> StreamUpdate:
        # Whole tensors to numpy, then the window: indexing a numpy array costs a tenth of a torch index.
        gates = [{name: value.cpu().numpy()[0] for name, value in layer.items()} for layer in trace.layers]
        return self._update(end, window, for_detector, trace.probabilities.cpu().numpy()[0], trace.mfcc.cpu().numpy()[0], gates)

    def _update(self, end: int, window: np.ndarray, for_detector: bool, probabilities: np.ndarray, mfcc=None, gates=()) -> StreamUpdate:
        time = end / self.sample_rate
        detection = self.recognizer.process(time, probabilities) if for_detector else None
        return StreamUpdate(
            time=time,
            window=window,
            probabilities=probabilities,
            averaged=self.recognizer.averaged(),
            detection=detection,
            pending=self.recognizer.pending,
            mfcc=mfcc,
            gates=list(gates),
        )


def display_hop_samples(frame_hop: int, detection_hop: int, wanted: int) -> int:
    """The display hop nearest `wanted` (not above it, where possible) that is a whole number of
    MFCC frame hops and divides the detector's hop, so every detector window is also drawn.
    A detector hop that is not a whole number of frames is used as the display hop itself."""
    if detection_hop % frame_hop:
        return detection_hop
    frames = detection_hop // frame_hop
    divisors = [k for k in range(1, frames + 1) if frames % k == 0]
    fitting = [k for k in divisors if k * frame_hop <= wanted] or divisors[:1]
    return max(fitting) * frame_hop


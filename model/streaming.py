"""Streaming recognition: live samples in, one scored window per hop out.

`StreamingRecognizer.push` takes whatever block of 16 kHz samples has arrived (from a microphone
ring buffer or a file being played) and returns one `StreamUpdate` per hop that became complete:
the 1 s window ending there, its probabilities, optionally every gate of the model for that
window, and the detection (if any) from the shared `CommandRecognizer` policy. It is plain Python
with no Qt, so the GUI runs it on a worker thread and the tests run it directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from speechcmd.model.detection import CommandRecognizer, Detection, DetectionPolicy
from speechcmd.model.network import SpeechCommandsModel


@dataclass
class StreamUpdate:
    time: float  # seconds since the stream started, at the end of the window
    window: np.ndarray  # (window samples,)
    probabilities: np.ndarray  # (labels,) for this window
    averaged: np.ndarray  # (labels,) averaged by the detection policy
    detection: Detection | None
    mfcc: np.ndarray | None = None  # (frames, n_mfcc), with gates only
    gates: list[dict[str, np.ndarray]] = field(default_factory=list)  # per layer: name -> (frames, hidden)


class StreamingRecognizer:
    def __init__(
        self,
        model: SpeechCommandsModel,
        policy: DetectionPolicy = DetectionPolicy(),
        hop_seconds: float = 0.1,
        with_gates: bool = True,
        max_backlog_windows: int = 5,
    ):
        self.model = model.eval()
        features = model.config.features
        self.sample_rate = features.sample_rate
        self.window_samples = features.window_samples
        self.hop_samples = max(1, round(hop_seconds * self.sample_rate))
        self.with_gates = with_gates
        # If scoring falls behind live audio, older complete windows are skipped, never queued.
        self.max_backlog_windows = max_backlog_windows
        self.recognizer = CommandRecognizer(model.labels, policy, self.window_samples / self.sample_rate)
        self.reset()

    @property
    def policy(self) -> DetectionPolicy:
        return self.recognizer.policy

    @policy.setter
    def policy(self, policy: DetectionPolicy) -> None:
        self.recognizer.policy = policy

    def reset(self) -> None:
        self._buffer = np.zeros(0, dtype=np.float32)
        self._buffer_start = 0  # stream position of self._buffer[0], in samples
        self._next_end = self.window_samples
        self.recognizer.reset()

    @property
    def received_samples(self) -> int:
        return self._buffer_start + len(self._buffer)

    def push(self, samples: np.ndarray) -> list[StreamUpdate]:
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float32)])
        total = self.received_samples
        due = (total - self._next_end) // self.hop_samples + 1 if total >= self._next_end else 0
        if due > self.max_backlog_windows:
            self._next_end += (due - self.max_backlog_windows) * self.hop_samples
        updates = []
        while self._next_end <= total:
            start = self._next_end - self.window_samples - self._buffer_start
            updates.append(self._score(self._next_end, self._buffer[start : start + self.window_samples]))
            self._next_end += self.hop_samples
        keep_from = self._next_end - self.window_samples - self._buffer_start
        if keep_from > 0:
            self._buffer = self._buffer[keep_from:]
            self._buffer_start += keep_from
        return updates

    @torch.inference_mode()
    def _score(self, end: int, window: np.ndarray) -> StreamUpdate:
        device = next(self.model.parameters()).device
        batch = torch.from_numpy(window.copy())[None].to(device)
        mfcc, gates = None, []
        if self.with_gates:
            trace = self.model.trace(batch)
            probabilities = trace.probabilities[0].cpu().numpy()
            mfcc = trace.mfcc[0].cpu().numpy()
            gates = [{name: value[0].cpu().numpy() for name, value in layer.items()} for layer in trace.layers]
        else:
            probabilities = self.model(batch).softmax(-1)[0].cpu().numpy()
        time = end / self.sample_rate
        detection = self.recognizer.process(time, probabilities)
        return StreamUpdate(
            time=time,
            window=window,
            probabilities=probabilities,
            averaged=self.recognizer.averaged(),
            detection=detection,
            mfcc=mfcc,
            gates=gates,
        )

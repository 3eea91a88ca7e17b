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
    detection: Detection | None  # a detection this window finished (final score)
    pending: Detection | None = None  # the detection under way after this window (score so far)
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
        self.features = model.config.features
        self.sample_rate = self.features.sample_rate
        self.window_samples = self.features.window_samples
        self.requested_hop_seconds = hop_seconds
        self.with_gates = with_gates
        # If scoring falls behind live audio, older complete windows are skipped, never queued.
        self.max_backlog_windows = max_backlog_windows
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
        updates = []
        while self._next_end <= total:
            start = self._next_end - self.window_samples - self._buffer_start
            for_detector = (self._next_end - self.window_samples) % self.detection_hop_samples == 0
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

    def finish(self) -> Detection | None:
        """The stream ended: the detection under way, if any, is final."""
        return self.recognizer.finish()

    @torch.inference_mode()
    def _score(self, end: int, window: np.ndarray, for_detector: bool) -> StreamUpdate:
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
        detection = self.recognizer.process(time, probabilities) if for_detector else None
        return StreamUpdate(
            time=time,
            window=window,
            probabilities=probabilities,
            averaged=self.recognizer.averaged(),
            detection=detection,
            pending=self.recognizer.pending,
            mfcc=mfcc,
            gates=gates,
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


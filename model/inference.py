"""Offline recognition: clips and recordings -> labels and detections, batched through the model.

A clip about one window long (up to `LONG_RECORDING_SECONDS`) is classified as one window;
anything longer is scanned with a sliding window every `policy.hop_seconds` and the window scores
are turned into detections by the same `CommandRecognizer` the GUI uses, with the same policy
(`DetectionPolicy.for_model`), so the window and `classify` report the same detections in the same
audio. A detection's "score" is its peak averaged probability (see `model.detection`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from speechcmd.model.audio import AudioError, audio_duration, load_audio, short_clip_warning, stream_audio
from speechcmd.model.detection import CommandRecognizer, Detection, DetectionPolicy
from speechcmd.model.network import SpeechCommandsModel
from speechcmd.model.streaming import StreamWindows

LONG_RECORDING_SECONDS = 1.5


def fit_to_window(samples: np.ndarray, window_samples: int, hop_samples: int = 160) -> np.ndarray:
    """Pad a short clip with silence at the end, or cut a long one to its loudest window."""
    if len(samples) < window_samples:
        return np.pad(samples, (0, window_samples - len(samples)))
    if len(samples) == window_samples:
        return samples
    energy = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    starts = np.arange(0, len(samples) - window_samples + 1, hop_samples)
    best = starts[np.argmax(energy[starts + window_samples] - energy[starts])]
    return samples[best : best + window_samples]


def sliding_windows(
    blocks: Iterable[np.ndarray], window_samples: int, hop_samples: int
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (end sample, window) every `hop_samples` over a stream of blocks, in bounded memory."""
    buffer = np.zeros(0, dtype=np.float32)
    consumed = 0  # samples dropped from the front of `buffer` so far
    next_start = 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while next_start + window_samples <= consumed + len(buffer):
            offset = next_start - consumed
            yield next_start + window_samples, buffer[offset : offset + window_samples]
            next_start += hop_samples
        drop = min(next_start - consumed, len(buffer))  # a hop longer than the window may skip past the buffer
        if drop > 0:
            buffer = buffer[drop:]
            consumed += drop


@dataclass
class ClipResult:
    label: str
    score: float
    top: list[tuple[str, float]]


class Classifier:
    """A model on a device plus everything needed to run it on whole files."""

    def __init__(
        self,
        model: SpeechCommandsModel,
        device: str | torch.device = "cpu",
        batch_size: int = 128,
        policy: DetectionPolicy | None = None,
    ):
        """`policy`: how `scan` decides; by default `DetectionPolicy.default_for(model)`."""
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.policy = DetectionPolicy.default_for(model) if policy is None else policy
        features = model.config.features
        self.sample_rate = features.sample_rate
        self.window_samples = features.window_samples

    @property
    def hop_samples(self) -> int:
        return self.policy.hop_samples(self.sample_rate)

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @torch.inference_mode()
    def probabilities(self, windows: np.ndarray) -> np.ndarray:
        """(n, window samples) -> (n, labels) probabilities."""
        out = []
        for start in range(0, len(windows), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(windows[start : start + self.batch_size]))
            out.append(self.model(batch.to(self.device)).softmax(dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    @torch.inference_mode()
    def probabilities_in_context(self, scenes: np.ndarray) -> np.ndarray:
        """(n, input samples) windows with the audio around them -> (n, labels) probabilities, for
        a model with stream context: what its stream path gives each window (the silence gate
        reads the window itself)."""
        features = self.model.config.features
        if not features.stream_context or scenes.shape[-1] != features.input_samples:
            raise ValueError(f"windows with their context are {features.input_samples} samples, for a model with stream context.")
        context, out = features.context_samples, []
        for start in range(0, len(scenes), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(scenes[start : start + self.batch_size])).to(self.device)
            frames = self.model.frontend(batch, context_included=True)
            peaks = batch[:, context : context + features.window_samples].abs().amax(dim=-1)
            out.append(self.model.logits_of_stream(frames, peaks).softmax(dim=-1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.labels)), np.float32)

    def clip_result(self, probabilities: np.ndarray, top_k: int = 3) -> ClipResult:
        order = np.argsort(probabilities)[::-1][:top_k]
        top = [(self.labels[i], float(probabilities[i])) for i in order]
        return ClipResult(label=top[0][0], score=top[0][1], top=top)

    def window_probabilities(self, blocks: Iterable[np.ndarray]) -> Iterator[tuple[float, np.ndarray]]:
        """(end in seconds, probabilities) of every window `scan` decides on, scored in batches, in
        bounded memory; a caller trying many policies on one recording scores it once with this."""
        if self.model.config.features.stream_context:
            yield from self._stream_probabilities(blocks)
            return
        ends: list[int] = []
        windows: list[np.ndarray] = []
        for end, window in sliding_windows(blocks, self.window_samples, self.hop_samples):
            ends.append(end)
            windows.append(window)
            if len(windows) == self.batch_size:
                yield from zip((end / self.sample_rate for end in ends), self.probabilities(np.stack(windows)))
                ends.clear()
                windows.clear()
        if windows:
            yield from zip((end / self.sample_rate for end in ends), self.probabilities(np.stack(windows)))

    @torch.inference_mode()
    def _stream_probabilities(self, blocks: Iterable[np.ndarray]) -> Iterator[tuple[float, np.ndarray]]:
        """`window_probabilities` for a model with stream context: the recording is embedded once
        (`StreamWindows`, as the live window does), and the windows' recurrent layers run in batches.
        A long block (a whole recording) is embedded a batch of windows at a time, in bounded memory."""
        stream = StreamWindows(self.model, self.hop_samples)
        waiting = []

        def scored():
            features = torch.stack([w.features for w in waiting])
            peaks = torch.tensor([w.peak for w in waiting], device=features.device)
            probabilities = self.model.logits_of_stream(features, peaks).softmax(dim=-1).float().cpu().numpy()
            out = list(zip((w.end / self.sample_rate for w in waiting), probabilities))
            waiting.clear()
            return out

        piece = self.batch_size * self.hop_samples  # a long block is embedded a batch of windows at a time
        for block in blocks:
            for start in range(0, len(block), piece):
                waiting.extend(stream.push(block[start : start + piece]))
                if len(waiting) >= self.batch_size:
                    yield from scored()
        waiting.extend(stream.finish())
        if waiting:
            yield from scored()

    def scan(self, blocks: Iterable[np.ndarray], top_k: int = 0) -> list[Detection]:
        """Detections in a recording given as a stream of sample blocks."""
        recognizer = CommandRecognizer(self.labels, self.policy, self.window_samples / self.sample_rate, top_k)
        return recognizer.run(self.window_probabilities(blocks))

    def classify_files(self, paths: Iterable[Path], top_k: int = 3, detection_top_k: int = 0, recordings: bool = True) -> Iterator[dict]:
        """One JSON-ready result per file, in order; short clips are batched across files. Clips
        list their `top_k` labels; each detection in a recording its `detection_top_k` (0: none).
        `recordings=False`: a file longer than a clip is an error, told from its header alone."""
        pending: list[tuple[Path, np.ndarray, str | None]] = []  # path, window, warning

        def flush_clips():
            probabilities = self.probabilities(np.stack([window for _, window, _ in pending]))
            for (path, _, warning), probs in zip(pending, probabilities):
                result = self.clip_result(probs, top_k)
                yield {
                    "path": str(path),
                    "label": result.label,
                    "score": round(result.score, 4),
                    "top": [[label, round(score, 4)] for label, score in result.top],
                    **({"warning": warning} if warning else {}),
                }
            pending.clear()

        for path in paths:
            try:
                duration = audio_duration(path)
                if duration > LONG_RECORDING_SECONDS and not recordings:
                    raise AudioError(f"{path}: {duration:.1f} s long, not a clip of up to {LONG_RECORDING_SECONDS:g} s; leave it out, or find its commands with `speechcmd classify`.")
                if duration > LONG_RECORDING_SECONDS:
                    if pending:
                        yield from flush_clips()
                    detections = self.scan(stream_audio(path, self.sample_rate), detection_top_k)
                    yield {"path": str(path), "detections": [d.to_dict() for d in detections]}
                    continue
                samples = load_audio(path, self.sample_rate)
            except AudioError as error:
                if pending:
                    yield from flush_clips()
                yield {"path": str(path), "error": str(error)}
                continue
            warning = short_clip_warning(len(samples) / self.sample_rate)
            pending.append((path, fit_to_window(samples, self.window_samples), warning))
            if len(pending) == self.batch_size:
                yield from flush_clips()
        if pending:
            yield from flush_clips()

"""Detection policy: a stream of per-window label probabilities -> spoken-command detections.

After TensorFlow's speech_commands `RecognizeCommands`: average the probabilities of the windows
in the last `average_seconds`, report the top label when its average reaches `threshold`, and
stay quiet for `suppression_seconds` after a detection so that one word, seen by many
overlapping windows, is reported once. `silence` and `unknown` are never reported.
Both `speechcmd classify` (long recordings) and the GUI (live audio) use this one class.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass

import numpy as np

NON_COMMANDS = frozenset({"_silence_", "_unknown_", "silence", "unknown"})


@dataclass(frozen=True)
class DetectionPolicy:
    average_seconds: float = 0.5
    threshold: float = 0.6
    suppression_seconds: float = 1.0
    minimum_windows: int = 3  # fewer windows than this in the average window: no decision yet

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, not {self.threshold}.")
        if self.average_seconds < 0 or self.suppression_seconds < 0 or self.minimum_windows < 1:
            raise ValueError("average_seconds and suppression_seconds must be >= 0, minimum_windows >= 1.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_model(cls, model) -> DetectionPolicy:
        """The operating point saved with `model` (its metadata's "detection_policy", chosen on
        validation speakers when it was trained), or the defaults for a model that has none.
        The GUI and `speechcmd classify` both start from this, so they decide alike."""
        stored = getattr(model, "metadata", {}).get("detection_policy")
        if not isinstance(stored, dict):
            return cls()
        try:
            return cls(**stored)
        except (TypeError, ValueError):
            return cls()


@dataclass(frozen=True)
class Detection:
    start: float  # seconds, start of the 1 s window in which the word was recognized
    end: float  # seconds, end of that window
    label: str
    score: float  # averaged probability

    def to_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


class CommandRecognizer:
    """Feed it (window end time, probabilities) in time order; it returns detections."""

    def __init__(self, labels: list[str], policy: DetectionPolicy = DetectionPolicy(), window_seconds: float = 1.0):
        self.labels = list(labels)
        self.policy = policy
        self.window_seconds = window_seconds
        self._reportable = np.array([label not in NON_COMMANDS for label in self.labels])
        self.reset()

    def reset(self) -> None:
        self._recent: deque[tuple[float, np.ndarray]] = deque()
        self._last_detection_time = -np.inf

    def averaged(self) -> np.ndarray | None:
        """The current averaged probabilities, or None before any window arrived."""
        if not self._recent:
            return None
        return np.mean([probs for _, probs in self._recent], axis=0)

    def process(self, time: float, probabilities: np.ndarray) -> Detection | None:
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if self._recent and time < self._recent[-1][0]:
            raise ValueError(f"windows must arrive in time order ({time} came after {self._recent[-1][0]}).")
        self._recent.append((time, probabilities))
        while self._recent and self._recent[0][0] < time - self.policy.average_seconds:
            self._recent.popleft()
        if len(self._recent) < self.policy.minimum_windows:
            return None
        average = self.averaged()
        top = int(np.argmax(average))
        score = float(average[top])
        if not self._reportable[top] or score < self.policy.threshold:
            return None
        if time - self._last_detection_time < self.policy.suppression_seconds:
            return None
        self._last_detection_time = time
        return Detection(start=max(0.0, time - self.window_seconds), end=time, label=self.labels[top], score=score)

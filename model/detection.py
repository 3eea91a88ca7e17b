"""Detection policy: a stream of per-window label probabilities -> spoken-command detections.

After TensorFlow's speech_commands `RecognizeCommands`: score a 1 s window every `hop_seconds`,
average the probabilities of the windows in the last `average_seconds`, report the top label when
its average reaches `threshold`, and stay quiet for `suppression_seconds` after a detection so that
one word, seen by many overlapping windows, is reported once. `silence` and `unknown` are never
reported. Both `speechcmd classify` (long recordings) and the GUI (live audio and files) use this
one class with the same policy, so they find the same words at the same times in the same audio.

A detection's confidence (`Detection.score`) is the PEAK of the detected word's averaged
probability over its detection: from the window where the average first reached the threshold
until the suppression time after it. The value at the crossing would say little, since it is
always just above the threshold. A detection is therefore final only once its suppression time
has passed (or the audio ended); `CommandRecognizer.pending` is the one under way, for a live
display that wants the word at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import numpy as np

from speechcmd.model.config import check_range

MIN_HOP_SECONDS = 0.01
MAX_AVERAGE_SECONDS = 10.0
MAX_SUPPRESSION_SECONDS = 60.0

NON_COMMANDS = frozenset({"_silence_", "_unknown_", "silence", "unknown"})


@dataclass(frozen=True)
class DetectionPolicy:
    average_seconds: float = 0.5
    threshold: float = 0.6
    suppression_seconds: float = 1.0
    minimum_windows: int = 3  # fewer windows than this in the average window: no decision yet
    hop_seconds: float = 0.1  # one window ends every hop; the averaging counts windows at this rate

    def __post_init__(self):
        # A policy comes from a model file too: every value finite and bounded, so that averaging
        # keeps at most MAX_AVERAGE_SECONDS / MIN_HOP_SECONDS (1,000) windows and scoring runs at most
        # 100 windows a second.
        check_range("threshold", self.threshold, 0.0, 1.0)
        check_range("average_seconds", self.average_seconds, 0.0, MAX_AVERAGE_SECONDS)
        check_range("suppression_seconds", self.suppression_seconds, 0.0, MAX_SUPPRESSION_SECONDS)
        check_range("minimum_windows", self.minimum_windows, 1, 100_000, integer=True)
        check_range("hop_seconds", self.hop_seconds, MIN_HOP_SECONDS, 10.0)

    def hop_samples(self, sample_rate: int) -> int:
        return max(1, round(self.hop_seconds * sample_rate))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def for_model(cls, model) -> DetectionPolicy:
        """The operating point saved with `model` (its metadata's "detection_policy", chosen on
        validation speakers when it was trained), or the defaults for a model that has none.
        The GUI and `speechcmd classify` both start from this, so they decide alike."""
        default = cls.default_for(model)
        stored = getattr(model, "metadata", {}).get("detection_policy")
        if not isinstance(stored, dict):
            return default
        try:
            return cls(**stored)
        except (TypeError, ValueError):
            return default

    @classmethod
    def default_for(cls, model) -> DetectionPolicy:
        """The default policy on `model`'s grid: a model whose front-end has stream context scores
        a window every embedding hop (80 ms), so that is its hop; others every 0.1 s."""
        features = getattr(getattr(model, "config", None), "features", None)
        return cls(hop_seconds=features.hop_ms / 1000) if getattr(features, "stream_context", False) else cls()


@dataclass(frozen=True)
class Detection:
    start: float  # seconds, start of the 1 s window in which the word was recognized
    end: float  # seconds, end of that window
    label: str
    score: float  # peak averaged probability of `label` during the detection (see the module docstring)
    top: tuple[tuple[str, float], ...] = ()  # the top labels of the averaged probabilities at that peak, if asked for

    def to_dict(self) -> dict:
        data = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items() if k != "top"}
        if self.top:
            data["top"] = [[label, round(score, 4)] for label, score in self.top]
        return data


class CommandRecognizer:
    """Feed it (window end time, probabilities) in time order; it returns finished detections."""

    def __init__(
        self, labels: list[str], policy: DetectionPolicy = DetectionPolicy(), window_seconds: float = 1.0, top_k: int = 0
    ):
        self.labels = list(labels)
        self.policy = policy
        self.window_seconds = window_seconds
        self.top_k = top_k  # detections list this many labels of the averaged probabilities (0: none)
        self._reportable = np.array([label not in NON_COMMANDS for label in self.labels])
        self.reset()

    def reset(self) -> None:
        self._recent: deque[tuple[float, np.ndarray]] = deque()
        self.pending: Detection | None = None  # the detection under way, its score the peak so far

    def averaged(self) -> np.ndarray | None:
        """The current averaged probabilities, or None before any window arrived."""
        if not self._recent:
            return None
        return np.mean([probs for _, probs in self._recent], axis=0)

    def process(self, time: float, probabilities: np.ndarray) -> Detection | None:
        """Take one window; return the detection that this window finished, if any."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if self._recent and time < self._recent[-1][0]:
            raise ValueError(f"windows must arrive in time order ({time} came after {self._recent[-1][0]}).")
        self._recent.append((time, probabilities))
        while self._recent and self._recent[0][0] < time - self.policy.average_seconds:
            self._recent.popleft()
        average = self.averaged() if len(self._recent) >= self.policy.minimum_windows else None
        finished = None
        if self.pending is not None:
            if time - self.pending.end < self.policy.suppression_seconds:
                if average is not None:
                    peak = float(average[self.labels.index(self.pending.label)])
                    if peak > self.pending.score:
                        self.pending = replace(self.pending, score=peak, top=self._top(average))
                return None
            finished, self.pending = self.pending, None
        if average is not None:
            top = int(np.argmax(average))
            score = float(average[top])
            if self._reportable[top] and score >= self.policy.threshold:
                self.pending = Detection(max(0.0, time - self.window_seconds), time, self.labels[top], score, self._top(average))
        return finished

    def _top(self, average: np.ndarray) -> tuple[tuple[str, float], ...]:
        if not self.top_k:
            return ()
        order = np.argsort(average)[::-1][: self.top_k]
        return tuple((self.labels[i], float(average[i])) for i in order)

    def finish(self) -> Detection | None:
        """The audio ended: the detection under way, if any, is final."""
        finished, self.pending = self.pending, None
        return finished

    def run(self, windows: Iterable[tuple[float, np.ndarray]]) -> list[Detection]:
        """Every detection in a whole stream of (window end time, probabilities), the last included."""
        detections = [detection for time, probabilities in windows if (detection := self.process(time, probabilities))]
        if (last := self.finish()) is not None:
            detections.append(last)
        return detections

"""Listening to long audio, measured (after TensorFlow's speech_commands `test_streaming_accuracy`).

`build_stream` lays one-second clips of a folder-per-label set at random times, with gaps, over a
chosen background, and keeps where each word is. The stream is then scanned by the detector
`speechcmd classify` runs on a long file (`Classifier.scan`: sliding windows every 0.1 s, the
model, `CommandRecognizer` with a `DetectionPolicy`), and `score_stream` compares its detections
with the words that were laid down:

- found: a command detected with its own label while it is heard;
- wrong label: a command detected with another label;
- missed: a command nobody reported;
- false alarms: detections on background, on other words (`_unknown_` clips), or a second
  detection of a word already reported; reported per hour of audio.

A detection belongs to a word when its decision time (the end of the deciding window) lies in
`[word start, word end + tolerance]`. Gaps between words are at least `MIN_GAP` seconds, longer
than the tolerance, so no detection can belong to two words.

`choose_policy` sweeps threshold, averaging and suppression on streams from validation speakers
and returns the operating point that a checkpoint stores as "detection_policy".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from speechcmd.model.detection import NON_COMMANDS, CommandRecognizer, Detection, DetectionPolicy
from speechcmd.model.inference import Classifier
from speechcmd.train.noise import active_power_db, coloured_noise, scale_to_db

TOLERANCE = 0.75  # seconds after a word's end in which its detection may still come
MIN_GAP = 1.0  # seconds of background at least between two words


@dataclass(frozen=True)
class Event:
    start: float  # seconds
    end: float
    label: str


@dataclass
class StreamScore:
    seconds: float
    commands: int = 0
    found: int = 0
    wrong_label: int = 0
    missed: int = 0
    false_alarms_background: int = 0
    false_alarms_words: int = 0  # a command reported on a non-command word
    repeats: int = 0  # a second detection of one word
    detections: int = 0

    @property
    def false_alarms(self) -> int:
        return self.false_alarms_background + self.false_alarms_words + self.repeats

    @property
    def found_rate(self) -> float:
        return self.found / max(self.commands, 1)

    @property
    def false_alarms_per_hour(self) -> float:
        return self.false_alarms * 3600 / max(self.seconds, 1e-9)

    def to_dict(self) -> dict:
        return {**asdict(self), "found_rate": round(self.found_rate, 4), "wrong_rate": round(self.wrong_label / max(self.commands, 1), 4),
                "missed_rate": round(self.missed / max(self.commands, 1), 4), "false_alarms": self.false_alarms,
                "false_alarms_per_hour": round(self.false_alarms_per_hour, 1)}


def build_stream(
    clips: list[tuple[np.ndarray, str]],
    seconds: float,
    rng: np.random.Generator,
    background: np.ndarray | None = None,
    snr_db: float | None = None,
    background_db: float | None = -70.0,
    gap: tuple[float, float] = (MIN_GAP, 3.0),
    sample_rate: int = 16_000,
) -> tuple[np.ndarray, list[Event]]:
    """A `seconds`-long recording: clips (samples, label) drawn at random, each after a random gap,
    over `background` (looped from a random offset). The background's level is `snr_db` below the
    words' median active level, or `background_db` dBFS without `snr_db` (None: as recorded);
    no background: a faint pink-noise room tone at `background_db`."""
    total = int(seconds * sample_rate)
    if background is None:
        background = coloured_noise("pink", total, rng, sample_rate)
    reps = int(np.ceil((total + len(background)) / len(background)))
    offset = int(rng.integers(len(background)))
    bed = np.tile(background, reps)[offset : offset + total].astype(np.float32)
    audio = np.zeros(total, np.float32)
    events: list[Event] = []
    levels = []
    position = rng.uniform(*gap)
    while True:
        samples, label = clips[int(rng.integers(len(clips)))]
        start = int(position * sample_rate)
        if start + len(samples) > total:
            break
        audio[start : start + len(samples)] += samples
        events.append(Event(start / sample_rate, (start + len(samples)) / sample_rate, label))
        levels.append(float(active_power_db(torch.from_numpy(samples)[None])[0]))
        position = (start + len(samples)) / sample_rate + rng.uniform(*gap)
    level = (float(np.median(levels)) - snr_db) if snr_db is not None and levels else background_db
    audio += bed if level is None else scale_to_db(torch.from_numpy(bed)[None], level)[0].numpy()
    return np.clip(audio, -1, 1), events


def score_stream(events: list[Event], detections: Iterable[Detection], seconds: float, tolerance: float = TOLERANCE) -> StreamScore:
    """Count found, wrong label, missed and false alarms (see the module docstring for the rule)."""
    score = StreamScore(seconds=seconds)
    commands = [e for e in events if e.label not in NON_COMMANDS]
    score.commands = len(commands)
    starts = np.array([e.start for e in events])
    matched: set[int] = set()
    for detection in detections:
        score.detections += 1
        k = int(np.searchsorted(starts, detection.end, side="left")) - 1  # the last word begun before the decision
        if k < 0 or detection.end > events[k].end + tolerance:
            score.false_alarms_background += 1
        elif k in matched:
            score.repeats += 1
        else:
            matched.add(k)
            event = events[k]
            if event.label in NON_COMMANDS:
                score.false_alarms_words += 1
            elif detection.label == event.label:
                score.found += 1
            else:
                score.wrong_label += 1
    score.missed = sum(1 for k, e in enumerate(events) if e.label not in NON_COMMANDS and k not in matched)
    return score


@dataclass
class ScoredWindows:
    """A stream's sliding windows scored once by the model: (end seconds, probabilities) in order,
    so many policies can be tried without running the model again."""

    ends: np.ndarray  # (windows,) seconds
    probabilities: np.ndarray  # (windows, labels)
    labels: list[str] = field(default_factory=list)
    window_seconds: float = 1.0


def score_windows(classifier: Classifier, audio: np.ndarray) -> ScoredWindows:
    """The windows `Classifier.scan` would score, and their probabilities."""
    ends, probabilities = zip(*classifier.window_probabilities([audio]))
    return ScoredWindows(np.array(ends), np.stack(probabilities), classifier.labels,
                         classifier.window_samples / classifier.sample_rate)


def detect(scored: ScoredWindows, policy: DetectionPolicy) -> list[Detection]:
    """`Classifier.scan`'s decisions for `policy`, from windows scored once."""
    return CommandRecognizer(scored.labels, policy, scored.window_seconds).run(zip(scored.ends, scored.probabilities))


POLICY_GRID = {
    "threshold": (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95),
    "average_seconds": (0.3, 0.5, 0.75, 1.0),
    "suppression_seconds": (1.0, 1.5),
}


def choose_policy(
    streams: dict[str, tuple[ScoredWindows, list[Event], float, float]], grid: dict = POLICY_GRID, hop_seconds: float = 0.1
) -> tuple[DetectionPolicy, list[dict]]:
    """The operating point for a set of validation streams {name: (windows, events, seconds,
    allowed false alarms per hour)}: the most commands found on average over the streams among
    policies within every stream's false-alarm budget; if none is, the one closest to the budgets
    (the least excess false alarms per hour), then the most found. `hop_seconds`: the windows' hop
    (the classifier's that scored them). Returns it and every policy's row."""
    rows = []
    for threshold, average, suppression in itertools.product(grid["threshold"], grid["average_seconds"], grid["suppression_seconds"]):
        policy = DetectionPolicy(average_seconds=average, threshold=threshold, suppression_seconds=suppression, hop_seconds=hop_seconds)
        row = {"policy": policy.to_dict(), "excess": 0.0, "found": 0.0}
        for name, (scored, events, seconds, budget) in streams.items():
            score = score_stream(events, detect(scored, policy), seconds)
            row[name] = score.to_dict()
            row["excess"] += max(0.0, score.false_alarms_per_hour - budget)
            row["found"] += score.found_rate / len(streams)
        rows.append(row)
    best = min(rows, key=lambda r: (round(r["excess"], 6), -r["found"]))
    return DetectionPolicy(**best["policy"]), rows


def load_words(root, labels: list[str], split_parameters: dict | None = None, split: str = "all", sample_rate: int = 16_000) -> list[tuple[np.ndarray, str]]:
    """The spoken clips (commands and other words, no silence) of a folder-per-label set as
    (samples, label of `labels`); with `split_parameters`, only the speakers of `split`."""
    from speechcmd.model.audio import load_audio
    from speechcmd.train.data import SILENCE, build_dataset, label_of, scan_folder

    if split == "all":
        clips = scan_folder(root)
    else:
        clips = [clip for clip, _ in build_dataset(root, **(split_parameters or {})).splits[split]]
    words = []
    for clip in clips:
        label = label_of(clip.word, labels)
        if label is not None and label != SILENCE and clip.noise_cut is None:
            words.append((load_audio(clip.path, sample_rate), label))
    return words


def evaluate_stream(classifier: Classifier, words: list[tuple[np.ndarray, str]], seconds: float, seed: int = 0,
                    background: np.ndarray | None = None, snr_db: float | None = None, curve: tuple[float, ...] = ()) -> dict:
    """Build one stream and score what `classifier.scan` (the `speechcmd classify` path) finds in it.
    `curve`: thresholds at which to score it too, with the policy's averaging and suppression (the
    windows are scored once): models compared at equal false alarms, not each at its own policy."""
    rng = np.random.default_rng(seed)
    audio, events = build_stream(words, seconds, rng, background, snr_db, None if background is not None and snr_db is None else -70.0,
                                 sample_rate=classifier.sample_rate)
    scored = score_windows(classifier, audio)

    def scored_at(policy: DetectionPolicy) -> dict:
        return score_stream(events, detect(scored, policy), len(audio) / classifier.sample_rate).to_dict()

    result = {**scored_at(classifier.policy), "policy": classifier.policy.to_dict()}
    if curve:
        result["curve"] = [{"threshold": threshold, **scored_at(replace(classifier.policy, threshold=threshold))} for threshold in curve]
    return result

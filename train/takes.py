"""A user's takes: recordings of the words to teach, kept in a folder-per-label dataset.

The layout is the one `speechcmd train` and `speechcmd evaluate` read (`train.data.scan_folder`):
one folder per word, `_silence_/` for background takes (no speech) and `_unknown_/` for other
speech, each file named `<speaker>_nohash_<n>.wav` like Speech Commands, so a speaker split keeps
one person's takes together. `prepare_take` turns a recording into one model window centred on
its spoken part, or refuses it with one sentence saying why.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from speechcmd.model import SAMPLE_RATE
from speechcmd.model.audio import AUDIO_EXTENSIONS, AudioError, audio_duration, load_audio
from speechcmd.model.config import label_problem
from speechcmd.model.trim import speech_bounds, speech_window
from speechcmd.train.data import BACKGROUND_NOISE, SILENCE, UNKNOWN

BACKGROUND = SILENCE  # takes of the room with nobody speaking
OTHER_SPEECH = UNKNOWN  # takes of words the model should not take for any of its own
SUGGESTED_TAKES = 8
MAX_RECORDING_SECONDS = 30.0  # a dropped file longer than this is a recording, not a take


class TakeError(ValueError):
    """A take or a word name cannot be used; the message is one sentence saying why and what to do."""


def check_new_word(name: str, labels: list[str]) -> str:
    """The folder name for a new word, or TakeError when it is empty, reserved or already a label."""
    word = " ".join(name.split()).lower()
    if not word:
        raise TakeError("Type the word to teach first.")
    if word.startswith("_") or re.search(r"[/\\:*?\"<>|]", word) or word in (".", ".."):
        raise TakeError(f"'{name.strip()}' cannot be a word's name: names may not start with '_' or hold / \\ : * ? \" < > |.")
    if problem := label_problem(word):  # what a model file may hold: a taught word must load again
        raise TakeError(f"{ascii(name.strip())} cannot be a word's name: {problem}.")
    if word in labels:
        raise TakeError(f"'{word}' is already one of the model's words; pick it from the list to add your takes to it, or choose another name.")
    return word


@dataclass(frozen=True)
class Take:
    """One usable take: the model window centred on the spoken part, and where it came from."""

    label: str
    window: np.ndarray  # (window samples,) float32, 16 kHz
    source: str  # file path, or "microphone"
    bounds: tuple[int, int] | None  # spoken part in the original recording; None for background


def prepare_take(samples: np.ndarray, label: str, source: str, window_samples: int, sample_rate: int = SAMPLE_RATE) -> Take:
    """Trim a recording to its spoken part and fit it to one window; TakeError for unusable takes."""
    if len(samples) == 0:
        raise TakeError(f"{source}: the take is empty; record it again.")
    if len(samples) > MAX_RECORDING_SECONDS * sample_rate:
        raise TakeError(f"{source}: the take lasts {len(samples) / sample_rate:.0f} s; cut it to the word alone (at most {MAX_RECORDING_SECONDS:.0f} s).")
    if label == BACKGROUND:  # the room as it is: its loudest window, no trimming
        return Take(label, fit_background(samples, window_samples), source, None)
    bounds = speech_bounds(samples, sample_rate)
    if bounds is None:
        raise TakeError(f"{source}: no speech in the take (it is silent or a steady noise); speak closer to the microphone and record it again.")
    length = (bounds[1] - bounds[0]) / sample_rate
    if length > window_samples / sample_rate + 0.25:  # the margins may spill a little past the window
        raise TakeError(
            f"{source}: the spoken part lasts {length:.1f} s, longer than the model's "
            f"{window_samples / sample_rate:g} s window; say the word alone, once."
        )
    return Take(label, speech_window(samples, bounds, window_samples), source, bounds)


def fit_background(samples: np.ndarray, window_samples: int) -> np.ndarray:
    if len(samples) >= window_samples:
        start = (len(samples) - window_samples) // 2
        return samples[start : start + window_samples].astype(np.float32)
    return np.pad(samples, (0, window_samples - len(samples))).astype(np.float32)


def take_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A take's samples. A file far longer than one word is refused from its header, before any of
    it is decoded (an hours-long file would otherwise fill the memory first)."""
    duration = audio_duration(path)
    if duration > MAX_RECORDING_SECONDS:
        raise AudioError(f"{path}: the take lasts {duration:,.0f} s; cut it to the word alone (at most {MAX_RECORDING_SECONDS:.0f} s).")
    return load_audio(path, sample_rate)


def load_take(path: str | Path, label: str, window_samples: int, sample_rate: int = SAMPLE_RATE) -> Take:
    """A take from an audio file (AudioError for unreadable files, TakeError for unusable takes)."""
    return prepare_take(take_audio(path, sample_rate), label, str(path), window_samples, sample_rate)


class TakeStore:
    """Takes on disk, one folder per label under `root`; every take a 16 kHz 16-bit WAV."""

    def __init__(self, root: str | Path, speaker: str = "me"):
        self.root = Path(root)
        self.speaker = re.sub(r"[^A-Za-z0-9]", "", speaker) or "me"

    def add(self, label: str, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
        """Write a take and return its path (the next free `<speaker>_nohash_<n>.wav`)."""
        folder = self.root / label
        folder.mkdir(parents=True, exist_ok=True)
        taken = {p.name for p in folder.iterdir()}
        n = 0
        while f"{self.speaker}_nohash_{n}.wav" in taken:
            n += 1
        path = folder / f"{self.speaker}_nohash_{n}.wav"
        sf.write(str(path), np.clip(samples, -1, 1), sample_rate, subtype="PCM_16")
        return path

    def remove(self, path: str | Path) -> None:
        path = Path(path)
        path.unlink(missing_ok=True)
        if path.parent != self.root and path.parent.is_dir() and not any(path.parent.iterdir()):
            path.parent.rmdir()

    def paths(self, skip_unreadable: bool = False) -> dict[str, list[Path]]:
        """label -> its take files, sorted; labels without files are left out. `skip_unreadable`:
        a folder that cannot be read (no permission, a name too long) holds none, instead of raising
        (the Teach panel lists what it can; keeping a take there says why it cannot)."""
        found = {}
        try:
            if not self.root.is_dir():
                return {}
            folders = sorted(p for p in self.root.iterdir() if p.is_dir() and p.name != BACKGROUND_NOISE)
        except OSError:
            if skip_unreadable:
                return {}
            raise
        for folder in folders:
            try:
                files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            except OSError:
                if skip_unreadable:
                    continue
                raise
            if files:
                found[folder.name] = files
        return found

    def counts(self, skip_unreadable: bool = False) -> dict[str, int]:
        return {label: len(files) for label, files in self.paths(skip_unreadable).items()}


def load_takes(root: str | Path, window_samples: int, sample_rate: int = SAMPLE_RATE) -> tuple[list[Take], list[str]]:
    """Every usable take under a folder-per-label `root`, and one sentence per file refused."""
    takes, problems = [], []
    for label, files in TakeStore(root).paths().items():
        for path in files:
            try:
                takes.append(load_take(path, label, window_samples, sample_rate))
            except (AudioError, TakeError) as error:
                problems.append(str(error))
    return takes, problems


def take_counts(takes: list[Take]) -> dict[str, int]:
    return dict(sorted(Counter(take.label for take in takes).items()))

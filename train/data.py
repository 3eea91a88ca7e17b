"""Datasets: folder-per-label recordings -> labelled, speaker-split clips, decoded once into a cache.

A dataset folder holds one folder per word (Speech Commands, the canonical 12-class test layout,
or a user's own recordings), optionally `_background_noise_/` with long noise recordings and the
official `validation_list.txt` / `testing_list.txt`. `build_dataset` turns it into three splits
of (clip, label index) for a chosen label set, and `ClipCache` decodes every clip once into an
int16 memory map so that training epochs never decode audio again.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechcmd.model import SAMPLE_RATE, SILENCE
from speechcmd.model.audio import AUDIO_EXTENSIONS, AudioError, audio_duration, audio_files_under, load_audio
from speechcmd.model.config import MAX_LABELS, label_problem
from speechcmd.model.detection import NON_COMMANDS
from speechcmd.train.config import SplitConfig

UNKNOWN = "_unknown_"
BACKGROUND_NOISE = "_background_noise_"
COMMANDS_10 = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
SPLITS = ("train", "validation", "test")


class DatasetError(ValueError):
    """A dataset folder cannot be used; the message names the folder and what to do."""


@dataclass(frozen=True)
class Clip:
    path: Path
    word: str  # the folder it came from
    speaker: str
    # A silence example cut from a background-noise recording: where (16 kHz samples) and how loud.
    # None for ordinary clips, which are used whole.
    noise_cut: tuple[int, float] | None = None


def speaker_of(path: Path) -> str:
    """Speech Commands names clips `<speaker>_nohash_<n>` (`<word>_<speaker>_nohash_<n>` in the
    canonical test set's `_unknown_`); anything else is its own speaker."""
    stem = path.stem
    if "_nohash_" in stem:
        return stem.split("_nohash_")[0].split("_")[-1]
    return stem


def speaker_digest(speaker: str) -> str:
    """What a model's metadata keeps of a speaker it was trained on (`training_speakers`): enough
    to warn that an evaluation includes them, not their name."""
    return hashlib.sha256(f"speechcmd-speaker:{speaker}".encode("utf-8", "surrogateescape")).hexdigest()[:16]


def scan_folder(root: Path) -> list[Clip]:
    root = Path(root)
    try:
        is_folder = root.is_dir()
    except OSError as error:  # a name too long to look up, a folder above it that may not be searched
        raise DatasetError(f"{root}: cannot be looked up ({error.strerror}); pass a folder with one sub-folder of recordings per word.") from None
    if not is_folder:
        raise DatasetError(f"{root}: no such dataset folder; pass a folder with one sub-folder of recordings per word.")
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != BACKGROUND_NOISE):
        if folder.is_symlink() and root.resolve().is_relative_to(folder.resolve()):
            raise DatasetError(
                f"{folder}: links to {folder.resolve()}, which holds the dataset folder itself (reading it would walk "
                "the whole tree); a label folder must hold that word's recordings: remove the link."
            )
        for path in audio_files_under(folder):
            clips.append(Clip(path, folder.name, speaker_of(path)))
    if not clips:
        raise DatasetError(f"{root}: no audio files in its sub-folders; expected one folder of recordings per word.")
    return clips


def resolve_labels(spec: str | list[str], words: list[str]) -> list[str]:
    """`12` (10 commands + silence + unknown), `35` / `all` (every word), or an explicit list."""
    if isinstance(spec, str):
        spec = spec.strip()
        if spec == "12":
            return [SILENCE, UNKNOWN, *COMMANDS_10]
        if spec in ("35", "all"):
            spec = [SILENCE, *sorted(w for w in set(words) if w not in NON_COMMANDS)]
        else:
            spec = [w.strip() for w in spec.split(",") if w.strip()]
    labels = list(dict.fromkeys(spec))
    if len(labels) < 2:
        raise DatasetError("--labels needs at least two labels (for example 12, 35, or yes,no,_unknown_).")
    if len(labels) > MAX_LABELS:
        raise DatasetError(f"--labels: {len(labels):,} labels, more than the {MAX_LABELS:,} a model may have; choose fewer words.")
    for label in labels:  # a model with such a label could be saved but never loaded again
        if problem := label_problem(label):
            raise DatasetError(f"--labels: {problem}; rename that folder or leave the word out of --labels.")
    return labels


def label_of(word: str, labels: list[str]) -> str | None:
    """The label a folder's clips train; None drops them (no `_unknown_` in the label set)."""
    if word in labels:
        return word
    if word in ("_silence_", "silence") and SILENCE in labels:
        return SILENCE
    return UNKNOWN if UNKNOWN in labels else None


def split_of(speaker: str, validation_fraction: float, test_fraction: float, salt: str) -> str:
    """Deterministic speaker-disjoint split: a salted hash of the speaker picks the bucket.

    The salt matters for the shared Speech Commands subset: its speakers were selected with the
    unsalted sha1 rule that Speech Commands itself uses, so that rule would leave a split empty.
    The test bucket comes first, so changing the validation fraction never moves a test speaker.
    """
    bucket = int(hashlib.sha1(f"{salt}{speaker}".encode("utf-8", "surrogateescape")).hexdigest(), 16) % 10_000 / 10_000
    if bucket < test_fraction:
        return "test"
    if bucket < test_fraction + validation_fraction:
        return "validation"
    return "train"


def trained_speakers(metadata: dict, speakers: set[str]) -> set[str]:
    """Those of `speakers` that a model with this checkpoint metadata trained on: by the digests of
    its training speakers where it keeps them, else by its speaker hash. A model split by official
    lists, or with no record of its split, claims none."""
    if isinstance(metadata.get("training_speakers"), list):
        digests = set(metadata["training_speakers"])
        return {s for s in speakers if speaker_digest(s) in digests}
    parameters = metadata.get("split_parameters")
    if not parameters or str(metadata.get("split", "")).startswith("official"):
        return set()
    fractions = parameters["validation_fraction"], parameters["test_fraction"]
    return {s for s in speakers if split_of(s, *fractions, parameters["salt"]) == "train"}


def silence_clips(noise_files: list[Path], split: str, others: int, fraction: float, seed: int) -> list[Clip]:
    """The standard protocol's silence for datasets without a `_silence_` folder (the full Speech
    Commands): about `fraction` of the split, 1 s cuts of the background-noise recordings at a
    random gain from 0 to 1 (digital silence where there is no noise)."""
    count = round(others * fraction / (1 - fraction))
    rng = random.Random(f"{seed}-{split}")
    lengths = [int(audio_duration(path) * SAMPLE_RATE) for path in noise_files]
    clips = []
    for k in range(count):
        usable = [(path, n) for path, n in zip(noise_files, lengths) if n > SAMPLE_RATE]
        if usable:
            path, n = rng.choice(usable)
            cut = (rng.randrange(0, n - SAMPLE_RATE), rng.uniform(0.0, 1.0))
        else:
            path, cut = Path("(digital silence)"), (0, 0.0)
        clips.append(Clip(path, SILENCE, f"{SILENCE}{split}{k}", cut))
    return clips


def clip_samples(clip: Clip, sample_rate: int = SAMPLE_RATE, window_samples: int = SAMPLE_RATE, noise: dict | None = None,
                 first_seconds: float | None = None) -> np.ndarray:
    """A clip's audio: its file decoded (with `first_seconds`, only that much of its start), or for a
    silence example cut from a background recording (`silence_clips`) that cut, `window_samples`
    long at its gain. `noise` keeps decoded recordings between calls."""
    if clip.noise_cut is None:
        return load_audio(clip.path, sample_rate, first_seconds)
    offset, gain = clip.noise_cut
    if gain == 0.0:
        return np.zeros(window_samples, np.float32)
    noise = {} if noise is None else noise
    if clip.path not in noise:
        noise[clip.path] = load_audio(clip.path, sample_rate)
    return noise[clip.path][offset : offset + window_samples] * gain


@dataclass
class Dataset:
    root: Path
    labels: list[str]
    splits: dict[str, list[tuple[Clip, int]]]
    noise_files: list[Path]
    split_rule: str
    split_parameters: dict = field(default_factory=dict)  # what rebuilds the same split with build_dataset

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            name: dict(sorted(Counter(self.labels[y] for _, y in items).items())) for name, items in self.splits.items()
        }

    def speakers(self, split: str) -> set[str]:
        """The people in a split: silence clips are noise cuts, each its own "speaker" only for splitting."""
        silence = self.labels.index(SILENCE) if SILENCE in self.labels else -1
        return {clip.speaker for clip, y in self.splits[split] if y != silence}


def _official_lists(root: Path) -> dict[str, set[str]] | None:
    lists = {"validation": root / "validation_list.txt", "test": root / "testing_list.txt"}
    if not all(p.is_file() for p in lists.values()):
        return None
    return {name: set(p.read_text().split()) for name, p in lists.items()}


def build_dataset(
    root: str | Path,
    labels: str | list[str] = SplitConfig.labels,
    validation_fraction: float = SplitConfig.validation_fraction,
    test_fraction: float = SplitConfig.test_fraction,
    salt: str = SplitConfig.salt,
    unknown_fraction: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """Scan, label and split a folder-per-label dataset.

    Official list files are honoured when present; otherwise speakers are split by `split_of`.
    When the words outside the label set far outnumber a tenth of the data (the full Speech
    Commands), `_unknown_` is subsampled to about `unknown_fraction` of each split.
    """
    root = Path(root)
    # Each named as its setting, which `speechcmd train` words as its option (--validation-fraction).
    for name, fraction in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not 0 <= fraction < 1:
            raise DatasetError(f"{name} must be a number from 0 to below 1, not {fraction!r}.")
    if validation_fraction + test_fraction >= 1:
        raise DatasetError(f"the validation and test fractions ({validation_fraction:g} + {test_fraction:g}) must leave data for training; lower one of them.")
    if not 0 < unknown_fraction < 1:
        raise DatasetError(f"unknown_fraction must be between 0 and 1 (not {unknown_fraction}), for example 0.1.")
    clips = scan_folder(root)
    labels = resolve_labels(labels, sorted({c.word for c in clips}))
    official = _official_lists(root)
    splits: dict[str, list[tuple[Clip, int]]] = {name: [] for name in SPLITS}
    for clip in clips:
        label = label_of(clip.word, labels)
        if label is None:
            continue
        if official is not None:
            relative = clip.path.relative_to(root).as_posix()
            split = next((name for name, members in official.items() if relative in members), "train")
        else:
            split = split_of(clip.speaker, validation_fraction, test_fraction, salt)
        splits[split].append((clip, labels.index(label)))
    if UNKNOWN in labels:
        rng = random.Random(seed)
        unknown = labels.index(UNKNOWN)
        for name, items in splits.items():
            known = [item for item in items if item[1] != unknown]
            others = [item for item in items if item[1] == unknown]
            keep = max(1, round(len(known) * unknown_fraction / (1 - unknown_fraction)))
            if len(others) > 2 * keep:
                others = sorted(rng.sample(others, keep), key=lambda item: str(item[0].path))
                splits[name] = known + others
    noise_dir = root / BACKGROUND_NOISE
    noise_files = sorted(p for p in noise_dir.glob("*") if p.suffix.lower() in AUDIO_EXTENSIONS) if noise_dir.is_dir() else []
    if SILENCE in labels and not any(y == labels.index(SILENCE) for items in splits.values() for _, y in items):
        for name, items in splits.items():
            items.extend((clip, labels.index(SILENCE)) for clip in silence_clips(noise_files, name, len(items), unknown_fraction, seed))
    # A validation fraction of 0 is a deliberate choice (a final refit on train + validation); an
    # empty split that was asked for is a dataset too small for its fractions.
    for name, asked in (("train", True), ("validation", validation_fraction > 0 and official is None)):
        if asked and not splits[name]:
            raise DatasetError(f"{root}: the {name} split is empty; add recordings from more speakers or change the fractions.")
    rule = "official lists" if official is not None else (
        f"speaker hash (salt {salt!r}, validation {validation_fraction}, test {test_fraction})"
    )
    parameters = {"labels": labels, "validation_fraction": validation_fraction, "test_fraction": test_fraction,
                  "salt": salt, "unknown_fraction": unknown_fraction, "seed": seed}
    return Dataset(root, labels, splits, noise_files, rule, parameters)


class ClipCache:
    """Every clip decoded once to 16 kHz int16, padded or cut to one window, in a memory map.

    The cache file is keyed by the clip paths, sizes and modification times, so a changed dataset
    gets a new cache and an unchanged one is reused across runs.
    """

    def __init__(
        self, clips: list[Clip], cache_dir: Path, window_samples: int = 16_000, sample_rate: int = 16_000, progress: bool = True
    ):
        self.clips = clips
        key = hashlib.sha1()
        for clip in clips:
            stat = clip.path.stat() if clip.path.exists() else None
            size, mtime = (stat.st_size, stat.st_mtime_ns) if stat else (0, 0)
            key.update(f"{clip.path}|{size}|{mtime}|{clip.noise_cut}\n".encode("utf-8", "surrogateescape"))
        key.update(f"{window_samples}|{sample_rate}".encode())
        cache_dir = Path(cache_dir)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatasetError(
                f"{cache_dir}: cannot make the decoded-clip cache folder ({error.strerror or error}); pass --cache-dir "
                "with a folder you may write to."
            ) from None
        self.path = cache_dir / f"clips-{key.hexdigest()[:16]}.npy"
        if self.path.exists() and not self.path.is_file():  # a FIFO would block the load, a device never end
            raise DatasetError(f"{self.path}: is not a file (a folder, device or pipe stands where the decoded-clip cache goes); "
                               "remove it or pass --cache-dir with another folder.")
        if not self.path.exists():
            self._build(window_samples, sample_rate, progress)
        self.samples = self._open((len(clips), window_samples))
        if self.samples is None:  # damaged (a disk error, a hand edit): decoded again, once
            self.path.unlink(missing_ok=True)
            self._build(window_samples, sample_rate, progress)
            self.samples = self._open((len(clips), window_samples))
        if self.samples is None:
            raise DatasetError(f"{self.path}: the decoded-clip cache cannot be read back; pass --cache-dir on another disk.")

    def _open(self, shape: tuple[int, int]) -> np.ndarray | None:
        """The cache as a memory map, (clips, window samples) int16; None when it is damaged."""
        try:
            samples = np.load(self.path, mmap_mode="r")
        except (OSError, ValueError, EOFError):
            return None
        return samples if samples.dtype == np.int16 and samples.shape == shape else None

    def _build(self, window_samples: int, sample_rate: int, progress: bool) -> None:
        from tqdm import tqdm

        # A name of its own, so that two runs building the same cache at once do not share a file.
        partial = self.path.with_suffix(f".{os.getpid()}.partial.npy")
        shape = (len(self.clips), window_samples)
        noise: dict[Path, np.ndarray] = {}  # background recordings, read once for all their cuts
        try:
            data = np.lib.format.open_memmap(partial, mode="w+", dtype=np.int16, shape=shape)
            if hasattr(os, "posix_fallocate"):
                # Reserve the blocks now: a memory map that finds the disk full kills the process (SIGBUS).
                with open(partial, "r+b") as file:
                    os.posix_fallocate(file.fileno(), 0, partial.stat().st_size)
            for row, clip in enumerate(tqdm(self.clips, desc="decoding clips (once)", unit="clip", leave=False, disable=not progress)):
                try:
                    # The cache keeps a clip's first window: a file hours long is not decoded whole for it.
                    audio = clip_samples(clip, sample_rate, window_samples, noise, window_samples / sample_rate + 0.1)[:window_samples]
                except AudioError as error:
                    raise DatasetError(f"{error} Remove it from the dataset folder.") from None
                data[row, : len(audio)] = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)
                data[row, len(audio) :] = 0
            data.flush()
            del data
            partial.replace(self.path)
        except OSError as error:
            raise DatasetError(
                f"{self.path.parent}: cannot write the decoded-clip cache ({2 * shape[0] * shape[1] / 1e6:.0f} MB: "
                f"{error.strerror or error}); free some space or pass --cache-dir on another disk."
            ) from None
        finally:
            partial.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self.clips)


def link_clips(source: str | Path, target: str | Path) -> int:
    """Link every clip of the folder-per-label tree `source` into `target` (symbolic links, made as
    needed), so that one tree holds several data sets and `build_dataset` splits speakers over their
    union (how speech_commands_extra's README says to merge it). The background noise is not linked.
    Returns how many links were made. A name already taken by the same recording (the same file, or
    one with the same bytes: a subset merged with the dataset it came from) is skipped; by another
    recording, refused."""
    source, target = Path(source), Path(target)
    linked = 0
    for folder in sorted(p for p in source.iterdir() if p.is_dir() and p.name != BACKGROUND_NOISE):
        (target / folder.name).mkdir(parents=True, exist_ok=True)
        for clip in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS):
            link = target / folder.name / clip.name
            if link.exists() or link.is_symlink():
                if link.resolve() != clip.resolve() and not (link.exists() and filecmp.cmp(link, clip, shallow=False)):
                    raise DatasetError(f"{link}: two different clips with this name ({clip} and {link.resolve()}); rename one before merging.")
                continue
            os.symlink(clip.resolve(), link)
            linked += 1
    return linked


MAX_NOISE_SECONDS = 3600.0  # of background recordings in all (Speech Commands has six of about a minute)


def load_noise(files: list[Path], sample_rate: int = 16_000, whole: bool = True) -> np.ndarray | list[np.ndarray]:
    """All background-noise recordings, concatenated: (samples,) float32 (`whole=False`: the list of
    them, one talker each for `noise.conversation`). One that cannot be read (empty, damaged,
    unreadable) is a `DatasetError` naming it, as a bad clip is."""
    pieces, seconds = [], 0.0
    for path in files:
        try:
            seconds += audio_duration(path)  # from the header: an hours-long file is refused before it is decoded
            if seconds > MAX_NOISE_SECONDS:
                raise DatasetError(
                    f"{path}: the background recordings add up to more than {MAX_NOISE_SECONDS / 60:.0f} minutes, more than "
                    f"is kept in memory; cut this one to a few minutes or move it out of {BACKGROUND_NOISE}."
                )
            pieces.append(load_audio(path, sample_rate))
        except AudioError as error:
            raise DatasetError(f"{str(error).rstrip('.')}; it is a {BACKGROUND_NOISE} recording: fix or remove it.") from None
    if not whole:
        return pieces
    return np.concatenate(pieces) if pieces else np.zeros(0, np.float32)


def describe(dataset: Dataset) -> str:
    counts = dataset.counts()
    return json.dumps(
        {name: {"clips": sum(c.values()), "speakers": len(dataset.speakers(name))} for name, c in counts.items()}
    )

"""Babble of real TRAINING speakers: the bundled model's data (run S4, --as-words) and run S3's.

    python scripts/make_real_babble.py            # after scripts/make_room_data.py --negatives 12 --command-takes 3
    python scripts/make_real_babble.py --as-words  # the bundled model (run S4; scripts/train_bundled_model.sh)

Writes runs/room-data/merged_synthetic_rb: merged_synthetic's clips (linked) with four more
training noise tracks, each 3 to 7 talkers made of the non-command words of training speakers
(the spoken part of each clip, short pauses between), mixed at equal level by
`speechcmd.train.noise.babble`. Background babble then includes real voices, not only espeak-ng
ones. Validation and test speakers are never used (`split_of` with the recipe's split).

With --as-words it writes runs/room-data/merged_synthetic_bw instead: merged_synthetic's clips and
noise unchanged, plus a word folder `babble` of 1 s clips, each 3 to 7 of those talkers mixed the
same way, so babble alone is trained as a word that is not a command (`_unknown_`), never under a
command. Each clip is named after a training speaker, so it stays in the training split.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from make_room_data import COMMANDS, RECIPE_SPLIT, ROOT, SR  # this folder's data script: the same commands, split and paths

from speechcmd.model.audio import load_audio
from speechcmd.model.trim import frame_levels, frame_size
from speechcmd.train.data import link_clips, speaker_of, split_of
from speechcmd.train.noise import babble

DATA = ROOT / "runs" / "room-data"


def training_clips(merged: Path) -> list[Path]:
    """Clips of non-command words whose speakers are in the recipe's training split."""
    folders = [d for d in sorted(merged.iterdir())
               if d.is_dir() and d.name not in COMMANDS and (d.name == "_unknown_" or not d.name.startswith("_"))]
    return [p for d in folders for p in sorted(d.glob("*.wav"))
            if split_of(speaker_of(p), *RECIPE_SPLIT) == "train"]


@lru_cache(maxsize=None)
def spoken_part(path: Path) -> np.ndarray:
    """The clip from its first to its last 20 ms frame within 40 dB of the loudest, 50 ms either side
    (looser than `model.trim.speech_bounds`, which refuses a clip it cannot trust; any clip will do
    here). Read once per clip: the babble draws the same few hundred clips thousands of times."""
    samples = load_audio(path)
    levels, size = frame_levels(samples, SR), frame_size(SR)
    keep = np.flatnonzero(levels > levels.max() - 40)
    return samples[max(0, keep[0] * size - 800) : min(len(samples), (keep[-1] + 1) * size + 800)]


def talker(clips: list[Path], rng: np.random.Generator, words: int = 40) -> np.ndarray:
    parts = []
    for path in rng.choice(clips, words, replace=False):
        parts += [spoken_part(path), np.zeros(int(rng.uniform(0.05, 0.3) * SR), np.float32)]
    return np.concatenate(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--as-words", action="store_true", help="babble clips as a word that is not a command (the bundled model's data)")
    as_words = parser.parse_args(argv).as_words
    merged, source = DATA / "merged", DATA / "merged_synthetic"
    out = DATA / ("merged_synthetic_bw" if as_words else "merged_synthetic_rb")
    if not source.is_dir():
        print(f"make_real_babble: {source} is missing; run scripts/make_room_data.py --negatives 12 first.", file=sys.stderr)
        return 1
    rng = np.random.default_rng(1)
    clips = training_clips(merged)
    link_clips(source, out)
    (babble_words if as_words else babble_tracks)(clips, merged, out, rng)
    print(f"{len(clips)} training-speaker clips of other words; wrote {out}", file=sys.stderr)
    return 0


def babble_tracks(clips: list[Path], merged: Path, out: Path, rng: np.random.Generator) -> None:
    """Run S3: four one-minute tracks beside merged's noise recordings (each linked)."""
    noise = out / "_background_noise_"
    noise.mkdir(exist_ok=True)
    for path in (merged / "_background_noise_").glob("*.wav"):
        if not (noise / path.name).exists():
            os.symlink(path.resolve(), noise / path.name)
    for k in range(4):
        talkers = [talker(clips, rng) for _ in range(int(rng.integers(3, 8)))]
        sf.write(noise / f"real_babble_{k}.wav", babble(talkers, 60 * SR, rng), SR, subtype="PCM_16")


def babble_words(clips: list[Path], merged: Path, out: Path, rng: np.random.Generator, count: int = 400) -> None:
    """Run S4, the bundled model: merged's noise recordings as they are, and `count` one-second
    babble clips in the word folder `babble`."""
    noise = out / "_background_noise_"
    if not noise.exists():
        os.symlink((merged / "_background_noise_").resolve(), noise)
    folder = out / "babble"
    folder.mkdir(exist_ok=True)
    for k in range(count):
        talkers = [talker(clips, rng, words=4) for _ in range(int(rng.integers(3, 8)))]
        speaker = speaker_of(rng.choice(clips))
        sf.write(folder / f"{speaker}_nohash_babble{k}.wav", babble(talkers, SR, rng), SR, subtype="PCM_16")


if __name__ == "__main__":
    sys.exit(main())

"""An experiment's data (run S3 of the model card): babble of real TRAINING speakers.

    python scripts/make_real_babble.py     # after scripts/make_room_data.py --negatives 12 --command-takes 3

Writes runs/room-data/merged_synthetic_rb: merged_synthetic's clips (linked) with four more
training noise tracks, each 3 to 7 talkers made of the non-command words of training speakers
(the spoken part of each clip, short pauses between), mixed at equal level by
`speechcmd.train.noise.babble`. Background babble then includes real voices, not only espeak-ng
ones. Validation and test speakers are never used (`split_of` with the recipe's split).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from make_room_data import COMMANDS, ROOT, SR  # this folder's data script: the same commands and paths

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
            if split_of(speaker_of(p), 0.08, 0.15, "speechcmd") == "train"]


def spoken_part(samples: np.ndarray) -> np.ndarray:
    """The clip from its first to its last 20 ms frame within 40 dB of the loudest, 50 ms either side
    (looser than `model.trim.speech_bounds`, which refuses a clip it cannot trust; any clip will do here)."""
    levels, size = frame_levels(samples, SR), frame_size(SR)
    keep = np.flatnonzero(levels > levels.max() - 40)
    return samples[max(0, keep[0] * size - 800) : min(len(samples), (keep[-1] + 1) * size + 800)]


def talker(clips: list[Path], rng: np.random.Generator, words: int = 40) -> np.ndarray:
    parts = []
    for path in rng.choice(clips, words, replace=False):
        parts += [spoken_part(load_audio(path)), np.zeros(int(rng.uniform(0.05, 0.3) * SR), np.float32)]
    return np.concatenate(parts)


def main() -> int:
    merged, source, out = DATA / "merged", DATA / "merged_synthetic", DATA / "merged_synthetic_rb"
    if not source.is_dir():
        print(f"make_real_babble: {source} is missing; run scripts/make_room_data.py --negatives 12 first.", file=sys.stderr)
        return 1
    rng = np.random.default_rng(1)
    clips = training_clips(merged)
    link_clips(source, out)
    noise = out / "_background_noise_"
    noise.mkdir(exist_ok=True)
    for path in (merged / "_background_noise_").glob("*.wav"):
        if not (noise / path.name).exists():
            os.symlink(path.resolve(), noise / path.name)
    for k in range(4):
        talkers = [talker(clips, rng) for _ in range(int(rng.integers(3, 8)))]
        sf.write(noise / f"real_babble_{k}.wav", babble(talkers, 60 * SR, rng), SR, subtype="PCM_16")
    print(f"{len(clips)} training-speaker clips of other words; wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

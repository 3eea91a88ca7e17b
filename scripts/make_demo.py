"""Build resources/demo/commands.flac: the ten commands in synthesized voices, to try the app
without a microphone. No recorded speech is used (Speech Commands clips must not be shipped).

Needs espeak-ng and flite (Debian packages of those names). The voices alternate so that the
demo is not one speaker; each word is normalized to half of full scale, followed by 1 s of
silence, with a quiet noise floor (-60 dBFS) so it sounds like a room rather than digital zero.

    .venv/bin/python scripts/make_demo.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "demo" / "commands.flac"
WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
VOICES = [("espeak-ng", "en"), ("espeak-ng", "en-us+f3"), ("espeak-ng", "en+m3"), ("flite", "rms"), ("flite", "kal16")]


def synthesize(engine: str, voice: str, word: str, path: Path) -> None:
    if engine == "espeak-ng":
        command = ["espeak-ng", "-v", voice, "-s", "140", "-w", str(path), word]
    else:
        command = ["flite", "-voice", voice, "-t", word, "-o", str(path)]
    subprocess.run(command, check=True, capture_output=True)


def main() -> int:
    from speechcmd.model.audio import load_audio

    rng = np.random.default_rng(0)
    pieces = [np.zeros(12_000, np.float32)]
    with tempfile.TemporaryDirectory() as folder:
        for index, word in enumerate(WORDS):
            path = Path(folder) / f"{word}.wav"
            try:
                synthesize(*VOICES[index % len(VOICES)], word, path)
            except (OSError, subprocess.CalledProcessError) as error:
                print(f"make_demo: could not synthesize '{word}' ({error}); install espeak-ng and flite.", file=sys.stderr)
                return 1
            samples = load_audio(path)
            pieces += [0.5 * samples / np.abs(samples).max(), np.zeros(16_000, np.float32)]
    audio = np.concatenate(pieces)
    audio += (10 ** (-60 / 20) * rng.standard_normal(len(audio))).astype(np.float32)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sf.write(OUT, audio, 16_000, subtype="PCM_16")
    print(f"{OUT.relative_to(ROOT)}: {len(audio) / 16_000:.1f} s, {OUT.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

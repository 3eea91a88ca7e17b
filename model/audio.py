"""Audio loading: any file a user may have -> mono float32 at 16 kHz.

`load_audio` reads a whole file; `stream_audio` yields it block by block so that an hours-long
recording is scanned in bounded memory. Both share `_open`, which turns every way a file can be
unusable into one `AudioError` sentence that names the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from speechcmd.model import SAMPLE_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au")
# Below this no speech survives, and a damaged header claiming a few Hz would make a small file
# hours long to resample and scan.
MIN_SAMPLE_RATE = 4_000


class AudioError(ValueError):
    """A user's audio file cannot be used; the message is one sentence naming the file."""


def _open(path: str | Path) -> sf.SoundFile:
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file; check the path.")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file.")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: the file is empty (0 bytes); record or export it again.")
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        detail = str(error).split(":")[-1].strip().rstrip(".") or "unrecognized format"
        raise AudioError(
            f"{path}: not a readable audio file ({detail}); use WAV, FLAC, OGG or MP3."
        ) from None
    if handle.frames == 0:
        handle.close()
        raise AudioError(f"{path}: contains no audio samples; record or export it again.")
    if handle.samplerate < MIN_SAMPLE_RATE:
        rate = handle.samplerate
        handle.close()
        raise AudioError(
            f"{path}: its sample rate of {rate} Hz is too low for speech (at least {MIN_SAMPLE_RATE} Hz); "
            "the header may be damaged."
        )
    return handle


def _to_mono(block: np.ndarray, path: Path) -> np.ndarray:
    """(frames, channels) -> (frames,) in [-1, 1], refusing NaN/Inf that would poison every feature.

    Float files may hold samples beyond full scale; they are clipped as playback (and the training
    cache) would clip them, since values near the float32 limit overflow the MFCC power spectrum.
    """
    mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(f"{path}: contains NaN or infinite samples; the file is corrupt.")
    return np.clip(mono, -1.0, 1.0, dtype=np.float32)


def audio_duration(path: str | Path) -> float:
    """Length of a file in seconds, read from its header."""
    with _open(path) as handle:
        return handle.frames / handle.samplerate


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a whole file as mono float32 samples in [-1, 1] at `sample_rate` Hz.

    Any bit depth, channel count and sample rate that libsndfile reads (WAV, FLAC, OGG/Vorbis,
    Opus, MP3). Raises `AudioError` for missing, empty, unreadable, truncated or non-audio files.
    """
    path = Path(path)
    with _open(path) as handle:
        try:
            block = handle.read(dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as error:
            raise AudioError(f"{path}: the audio data is damaged ({error}).") from None
        source_rate = handle.samplerate
    if block.shape[0] == 0:
        raise AudioError(f"{path}: contains no audio samples; record or export it again.")
    mono = _to_mono(block, path)
    if source_rate != sample_rate:
        # Clipped again: the resampler's filter rings slightly past full scale on loud input.
        mono = np.clip(soxr.resample(mono, source_rate, sample_rate, quality="HQ"), -1.0, 1.0, dtype=np.float32)
    return mono


def stream_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, block_seconds: float = 10.0
) -> Iterator[np.ndarray]:
    """Yield a file as consecutive mono float32 blocks at `sample_rate`, in bounded memory."""
    path = Path(path)
    with _open(path) as handle:
        source_rate = handle.samplerate
        resampler = (
            soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32", quality="HQ")
            if source_rate != sample_rate
            else None
        )
        block_frames = max(1, int(block_seconds * source_rate))
        while True:
            try:
                block = handle.read(block_frames, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise AudioError(f"{path}: the audio data is damaged ({error}).") from None
            last = block.shape[0] < block_frames
            if block.shape[0]:
                mono = _to_mono(block, path)
                out = resampler.resample_chunk(mono, last=last) if resampler else mono
                if out.size:
                    yield np.clip(out, -1.0, 1.0, dtype=np.float32)
            elif resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if tail.size:
                    yield np.clip(tail, -1.0, 1.0, dtype=np.float32)
            if last:
                break


def find_audio_files(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders (searched recursively) into a sorted list of audio files.

    Files named explicitly are kept whatever their extension, so that a bad one gets its own
    error; inside folders only known audio extensions are taken.
    """
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found.extend(
                sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
            )
        else:
            found.append(entry)
    return found

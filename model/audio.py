"""Audio loading: any file a user may have -> mono float32 at 16 kHz.

`load_audio` reads a whole file; `stream_audio` yields it block by block so that an hours-long
recording is scanned in bounded memory. Both share `_open`, which turns every way a file can be
unusable into one `AudioError` sentence that names the file.
"""

from __future__ import annotations

import os
import struct
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
# Above these a header is damaged or hostile: a few KB claiming 10 MHz x 4 channels would make
# every block gigabytes. Blocks are read at most MAX_BLOCK_BYTES at a time whatever the file says.
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
MAX_BLOCK_BYTES = 64 << 20
MAX_LIBSNDFILE_NAME = 512  # bytes of a file name libsndfile itself is given (it refuses a few hundred more)
MAX_LOAD_BYTES = 2 << 30  # load_audio holds a whole file; longer ones are for stream_audio
# No spoken word is shorter: such a clip is a damaged or mistaken file, whatever the model says.
MIN_WORD_SECONDS = 0.1
# A file that decodes to fewer frames than its header declares is cut short; an MP3's declared
# length can be an estimate, so up to four MP3 frames (4 x 1152 samples) or 2% less is tolerated.
CUT_TOLERANCE_FRAMES = 4608
CUT_TOLERANCE_SHARE = 0.02


class AudioError(ValueError):
    """A user's audio file cannot be used; the message is one sentence naming the file."""


def _container_shortfall(path: Path) -> tuple[int, int] | None:
    """(bytes the header promises, bytes the file holds) when a WAV, AIFF or AU file's audio data
    is cut short, else None.

    libsndfile quietly shortens such a file to what is there (a 300-byte head of a 1 s clip opens
    as 8 ms and gets classified), so the header is read here to notice. Compressed formats are
    checked as they are decoded instead (`_check_complete`)."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(12)
            if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
                return _chunk_shortfall(file, size, b"data", "<4sI")
            if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                return _chunk_shortfall(file, size, b"SSND", ">4sI")
            if head[:4] == b".snd" and len(head) == 12:
                offset, length = struct.unpack(">II", head[4:12])
                held = size - offset
                return (length, held) if length != 0xFFFFFFFF and length > held + 1 else None
    except OSError:
        return None
    return None


def _chunk_shortfall(file, size: int, data_chunk: bytes, layout: str) -> tuple[int, int] | None:
    """Walk the chunks after a RIFF or IFF header to the audio chunk; compare its length with the file."""
    while len(header := file.read(8)) == 8:
        chunk, length = struct.unpack(layout, header)
        if chunk == data_chunk:
            held = size - file.tell()
            # 0 and 0xFFFFFFFF are what streaming writers put before they know the length.
            return (length, held) if length not in (0, 0xFFFFFFFF) and length > held + 1 else None
        file.seek(length + (length & 1), os.SEEK_CUR)
    return None


def _check_complete(path: Path, handle: sf.SoundFile, frames_read: int) -> None:
    """Refuse a file that decoded to fewer frames than its header declares: a cut MP3 (or any format
    whose decoder stops quietly at the cut) would otherwise be classified as if whole. MP3 headers
    may only estimate their length, so a few frames' and a few percent's difference are allowed."""
    declared = handle.frames
    if declared - frames_read > max(CUT_TOLERANCE_FRAMES, CUT_TOLERANCE_SHARE * declared):
        raise AudioError(
            f"{path}: the file is cut short (its header declares {declared / handle.samplerate:.2f} s of audio, "
            f"{frames_read / handle.samplerate:.2f} s could be decoded); copy or export it again."
        )


def _open(path: str | Path) -> sf.SoundFile:
    path = Path(path)
    try:
        if not path.exists():
            raise AudioError(f"{path}: no such file; check the path.")
        if path.is_dir():
            raise AudioError(f"{path}: is a folder, not an audio file.")
        if not path.is_file():  # reading a FIFO waits for a writer, a device never ends
            raise AudioError(f"{path}: is not a file (a device, pipe or socket); give an audio file.")
        if path.stat().st_size == 0:
            raise AudioError(f"{path}: the file is empty (0 bytes); record or export it again.")
        if not os.access(path, os.R_OK):  # libsndfile would only say "System error"
            raise PermissionError
    except PermissionError:
        raise AudioError(f"{path}: permission denied; check who may read it.") from None
    except OSError as error:  # a name too long for the system, a loop of links...
        raise AudioError(f"{path}: cannot be opened ({error.strerror or error}); check the path.") from None
    try:
        # Bytes, not str: libsndfile cannot take a name that is not valid UTF-8 as text. A name longer
        # than libsndfile takes (a deep tree) is opened here and handed over as a descriptor.
        name = os.fsencode(path)
        handle = sf.SoundFile(name) if len(name) < MAX_LIBSNDFILE_NAME else sf.SoundFile(os.open(name, os.O_RDONLY), closefd=True)
    except PermissionError:
        raise AudioError(f"{path}: permission denied; check who may read it.") from None
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
    if handle.samplerate > MAX_SAMPLE_RATE or handle.channels > MAX_CHANNELS:
        rate, channels = handle.samplerate, handle.channels
        handle.close()
        raise AudioError(
            f"{path}: its header claims {rate:,} Hz x {channels} channels, beyond any recording "
            f"(at most {MAX_SAMPLE_RATE:,} Hz and {MAX_CHANNELS} channels); the header is damaged."
        )
    shortfall = _container_shortfall(path)
    if shortfall is not None:
        promised, held = shortfall
        handle.close()
        raise AudioError(
            f"{path}: the file is cut short (its header promises {promised:,} bytes of audio, it holds {held:,}); "
            "copy or export it again."
        )
    return handle


def _block_frames(handle: sf.SoundFile, seconds: float) -> int:
    """Frames in a block of `seconds`, but never more than MAX_BLOCK_BYTES of float32 samples."""
    return max(1, min(int(seconds * handle.samplerate), MAX_BLOCK_BYTES // (4 * handle.channels)))


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


def decoded_bytes(path: str | Path, sample_rate: int = SAMPLE_RATE) -> int:
    """Memory `load_audio` needs for this file (mono samples before and after resampling), read from
    its header: what a caller compares with its budget to decode in the background, or stream."""
    with _open(path) as handle:
        return _decoded_bytes(handle, sample_rate)


def _decoded_bytes(handle: sf.SoundFile, sample_rate: int) -> int:
    return 4 * (handle.frames + handle.frames * sample_rate // handle.samplerate)


def short_clip_warning(seconds: float) -> str | None:
    """A sentence when a clip of `seconds` is far too short to hold a spoken word, else None."""
    if seconds >= MIN_WORD_SECONDS:
        return None
    return f"only {seconds * 1000:.0f} ms of audio, far too short for a spoken word; the file may be cut short."


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, first_seconds: float | None = None) -> np.ndarray:
    """Read a whole file as mono float32 samples in [-1, 1] at `sample_rate` Hz; with
    `first_seconds`, only that much of its start (a training clip needs one window, however long
    the file is: an hours-long file is then read in bounded memory).

    Any bit depth, channel count and sample rate that libsndfile reads (WAV, FLAC, OGG/Vorbis,
    Opus, MP3). Raises `AudioError` for missing, empty, unreadable, truncated or non-audio files.
    """
    path = Path(path)
    with _open(path) as handle:
        source_rate = handle.samplerate
        if first_seconds is not None and handle.frames > first_seconds * source_rate:
            return _load_start(handle, path, sample_rate, round(first_seconds * source_rate))
        if _decoded_bytes(handle, sample_rate) > MAX_LOAD_BYTES:
            raise AudioError(
                f"{path}: {handle.frames / source_rate / 3600:.1f} hours is too long to open whole; "
                "cut it into shorter files."
            )
        # Decoded into one array of the declared length, block by block and mixed to mono at once, so
        # that the peak is what `_decoded_bytes` says: no list of blocks joined into a second copy.
        mono, filled, block_frames = np.empty(handle.frames, np.float32), 0, _block_frames(handle, 60.0)
        longest = MAX_LOAD_BYTES // 4 - handle.frames * sample_rate // source_rate  # what the bound leaves
        while True:
            block = _read(handle, block_frames, path)
            if block.shape[0]:
                if filled + block.shape[0] > len(mono):  # an MP3 longer than its header's estimate
                    if filled + block.shape[0] > longest:
                        raise AudioError(f"{path}: holds far more audio than its header declares, too much to open whole; "
                                         "cut it into shorter files.")
                    mono = np.concatenate([mono[:filled], np.empty(max(block.shape[0], len(mono) // 8), np.float32)])
                mono[filled : filled + block.shape[0]] = _to_mono(block, path)
                filled += block.shape[0]
            if block.shape[0] < block_frames:
                break
        _check_complete(path, handle, filled)
    if not filled:
        raise AudioError(f"{path}: contains no audio samples; record or export it again.")
    return _resampled(mono[:filled], source_rate, sample_rate)


def _load_start(handle: sf.SoundFile, path: Path, sample_rate: int, frames: int) -> np.ndarray:
    """The first `frames` frames of an open file, mono at `sample_rate`."""
    block = _read(handle, frames, path)
    if not block.shape[0]:
        raise AudioError(f"{path}: contains no audio samples; record or export it again.")
    return _resampled(_to_mono(block, path), handle.samplerate, sample_rate)


def _read(handle: sf.SoundFile, frames: int, path: Path) -> np.ndarray:
    """Up to `frames` frames from where the file is, (frames, channels) float32; AudioError when damaged."""
    try:
        return handle.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: the audio data is damaged ({error}).") from None


def _resampled(mono: np.ndarray, source_rate: int, sample_rate: int) -> np.ndarray:
    """A whole signal at `sample_rate`, clipped again: the resampler's filter rings slightly past
    full scale on loud input."""
    if source_rate == sample_rate:
        return mono
    mono = soxr.resample(mono, source_rate, sample_rate, quality="HQ")
    np.clip(mono, -1.0, 1.0, out=mono)
    return mono


def stream_audio(
    path: str | Path, sample_rate: int = SAMPLE_RATE, block_seconds: float = 10.0, start_seconds: float = 0.0
) -> Iterator[np.ndarray]:
    """Yield a file as consecutive mono float32 blocks at `sample_rate`, in bounded memory,
    from `start_seconds` into it (a seek: nothing before it is decoded)."""
    path = Path(path)
    with _open(path) as handle:
        source_rate = handle.samplerate
        resampler = (
            soxr.ResampleStream(source_rate, sample_rate, 1, dtype="float32", quality="HQ")
            if source_rate != sample_rate
            else None
        )
        block_frames, frames_read = _block_frames(handle, block_seconds), 0
        if start_seconds > 0:
            frames_read = min(int(start_seconds * source_rate), handle.frames)
            try:
                handle.seek(frames_read)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise AudioError(f"{path}: cannot seek to {start_seconds:.1f} s ({error}); the file may be damaged.") from None
        while True:
            block = _read(handle, block_frames, path)
            frames_read += block.shape[0]
            last = block.shape[0] < block_frames
            if last:
                _check_complete(path, handle, frames_read)  # before the last block is yielded: a cut file ends in an error
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


def audio_files_under(folder: str | Path, skip_unreadable: bool = False) -> list[Path]:
    """The audio files anywhere under `folder`, sorted. Walked with a stack, not recursion (os.walk
    and Path.rglob recurse), so a tree of any depth is read; linked files are followed, linked
    folders are not (a link back up the tree would never end). `skip_unreadable`: sub-folders that
    may not be read are passed over instead of raising PermissionError."""
    top = Path(folder)
    found, folders = [], [top]
    while folders:
        current = folders.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except OSError:
            if skip_unreadable and current != top:
                continue
            raise
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in AUDIO_EXTENSIONS and entry.is_file():
                    found.append(Path(entry.path))
            except OSError:  # gone since it was listed, or a name the system cannot look up
                continue
    return sorted(found)


def find_audio_files(paths: list[str | Path]) -> list[Path]:
    """Expand files and folders (searched recursively) into a sorted list of audio files.

    Files named explicitly are kept whatever their extension, so that a bad one gets its own
    error; inside folders only known audio extensions are taken.
    """
    found: list[Path] = []
    for entry in map(Path, paths):
        try:
            is_folder = entry.is_dir()
        except OSError:  # a name too long to look up: it gets its own error as a file
            is_folder = False
        if is_folder:
            if not os.access(entry, os.R_OK | os.X_OK):
                raise AudioError(f"{entry}: permission denied; check who may read this folder.")
            found.extend(audio_files_under(entry, skip_unreadable=True))
        else:
            found.append(entry)
    return found

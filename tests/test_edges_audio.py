"""Audio loading at its edges: files longer than one read block, the lengths streaming writers put in
a header before they know it (0xFFFFFFFF), chunks of odd size before the audio (the RIFF pad byte),
a file one byte short, and each limit of what a header may claim."""

import os
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from speechcmd.model import audio
from speechcmd.model.audio import (
    AudioError,
    audio_duration,
    decoded_bytes,
    find_audio_files,
    load_audio,
    short_clip_warning,
    stream_audio,
)
from conftest import tone, write_wav

RATE = 16_000


def pcm16(samples: np.ndarray, byteorder: str = "<") -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype(f"{byteorder}i2").tobytes()


def wav_bytes(samples: np.ndarray, data_length: int | None = None, riff_length: int | None = None, before_data: bytes = b"") -> bytes:
    """A 16-bit mono 16 kHz WAV written by hand: `before_data` goes between the fmt and data chunks."""
    data = pcm16(samples)
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, RATE, 2 * RATE, 2, 16)
    body = b"WAVE" + fmt + before_data + struct.pack("<4sI", b"data", len(data) if data_length is None else data_length) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff_length is None else riff_length) + body


def chunk(name: bytes, payload: bytes) -> bytes:
    """A RIFF chunk, with the pad byte that follows an odd-sized one."""
    return struct.pack("<4sI", name, len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def au_bytes(samples: np.ndarray, data_length: int | None = None) -> bytes:
    data = pcm16(samples, ">")
    return struct.pack(">4sIIIII", b".snd", 24, len(data) if data_length is None else data_length, 3, RATE, 1) + data


def speechlike(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, round(seconds * rate)).astype(np.float32)


def as_read(samples: np.ndarray) -> np.ndarray:
    """What a file written here by `pcm16` reads back as."""
    return (np.clip(samples, -1, 1) * 32767).astype(np.int16).astype(np.float32) / 32768


def held(path) -> np.ndarray:
    """What a file holds, read whole by libsndfile and mixed to mono."""
    return sf.read(str(path), dtype="float32", always_2d=True)[0].mean(axis=1, dtype=np.float32)


# --- longer than one read block ---------------------------------------------------------------


@pytest.fixture()
def small_blocks(monkeypatch):
    """Read blocks of at most 1,000 mono frames (4,000 bytes of float32), so a short file spans many."""
    monkeypatch.setattr(audio, "MAX_BLOCK_BYTES", 4_000)


@pytest.mark.parametrize("frames", [16_000, 16_001, 15_999, 1_000, 999])
def test_a_file_longer_than_one_read_block_loads_whole_and_in_order(tmp_path, small_blocks, frames):
    samples = speechlike(frames / RATE)
    path = write_wav(tmp_path / "long.wav", samples)
    np.testing.assert_array_equal(load_audio(path), held(path))


@pytest.mark.parametrize("frames", [16_000, 16_001, 999])
def test_a_file_longer_than_one_read_block_streams_whole_and_in_order(tmp_path, small_blocks, frames):
    samples = speechlike(frames / RATE)
    path = write_wav(tmp_path / "long.wav", samples)
    blocks = list(stream_audio(path))
    assert max(len(b) for b in blocks) == min(1_000, frames)  # never more than one block at a time
    np.testing.assert_array_equal(np.concatenate(blocks), held(path))


def test_a_read_block_holds_no_more_bytes_whatever_the_channel_count(tmp_path, small_blocks):
    stereo = np.stack([speechlike(0.5), speechlike(0.5, seed=1)], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), stereo, RATE, subtype="PCM_16")
    blocks = list(stream_audio(path))
    assert [len(b) for b in blocks] == [500] * 16  # 4,000 bytes of float32 are 500 stereo frames
    np.testing.assert_array_equal(np.concatenate(blocks), held(path))


def test_a_block_of_less_than_one_frame_still_reads_a_frame_at_a_time(tmp_path):
    samples = speechlike(0.01)
    path = write_wav(tmp_path / "short.wav", samples)
    blocks = list(stream_audio(path, block_seconds=1e-6))
    assert {len(b) for b in blocks} == {1} and len(blocks) == len(samples)


@pytest.mark.parametrize("seconds", [2.0, 2.05])  # a whole number of blocks, and a part block after them
def test_a_resampled_stream_over_many_blocks_is_as_long_as_the_file_loaded_whole(tmp_path, seconds):
    path = write_wav(tmp_path / "8k.wav", speechlike(seconds, rate=8_000), sample_rate=8_000)
    streamed = np.concatenate(list(stream_audio(path, block_seconds=0.25)))
    whole = load_audio(path)
    assert len(streamed) == len(whole) == round(seconds * RATE)
    np.testing.assert_allclose(streamed, whole, atol=1e-5)  # to the last sample, the resampler's tail included


def test_a_file_at_the_models_rate_is_not_resampled(tmp_path):
    samples = speechlike(0.3)
    path = write_wav(tmp_path / "16k.wav", samples, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path), samples)
    np.testing.assert_array_equal(np.concatenate(list(stream_audio(path))), samples)


# --- what streaming writers and other programs put in a header --------------------------------


def test_a_wav_with_the_streaming_writers_unknown_length_loads_whole(tmp_path):
    samples = speechlike(1.0)
    path = tmp_path / "streamed.wav"
    path.write_bytes(wav_bytes(samples, data_length=0xFFFFFFFF, riff_length=0xFFFFFFFF))
    np.testing.assert_array_equal(load_audio(path), as_read(samples))
    np.testing.assert_array_equal(np.concatenate(list(stream_audio(path))), as_read(samples))


@pytest.mark.parametrize("size", [3, 4, 1])
def test_a_chunk_before_the_audio_of_any_size_is_stepped_over(tmp_path, size):
    samples = speechlike(0.5)
    path = tmp_path / "tagged.wav"
    path.write_bytes(wav_bytes(samples, before_data=chunk(b"LIST", b"x" * size) + chunk(b"junk", b"y" * (size + 1))))
    np.testing.assert_array_equal(load_audio(path), as_read(samples))


@pytest.mark.parametrize("size", [3, 4])
def test_a_wav_cut_short_after_a_chunk_of_odd_or_even_size_is_still_refused(tmp_path, size):
    whole = wav_bytes(speechlike(1.0), before_data=chunk(b"LIST", b"x" * size))
    path = tmp_path / "cut.wav"
    path.write_bytes(whole[: len(whole) - 16_000])
    with pytest.raises(AudioError, match=r"cut short .*promises 32,000 bytes of audio, it holds 16,000"):
        load_audio(path)


def test_a_wav_one_byte_short_loads_and_two_bytes_short_is_cut(tmp_path):
    whole = wav_bytes(speechlike(1.0))
    path = tmp_path / "short.wav"
    path.write_bytes(whole[:-1])  # a writer that left out a last byte: the file is whole in every sample but one
    assert len(load_audio(path)) == 15_999
    path.write_bytes(whole[:-2])
    with pytest.raises(AudioError, match="promises 32,000 bytes of audio, it holds 31,998"):
        load_audio(path)


def test_an_au_file_with_an_unknown_length_loads_whole(tmp_path):
    samples = speechlike(0.5)
    path = tmp_path / "streamed.au"
    path.write_bytes(au_bytes(samples, data_length=0xFFFFFFFF))
    np.testing.assert_array_equal(load_audio(path), as_read(samples))


def test_an_au_file_cut_short_is_refused_and_one_byte_short_is_not(tmp_path):
    samples = speechlike(0.5)
    path = tmp_path / "cut.au"
    path.write_bytes(au_bytes(samples, data_length=16_002))  # two bytes more than it holds
    with pytest.raises(AudioError, match="promises 16,002 bytes of audio, it holds 16,000"):
        load_audio(path)
    path.write_bytes(au_bytes(samples, data_length=16_001))
    assert len(load_audio(path)) == 8_000


def test_an_aiff_cut_short_is_refused(tmp_path):
    path = tmp_path / "clip.aiff"
    sf.write(str(path), speechlike(1.0), RATE, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[:-2])
    with pytest.raises(AudioError, match="cut short"):
        load_audio(path)
    path.write_bytes(data[:-1])
    assert len(load_audio(path)) == 15_999


# --- what a header may claim ------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "channels"), [(4_000, 1), (384_000, 1), (16_000, 32)])
def test_headers_at_the_limits_of_a_real_recording_load(tmp_path, rate, channels):
    path = tmp_path / "edge.wav"
    sf.write(str(path), np.full((rate // 100, channels), 0.25, np.float32), rate, subtype="PCM_16")
    assert len(load_audio(path)) == RATE // 100


@pytest.mark.parametrize(("rate", "channels", "message"), [
    (3_999, 1, "sample rate of 3999 Hz is too low"),
    (384_001, 1, "claims 384,001 Hz x 1 channels"),
    (16_000, 33, "claims 16,000 Hz x 33 channels"),
])
def test_headers_just_past_those_limits_are_refused_in_one_sentence(tmp_path, rate, channels, message):
    path = tmp_path / "edge.wav"
    sf.write(str(path), np.zeros((max(rate // 100, 1), channels), np.float32), rate, subtype="PCM_16")
    with pytest.raises(AudioError, match=message):
        load_audio(path)


def test_a_file_whose_decoded_size_is_exactly_the_bound_opens_whole(tmp_path, monkeypatch):
    path = write_wav(tmp_path / "8k.wav", speechlike(1.0, rate=8_000), sample_rate=8_000)
    assert decoded_bytes(path) == 4 * (8_000 + 16_000)  # the file's samples and the resampled ones
    monkeypatch.setattr(audio, "MAX_LOAD_BYTES", 96_000)
    assert len(load_audio(path)) == RATE
    monkeypatch.setattr(audio, "MAX_LOAD_BYTES", 95_999)
    with pytest.raises(AudioError, match="too long to open whole"):
        load_audio(path)
    assert sum(len(b) for b in stream_audio(path)) == RATE  # streaming has no such bound


def test_the_duration_comes_from_the_header(tmp_path):
    assert audio_duration(write_wav(tmp_path / "a.wav", speechlike(0.75, rate=8_000), sample_rate=8_000)) == 0.75


@pytest.mark.parametrize(("declared", "decoded", "cut"), [
    (100_000, 100_000 - 4_608, False),  # four MP3 frames short: a length estimate
    (100_000, 100_000 - 4_609, True),
    (1_000_000, 980_000, False),  # 2% short of a long file
    (1_000_000, 979_999, True),
])
def test_a_decoder_may_stop_four_mp3_frames_or_two_percent_short_and_no_more(declared, decoded, cut):
    handle = SimpleNamespace(frames=declared, samplerate=RATE)
    if cut:
        with pytest.raises(AudioError, match="cut short"):
            audio._check_complete("clip.mp3", handle, decoded)
    else:
        audio._check_complete("clip.mp3", handle, decoded)


def test_float_samples_beyond_full_scale_are_clipped_as_playback_would(tmp_path):
    path = write_wav(tmp_path / "hot.wav", np.array([2.0, -3.0, 0.5] * 1_000, np.float32), subtype="FLOAT")
    assert load_audio(path)[:3].tolist() == [1.0, -1.0, 0.5]
    assert np.concatenate(list(stream_audio(path)))[:3].tolist() == [1.0, -1.0, 0.5]


def test_infinite_samples_are_refused_when_streamed_too(tmp_path):
    samples = tone()
    samples[-1] = np.inf
    path = write_wav(tmp_path / "inf.wav", samples, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or infinite"):
        list(stream_audio(path))


@pytest.mark.parametrize(("seconds", "warned"), [(0.1, False), (0.099, True), (0.0, True)])
def test_a_clip_shorter_than_a_tenth_of_a_second_is_called_too_short_for_a_word(seconds, warned):
    warning = short_clip_warning(seconds)
    assert (warning is not None) == warned
    if warned:
        assert f"only {seconds * 1000:.0f} ms of audio" in warning


def test_named_files_are_kept_whatever_their_extension_and_folders_give_audio_of_any_case(tmp_path):
    write_wav(tmp_path / "in" / "LOUD.WAV", tone())
    (tmp_path / "in" / "notes.txt").write_text("no")
    named = tmp_path / "notes.txt"
    named.write_text("no")
    assert find_audio_files([named, tmp_path / "in"]) == [named, tmp_path / "in" / "LOUD.WAV"]


def test_a_file_deep_in_a_tree_loads_and_leaves_no_file_open(tmp_path):
    # libsndfile refuses a name over 1,024 bytes; such a file is opened by descriptor instead
    deep = tmp_path.joinpath(*["d" * 200] * 6)
    deep.mkdir(parents=True)
    path = deep / "clip.wav"
    with open(path, "wb") as file:  # written through Python: libsndfile could not take the name either
        sf.write(file, tone(seconds=0.2), RATE, format="WAV", subtype="PCM_16")
    assert len(bytes(path)) > 1_200
    open_before = len(list(Path("/proc/self/fd").iterdir()))
    assert len(load_audio(path)) == 3_200
    assert sum(len(b) for b in stream_audio(path)) == 3_200
    assert len(list(Path("/proc/self/fd").iterdir())) == open_before


def test_a_stereo_block_of_a_single_frame_is_mixed_like_the_rest(tmp_path, small_blocks):
    stereo = np.stack([np.full(501, 0.5, np.float32), np.full(501, -0.25, np.float32)], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), stereo, RATE, subtype="FLOAT")  # 500 frames a block: the last block is one frame
    np.testing.assert_array_equal(load_audio(path), np.full(501, 0.125, np.float32))
    np.testing.assert_array_equal(np.concatenate(list(stream_audio(path))), np.full(501, 0.125, np.float32))


@pytest.mark.parametrize("channels", [1, 2, 32])
def test_a_read_block_is_at_most_64_mib_of_samples_whatever_the_header_claims(channels):
    loud_header = SimpleNamespace(samplerate=384_000, channels=channels)
    assert audio._block_frames(loud_header, 3_600.0) * channels * 4 == 64 << 20
    assert audio._block_frames(SimpleNamespace(samplerate=16_000, channels=channels), 10.0) == 160_000


def test_only_the_first_seconds_asked_for_are_read_of_a_longer_file(tmp_path):
    samples = speechlike(2.0)
    path = write_wav(tmp_path / "long.wav", samples, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path, first_seconds=0.5), samples[:8_000])
    np.testing.assert_array_equal(load_audio(path, first_seconds=5.0), samples)  # shorter than asked: all of it
    np.testing.assert_array_equal(load_audio(path, first_seconds=2.0), samples)


def test_the_first_seconds_of_a_file_at_another_rate_are_resampled(tmp_path):
    path = write_wav(tmp_path / "8k.wav", speechlike(2.0, rate=8_000), sample_rate=8_000, subtype="FLOAT")
    start = load_audio(path, first_seconds=0.5)
    assert len(start) == 8_000 and np.abs(start).max() <= 1.0
    np.testing.assert_allclose(start[:7_000], load_audio(path)[:7_000], atol=2e-3)


def test_a_file_over_two_gib_decoded_is_refused_before_anything_is_read(tmp_path):
    frames = (2 << 30) // 8 + 1  # 16-bit mono at 16 kHz: 8 bytes a frame decoded, one frame over 2 GiB
    path = tmp_path / "hours.wav"
    with open(path, "wb") as file:
        file.write(wav_bytes(np.zeros(0), data_length=2 * frames, riff_length=36 + 2 * frames))
        file.truncate(44 + 2 * frames)  # sparse: the header's length, no disk
    assert decoded_bytes(path) == 8 * frames
    with pytest.raises(AudioError, match=r"4\.7 hours is too long to open whole"):
        load_audio(path)


def test_an_unreadable_file_is_named_once_with_libsndfiles_reason(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(AudioError) as error:
        load_audio(path)
    assert str(error.value) == f"{path}: not a readable audio file (Format not recognised); use WAV, FLAC, OGG or MP3."


def test_a_name_too_long_to_look_up_is_kept_as_a_file_to_get_its_own_error(tmp_path):
    too_long = tmp_path / ("x" * 300 + ".wav")
    assert find_audio_files([too_long]) == [too_long]
    with pytest.raises(AudioError, match="cannot be opened"):
        load_audio(too_long)


def test_a_folder_linked_inside_itself_is_searched_once(tmp_path):
    write_wav(tmp_path / "words" / "yes.wav", tone(seconds=0.1))
    (tmp_path / "words" / "again").symlink_to(tmp_path / "words")
    assert audio.audio_files_under(tmp_path / "words") == [tmp_path / "words" / "yes.wav"]


@pytest.fixture()
def locked(monkeypatch):
    """Folders named "locked" may not be read, as for a user without the right (tests run as root)."""
    scandir, access = os.scandir, os.access

    def refusing_scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing_scandir)
    monkeypatch.setattr(os, "access", lambda path, mode: not (Path(path).name == "locked" and mode & os.R_OK) and access(path, mode))


def test_a_sub_folder_that_may_not_be_read_is_passed_over_in_a_search(tmp_path, locked):
    write_wav(tmp_path / "words" / "yes.wav", tone(seconds=0.1))
    (tmp_path / "words" / "locked").mkdir()
    assert find_audio_files([tmp_path / "words"]) == [tmp_path / "words" / "yes.wav"]
    assert audio.audio_files_under(tmp_path / "words", skip_unreadable=True) == [tmp_path / "words" / "yes.wav"]


def test_a_sub_folder_that_may_not_be_read_fails_a_walk_that_must_see_everything(tmp_path, locked):
    (tmp_path / "words" / "locked").mkdir(parents=True)
    with pytest.raises(PermissionError):
        audio.audio_files_under(tmp_path / "words")


def test_a_folder_named_that_may_not_be_read_is_refused_in_one_sentence(tmp_path, locked):
    (tmp_path / "locked").mkdir()
    with pytest.raises(AudioError, match="locked: permission denied"):
        find_audio_files([tmp_path / "locked"])
    with pytest.raises(PermissionError):
        audio.audio_files_under(tmp_path / "locked", skip_unreadable=True)  # the folder asked for is never passed over


class HeaderShortBy:
    """A SoundFile whose header declares `missing` frames fewer than it decodes, as an MP3's
    estimated length may: everything else is the real file's."""

    missing = 5_000

    def __init__(self, *args, **kwargs):
        self._file = RealSoundFile(*args, **kwargs)

    @property
    def frames(self) -> int:
        return self._file.frames - self.missing

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


RealSoundFile = sf.SoundFile


@pytest.fixture()
def estimated_length(monkeypatch):
    monkeypatch.setattr(sf, "SoundFile", HeaderShortBy)


@pytest.mark.parametrize("blocks", ["one block", "many blocks"])
def test_a_file_that_decodes_past_its_headers_estimate_is_read_to_its_end(tmp_path, monkeypatch, estimated_length, blocks):
    samples = speechlike(1.0)
    path = write_wav(tmp_path / "estimated.wav", samples, subtype="FLOAT")
    if blocks == "many blocks":
        monkeypatch.setattr(audio, "MAX_BLOCK_BYTES", 4_000)  # 1,000 frames a block: the array grows several times
    assert audio_duration(path) == 11_000 / RATE  # what the header says
    np.testing.assert_array_equal(load_audio(path), samples)


def test_a_file_may_decode_past_its_header_as_far_as_the_memory_bound_and_no_further(tmp_path, monkeypatch, estimated_length):
    samples = speechlike(1.0)
    path = write_wav(tmp_path / "estimated.wav", samples, subtype="FLOAT")
    # declared 11,000 frames: 88,000 bytes decoded, of the bound; what is left of it may hold more frames
    monkeypatch.setattr(audio, "MAX_LOAD_BYTES", 4 * (16_000 + 11_000))  # room for exactly the 16,000 there are
    np.testing.assert_array_equal(load_audio(path), samples)
    monkeypatch.setattr(audio, "MAX_LOAD_BYTES", 4 * (16_000 + 11_000) - 4)  # one frame less
    with pytest.raises(AudioError, match="holds far more audio than its header declares"):
        load_audio(path)


def test_a_big_endian_wav_loads_its_chunk_lengths_read_as_big_endian(tmp_path):
    path = tmp_path / "rifx.wav"
    sf.write(str(path), np.full(1_600, 0.25, np.float32), RATE, subtype="PCM_16", endian="BIG")
    assert path.read_bytes()[:4] == b"RIFX"
    np.testing.assert_array_equal(load_audio(path), np.full(1_600, 0.25, np.float32))


def test_an_empty_file_is_called_empty_and_a_file_of_one_sample_loads(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match=r"the file is empty \(0 bytes\)"):
        load_audio(empty)
    one = write_wav(tmp_path / "one.wav", np.full(1, 0.25, np.float32))
    assert load_audio(one).tolist() == [0.25]


class HeaderLongBy(HeaderShortBy):
    """A SoundFile whose header declares `extra` frames more than it decodes: a cut MP3."""

    extra = 4_609

    @property
    def frames(self) -> int:
        return self._file.frames + self.extra


@pytest.mark.parametrize(("extra", "cut"), [(4_608, False), (4_609, True)])
def test_a_stream_that_ends_more_than_four_mp3_frames_before_its_header_says_is_cut(tmp_path, monkeypatch, extra, cut):
    monkeypatch.setattr(sf, "SoundFile", HeaderLongBy)
    monkeypatch.setattr(HeaderLongBy, "extra", extra)
    path = write_wav(tmp_path / "cut.mp3.wav", speechlike(1.0), subtype="FLOAT")
    if cut:
        with pytest.raises(AudioError, match="cut short"):
            list(stream_audio(path, block_seconds=0.25))
    else:
        assert sum(len(b) for b in stream_audio(path, block_seconds=0.25)) == RATE


def test_a_cut_clip_shorter_than_the_start_asked_for_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(sf, "SoundFile", HeaderLongBy)
    monkeypatch.setattr(HeaderLongBy, "extra", 10_000)  # declares 26,000 frames, holds 16,000
    path = write_wav(tmp_path / "cut.wav", speechlike(1.0), subtype="FLOAT")
    with pytest.raises(AudioError, match="cut short"):
        load_audio(path, first_seconds=5.0)


def test_a_file_that_declares_audio_but_decodes_none_is_refused_when_its_start_is_asked_for(tmp_path, monkeypatch):
    monkeypatch.setattr(sf, "SoundFile", HeaderLongBy)
    monkeypatch.setattr(HeaderLongBy, "extra", 20_000)
    path = write_wav(tmp_path / "nothing.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioError, match="contains no audio samples"):
        load_audio(path, first_seconds=0.5)

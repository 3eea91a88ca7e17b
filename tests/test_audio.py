"""Audio loading: every file a user may have becomes mono 16 kHz float32, or one clear error."""

import numpy as np
import pytest
import soundfile as sf

from speechcmd.model.audio import AudioError, audio_duration, find_audio_files, load_audio, stream_audio
from conftest import tone, write_wav


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_wav_of_any_bit_depth_loads_as_float32_in_range(tmp_path, subtype):
    path = write_wav(tmp_path / f"{subtype}.wav", tone(440, 1.0, amplitude=0.5), subtype=subtype)
    samples = load_audio(path)
    assert samples.dtype == np.float32 and samples.shape == (16_000,)
    assert 0.45 < np.abs(samples).max() <= 0.51


@pytest.mark.parametrize("rate", [8_000, 22_050, 44_100, 48_000, 96_000])
def test_any_sample_rate_is_resampled_to_16k_keeping_pitch(tmp_path, rate):
    path = write_wav(tmp_path / "a.wav", tone(1000, 0.5, sample_rate=rate), sample_rate=rate)
    samples = load_audio(path)
    assert abs(len(samples) - 8_000) <= 2
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * 16_000 / len(samples) - 1000) < 5


def test_stereo_is_mixed_down_to_mono(tmp_path):
    left, right = tone(440, 1.0, amplitude=0.4), np.zeros(16_000, np.float32)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1))
    np.testing.assert_allclose(load_audio(path), left / 2, atol=1e-4)


@pytest.mark.parametrize("fmt,ext", [("FLAC", ".flac"), ("OGG", ".ogg")])
def test_compressed_formats_load(tmp_path, fmt, ext):
    path = tmp_path / f"clip{ext}"
    sf.write(str(path), tone(440, 1.0), 16_000, format=fmt)
    assert abs(len(load_audio(path)) - 16_000) < 100


def test_mp3_loads_where_libsndfile_supports_it(tmp_path):
    path = tmp_path / "clip.mp3"
    try:
        sf.write(str(path), tone(440, 1.0), 16_000, format="MP3")
    except (sf.LibsndfileError, ValueError, TypeError):
        pytest.skip("this libsndfile has no MP3 support")
    assert abs(len(load_audio(path)) - 16_000) < 2_000


def _bad_files(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    noise = tmp_path / "random.wav"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    full = write_wav(tmp_path / "full.wav", tone())
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(full.read_bytes()[:30])
    return {"empty": empty, "random bytes": noise, "text file named .wav": text, "truncated header": truncated,
            "missing": tmp_path / "missing.wav", "folder": tmp_path}


@pytest.mark.parametrize("case", ["empty", "random bytes", "text file named .wav", "truncated header", "missing", "folder"])
def test_unusable_files_raise_one_sentence_naming_the_file(tmp_path, case):
    path = _bad_files(tmp_path)[case]
    with pytest.raises(AudioError) as error:
        load_audio(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message and "Traceback" not in message


def test_nan_samples_are_refused(tmp_path):
    samples = tone()
    samples[100] = np.nan
    path = write_wav(tmp_path / "nan.wav", samples, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(path)


def test_a_wav_cut_short_is_refused_saying_what_its_header_promised(tmp_path):
    # libsndfile would quietly open the half that is there (issue 11, item 10).
    full = write_wav(tmp_path / "full.wav", tone(440, 1.0))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 16_000])  # header + half the samples
    with pytest.raises(AudioError, match="cut short .*promises 32,000 bytes of audio, it holds 16,000"):
        load_audio(cut)


def test_streaming_matches_whole_file_loading(tmp_path):
    samples = np.random.default_rng(1).uniform(-0.5, 0.5, 44_100 * 5).astype(np.float32)
    path = write_wav(tmp_path / "long.wav", samples, sample_rate=44_100, subtype="FLOAT")
    streamed = np.concatenate(list(stream_audio(path, block_seconds=0.7)))
    whole = load_audio(path)
    assert abs(len(streamed) - len(whole)) <= 2
    n = min(len(streamed), len(whole))
    assert np.abs(streamed[1000 : n - 1000] - whole[1000 : n - 1000]).max() < 1e-3
    assert audio_duration(path) == pytest.approx(5.0)


def test_folders_are_searched_recursively_for_audio(tmp_path):
    write_wav(tmp_path / "a" / "one.wav", tone())
    write_wav(tmp_path / "a" / "b" / "two.wav", tone())
    (tmp_path / "a" / "readme.txt").write_text("not audio")
    found = find_audio_files([tmp_path])
    assert sorted(p.name for p in found) == ["one.wav", "two.wav"]

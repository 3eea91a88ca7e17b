"""Property-based fuzzing: random and damaged inputs never crash, hang or give garbage.

Each property says what must hold for every input hypothesis generates: audio either loads as
finite mono float32 or raises one `AudioError` sentence naming the file; `classify` answers every
input in order; a damaged model file loads or raises `CheckpointError`; the sliding windows do not
depend on how the audio was cut into blocks. Run with `--hypothesis-show-statistics` to see how many
cases ran and how they ended (the `event` lines).
"""

from __future__ import annotations

import functools
import io
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from speechcmd.model.audio import AudioError, load_audio, stream_audio
from speechcmd.model.checkpoint import CheckpointError, load_model, save_checkpoint
from speechcmd.model.inference import Classifier, sliding_windows
from speechcmd.model.network import ModelConfig, SpeechCommandsModel
from conftest import LABELS_12

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
EXTENSIONS = [".wav", ".flac", ".ogg", ".mp3", ".aiff", ".au", ".opus", ""]
MAGIC = [b"", b"RIFF\x24\x08\x00\x00WAVEfmt ", b"RIFF\xff\xff\xff\xffWAVE", b"fLaC", b"OggS\x00\x02", b"FORM\x00\x00\x00\x00AIFF",
         b".snd", b"ID3\x03\x00", b"\xff\xfb\x90\x00", b"RF64\xff\xff\xff\xffWAVEds64", b"caff\x00\x01"]


@contextmanager
def no_hang(seconds: float = 20.0):
    """Turn a hang into a failure: SIGALRM raises in the main thread after `seconds`."""

    def alarm(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def encoded(samples: np.ndarray, fmt: str, subtype: str | None = None, sample_rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


_tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(8_000) / 16_000)).astype(np.float32)
VALID_FILES = {
    "wav16": encoded(_tone, "WAV", "PCM_16"),
    "wav24 stereo": encoded(np.stack([_tone, -_tone], 1), "WAV", "PCM_24"),
    "wav float": encoded(_tone, "WAV", "FLOAT"),
    "wav u-law": encoded(_tone, "WAV", "ULAW"),
    "wav 44.1k": encoded(_tone, "WAV", "PCM_16", 44_100),
    "flac": encoded(_tone, "FLAC"),
    "ogg": encoded(_tone, "OGG"),
    "aiff": encoded(_tone, "AIFF"),
    "au": encoded(_tone, "AU"),
    "w64": encoded(_tone, "W64"),
    "caf": encoded(_tone, "CAF"),
}
try:
    VALID_FILES["mp3"] = encoded(_tone, "MP3")
except (sf.LibsndfileError, ValueError, TypeError):
    pass


def check_audio_outcome(path: Path, load) -> None:
    """The property: finite float32 mono samples in range, or one AudioError sentence naming the file."""
    try:
        with no_hang():
            samples = load(path)
    except AudioError as error:
        message = str(error)
        assert str(path) in message and "\n" not in message
        event(f"AudioError: {message[len(str(path)) + 2 :].split(' (')[0].split(';')[0]}")
        return
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert np.isfinite(samples).all()
    assert np.abs(samples).max(initial=0) <= 1.0
    event("loaded")


def load_streamed(path: Path) -> np.ndarray:
    blocks = list(stream_audio(path, block_seconds=0.05))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


@st.composite
def damaged_files(draw) -> bytes:
    data = bytearray(VALID_FILES[draw(st.sampled_from(sorted(VALID_FILES)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "truncate":
            del data[at:]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


random_files = st.tuples(st.sampled_from(MAGIC), st.binary(max_size=2048)).map(lambda parts: parts[0] + parts[1])


@settings(FUZZ, max_examples=1000)
@given(data=st.one_of(random_files, damaged_files()), extension=st.sampled_from(EXTENSIONS), streamed=st.booleans())
def test_any_bytes_load_as_audio_or_give_one_audio_error(data, extension, streamed):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{extension}"
        path.write_bytes(data)
        check_audio_outcome(path, load_streamed if streamed else load_audio)


SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]


@settings(FUZZ, max_examples=150)
@given(
    subtype=st.sampled_from(SUBTYPES),
    sample_rate=st.one_of(st.sampled_from([8_000, 11_025, 16_000, 22_050, 44_100, 48_000, 96_000]), st.integers(4_000, 96_000)),
    channels=st.integers(1, 8),
    seconds=st.floats(0.005, 1.5),
    amplitude=st.floats(0.05, 1.0),
)
def test_any_depth_rate_and_channel_count_loads_at_16k_with_the_right_length_and_level(
    subtype, sample_rate, channels, seconds, amplitude
):
    frames = max(1, round(seconds * sample_rate))
    t = np.arange(frames) / sample_rate
    mono = (amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.wav"
        sf.write(str(path), np.repeat(mono[:, None], channels, axis=1), sample_rate, subtype=subtype)
        samples = load_audio(path)
    assert samples.dtype == np.float32 and np.isfinite(samples).all()
    assert abs(len(samples) - frames * 16_000 / sample_rate) <= 2
    if seconds > 0.05:  # a few periods: the tone's level survives; the abrupt ends ring, so skip them
        middle = samples[len(samples) // 5 : -len(samples) // 5]
        assert np.abs(middle).max() == pytest.approx(amplitude, abs=0.01 + 0.03 * amplitude)


@pytest.fixture(scope="module")
def tiny_classifier():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a busy machine a second thread can stall for seconds at each barrier
    yield Classifier(SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), LABELS_12).eval(), batch_size=4)
    torch.set_num_threads(threads)


@settings(FUZZ, max_examples=150)
@given(inputs=st.lists(st.one_of(random_files, damaged_files(), st.sampled_from(sorted(VALID_FILES.values()))), min_size=1, max_size=7))
def test_classify_answers_every_input_in_order(tiny_classifier, inputs):
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for n, data in enumerate(inputs):
            paths.append(Path(folder) / f"{n}.wav")
            paths[-1].write_bytes(data)
        with no_hang(60):
            results = list(tiny_classifier.classify_files(paths))
    assert [r["path"] for r in results] == [str(p) for p in paths]
    for result in results:
        if "error" in result:
            assert result["path"] in result["error"] and "\n" not in result["error"]
        elif "label" in result:
            assert np.isfinite(result["score"]) and result["label"] in LABELS_12
        else:
            assert all(np.isfinite(d["score"]) for d in result["detections"])
        event("error" if "error" in result else "label" if "label" in result else "detections")


@functools.cache
def checkpoint_bytes() -> bytes:
    torch.manual_seed(0)
    model = SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), LABELS_12)
    with tempfile.TemporaryDirectory() as folder:
        return save_checkpoint(Path(folder) / "m.pt", model).read_bytes()


@settings(FUZZ, max_examples=400)
@given(data=st.data())
def test_a_damaged_model_file_loads_or_gives_one_checkpoint_error(data):
    damaged = bytearray(checkpoint_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        if data.draw(st.booleans()):
            del damaged[at:]
        else:
            damaged[at] = data.draw(st.integers(0, 255))
        if not damaged:
            break
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "damaged.pt"
        path.write_bytes(bytes(damaged))
        try:
            with no_hang():
                model = load_model(path)
        except CheckpointError as error:
            assert str(path) in str(error) and "\n" not in str(error)
            event(f"CheckpointError: {str(error)[len(str(path)) + 2 :][:40]}")
            return
    assert model.labels == LABELS_12
    event("loaded (the damage hit bytes that do not matter)")


@settings(FUZZ, max_examples=300)
@example(total=2, cuts=[1], window=1, hop=2)  # a hop longer than the window once skipped samples
@given(
    total=st.integers(0, 6_000),
    cuts=st.lists(st.integers(0, 6_000), max_size=12),
    window=st.integers(1, 1_000),
    hop=st.integers(1, 400),
)
def test_sliding_windows_do_not_depend_on_how_the_audio_was_cut_into_blocks(total, cuts, window, hop):
    audio = np.arange(total, dtype=np.float32)
    blocks = np.split(audio, sorted(c for c in cuts if c <= total))
    got = [(end, w.copy()) for end, w in sliding_windows(blocks, window, hop)]
    expected_ends = list(range(window, total + 1, hop))
    assert [end for end, _ in got] == expected_ends
    for end, w in got:
        np.testing.assert_array_equal(w, audio[end - window : end])


@functools.cache
def tiny_model() -> SpeechCommandsModel:
    torch.manual_seed(0)
    return SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), LABELS_12).eval()


@settings(FUZZ, max_examples=60)
@given(
    seconds=st.floats(0.0, 2.5),
    cuts=st.lists(st.floats(0.0, 1.0), max_size=10),
    backlog=st.integers(1, 30),
)
def test_live_recognition_scores_the_same_windows_however_the_audio_arrives(seconds, cuts, backlog):
    from speechcmd.model.streaming import StreamingRecognizer

    audio = np.random.default_rng(0).uniform(-0.3, 0.3, int(seconds * 16_000)).astype(np.float32)
    blocks = np.split(audio, sorted(int(c * len(audio)) for c in cuts))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        arrived = StreamingRecognizer(tiny_model(), with_gates=False, max_backlog_windows=backlog)
        updates = [update for block in blocks for update in arrived.push(block)]
        at_once = StreamingRecognizer(tiny_model(), with_gates=False, max_backlog_windows=10_000).push(audio)
    finally:
        torch.set_num_threads(threads)
    times = [u.time for u in updates]
    assert times == sorted(set(times))  # in order, none twice
    every = {round(u.time, 6): u for u in at_once}
    assert set(round(t, 6) for t in times) <= set(every)  # the backlog only ever skips windows
    if max((len(b) for b in blocks), default=0) <= 1_600 * backlog:  # nothing arrived faster than the backlog allows
        assert len(updates) == len(at_once)
    for update in updates:
        np.testing.assert_allclose(update.probabilities, every[round(update.time, 6)].probabilities, atol=1e-5)
    # Each window is the second of audio that ends at its time, scored as a clip on its own would be.
    model = tiny_model()
    for update in updates[:: max(1, len(updates) // 5)]:
        end = round(update.time * 16_000)
        expected = audio[max(0, end - 16_000) : end]
        np.testing.assert_array_equal(update.window[16_000 - len(expected) :], expected)
        with torch.inference_mode():
            alone = model(torch.from_numpy(update.window.copy())[None]).softmax(-1)[0].numpy()
        np.testing.assert_allclose(update.probabilities, alone, atol=1e-5)
    event(f"{len(updates)} of {len(at_once)} windows scored")

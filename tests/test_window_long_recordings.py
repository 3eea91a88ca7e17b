"""Recordings of any length in the window and in `listen`: read from disk as they play, scanned
for the timeline from disk, played on the speaker from disk; a recording damaged part-way stops
with its reason. Memory is measured with tracemalloc (numpy's arrays are traced on every thread):
decoding a ten-hour file whole, as the window did before, would take 2.3 GB."""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from conftest import tone, write_wav
from speechcmd.app import audio_backend
from speechcmd.app.file_source import FileSource
from speechcmd.app.recognition_worker import RecognitionWorker
from speechcmd.model.audio import stream_audio
from test_gui import choose_device, fake_microphone, make_window, settings, settle  # noqa: F401 (fixtures)

HOURS = 10
MARK_SECONDS = HOURS * 3600 - 30  # a 440 Hz second, 30 s before the end
BOUND_BYTES = 64 * 2**20  # the whole file, decoded: 2.3 GB


@pytest.fixture(scope="module")
def ten_hours(tmp_path_factory):
    """Ten hours of near silence (1.8 MB as FLAC) with one tone burst near the end."""
    path = tmp_path_factory.mktemp("long") / "ten-hours.flac"
    minute = np.zeros(16_000 * 60, np.float32)
    with sf.SoundFile(str(path), "w", 16_000, 1, subtype="PCM_16") as file:
        for _ in range(HOURS * 60 - 1):
            file.write(minute)
        last = minute.copy()
        last[30 * 16_000 : 31 * 16_000] = tone(440, 1.0)
        file.write(last)
    return path


@pytest.fixture()
def traced():
    tracemalloc.start()
    yield
    tracemalloc.stop()


def peak() -> int:
    return tracemalloc.get_traced_memory()[1]


def test_a_recording_hands_out_exactly_the_samples_classify_decodes_in_any_block_size(tmp_path):
    rng = np.random.default_rng(3)
    audio = (0.2 * rng.standard_normal(44_100 * 25)).astype(np.float32)  # 25 s at 44.1 kHz: resampled
    path = write_wav(tmp_path / "talk.wav", audio, sample_rate=44_100)
    decoded = np.concatenate(list(stream_audio(path)))
    for block_samples in (480, 7_777, 200_000):
        source = FileSource.from_path(path, paced=False, block_samples=block_samples)
        assert source.recording and source.samples is None  # read from disk, not held
        assert source.duration == pytest.approx(25.0)
        handed = []
        while not source.finished:
            handed.append(source.read())
        np.testing.assert_array_equal(np.concatenate(handed), decoded)
        assert source.position == len(decoded) and len(source.read()) == 0
        np.testing.assert_array_equal(np.concatenate(list(source.blocks())), decoded)  # read again, the same


def test_a_recording_played_again_from_the_start_repeats_itself(tmp_path):
    path = write_wav(tmp_path / "ramp.wav", np.linspace(-0.5, 0.5, 16_000 * 12, dtype=np.float32))
    source = FileSource.from_path(path, paced=False, block_samples=16_000)
    first = [source.read() for _ in range(3)]
    source.restart()
    again = [source.read() for _ in range(3)]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(again))


def cut_flac(path, seconds: int = 30):
    """A FLAC whose second half is gone: it opens, and its decoder loses sync half-way."""
    rng = np.random.default_rng(0)
    sf.write(str(path), (0.1 * rng.standard_normal(16_000 * seconds)).astype(np.float32), 16_000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def open_descriptors(path) -> int:
    target, count = os.path.realpath(path), 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            pass
    return count


def test_a_clip_is_still_decoded_whole_and_padded(tmp_path):
    path = write_wav(tmp_path / "clip.wav", tone(300, 1.0))
    source = FileSource.from_path(path, paced=False)
    assert not source.recording and len(source.samples) == 3 * 16_000  # 1 s of silence each side
    assert not source.samples[:100].any() and source.samples[16_100:16_200].any()


def test_a_ten_hour_recording_opens_plays_and_seeks_in_bounded_memory(ten_hours, traced):
    source = FileSource.from_path(ten_hours, paced=False, block_samples=16_000)
    assert source.duration == pytest.approx(HOURS * 3600) and source.samples is None
    for _ in range(60):  # the first minute, as the worker reads it
        assert len(source.read()) == 16_000
    near_end = list(source.blocks(start=(MARK_SECONDS - 10) * 16_000))  # the speaker resuming near the end
    tail = np.concatenate(near_end)
    assert len(tail) == 40 * 16_000
    loud = np.flatnonzero(np.abs(tail) > 0.1)
    assert loud[0] == pytest.approx(10 * 16_000, abs=2) and loud[-1] == pytest.approx(11 * 16_000, abs=2)
    source.close()
    assert peak() < BOUND_BYTES


def test_the_window_plays_and_scans_a_ten_hour_recording_in_bounded_memory(make_window, ten_hours, traced):  # noqa: F811
    window = make_window()
    assert window.open_file(ten_hours, paced=False)
    settle(lambda: window.player.source is not None)  # the window heard it started
    source = window.worker.source
    assert source.samples is None and window.timeline.duration == pytest.approx(HOURS * 3600)
    for _ in range(200):  # 20 s played while the scan reads on through the ten hours
        window.worker.step()
    window.redraw()
    assert window.last_update is not None and window.player.busy  # still scanning
    assert peak() < BOUND_BYTES
    window.stop()  # cancels the scan part-way
    settle(lambda: not window.player.busy, timeout=30)
    assert window.source_label.text() == "idle" and not window.has_message()


def test_the_window_scans_a_recording_from_disk_and_draws_its_timeline(make_window, tmp_path, tiny_model, monkeypatch):  # noqa: F811
    import torch

    from speechcmd.model.checkpoint import save_checkpoint
    from speechcmd.model.detection import DetectionPolicy
    from speechcmd.model.inference import Classifier

    with torch.no_grad():
        tiny_model.head.bias[tiny_model.labels.index("yes")] = 20.0  # every window that is not silent is "yes"
    model_path = save_checkpoint(tmp_path / "says-yes.pt", tiny_model, {"trained_on": "nothing (test fixture)"})
    sound = tone(300, 2.0) * 0.3
    silence = np.zeros(5 * 16_000, np.float32)
    path = write_wav(tmp_path / "fourteen.wav", np.concatenate([silence, sound, silence, sound]))  # sounds at 5 s and 12 s
    reads = []
    original = FileSource.blocks

    def counted(self, *args, **kwargs):
        for block in original(self, *args, **kwargs):
            reads.append(len(block))
            yield block

    monkeypatch.setattr(FileSource, "blocks", counted)
    window = make_window(model_path=model_path)
    assert window.open_file(path, paced=False)
    settle(lambda: window.worker.source is not None and not window.player.busy)  # scanned
    settle(lambda: len(window.timeline.detections) > 0)  # the scan's result reached the window
    assert window.worker.source.samples is None
    assert sum(reads) == 14 * 16_000 and max(reads) <= 16_000  # read from disk in 1 s blocks
    expected = Classifier(tiny_model, policy=DetectionPolicy.for_model(window.model)).scan(stream_audio(path))
    assert [(d.label, round(d.end, 2)) for d in window.timeline.detections] == [(d.label, round(d.end, 2)) for d in expected]
    assert {d.label for d in expected} == {"yes"}  # said while each sound is in the window, and only then
    assert all(5 < d.end < 8 or 12 < d.end < 15 for d in expected) and any(d.end > 12 for d in expected)


def test_a_recording_damaged_part_way_stops_with_its_reason_in_the_window(make_window, tmp_path):  # noqa: F811
    rng = np.random.default_rng(0)
    path = tmp_path / "cut.flac"
    sf.write(str(path), (0.1 * rng.standard_normal(16_000 * 30)).astype(np.float32), 16_000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the second half is gone: the decoder loses sync there
    window = make_window()
    assert window.open_file(path, paced=False)  # opens: the damage is 15 s in
    settle(lambda: window.has_message())  # the scan gets there long before the play head
    assert "cut.flac" in window.message.text() and "damaged" in window.message.text()
    assert window.worker.source is None and window.source_label.text() == "idle" and not window.player.busy


def test_the_recognizer_stops_with_the_reason_when_it_reaches_the_damage(tmp_path, tiny_model):
    from speechcmd.model.detection import DetectionPolicy

    rng = np.random.default_rng(0)
    path = tmp_path / "cut.flac"
    sf.write(str(path), (0.1 * rng.standard_normal(16_000 * 30)).astype(np.float32), 16_000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    worker = RecognitionWorker()
    worker.set_model(tiny_model, DetectionPolicy.default_for(tiny_model))
    worker.set_source(FileSource.from_path(path, paced=False, block_samples=16_000 * 2))
    errors = []
    for _ in range(40):
        worker.step()
        snapshot = worker.take()
        if snapshot.error:
            errors.append(snapshot.error)
        if worker.source is None:
            break
    assert worker.source is None and len(errors) == 1
    assert "cut.flac" in errors[0] and "damaged" in errors[0] and "Traceback" not in errors[0]


# ---- the speaker ----------------------------------------------------------------------------------


class FakeOutput:
    """sounddevice's OutputStream, driven by hand: the test calls the callback."""

    def __init__(self, samplerate, channels, dtype, callback):
        self.callback, self.started, self.closed = callback, False, False

    def start(self):
        self.started = True

    def abort(self):
        pass

    def close(self):
        self.closed = True


class CallbackStop(Exception):
    pass


@pytest.fixture()
def fake_speaker(monkeypatch):
    made = []

    def output(**kwargs):
        made.append(FakeOutput(**kwargs))
        return made[-1]

    monkeypatch.setattr(audio_backend, "_sd", type("sd", (), {"OutputStream": staticmethod(output), "CallbackStop": CallbackStop}))
    yield made
    audio_backend.stop_playback()


def test_the_speaker_plays_blocks_in_order_reading_only_a_little_ahead(fake_speaker):
    pulled, closed = [], threading.Event()
    rng = np.random.default_rng(1)
    blocks = [rng.uniform(-1, 1, 16_000).astype(np.float32) for _ in range(20)]

    def from_disk():
        try:
            for block in blocks:
                pulled.append(len(block))
                yield block
        finally:
            closed.set()

    assert audio_backend.play(from_disk())
    stream = fake_speaker[0]
    assert stream.started
    playback = audio_backend._playback
    heard, stopped = [], False
    while not stopped:
        settle_feeder(playback, 512)
        ahead = sum(pulled) - 512 * len(heard)
        assert ahead <= 4 * 16_000  # about 2 s (the ring) and a block or two ahead of the speaker, never the whole file
        out = np.full((512, 1), np.nan, np.float32)
        try:
            stream.callback(out, 512, None, None)
        except CallbackStop:
            stopped = True
        heard.append(out[:, 0])
    played = np.concatenate(heard)
    np.testing.assert_array_equal(played[: 20 * 16_000], np.concatenate(blocks))
    assert not played[20 * 16_000 :].any() and closed.wait(5)


def settle_feeder(playback, frames: int) -> None:
    deadline = time.monotonic() + 10
    while playback.ring.available < frames and not playback._fed_all:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_stopping_the_speaker_stops_reading_the_file(fake_speaker):
    closed = threading.Event()

    def endless():
        try:
            while True:
                yield np.zeros(16_000, np.float32)
        finally:
            closed.set()

    assert audio_backend.play(endless())
    audio_backend.stop_playback()
    assert closed.wait(5) and fake_speaker[0].closed


def test_two_plays_at_once_leave_one_speaker_and_stop_stops_it(fake_speaker, monkeypatch):
    stop = audio_backend._stop_current
    both_stopped = threading.Barrier(2)

    def stop_then_meet():  # both threads past their stop before either starts its stream
        generation = stop()
        both_stopped.wait(5)
        return generation

    monkeypatch.setattr(audio_backend, "_stop_current", stop_then_meet)
    results = []
    threads = [threading.Thread(target=lambda: results.append(audio_backend.play(np.zeros(16_000, np.float32)))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    monkeypatch.setattr(audio_backend, "_stop_current", stop)
    assert len(fake_speaker) == 2 and sorted(results) == [False, True]  # the later start wins
    audio_backend.stop_playback()
    assert all(stream.closed for stream in fake_speaker)


def test_stop_does_not_wait_for_a_slow_output_device_to_open(fake_speaker, monkeypatch):
    opening = threading.Event()

    class SlowOutput(FakeOutput):
        def start(self):  # some Bluetooth and network sinks take this long
            opening.set()
            time.sleep(1.0)

    monkeypatch.setattr(audio_backend._sd, "OutputStream", staticmethod(lambda **kwargs: SlowOutput(**kwargs)))
    job = threading.Thread(target=audio_backend.play, args=(np.zeros(16_000, np.float32),))
    job.start()
    assert opening.wait(5)
    began = time.monotonic()
    audio_backend.stop_playback()  # the window's Stop, on the GUI thread
    waited = time.monotonic() - began
    job.join(5)
    assert waited < 0.5 and audio_backend._playback is None  # and the play that was starting did not take over


def test_playing_again_replaces_what_plays(fake_speaker):
    assert audio_backend.play(np.zeros(16_000, np.float32))
    assert audio_backend.play(np.ones(16_000, np.float32))
    assert fake_speaker[0].closed and not fake_speaker[1].closed


def test_resuming_a_recording_plays_on_from_the_play_head_read_from_disk(make_window, tmp_path, monkeypatch):  # noqa: F811
    audio = np.linspace(-0.5, 0.5, 16_000 * 10, dtype=np.float32)
    path = write_wav(tmp_path / "ramp.wav", audio, subtype="FLOAT")
    played = []
    monkeypatch.setattr(audio_backend, "play", lambda audio, sample_rate=16_000: played.append(audio) or True)
    window = make_window()
    assert window.open_file(path)  # paced by the clock and audible
    settle(lambda: window.player.source is not None)
    time.sleep(0.3)
    window.worker.step()
    position = window.player.source.position
    assert position > 0
    window.player.resume_audio()  # as after a device re-scan
    assert len(played) == 2 and window.player.audible
    resumed = next(iter(played[1]))
    np.testing.assert_array_equal(resumed[:1000], audio[position : position + 1000])
    window.stop()


def test_a_clock_run_past_its_range_hands_out_the_file_in_bounded_reads(tmp_path):
    path = write_wav(tmp_path / "talk.wav", tone(300, 6.0))
    ticks = iter([0.0, float("inf"), float("nan"), 1e308])
    source = FileSource.from_path(path, clock=lambda: next(ticks, 1e308))
    reads = [len(source.read()) for _ in range(3)]
    assert reads == [32_000, 32_000, 32_000]  # at most 2 s a read, never an error
    while not source.finished:
        source.read()
    assert source.position == 6 * 16_000


def test_a_long_file_asked_to_be_padded_is_decoded_whole_and_padded(tmp_path):
    path = write_wav(tmp_path / "six.wav", tone(300, 6.0))
    source = FileSource.from_path(path, paced=False, recording=False)
    assert source.samples is not None and len(source.samples) == 8 * 16_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts descriptors in /proc/self/fd")
def test_closing_a_recording_from_another_thread_during_a_read_releases_the_file(tmp_path):
    path = write_wav(tmp_path / "long.wav", tone(300, 30.0))
    source = FileSource.from_path(path, paced=False, block_samples=16_000)
    source.read()
    assert open_descriptors(path) == 1  # the recording's decoder
    inside, go = threading.Event(), threading.Event()
    take = source._take

    def slow_take(wanted):  # the recognition thread inside a read, past its check of `closed`
        block = take(wanted)
        inside.set()
        go.wait(5)
        return block

    source._take = slow_take
    reader = threading.Thread(target=source.read)
    reader.start()
    assert inside.wait(5)
    source.close()  # the GUI thread: the read holds the lock, so close cannot release the file itself
    go.set()
    reader.join(5)
    assert open_descriptors(path) == 0


def test_stop_pressed_while_the_file_is_handed_to_the_recognizer_leaves_nothing_playing(make_window, tmp_path, monkeypatch):  # noqa: F811
    from speechcmd.app import file_player

    path = write_wav(tmp_path / "talk.wav", tone(300, 12.0))
    at_restart, go = threading.Event(), threading.Event()
    restart = file_player.FileSource.restart

    def paused_restart(self):  # the job thread, past its last look at the cancel flag
        at_restart.set()
        go.wait(5)
        restart(self)

    monkeypatch.setattr(file_player.FileSource, "restart", paused_restart)
    window = make_window()
    assert window.open_file(path, paced=False)
    assert at_restart.wait(10)
    window.stop()
    go.set()
    settle(lambda: not window.player.busy)
    assert window.worker.source is None and window.source_label.text() == "idle"


def test_news_of_a_stopped_file_does_not_stop_the_microphone(make_window, fake_microphone, tmp_path):  # noqa: F811
    window = make_window()
    path = write_wav(tmp_path / "talk.wav", tone(300, 6.0))
    assert window.open_file(path, paced=False)
    settle(lambda: window.player.source is not None)
    token = window.player.token
    choose_device(window, "USB mic")
    assert window.start_microphone(), window.message.text()
    microphone = window.worker.source
    window.player.failed.emit(token, f"{path}: the audio data is damaged.")  # sent just before the click
    window.player.scanned.emit(token, [])
    settle(lambda: True)
    assert window.worker.source is microphone and not window.has_message()


def test_listen_on_a_recording_damaged_part_way_says_so_in_one_sentence(tmp_path, tiny_checkpoint, capsys):
    from speechcmd.app.cli import main

    path = cut_flac(tmp_path / "cut.flac")
    code = main(["listen", "--model", str(tiny_checkpoint), "--input", str(path), "--speed", "0"])
    said = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "Traceback" not in "\n".join(said)
    assert said[0].startswith("speechcmd listen: playing") and len(said) == 2  # what it plays, then why it stopped
    assert "cut.flac" in said[1] and "damaged" in said[1]


def test_listen_plays_as_fast_as_its_speed_asks(tmp_path):
    from speechcmd.app.cli_listen import POLL_SECONDS, open_file

    path = write_wav(tmp_path / "two-minutes.wav", tone(300, 120.0) * 0.1)
    source, _ = open_file(str(path), 1000.0)
    polls = 0
    while not source.finished:
        source.read()
        time.sleep(POLL_SECONDS)
        polls += 1
    source.close()
    assert polls <= 10  # 120 s at 1000 times real time: 0.12 s, about 6 polls (2 s a read would need 60)

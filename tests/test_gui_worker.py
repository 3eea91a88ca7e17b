"""The recognition worker and the file source, without any window."""

from __future__ import annotations

import numpy as np
import torch

from speechcmd.app.file_source import CLIP_PADDING_SECONDS, FileSource
from speechcmd.app.recognition_worker import RecognitionWorker
from speechcmd.model.detection import DetectionPolicy
from conftest import tone, write_wav


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_paced_file_source_hands_out_samples_as_fast_as_they_would_arrive_live():
    clock = FakeClock()
    source = FileSource(np.arange(32_000, dtype=np.float32), clock=clock)
    assert len(source.read()) == 0
    clock.now += 0.25
    assert len(source.read()) == 4_000
    clock.now += 10
    assert len(source.read()) == 28_000 and source.finished


def test_a_short_clip_is_padded_with_silence_so_several_windows_see_the_word(tmp_path):
    path = write_wav(tmp_path / "clip.wav", tone(440, 1.0))
    source = FileSource.from_path(path)
    assert source.duration == 1.0 + 2 * CLIP_PADDING_SECONDS
    assert not source.samples[:100].any() and source.samples[8_100:8_200].any()


def test_the_worker_keeps_only_the_newest_window_but_every_detection(tiny_model):
    with torch.no_grad():
        tiny_model.head.bias[2] = 10.0  # always "yes"
    worker = RecognitionWorker(hop_seconds=0.1)
    worker.set_model(tiny_model, DetectionPolicy(suppression_seconds=0.5))
    worker.set_source(FileSource(tone(300, 3.0), paced=False, block_samples=1_600))
    while worker.source is not None:
        worker.step()
    snapshot = worker.take()
    assert snapshot.update is not None and snapshot.update.time == 3.0
    assert snapshot.skipped_updates == 20  # 21 windows (1.0 .. 3.0 s) scored, one to draw
    assert [d.label for d in snapshot.detections] == ["yes"] * 4  # 1.2, 1.7, 2.2, 2.7 s
    assert snapshot.finished
    assert worker.take().update is None  # taken once


def test_a_failing_source_is_closed_and_its_error_reported(tiny_model):
    from speechcmd.app.audio_backend import AudioBackendError

    class Unplugged:
        closed = False

        def read(self):
            raise AudioBackendError("The microphone 'X' stopped (unplugged?).")

        def warning(self):
            return None

        def close(self):
            self.closed = True

    source = Unplugged()
    worker = RecognitionWorker()
    worker.set_model(tiny_model, DetectionPolicy())
    worker.set_source(source)
    worker.step()
    assert worker.take().error == "The microphone 'X' stopped (unplugged?)."
    assert source.closed and worker.source is None

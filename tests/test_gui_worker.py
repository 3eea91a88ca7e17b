"""The recognition worker and the file source, without any window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechcmd.app.file_source import CLIP_PADDING_SECONDS, FileSource
from speechcmd.app.recognition_worker import RecognitionWorker
from speechcmd.model.audio import load_audio
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
    assert not source.samples[:100].any() and source.samples[16_100:16_200].any()


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


def test_display_windows_are_whole_mfcc_frames_apart_and_the_detector_sees_the_policy_grid(tiny_model):
    from speechcmd.model.streaming import StreamingRecognizer

    policy = DetectionPolicy(hop_seconds=0.1)
    recognizer = StreamingRecognizer(tiny_model, policy, hop_seconds=0.03)  # 30 ms asked: 3 frames of 10 ms, not a divisor of 100 ms
    updates = [u for block in np.split(np.zeros(32_000, np.float32), 100) for u in recognizer.push(block)]  # 20 ms blocks
    frame = tiny_model.config.features.hop_samples
    ends = [round(u.time * 16_000) for u in updates]
    assert recognizer.hop_samples == 2 * frame and set(np.diff(ends)) == {2 * frame}  # 20 ms: divides 100 ms
    detector_ends = [end for end in ends if (end - 16_000) % 1_600 == 0]
    assert detector_ends == list(range(16_000, 32_001, 1_600))  # every window `Classifier.scan` scores


@pytest.mark.real_data
def test_the_window_and_classify_find_the_same_detections_in_the_same_audio(speech_commands_dir, tmp_path):
    """Real words at known times, played through the window's path and scanned by classify."""
    from speechcmd.model.checkpoint import bundled_model_path, load_model
    from speechcmd.model.inference import Classifier

    if not bundled_model_path().is_file():
        pytest.skip("the bundled model is absent")
    model = load_model(None)
    policy = DetectionPolicy.for_model(model)
    pieces, words = [np.zeros(8_000, np.float32)], ["yes", "no", "stop", "left", "go"]
    for word in words:
        pieces += [load_audio(sorted((speech_commands_dir / word).glob("*.wav"))[2]), np.zeros(12_000, np.float32)]
    path = write_wav(tmp_path / "five-words.wav", np.concatenate(pieces))
    worker = RecognitionWorker()
    worker.set_model(model, policy)
    source = FileSource.from_path(path, paced=False)
    worker.set_source(source)
    found = []
    while worker.source is not None:
        worker.step()
        found += worker.take().detections
    scanned = Classifier(model, policy=policy).scan(source.blocks())
    assert [(d.label, d.end) for d in found] == [(d.label, d.end) for d in scanned]
    np.testing.assert_allclose([d.score for d in found], [d.score for d in scanned], atol=1e-4)
    assert sum(label in words for label, _ in [(d.label, d.end) for d in found]) >= 4


def test_the_gui_thread_never_waits_for_a_step_in_progress_and_its_stale_result_is_dropped(tiny_model):
    import threading

    entered, release = threading.Event(), threading.Event()

    class SlowSource:
        """A read that hangs, as a device call or a long inference can."""

        name, finished = "slow", False

        def read(self):
            entered.set()
            release.wait(10)
            return tone(300, 1.5)

        def warning(self):
            return None

        def close(self):
            pass

    worker = RecognitionWorker()
    worker.set_model(tiny_model, DetectionPolicy())
    worker.set_source(SlowSource())
    step = threading.Thread(target=worker.step)
    step.start()
    assert entered.wait(10)
    switched = threading.Event()
    threading.Thread(target=lambda: (worker.set_source(None), worker.set_model(tiny_model, DetectionPolicy()), switched.set())).start()
    assert switched.wait(5)  # while the step still hangs
    release.set()
    step.join(10)
    assert worker.take().update is None  # the step's windows belonged to the replaced source

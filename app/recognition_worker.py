"""Recognition off the GUI thread: pull samples from a source, score windows, post the latest.

A plain thread runs `step` every few milliseconds: read what the source (microphone or file) has
produced, push it through `StreamingRecognizer`, and put the result in a mailbox. The mailbox
holds only the newest update, so a slow display skips stale windows instead of queueing them;
detections, which must not be lost, are kept in a list until the window takes them.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field

import numpy as np

from speechcmd.app.audio_backend import AudioBackendError
from speechcmd.model.detection import Detection, DetectionPolicy
from speechcmd.model.network import SpeechCommandsModel
from speechcmd.model.streaming import StreamingRecognizer, StreamUpdate

# One window every 30 ms (3 MFCC frames), so that the gate maps scroll at display rate (~33 fps).
# A window costs ~5 ms for the bundled model on one core, so this leaves room for drawing.
HOP_SECONDS = 0.03
POLL_SECONDS = 0.01
SILENCE_DB = -100.0


@dataclass
class Snapshot:
    """What happened since the window last looked."""

    update: StreamUpdate | None = None  # the newest scored window, None if none arrived
    detections: list[Detection] = field(default_factory=list)
    level_db: float = SILENCE_DB  # RMS of the newest block of samples, dB re full scale
    source_time: float = 0.0  # seconds of audio received from the current source
    error: str | None = None  # the source failed and was closed
    warning: str | None = None  # something was lost, but recognition goes on
    finished: bool = False  # a file source played to its end
    skipped_updates: int = 0  # updates replaced before the window drew them


def level_db(samples: np.ndarray) -> float:
    if len(samples) == 0:
        return SILENCE_DB
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DB, 20 * np.log10(rms + 1e-10))


class RecognitionWorker:
    def __init__(self, hop_seconds: float = HOP_SECONDS):
        self.hop_seconds = hop_seconds
        self.recognizer: StreamingRecognizer | None = None
        self.source = None
        self._control = threading.Lock()  # guards recognizer and source
        self._mailbox_lock = threading.Lock()
        self._mailbox = Snapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- called from the GUI thread -------------------------------------------------------------

    def set_model(self, model: SpeechCommandsModel, policy: DetectionPolicy) -> None:
        recognizer = StreamingRecognizer(model, policy, hop_seconds=self.hop_seconds, with_gates=True)
        with self._control:
            self.recognizer = recognizer

    def set_policy(self, policy: DetectionPolicy) -> None:
        with self._control:
            if self.recognizer is not None:
                self.recognizer.policy = policy

    def set_source(self, source) -> None:
        """Replace the current source (closing it); None stops listening."""
        with self._control:
            if self.source is not None:
                self.source.close()
            self.source = source
            if self.recognizer is not None:
                self.recognizer.reset()
        with self._mailbox_lock:
            self._mailbox = Snapshot()

    def take(self) -> Snapshot:
        with self._mailbox_lock:
            snapshot, self._mailbox = self._mailbox, Snapshot(
                level_db=self._mailbox.level_db, source_time=self._mailbox.source_time
            )
        return snapshot

    def peek(self) -> Snapshot:
        """What `take` would return, left in place: for tests and scripts that drive time by hand."""
        with self._mailbox_lock:
            return self._mailbox

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recognition", daemon=True)
            self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        self.set_source(None)

    # ---- the recognition thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(POLL_SECONDS)

    def step(self) -> None:
        """Read the source once and score every window that became complete. Tests call it directly."""
        with self._control:
            source, recognizer = self.source, self.recognizer
            if source is None or recognizer is None:
                return
            try:
                samples = source.read()
                warning = source.warning()
                updates = recognizer.push(samples) if len(samples) else []
            except AudioBackendError as error:
                source.close()
                self.source = None
                self._post(error=str(error))
                return
            except Exception as error:  # a bug: keep the traceback, tell the user in one line
                traceback.print_exc()
                source.close()
                self.source = None
                self._post(error=f"Recognition stopped after an internal error ({error!r}); see the terminal.")
                return
            finished = bool(getattr(source, "finished", False))
            if finished:
                self.source = None
            self._post(
                updates=updates,
                level=level_db(samples) if len(samples) else None,
                source_time=recognizer.received_samples / recognizer.sample_rate,
                warning=warning,
                finished=finished,
            )

    def _post(self, updates=(), level=None, source_time=None, warning=None, error=None, finished=False) -> None:
        with self._mailbox_lock:
            box = self._mailbox
            if updates:
                box.skipped_updates += len(updates) - 1 + (box.update is not None)
                box.update = updates[-1]
                box.detections.extend(u.detection for u in updates if u.detection is not None)
            if level is not None:
                box.level_db = level
            if source_time is not None:
                box.source_time = source_time
            box.warning = warning or box.warning
            box.error = error or box.error
            box.finished = box.finished or finished

"""Recognition off the GUI thread: pull samples from a source, score windows, post the latest.

A plain thread runs `step` every few milliseconds: read what the source (microphone or file) has
produced, push it through `StreamingRecognizer`, and put the result in a mailbox. The mailbox
holds only the newest update, so a slow display skips stale windows instead of queueing them;
detections, which must not be lost, are kept in a list until the window takes them.

The GUI thread never waits for inference: `set_model`, `set_policy` and `set_source` swap
references under a lock held for a few instructions, and a step whose source or model was
replaced while it ran throws its result away (a generation counter tells). Sources are closed
outside the lock.
"""

from __future__ import annotations

import threading
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from speechcmd.app.audio_backend import AudioBackendError
from speechcmd.model.audio import AudioError
from speechcmd.model.detection import Detection, DetectionPolicy

if TYPE_CHECKING:
    from speechcmd.model.network import SpeechCommandsModel
    from speechcmd.model.streaming import StreamUpdate

# Windows for display every 20 ms at most: the recognizer rounds to whole frames of the model's own
# hop (20 ms for an MFCC model, 80 ms for a speech-embedding one) that divide the detector's hop,
# or uses the detector's hop (bench/README.md has the cost of a window).
HOP_SECONDS = 0.02
POLL_SECONDS = 0.01
SILENCE_DB = -100.0
JOIN_SECONDS = 5.0


@dataclass
class Snapshot:
    """What happened since the window last looked."""

    update: StreamUpdate | None = None  # the newest scored window, None if none arrived
    detections: list[Detection] = field(default_factory=list)  # finished, with their final scores
    pending: Detection | None = None  # the detection under way (shown at once, score still rising)
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
        self.model: SpeechCommandsModel | None = None
        self.policy = DetectionPolicy()
        self.recognizer = None  # a StreamingRecognizer for the current model and source
        self.source = None
        self._generation = 0  # bumped whenever the model or the source changes
        self._control = threading.Lock()  # guards the references above, never held across work
        self._mailbox_lock = threading.Lock()
        self._mailbox = Snapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- called from the GUI thread -------------------------------------------------------------

    def set_model(self, model: SpeechCommandsModel, policy: DetectionPolicy) -> None:
        """Recognize with `model` from now on; the current source starts over with it."""
        import torch

        # One torch thread: on a small machine a second one fights the GUI and other processes for
        # the cores and makes each window ~10x slower. Set here for the calling thread (tests step
        # on it) and for threads started after (torch copies it to new threads).
        torch.set_num_threads(1)
        with self._control:
            self.model, self.policy = model, policy
        recognizer = self._new_recognizer()
        with self._control:
            self.recognizer = recognizer
            self._generation += 1
        self._clear_mailbox()  # the previous model's update must not be drawn with the new views

    def set_policy(self, policy: DetectionPolicy) -> None:
        with self._control:
            self.policy = policy  # the recognition thread hands it to the recognizer at its next step

    def set_source(self, source) -> None:
        """Replace the current source (closing it, outside the lock); None stops listening."""
        recognizer = self._new_recognizer()
        with self._control:
            old, self.source, self.recognizer = self.source, source, recognizer or self.recognizer
            self._generation += 1
        if old is not None and old is not source:
            old.close()
        self._clear_mailbox()

    def detach(self, source) -> None:
        """Stop listening to `source` if it is still the current one (a stop that raced its start)."""
        with self._control:
            if self.source is not source:
                return
            self.source = None
            self._generation += 1
        source.close()
        self._clear_mailbox()

    def take(self) -> Snapshot:
        with self._mailbox_lock:
            snapshot, self._mailbox = self._mailbox, Snapshot(
                level_db=self._mailbox.level_db, source_time=self._mailbox.source_time, pending=self._mailbox.pending
            )
        return snapshot

    def peek(self) -> Snapshot:
        """What `take` would return, left in place: for tests and scripts that drive time by hand."""
        with self._mailbox_lock:
            return self._mailbox

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="recognition", daemon=True)
            self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_SECONDS)
            self._thread = None
        self.set_source(None)

    def _new_recognizer(self):
        """A fresh recognizer (no audio, no detection under way) for the current model, or None."""
        from speechcmd.model.streaming import StreamingRecognizer

        with self._control:
            model, policy = self.model, self.policy
        if model is None:
            return None
        return StreamingRecognizer(model, policy, hop_seconds=self.hop_seconds, with_gates=True)

    def _clear_mailbox(self) -> None:
        with self._mailbox_lock:
            self._mailbox = Snapshot()

    # ---- the recognition thread -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(POLL_SECONDS)

    def step(self) -> None:
        """Read the source once and score every window that became complete. Tests call it directly."""
        with self._control:
            source, recognizer, policy, generation = self.source, self.recognizer, self.policy, self._generation
        if source is None or recognizer is None:
            return
        if recognizer.policy != policy:
            recognizer.policy = policy
        error = None
        try:
            samples = source.read()
            warning = source.warning()
            updates = recognizer.push(samples) if len(samples) else []
            finished = bool(getattr(source, "finished", False))
            if finished:
                updates += recognizer.flush()  # the last windows of a model with stream context
            final = recognizer.finish() if finished else None
        except (AudioBackendError, AudioError) as exception:  # a device gone, or a recording damaged part-way
            error = str(exception)
        except Exception as exception:  # a bug: keep the traceback, tell the user in one line
            traceback.print_exc()
            error = f"Recognition stopped after an internal error ({exception!r}); see the terminal."
        with self._control:
            if generation != self._generation:
                return  # the source or model changed meanwhile: this result belongs to neither
            if error is not None or finished:
                self.source = None
                self._generation += 1
        if error is not None:
            source.close()
            self._post(error=error)
            return
        self._post(
            updates=updates,
            detections=[u.detection for u in updates if u.detection is not None] + ([final] if final else []),
            pending=recognizer.recognizer.pending,
            level=level_db(samples) if len(samples) else None,
            source_time=recognizer.received_samples / recognizer.sample_rate,
            warning=warning,
            finished=finished,
        )

    def _post(self, updates=(), detections=(), pending=None, level=None, source_time=None, warning=None, error=None, finished=False) -> None:
        with self._mailbox_lock:
            box = self._mailbox
            if updates:
                box.skipped_updates += len(updates) - 1 + (box.update is not None)
                box.update = updates[-1]
            box.detections.extend(detections)
            box.pending = pending
            if level is not None:
                box.level_db = level
            if source_time is not None:
                box.source_time = source_time
            box.warning = warning or box.warning
            box.error = error or box.error
            box.finished = box.finished or finished

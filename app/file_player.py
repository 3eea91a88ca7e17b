"""A file's whole life off the GUI thread: open it, play it through the recognizer (audibly when
there is a speaker), and scan a recording whole for the timeline.

`FilePlayer.open` cancels the file before it and starts one job thread, which opens the file (a
clip decoded whole, a recording read from disk as it plays), hands the `FileSource` to the
recognition worker, starts the audible copy, and scans a recording, read from disk again in
blocks, with the detector the worker uses: memory stays bounded whatever the file's length. The window only hears about it
through signals (`started`, `scanned`, `failed`), so it never waits on a file. Every step checks a
cancel flag; `shutdown` cancels and joins the jobs, so closing the window mid-decode or mid-scan
exits cleanly.
"""

from __future__ import annotations

import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from speechcmd.app import audio_backend
from speechcmd.app.file_source import FileSource
from speechcmd.app.jobs import Jobs, emit
from speechcmd.model.audio import AudioError

class FilePlayer(QObject):
    """Owns the file being played: its decoding, playback and scan."""

    started = Signal(int, object, bool)  # token, FileSource now playing, audible
    scanned = Signal(int, object)  # token, the recording's detections (list[Detection])
    failed = Signal(int, str)  # token, one sentence for the user

    def __init__(self, worker, parent=None):
        super().__init__(parent)
        self.worker = worker
        self.token = 0
        self.source: FileSource | None = None
        self.audible = False
        self._cancel = threading.Event()
        self.jobs = Jobs("file-job")
        self.started.connect(self._now_playing)  # queued: runs on the GUI thread, like stop()

    def open(self, path: str | Path, model, policy, paced: bool = True) -> int:
        """Start the file's job; returns its token (signals carry it, so late news of an old file is ignored)."""
        self.stop()
        self.token += 1
        self._cancel = threading.Event()
        self.jobs.start(self._job, self.token, Path(path), model, policy, paced, self._cancel)
        return self.token

    def stop(self) -> None:
        """Cancel the current job and silence the speaker (the worker's source is the window's to stop)."""
        self._cancel.set()
        audio_backend.stop_playback()  # also when the job started the speaker but has not said so yet
        self.audible = False
        self.source = None

    def current(self, token: int) -> bool:
        """Whether news carrying `token` is of the file playing now (not of one since stopped or replaced)."""
        return token == self.token and not self._cancel.is_set()

    def _now_playing(self, token: int, source: FileSource, audible: bool) -> None:
        if self.current(token):
            self.source, self.audible = source, audible

    def resume_audio(self) -> None:
        """After the sound system was restarted (a device re-scan stops every stream), play on from the play head."""
        source = self.source
        if self.audible and source is not None and not source.finished:
            self.audible = audio_backend.play(_audio_from(source, source.position))

    def shutdown(self) -> None:
        self.stop()
        self.jobs.join()

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def _job(self, token: int, path: Path, model, policy, paced: bool, cancel: threading.Event) -> None:
        try:
            self._play(token, path, model, policy, paced, cancel)
        except Exception as error:  # a bug: keep the traceback, and give the window its controls back
            traceback.print_exc()
            if not cancel.is_set():
                emit(self.failed, token, f"{path}: playing stopped after an internal error ({error!r}); see the terminal.")

    def _play(self, token: int, path: Path, model, policy, paced: bool, cancel: threading.Event) -> None:
        try:
            source = FileSource.from_path(path, cancelled=cancel.is_set, paced=paced)
        except AudioError as error:
            if not cancel.is_set():
                emit(self.failed, token, str(error))
            return
        if source is None:
            return
        if cancel.is_set():
            source.close()
            return
        source.restart()
        self.worker.set_source(source)
        audible = paced and audio_backend.play(_audio_from(source, 0))
        if cancel.is_set():  # stopped while starting: the stop may have come before the speaker or the source
            if audible:
                audio_backend.stop_playback()
            self.worker.detach(source)
            return
        emit(self.started, token, source, audible)
        if not source.recording:
            return
        from speechcmd.model.inference import Classifier

        try:
            detections = Classifier(model, policy=policy).scan(source.blocks(cancelled=cancel.is_set))
        except AudioError as error:  # damaged part-way: found by the scan long before the play head gets there
            if not cancel.is_set():
                emit(self.failed, token, str(error))
            return
        if not cancel.is_set():
            emit(self.scanned, token, detections)


def _audio_from(source: FileSource, start: int):
    """What the speaker plays from sample `start`: a clip's samples, or a recording's blocks read from disk."""
    return source.samples[start:] if source.samples is not None else source.blocks(start)

"""Teach mode: record a few takes of a word, train a new head off the GUI thread, use the result.

Pieces, after the main window's separation of sources, work and views:
- `TakeRecorder`: a countdown, then about 1.5 s from the microphone (`audio_backend`), polled by a
  timer; the stream callback only copies, as everywhere else.
- `TakePreview`: one take's waveform, with the spoken part `prepare_take` found shaded, and its MFCC.
- `TrainingJob`: `train.adapt.adapt` on a thread, with progress and cancel carried by signals.
- `TeachPanel`: the panel itself. It emits `model_ready(model, source)` when a model is trained or
  saved; `install_teach(window)` gives it a window of its own beside any QMainWindow that has `use_model`.
The takes live in a `TakeStore` (folder per label), so `speechcmd adapt/train/evaluate` can use them.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QObject, QSize, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from speechcmd.app import audio_backend
from speechcmd.app.audio_backend import AudioBackendError, MicrophoneSource
from speechcmd.app.drops import accept_files, dropped_files
from speechcmd.app.jobs import Jobs, emit
from speechcmd.app.views.heatmap import HeatMap
from speechcmd.app.views.mfcc_view import MFCC_RANGE
from speechcmd.model import SAMPLE_RATE
from speechcmd.model.audio import AUDIO_EXTENSIONS, AudioError, load_audio
from speechcmd.model.checkpoint import CheckpointError
from speechcmd.model.network import SpeechCommandsModel
from speechcmd.train.adapt import AdaptCancelled, AdaptConfig, Adapted, AdaptError, adapt, check_takes, gather_replay, save_adapted
from speechcmd.train.data import DatasetError
from speechcmd.train.takes import (
    BACKGROUND, OTHER_SPEECH, SUGGESTED_TAKES, Take, TakeError, TakeStore, check_new_word, load_takes, prepare_take, take_audio,
)

ReplaySource = Callable[[SpeechCommandsModel, list[str], AdaptConfig], tuple]  # -> (clips, noise, bank, note): see gather_replay
COUNTDOWN_SECONDS = 3
RECORD_SECONDS = 1.5
POLL_MS = 50
SPECIAL = {BACKGROUND: "background (no speech)", OTHER_SPEECH: "other speech"}
SHORT = {BACKGROUND: "background", OTHER_SPEECH: "other"}
WARNING_STYLE = "background: #7a6a1f; color: white; padding: 4px;"
ERROR_STYLE = "background: #7a1f1f; color: white; padding: 4px;"
GOOD_STYLE = "background: #1f5a2a; color: white; padding: 4px;"


def default_takes_dir() -> Path:
    """~/.local/share/speechcmd/takes on Linux (the platform's data folder elsewhere). The folder
    Qt names after the organization and the application, speechcmd/speechcmd/takes, is kept where a
    user already has takes in it."""
    data = Path(QStandardPaths.writableLocation(QStandardPaths.GenericDataLocation) or Path.home() / ".local" / "share")
    earlier = data / "speechcmd" / "speechcmd" / "takes"
    return earlier if earlier.is_dir() and any(earlier.iterdir()) else data / "speechcmd" / "takes"


class TakeRecorder(QObject):
    """Countdown, then `RECORD_SECONDS` of microphone audio at 16 kHz."""

    countdown = Signal(int)  # seconds left before recording starts
    recording = Signal()
    recorded = Signal(object)  # np.ndarray (samples,)
    failed = Signal(str)

    def __init__(self, open_source: Callable[[], object], parent=None):
        super().__init__(parent)
        self.open_source = open_source  # () -> an object with read() and close(), e.g. MicrophoneSource
        self.countdown_seconds = COUNTDOWN_SECONDS  # tests shorten it
        self.source = None
        self.samples: list[np.ndarray] = []
        self.left = 0
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)

    @property
    def busy(self) -> bool:
        return self.timer.isActive()

    def start(self) -> None:
        try:
            self.source = self.open_source()  # opened before the countdown, so the first block is not lost
        except AudioBackendError as error:
            self.failed.emit(str(error))
            return
        self.left = self.countdown_seconds
        self.samples = []
        self.countdown.emit(self.left)
        self.timer.start(1000 if self.left else POLL_MS)
        if not self.left:
            self.recording.emit()

    def cancel(self) -> None:
        self.timer.stop()
        self._close()

    def _close(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None

    def _tick(self) -> None:
        try:
            block = self.source.read()
        except AudioBackendError as error:
            self.cancel()
            self.failed.emit(str(error))
            return
        if self.left > 0:  # counting down: what the microphone hears now is thrown away
            self.left -= 1
            self.countdown.emit(self.left)
            if self.left == 0:
                self.recording.emit()
                self.timer.start(POLL_MS)
            return
        self.samples.append(block)
        recorded = np.concatenate(self.samples) if self.samples else np.zeros(0, np.float32)
        if len(recorded) >= RECORD_SECONDS * SAMPLE_RATE:
            self.cancel()
            self.recorded.emit(recorded[: int(RECORD_SECONDS * SAMPLE_RATE)])


class TakePreview(QWidget):
    """One take: its waveform with the spoken part shaded, and the front-end frames the model sees."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.waveform = pg.PlotWidget(title="Take")
        self.waveform.setLabel("bottom", "time (s)")
        self.waveform.setYRange(-1, 1)
        self.waveform.setMouseEnabled(False, False)
        self.waveform.hideButtons()
        self.waveform.getAxis("bottom").enableAutoSIPrefix(False)
        self.curve = self.waveform.plot(pen=pg.mkPen("#8fd", width=1))
        self.spoken = pg.LinearRegionItem(brush=QColor(255, 200, 0, 50), movable=False)
        self.waveform.addItem(self.spoken)
        self.mfcc = HeatMap("Features of the take's window", (-MFCC_RANGE, MFCC_RANGE), "CET-D1", "time (s)", "coefficient", f"standardized, ±{MFCC_RANGE:g}")
        layout.addWidget(self.waveform, 1)
        layout.addWidget(self.mfcc, 1)
        self.setMinimumHeight(140)

    def sizeHint(self) -> QSize:
        # pyqtgraph asks for 480 px per plot; the panel lays out its height from its parts' hints
        # (word-wrapped labels: height for width), and 480 would push Train below a 768 px screen.
        return QSize(super().sizeHint().width(), 240)

    def show_take(self, samples: np.ndarray, take: Take | None, model: SpeechCommandsModel | None) -> None:
        t = np.arange(len(samples)) / SAMPLE_RATE
        self.curve.setData(t, samples)
        self.waveform.setXRange(0, max(t[-1] if len(t) else 1.0, 0.1), padding=0)
        if take is not None and take.bounds is not None:
            self.spoken.setRegion((take.bounds[0] / SAMPLE_RATE, take.bounds[1] / SAMPLE_RATE))
            self.spoken.show()
        else:
            self.spoken.hide()
        if take is not None and model is not None:
            with torch.inference_mode():
                mfcc = model.frontend(torch.from_numpy(take.window)[None])[0].numpy()  # (frames, feature size)
            self.mfcc.set_title(model.config.features.title, "value")
            seconds = len(take.window) / SAMPLE_RATE
            self.mfcc.set_extent(0.0, seconds, 0, mfcc.shape[1])
            self.mfcc.set_data(mfcc.T)

    def clear(self) -> None:
        self.curve.setData([], [])
        self.spoken.hide()


class TrainingJob(QObject):
    """`adapt` on a thread; results come back to the GUI thread through signals."""

    progress = Signal(float, str)
    finished = Signal(object)  # Adapted
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cancel = threading.Event()
        self.jobs = Jobs("teach-training")

    @property
    def running(self) -> bool:
        return self.jobs.busy

    def start(self, base: SpeechCommandsModel, takes_folder: Path, config: AdaptConfig, replay: ReplaySource | None = None) -> None:
        """On the thread, as they read files: the takes in `takes_folder`, checked before anything
        else, then `replay(base, words, config)` -> (clips, noise, bank, note)."""
        self._cancel.clear()

        def work():
            try:
                takes, problems = load_takes(takes_folder, base.config.features.window_samples)
                new_words = check_takes(base, takes)  # "too few takes" before minutes of reading clips
                skipped = f" ({len(problems)} unusable take files skipped)" if problems else ""
                emit(self.progress, 0.0, f"reading clips of the model's own words{skipped}")
                clips, noise, bank, _ = replay(base, new_words, config) if replay else ([], None, None, "")
                result = adapt(base, takes, config, replay=clips, noise=noise, bank=bank,
                               progress=lambda f, m: emit(self.progress, f, m), cancelled=self._cancel.is_set)
            except AdaptCancelled:
                emit(self.cancelled)
            except (AdaptError, DatasetError, AudioError) as error:
                emit(self.failed, str(error))
            except Exception as error:  # a bug: keep the traceback, and give the panel its controls back
                traceback.print_exc()
                emit(self.failed, f"Training stopped after an internal error ({error!r}); see the terminal.")
            else:
                emit(self.finished, result)

        self.jobs.start(work)

    def cancel(self) -> None:
        self._cancel.set()

    def shutdown(self) -> None:
        """Cancel and wait: the window is closing."""
        self.cancel()
        self.jobs.join()


class TeachPanel(QWidget):
    """Name a word, record or drop takes, train, read the honest result, use and save the model."""

    model_ready = Signal(object, str)  # (SpeechCommandsModel, where it came from)

    def __init__(
        self,
        base_model: Callable[[], SpeechCommandsModel | None],
        takes_dir: str | Path | None = None,
        open_microphone: Callable[[], object] | None = None,
        config: AdaptConfig = AdaptConfig(),
        replay: ReplaySource | None = None,
        parent=None,
    ):
        super().__init__(parent)
        self.base_model = base_model
        self.store = TakeStore(takes_dir or default_takes_dir())
        self.open_microphone = open_microphone or default_microphone
        self.config = config
        self.replay = replay
        self._base: SpeechCommandsModel | None = None
        self.adapted: Adapted | None = None
        self.unsaved = False  # a taught model that is only in memory: quitting asks first
        self.takes: dict[Path, Take] = {}  # cache of prepared takes by file
        self.recorder = TakeRecorder(lambda: self.open_microphone(), self)
        self.job = TrainingJob(self)
        self.setAcceptDrops(True)
        self._build()
        self._connect()
        self.refresh()

    # ---- construction ---------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        base_row = QHBoxLayout()
        self.base_label = QLabel()
        self.base_label.setWordWrap(True)
        base_row.addWidget(self.base_label, 1)
        self.rebase_button = QPushButton("Start from the model in use")
        self.rebase_button.setToolTip("Teach the model the window uses now instead (for example one you opened since).")
        base_row.addWidget(self.rebase_button)
        layout.addLayout(base_row)

        word_row = QHBoxLayout()
        word_row.addWidget(QLabel("Word:"))
        self.word_combo = QComboBox()
        self.word_combo.setMinimumContentsLength(16)
        self.word_combo.setToolTip("The word whose takes you record: a new word, one the model knows (to personalize it), background or other speech.")
        word_row.addWidget(self.word_combo, 1)
        self.new_word_edit = QLineEdit()
        self.new_word_edit.setPlaceholderText("new word, e.g. lights")
        word_row.addWidget(self.new_word_edit, 1)
        self.add_word_button = QPushButton("Add word")
        word_row.addWidget(self.add_word_button)
        layout.addLayout(word_row)

        take_row = QHBoxLayout()
        self.record_button = QPushButton("Record take")
        self.record_button.setToolTip(f"Counts down {COUNTDOWN_SECONDS} s, then records {RECORD_SECONDS:g} s: say the word once.")
        self.files_button = QPushButton("Add files…")
        self.files_button.setToolTip("Add recordings as takes (or drop audio files on this panel).")
        self.play_button = QPushButton("Play")
        self.delete_button = QPushButton("Delete")
        for button in (self.record_button, self.files_button, self.play_button, self.delete_button):
            take_row.addWidget(button)
        self.counter = QLabel()
        self.counter.setStyleSheet("font-weight: bold;")
        take_row.addWidget(self.counter, 1, Qt.AlignRight)
        layout.addLayout(take_row)

        self.status = QLabel("Drop audio files here or record takes.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.take_list = QListWidget()
        self.take_list.setMaximumHeight(90)
        layout.addWidget(self.take_list)
        self.preview = TakePreview()
        layout.addWidget(self.preview, 1)

        train_row = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Learn the words from the takes (a few seconds); the live view switches to the new model.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.save_button = QPushButton("Save model…")
        self.save_button.setEnabled(False)
        for widget in (self.train_button, self.cancel_button):
            train_row.addWidget(widget)
        train_row.addWidget(self.progress, 1)
        train_row.addWidget(self.save_button)
        layout.addLayout(train_row)

        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        layout.addWidget(self.result_label)
        self.warnings_label = QLabel()
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet(WARNING_STYLE)
        self.warnings_label.hide()
        layout.addWidget(self.warnings_label)
        self.confusion = QTableWidget()
        self.confusion.setToolTip("Held-out takes: rows are what was recorded, columns what the new model heard.")
        self.confusion.setMaximumHeight(150)
        self.confusion.verticalHeader().setDefaultSectionSize(22)
        self.confusion.hide()
        layout.addWidget(self.confusion)

    def _connect(self) -> None:
        self.rebase_button.clicked.connect(self.start_from_model_in_use)
        self.add_word_button.clicked.connect(self.add_new_word)
        self.new_word_edit.returnPressed.connect(self.add_new_word)
        self.word_combo.currentIndexChanged.connect(lambda _: self.refresh_takes())
        self.record_button.clicked.connect(self.record)
        self.files_button.clicked.connect(self._files_dialog)
        self.play_button.clicked.connect(self.play_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.take_list.currentRowChanged.connect(lambda _: self._preview_selected())
        self.recorder.countdown.connect(lambda left: self._say(f"Recording in {left}…" if left else "Recording…"))
        self.recorder.recording.connect(lambda: self._say("Recording: say the word now."))
        self.recorder.recorded.connect(self._recorded)
        self.recorder.failed.connect(lambda message: (self._say(message, ERROR_STYLE), self._set_busy(False)))
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button.clicked.connect(self.save_dialog)
        self.job.progress.connect(lambda f, m: (self.progress.setValue(int(f * 1000)), self.progress.setFormat(f"{m} %p%")))
        self.job.finished.connect(self._trained)
        self.job.failed.connect(lambda message: self._done_training(message, ERROR_STYLE))
        self.job.cancelled.connect(lambda: self._done_training("Training cancelled; the model in use did not change.", WARNING_STYLE))

    # ---- words and takes ------------------------------------------------------------------------

    def current_base(self) -> SpeechCommandsModel | None:
        """The model to teach: the window's model the first time, then the same one, so that
        teaching again starts from it instead of from a model this panel made."""
        if self._base is None:
            self._base = self.base_model()
        return self._base

    def start_from_model_in_use(self) -> None:
        self._base = None
        self.adapted = None
        self.unsaved = False
        self.takes.clear()  # prepared for the old model's window length
        self.refresh()

    def current_label(self) -> str | None:
        return self.word_combo.currentData()

    def refresh(self) -> None:
        """Rebuild the word list from the base model's labels and the labels with takes."""
        base = self.current_base()
        current = self.current_label()
        labels = list(base.labels) if base is not None else []
        counts = self.store.counts(skip_unreadable=True)
        words = [w for w in counts if w not in labels and w not in SPECIAL] + [w for w in labels if w not in SPECIAL]
        self.word_combo.blockSignals(True)
        self.word_combo.clear()
        for word in words:
            kind = "new" if word not in labels else "personalize"
            self.word_combo.addItem(f"{word}  ({kind}, {counts.get(word, 0)} takes)", word)
        for label, name in SPECIAL.items():
            self.word_combo.addItem(f"{name}  ({counts.get(label, 0)} takes)", label)
        index = self.word_combo.findData(current)
        self.word_combo.setCurrentIndex(max(index, 0))
        self.word_combo.blockSignals(False)
        if base is not None:
            name = Path(base.metadata.get("path", "model")).name
            self.base_label.setText(f"Teaching <b>{name}</b> ({len(base.labels)} labels). Takes are kept in {self.store.root}.")
        self.refresh_takes()

    def add_new_word(self) -> bool:
        base = self.current_base()
        try:
            word = check_new_word(self.new_word_edit.text(), list(base.labels) if base else [])
        except TakeError as error:
            self._say(str(error), ERROR_STYLE)
            return False
        if self.word_combo.findData(word) < 0:
            self.word_combo.insertItem(0, f"{word}  (new, 0 takes)", word)
        self.word_combo.setCurrentIndex(self.word_combo.findData(word))
        self.new_word_edit.clear()
        self._say(f"Now record {SUGGESTED_TAKES} or more takes of '{word}', and a few of background and other speech.")
        return True

    def refresh_takes(self) -> None:
        label = self.current_label()
        self.take_list.clear()
        paths = self.store.paths(skip_unreadable=True).get(label, []) if label else []
        for path in paths:
            item = QListWidgetItem(path.name)
            item.setData(Qt.UserRole, str(path))
            self.take_list.addItem(item)
        self._update_counter(label, len(paths))
        if paths:
            self.take_list.setCurrentRow(len(paths) - 1)
        else:
            self.preview.clear()

    def _update_counter(self, label: str | None, count: int) -> None:
        if label is None:
            self.counter.clear()
            return
        wanted = 3 if label in SPECIAL else SUGGESTED_TAKES
        self.counter.setText(f"{count} of {wanted}+ takes")
        self.counter.setStyleSheet(f"font-weight: bold; color: {'#3c3' if count >= wanted else '#e93'};")

    def add_take(self, samples: np.ndarray, source: str) -> Path | None:
        """Check a recording and keep it as a take of the current word; None (and a message) if refused."""
        label = self.current_label()
        base = self.current_base()
        if label is None or base is None:
            self._say("Choose or add a word first.", ERROR_STYLE)
            return None
        try:
            take = prepare_take(samples, label, source, base.config.features.window_samples)
        except TakeError as error:
            self._say(str(error), ERROR_STYLE)
            return None
        try:
            path = self.store.add(label, samples)
        except OSError as error:  # the takes folder is a file, a device, or may not be written
            self._say(f"{error.filename or self.store.root}: cannot keep the take there ({error.strerror or error}); "
                      "check that it is a folder you may write to.", ERROR_STYLE)
            return None
        self.takes[path] = take
        self.refresh_counts()
        self._say(f"Kept the take of '{SPECIAL.get(label, label)}' ({len(samples) / SAMPLE_RATE:.1f} s).", GOOD_STYLE)
        return path

    def add_files(self, paths: list[str | Path]) -> int:
        """Add audio files as takes of the current word; returns how many were kept."""
        kept, refused = 0, []
        for path in paths:
            try:
                samples = take_audio(path)
            except AudioError as error:
                refused.append(str(error))
                continue
            if self.add_take(samples, str(path)) is None:
                refused.append(self.status.text())
            else:
                kept += 1
        if refused:
            self._say(f"Added {kept} of {len(paths)} files. " + " ".join(refused[:3]), ERROR_STYLE)
        return kept

    def refresh_counts(self) -> None:
        counts = self.store.counts(skip_unreadable=True)
        labels = set(self.current_base().labels) if self.current_base() else set()
        for index in range(self.word_combo.count()):
            word = self.word_combo.itemData(index)
            name = SPECIAL.get(word, word)
            kind = "" if word in SPECIAL else ("new, " if word not in labels else "personalize, ")
            self.word_combo.setItemText(index, f"{name}  ({kind}{counts.get(word, 0)} takes)")
        self.refresh_takes()

    def selected_path(self) -> Path | None:
        item = self.take_list.currentItem()
        return Path(item.data(Qt.UserRole)) if item else None

    def _take(self, path: Path) -> tuple[np.ndarray, Take | None]:
        samples = take_audio(path)
        if path not in self.takes:
            try:
                self.takes[path] = prepare_take(samples, path.parent.name, str(path), self.current_base().config.features.window_samples)
            except TakeError:
                return samples, None
        return samples, self.takes[path]

    def _preview_selected(self) -> None:
        path = self.selected_path()
        if path is None or not path.is_file():
            self.preview.clear()
            return
        try:
            samples, take = self._take(path)
        except AudioError as error:
            self._say(str(error), ERROR_STYLE)
            return
        self.preview.show_take(samples, take, self.current_base())

    def play_selected(self) -> None:
        path = self.selected_path()
        if path is not None and path.is_file():
            if not audio_backend.play(load_audio(path)):
                self._say("No audio output device: the take cannot be played here.", WARNING_STYLE)

    def delete_selected(self) -> None:
        path = self.selected_path()
        if path is not None:
            self.store.remove(path)
            self.takes.pop(path, None)
            self.refresh_counts()

    def record(self) -> None:
        if self.recorder.busy:
            return
        self._set_busy(True)
        self.recorder.start()

    def _recorded(self, samples: np.ndarray) -> None:
        self._set_busy(False)
        self.add_take(samples, "the take just recorded")

    def _files_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in AUDIO_EXTENSIONS)
        paths, _ = QFileDialog.getOpenFileNames(self, "Add takes", "", f"Audio ({patterns})")
        if paths:
            self.add_files(paths)

    def dragEnterEvent(self, event) -> None:
        accept_files(event)

    def dropEvent(self, event) -> None:
        if paths := dropped_files(event):
            self.add_files(paths)
            event.acceptProposedAction()

    # ---- training -------------------------------------------------------------------------------

    def train(self) -> bool:
        base = self.current_base()
        if base is None or self.job.running:
            return False
        self._set_busy(True)
        self.progress.setValue(0)
        self._say("Training…")
        self.job.start(base, self.store.root, self.config, self.replay)
        return True

    def cancel(self) -> None:
        if self.recorder.busy:
            self.recorder.cancel()
            self._set_busy(False)
            self._say("Recording cancelled.", WARNING_STYLE)
        self.job.cancel()

    def _trained(self, adapted: Adapted) -> None:
        self.adapted = adapted
        self.unsaved = True
        report = adapted.report
        self._done_training("", None)
        words = ", ".join(f"'{w}'" for w in report["new_words"]) or "your takes of its own words"
        self.result_label.setText(
            f"<b>Learned {words}</b> in {report['seconds']:.1f} s. Held-out takes recognized: "
            f"<b>{report['held_out_word_accuracy']:.0%}</b> of the words' takes, {report['held_out_accuracy']:.0%} of all "
            f"(each judged by a model that did not learn from it; expect less from other voices). The live view now uses this model."
        )
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in report["warnings"]))
        self.warnings_label.setVisible(bool(report["warnings"]))
        self._show_confusion(report["confusion"])
        self.save_button.setEnabled(True)
        self.model_ready.emit(adapted.model, f"taught {words}")

    def _show_confusion(self, confusion: dict) -> None:
        columns = [c for c, column in enumerate(zip(*confusion["matrix"])) if any(column)]
        self.confusion.setRowCount(len(confusion["rows"]))
        self.confusion.setColumnCount(len(columns))
        self.confusion.setVerticalHeaderLabels([SHORT.get(r, r) for r in confusion["rows"]])
        self.confusion.setHorizontalHeaderLabels([SHORT.get(confusion["columns"][c], confusion["columns"][c]) for c in columns])
        for r, (label, row) in enumerate(zip(confusion["rows"], confusion["matrix"])):
            total = max(1, sum(row))
            for k, c in enumerate(columns):
                item = QTableWidgetItem(str(row[c]) if row[c] else "")
                item.setTextAlignment(Qt.AlignCenter)
                if row[c]:
                    right = confusion["columns"][c] == label
                    item.setBackground(QColor(40, 140, 60, int(60 + 160 * row[c] / total)) if right else QColor(190, 60, 40, int(60 + 160 * row[c] / total)))
                self.confusion.setItem(r, k, item)
        self.confusion.resizeColumnsToContents()
        self.confusion.show()

    def _done_training(self, message: str, style: str | None) -> None:
        self._set_busy(False)
        if message:
            self._say(message, style)
            self.progress.setValue(0)
            self.progress.setFormat("%p%")
        else:
            self.status.setText("")
            self.status.setStyleSheet("")

    def save(self, path: str | Path) -> Path | None:
        if self.adapted is None:
            return None
        try:
            saved = save_adapted(path, self.current_base(), self.adapted, takes_folder=str(self.store.root))
        except (OSError, CheckpointError) as error:
            self._say(f"{path}: could not save the model ({getattr(error, 'strerror', None) or error}); choose another folder.", ERROR_STYLE)
            return None
        self.unsaved = False
        self._say(f"Saved {saved}.", GOOD_STYLE)
        self.model_ready.emit(self.adapted.model, str(saved))
        return saved

    def save_dialog(self) -> bool:
        """Ask where, and save there; False when the user cancelled or the save failed."""
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "taught.pt", "speechcmd models (*.pt)")
        return bool(path) and self.save(path) is not None

    # ---- state ----------------------------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.record_button, self.files_button, self.train_button, self.delete_button,
                       self.add_word_button, self.word_combo, self.save_button, self.rebase_button):
            widget.setEnabled(not busy)
        if not busy:
            self.save_button.setEnabled(self.adapted is not None)
        self.cancel_button.setEnabled(busy)

    def _say(self, text: str, style: str | None = None) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(style or "")

    def closeEvent(self, event) -> None:
        self.recorder.cancel()
        self.job.cancel()
        super().closeEvent(event)


def default_microphone():
    """The default input device as a 16 kHz source (AudioBackendError when there is none)."""
    devices = audio_backend.input_devices()
    if not devices:
        raise AudioBackendError("No microphone found; plug one in, or drop audio files on the Teach panel instead.")
    try:
        default = audio_backend.sounddevice().default.device[0]
    except Exception:  # no default set: the first device will do
        default = None
    device = next((d for d in devices if d.index == default), devices[0])
    return MicrophoneSource(device)


class TeachWindow(QWidget):
    """The Teach panel in a window of its own beside the main one, so that neither squeezes the
    other: sized to the screen, scrolling only where the screen is smaller than the panel."""

    WANTED = (780, 740)

    def __init__(self, panel: TeachPanel, parent: QWidget):
        super().__init__(parent, Qt.Window)  # a child window: on top of the main one, closed with it
        self.setObjectName("teach")
        self.setWindowTitle("Teach words — speechcmd")
        self.panel = panel
        scroll = QScrollArea()
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.NoFrame)
        panel.setMinimumSize(560, 640)  # below this the panel scrolls instead of squeezing its parts
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)

    def show_beside(self) -> None:
        """Show it, fitted to the screen and raised; the panel re-reads the model in use."""
        if not self.isVisible():
            screen = (self.parentWidget() or self).screen().availableGeometry()
            width, height = min(self.WANTED[0], screen.width()), min(self.WANTED[1], screen.height() - 40)
            self.resize(width, height)
            self.move(screen.right() - width, screen.top())
        self.show()
        self.raise_()
        self.activateWindow()
        self.panel.refresh()


def install_teach(window: QMainWindow, takes_dir: str | Path | None = None, add_menu: bool = True, **options) -> TeachPanel:
    """Give `window` the Teach panel, in its own window (hidden until Teach > Teach words… is
    chosen, or shown by whoever installs it with `add_menu=False`), and switch the window to every
    model it makes: `model_ready` -> `window.use_model(model, source)`."""
    options.setdefault("replay", gather_replay)
    panel = TeachPanel(lambda: getattr(window, "model", None), takes_dir, **options)
    teach_window = TeachWindow(panel, window)
    if add_menu:
        action = QAction("&Teach words…", window, shortcut="Ctrl+T")
        action.triggered.connect(teach_window.show_beside)
        window.menuBar().addMenu("&Teach").addAction(action)
    panel.model_ready.connect(window.use_model)
    window.teach_panel, window.teach_window = panel, teach_window
    return panel

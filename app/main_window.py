"""The main window: wires the views to the sources and the recognition worker; menus and settings.

Data flow (after Friture): microphone callback or file -> `RecognitionWorker` thread ->
mailbox -> `redraw`, which a ~30 Hz timer calls on the GUI thread to draw only the newest window.
Nothing slow runs here: files are decoded, played and scanned by `FilePlayer`, models loaded and
tried by `ModelLoader`, both on their own threads, and their news arrives as signals.
Errors the user can fix (no microphone, a bad file or model) appear in the message bar at the top;
the window keeps running and file mode keeps working.

This module imports neither torch nor the network: the window appears in about a second and the
model (with torch) loads behind it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from speechcmd.app import audio_backend
from speechcmd.app.audio_backend import AudioBackendError, InputDevice, MicrophoneSource
from speechcmd.app.drops import accept_files, dropped_files
from speechcmd.app.file_player import FilePlayer
from speechcmd.app.file_source import LONG_RECORDING_SECONDS
from speechcmd.app.model_loader import ModelLoader, model_name
from speechcmd.app.recognition_worker import RecognitionWorker
from speechcmd.app.views.controls import ControlBar, MessageBar
from speechcmd.app.views.detection_history import DetectionHistory
from speechcmd.app.views.gate_heatmaps import GateHeatmaps
from speechcmd.app.views.level_meter import LevelMeter
from speechcmd.app.views.mfcc_view import MfccView
from speechcmd.app.views.probability_bars import ProbabilityBars
from speechcmd.app.views.saturation_view import SaturationView
from speechcmd.app.views.timeline import Timeline
from speechcmd.app.views.word_view import WordView
from speechcmd.model.audio import AUDIO_EXTENSIONS
from speechcmd.model.detection import DetectionPolicy

REDRAW_MS = 33  # ~30 frames per second
DEFAULT_SIZE = (1440, 900)


def demo_clip() -> Path:
    """The recording shipped to try the app without a microphone (see resources/demo/README.md)."""
    from importlib import resources

    return Path(str(resources.files("speechcmd.resources") / "demo" / "commands.flac"))


def setting_int(settings: QSettings, key: str, default: int) -> int:
    try:
        return int(settings.value(key, default))
    except (TypeError, ValueError):  # a hand-edited or damaged settings file
        return default


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings, model_path: str | None = None, start_worker: bool = True):
        super().__init__()
        self.settings = settings
        # A model is never remembered between runs: a plain start always uses the bundled model,
        # so an experiment cannot silently come back. Older versions stored one; forget it.
        settings.remove("model/path")
        settings.remove("detection")  # likewise a threshold: the window starts at the model's operating point
        self.model = None
        self.model_source = ""  # the name of the loaded model, as shown
        self.source_name: str | None = None
        self.last_update = None
        self.frames_drawn = 0  # redraws that showed a new window (the figure bench/gui_fps.py reports)
        self.updates_skipped = 0  # windows scored but replaced by a newer one before they were drawn
        self._fps_since, self._fps_frames = time.monotonic(), 0
        self.worker = RecognitionWorker()
        self.policy = DetectionPolicy()
        self.player = FilePlayer(self.worker, self)
        self.player.started.connect(self._file_started)
        self.player.scanned.connect(self._file_scanned)
        self.player.failed.connect(self._file_failed)
        self.loader = ModelLoader(self)
        self.loader.loaded.connect(self._model_loaded)
        self.loader.failed.connect(self._model_failed)
        self._deferred_file = None  # (path, paced) opened once the model loading now is ready
        self._fallback_reason: str | None = None  # why a start-up model was replaced by the bundled one
        self.setWindowTitle("speechcmd: spoken commands and the LSTM's gates")
        self.setAcceptDrops(True)
        self._build_views()
        self._build_toolbar()
        self._build_menus()
        self._build_docks()
        self._fit_to_screen()
        self._restore_layout()
        self.refresh_devices()
        self.load_model(model_path, fallback=model_path is not None)
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self.redraw)
        self.redraw_timer.start()
        if start_worker:
            self.worker.start()

    # ---- construction ---------------------------------------------------------------------------

    def _build_views(self) -> None:
        self.message = MessageBar()
        self.word_view = WordView()
        self.level_meter = LevelMeter()
        self.probability_bars = ProbabilityBars()
        self.history = DetectionHistory()
        self.mfcc_view = MfccView()
        self.gate_heatmaps = GateHeatmaps()
        self.saturation_view = SaturationView()
        self.timeline = Timeline()
        self.gates_title = QLabel("Loading the model…")
        self.gates_title.setTextFormat(Qt.PlainText)
        self.gates_title.setWordWrap(True)
        self.gates_title.setStyleSheet("font-weight: bold; padding: 2px;")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.message)
        layout.addWidget(self.gates_title)
        layout.addWidget(self.gate_heatmaps, 1)
        self.setCentralWidget(central)
        self.fps_label = QLabel()
        self.source_label = QLabel("idle")
        self.source_label.setTextFormat(Qt.PlainText)
        self.statusBar().addWidget(self.source_label, 1)
        self.statusBar().addPermanentWidget(self.fps_label)

    def _build_toolbar(self) -> None:
        bar = ControlBar(self)
        self.addToolBar(bar)
        self.device_combo, self.listen_button, self.layer_combo = bar.device_combo, bar.listen_button, bar.layer_combo
        self.threshold_spin, self.suppression_spin, self.model_label = bar.threshold_spin, bar.suppression_spin, bar.model_label
        self.controls = bar
        bar.refresh_button.clicked.connect(lambda: self.refresh_devices(rescan=True))
        bar.listen_button.clicked.connect(self._listen_clicked)
        bar.open_button.clicked.connect(self.open_file_dialog)
        bar.demo_button.clicked.connect(self.play_demo)
        bar.threshold_spin.valueChanged.connect(self._policy_changed)
        bar.suppression_spin.valueChanged.connect(self._policy_changed)
        bar.layer_combo.currentIndexChanged.connect(self._layer_changed)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_audio = QAction("Open &audio…", self, shortcut=QKeySequence.Open, triggered=self.open_file_dialog)
        demo = QAction("Play &demo recording", self, shortcut="Ctrl+D", triggered=self.play_demo)
        open_model = QAction("Open &model…", self, shortcut="Ctrl+M", triggered=self.open_model_dialog)
        bundled = QAction("Use &bundled model", self, triggered=self.use_bundled_model)
        stop = QAction("&Stop listening or playing", self, shortcut="Esc", triggered=self.stop)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.Quit, triggered=self.close)
        for action in (open_audio, demo, open_model, bundled, stop):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        self._build_model_menu(open_model)
        self.view_menu = self.menuBar().addMenu("&View")
        teach = QAction("&Teach words…", self, shortcut="Ctrl+T", triggered=self.open_teach)
        self.menuBar().addMenu("&Teach").addAction(teach)

    def _build_model_menu(self, open_model: QAction) -> None:
        """Model: the bundled models, one line each (what it is, its cost, its headline figures, from
        its metadata, read when the menu first opens: the window itself imports no torch), and
        Open model… for a file. The one in use is checked."""
        from PySide6.QtGui import QActionGroup

        from speechcmd.model.bundled import bundled_names

        self.model_menu = self.menuBar().addMenu("&Model")
        group = QActionGroup(self)
        self.bundled_actions: dict[str, QAction] = {}
        for name in bundled_names():
            action = QAction(name, self, checkable=True, triggered=lambda _=False, name=name: self.load_model(name))
            group.addAction(action)
            self.model_menu.addAction(action)
            self.bundled_actions[name] = action
        self.model_menu.addSeparator()
        self.model_menu.addAction(open_model)
        self.model_menu.aboutToShow.connect(self.describe_bundled_models)

    def describe_bundled_models(self) -> None:
        """Each bundled model's action reads `name: summary` (once; a file that cannot be read says so)."""
        from speechcmd.model.bundled import summary

        for name, action in self.bundled_actions.items():
            if action.text() != name:
                continue
            try:
                action.setText(f"{name}: {summary(name)}")
            except Exception as error:  # a damaged installation: the menu still opens
                action.setText(f"{name}: cannot be read ({type(error).__name__})")

    def _check_bundled_action(self) -> None:
        """Check the Model menu's entry of the model in use (none for a file or a taught model)."""
        from speechcmd.model.bundled import bundled_path

        path = getattr(self.model, "metadata", {}).get("path")
        for name, action in self.bundled_actions.items():
            action.setChecked(path is not None and self.model_source.endswith("(bundled)")
                              and Path(path).resolve() == bundled_path(name).resolve())

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_docks(self) -> None:
        recognized = QWidget()
        layout = QVBoxLayout(recognized)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.word_view)
        layout.addWidget(self.level_meter)
        left = Qt.LeftDockWidgetArea
        bottom = Qt.BottomDockWidgetArea
        self._dock("Recognized command", "recognized", recognized, left)
        self._dock("Class probabilities", "probabilities", self.probability_bars, left)
        self._dock("Detection history", "history", self.history, left)
        mfcc = self.mfcc_dock = self._dock("MFCC", "mfcc", self.mfcc_view, bottom)
        saturation = self._dock("Gate saturation", "saturation", self.saturation_view, bottom)
        timeline = self._dock("Timeline", "timeline", self.timeline, bottom)
        self.splitDockWidget(mfcc, saturation, Qt.Horizontal)
        self.splitDockWidget(saturation, timeline, Qt.Horizontal)
        self._docks_sized = False

    def _fit_to_screen(self) -> None:
        """Open at the default size, or smaller on a small screen (a 1366 x 768 laptop)."""
        screen = self.screen().availableGeometry()
        width, height = min(DEFAULT_SIZE[0], screen.width()), min(DEFAULT_SIZE[1], screen.height())
        self.resize(width, height)
        self.move(screen.left() + (screen.width() - width) // 2, screen.top() + (screen.height() - height) // 2)

    # ---- settings -------------------------------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._docks_sized and self.settings.value("window/state") is None:
            # Default proportions; only possible once the window has its size.
            width = self.width()
            self.resizeDocks([self.findChild(QDockWidget, "recognized")], [max(360, width // 4)], Qt.Horizontal)
            self.resizeDocks([self.findChild(QDockWidget, "mfcc")], [max(150, self.height() // 4)], Qt.Vertical)
            bottom = [self.findChild(QDockWidget, name) for name in ("mfcc", "saturation", "timeline")]
            self.resizeDocks(bottom, [width // 3, width // 3, width // 3], Qt.Horizontal)
            docks = [self.findChild(QDockWidget, name) for name in ("recognized", "probabilities", "history")]
            self.resizeDocks(docks, [175, 240, 125], Qt.Vertical)
        self._docks_sized = True

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        try:
            if geometry is not None:
                self.restoreGeometry(geometry)
            if state is not None:
                self.restoreState(state)
        except TypeError:  # a hand-edited settings file holds text where Qt saved bytes
            pass

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        device = self.device_combo.currentData()
        if device is not None:
            self.settings.setValue("input/device", device.name)
        self.settings.sync()

    def closeEvent(self, event) -> None:
        if not self.may_discard_taught_model():
            event.ignore()
            return
        self.save_settings()
        self.hide()  # gone at once for the user, while the background jobs below are joined
        self.redraw_timer.stop()
        # Join every background job before Qt and Python tear down (a thread still in torch at
        # exit aborted the process: "terminate called without an active exception").
        self.player.shutdown()
        self.loader.shutdown()
        if getattr(self, "teach_panel", None) is not None:
            self.teach_panel.job.shutdown()
        self.worker.shutdown()
        super().closeEvent(event)

    def may_discard_taught_model(self) -> bool:
        """Before quitting: a model taught but never saved is offered to be saved; False keeps the
        window open (the user cancelled, or cancelled the save)."""
        panel = getattr(self, "teach_panel", None)
        if panel is None or not panel.unsaved:
            return True
        answer = QMessageBox.question(
            self, "Unsaved taught model",
            "The model you taught has not been saved and will be lost when the window closes. Save it first?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save,
        )
        if answer == QMessageBox.Cancel:
            return False
        return answer == QMessageBox.Discard or panel.save_dialog()

    # ---- messages -------------------------------------------------------------------------------

    def show_message(self, text: str, error: bool = True) -> None:
        self.message.show_message(text, error)

    def has_message(self) -> bool:
        return bool(self.message.text())

    def clear_message(self) -> None:
        self.message.clear_message()

    # ---- model ----------------------------------------------------------------------------------

    def load_model(self, path: str | None, fallback: bool = False) -> None:
        """Load a checkpoint (None: the bundled one) off the GUI thread; it is used once it has
        loaded and run. On failure the message says why and the current model stays; with
        `fallback` (a model named at start-up), the bundled model is loaded instead."""
        self._loading = (path, fallback)  # until its answer arrives (the thread may be done before)
        self.model_label.setText(f" Model: loading {model_name(path)}…")
        self.loader.load(path)

    def use_bundled_model(self) -> None:
        self.load_model(None)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", "speechcmd models (*.pt);;All files (*)")
        if path:
            self.load_model(path)

    def _model_loaded(self, token: int, model, name: str) -> None:
        if token != self.loader.token:
            return  # another model was asked for meanwhile
        self._loading = None
        self.use_model(model, name)
        if self._deferred_file is not None:
            path, paced = self._deferred_file
            self._deferred_file = None
            self.open_file(path, paced)
        if self._fallback_reason:  # after opening the file, which clears older messages
            self.show_message(self._fallback_reason)
            self._fallback_reason = None

    def _model_failed(self, token: int, reason: str) -> None:
        if token != self.loader.token:
            return
        path, fallback = self._loading
        self._loading = None
        if fallback and path is not None:
            self._fallback_reason = f"{reason} Using the bundled model instead."
            self.load_model(None)
            return
        if self.model is not None:
            self.show_message(f"{reason} The current model ({self.model_source}) stays loaded.")
            self._show_model_name()
        else:
            self.show_message(f"{reason} Use File > Open model… to load another.")
            self.model_label.setText(" Model: none")
            self._deferred_file = None

    def open_teach(self) -> None:
        """Show the Teach panel, built on first use: its module needs torch, which the window
        itself does not import, so that it opens fast."""
        if getattr(self, "teach_window", None) is None:
            from speechcmd.app.teach import install_teach

            install_teach(self, add_menu=False)
        self.teach_window.show_beside()

    def use_model(self, model, source: str) -> None:
        """Recognize with `model` (already loaded) from now on, and show `source` as its name.

        The views are rebuilt for its labels, gates and layers; the update drawn for the previous
        model is dropped, and what is playing starts over with the new model. Used by File > Open
        model and by anything that trains or edits a model in the running app."""
        # The operating point stored with the model, as `speechcmd classify` uses it: the window
        # starts from it (and returns to it on a switch), so both find the same words.
        self.policy = DetectionPolicy.for_model(model)
        self.model, self.model_source = model, source
        self.last_update = None
        self.worker.set_model(model, self.policy)
        config = model.config
        features = config.features
        self.probability_bars.set_labels(model.labels)
        self.word_view.set_labels(model.labels)
        self.gate_heatmaps.set_model(model.gate_names, config.hidden_size, features, config.cell)
        self.saturation_view.set_model(model.gate_names, config.hidden_size)
        self.mfcc_view.set_features(features)
        self.mfcc_dock.setWindowTitle(features.title)
        self.history.setRowCount(0)
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems([f"{i + 1} of {config.num_layers}" for i in range(config.num_layers)])
        layer = max(0, min(setting_int(self.settings, "view/layer", 0), config.num_layers - 1))
        self.layer_combo.setCurrentIndex(layer)
        self.layer_combo.blockSignals(False)
        self._layer_changed(layer)
        self.controls.show_values(self.policy.threshold, self.policy.suppression_seconds)
        self.probability_bars.set_threshold(self.policy.threshold)
        self._show_model_name()
        self._check_bundled_action()
        if self.has_message() and "model" in self.message.text():
            self.clear_message()

    def _show_model_name(self) -> None:
        config = self.model.config
        self.model_label.setText(f" Model: {self.model_source}")
        self.model_label.setToolTip(
            f"{self.model_source}: {config.cell.upper()}, {config.num_layers} layer(s) of {config.hidden_size} units, "
            f"{len(self.model.labels)} classes"
            + (f"; its head also reads the window's mean {config.features.name} (a taught model)" if config.head_reads_frontend else "")
            + ". The Model menu changes it."
        )

    def _layer_changed(self, layer: int) -> None:
        if layer < 0 or self.model is None:
            return
        self.gate_heatmaps.set_layer(layer)
        self.settings.setValue("view/layer", layer)
        cell = self.model.config.cell.upper()
        self.gates_title.setText(
            f"{cell} gates of layer {layer + 1} for the newest 1 s window, computed from a fresh state "
            f"(units × {self.model.config.features.name} frames; fixed colour scales: gates 0..1, tanh values -1..1)"
        )
        if self.last_update is not None:
            self._draw_update(self.last_update)

    def _policy_changed(self) -> None:
        self.policy = replace(
            self.policy, threshold=self.threshold_spin.value(), suppression_seconds=self.suppression_spin.value()
        )
        self.worker.set_policy(self.policy)
        self.probability_bars.set_threshold(self.policy.threshold)

    # ---- sources --------------------------------------------------------------------------------

    def refresh_devices(self, rescan: bool = False) -> None:
        if rescan and isinstance(self.worker.source, MicrophoneSource):
            self.stop()  # re-scanning restarts PortAudio, which would pull the stream from under us
        self.device_combo.clear()
        try:
            devices = audio_backend.input_devices(refresh=rescan)
        except AudioBackendError as error:
            devices = []
            self.show_message(str(error))
        if rescan:
            self.player.resume_audio()  # the restart also silenced the file being played
        remembered = self.settings.value("input/device")
        for device in devices:
            self.device_combo.addItem(str(device), device)
            if device.name == remembered:
                self.device_combo.setCurrentIndex(self.device_combo.count() - 1)
        if not devices:
            self.device_combo.addItem("(no microphone found)", None)
            if not self.has_message():
                self.show_message(
                    "No microphone found; plug one in and press Refresh, or open an audio file "
                    "(File > Open audio…) or press Play demo.",
                    error=False,
                )
        elif rescan and self.has_message() and "microphone" in self.message.text().lower():
            self.clear_message()
        self.listen_button.setEnabled(bool(devices))

    def _listen_clicked(self, checked: bool) -> None:
        if checked:
            self.start_microphone()
        else:
            self.stop()

    def start_microphone(self) -> bool:
        device: InputDevice | None = self.device_combo.currentData()
        if device is None:
            self.show_message("No microphone selected; plug one in and press Refresh, or open an audio file.")
            self.listen_button.setChecked(False)
            return False
        if not self._ready_for_a_source():
            self.listen_button.setChecked(False)
            return False
        self.player.stop()
        try:
            source = MicrophoneSource(device)
        except AudioBackendError as error:
            self.show_message(str(error))
            self.listen_button.setChecked(False)
            return False
        self.worker.set_source(source)
        self._source_changed(source.name, f"listening to {device.name}")
        self.listen_button.setChecked(True)
        self.listen_button.setText("Stop")
        self.settings.setValue("input/device", device.name)
        return True

    def open_file(self, path: str | Path, paced: bool = True) -> bool:
        """Play a file through the recognizer (audibly when there is an output device).

        Decoding, playing and scanning happen on the file player's thread; this returns at once
        (False only when there is no model to play it with) and errors arrive as messages."""
        if self.model is None and self._loading is not None:
            self._deferred_file = (path, paced)  # the start-up model is still loading
            self.source_label.setText(f"{Path(path).name} plays once the model has loaded…")
            return True
        if not self._ready_for_a_source():
            return False
        self.worker.set_source(None)
        self.player.open(path, self.model, self.policy, paced)
        self._source_changed(Path(path).name, f"decoding {Path(path).name}…")
        return True

    def play_demo(self) -> None:
        self.open_file(demo_clip())

    def _file_started(self, token: int, source, audible: bool) -> None:
        if not self.player.current(token):
            return
        self.source_label.setText(f"playing {source.name}" + ("" if audible or not source.paced else " silently (no audio output device)"))
        self.timeline.set_recording(source.name, source.duration)
        if source.recording:
            self.timeline.set_status(f"{source.name}: scanning…")
        else:
            self.timeline.set_status(f"short clip: no timeline (files of {LONG_RECORDING_SECONDS:g} s or more)")

    def _file_scanned(self, token: int, detections) -> None:
        if self.player.current(token):
            self.timeline.set_detections(detections, self.source_name)

    def _file_failed(self, token: int, reason: str) -> None:
        if self.player.current(token):  # also a recording found damaged part-way while playing: it stops
            self.stop()
            self.show_message(reason)

    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in AUDIO_EXTENSIONS)
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", "", f"Audio ({patterns});;All files (*)")
        if path:
            self.open_file(path)

    def stop(self) -> None:
        self.player.stop()
        self.worker.set_source(None)
        self.listen_button.setChecked(False)
        self.listen_button.setText("Listen")
        self.source_label.setText("idle")

    def _ready_for_a_source(self) -> bool:
        if self.model is None:
            self.show_message("No model loaded; use File > Open model… first.")
            return False
        return True

    def _source_changed(self, name: str, description: str) -> None:
        self.source_name = name
        self.word_view.clear()
        self.history.setRowCount(0)
        self.listen_button.setChecked(False)
        self.listen_button.setText("Listen")
        self.source_label.setText(description)
        if self.has_message():
            self.clear_message()

    # ---- drag and drop --------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        accept_files(event)

    def dropEvent(self, event) -> None:
        if paths := dropped_files(event):
            self.open_dropped(paths[0])
            event.acceptProposedAction()

    def open_dropped(self, path: str) -> None:
        """A dropped .pt file is a model; anything else is audio."""
        if Path(path).suffix.lower() == ".pt":
            self.load_model(path)
        else:
            self.open_file(path)

    # ---- drawing --------------------------------------------------------------------------------

    def redraw(self) -> None:
        """Draw what the worker produced since the last frame; called by the ~30 Hz timer."""
        snapshot = self.worker.take()
        self.updates_skipped += snapshot.skipped_updates
        if snapshot.error:
            self.show_message(snapshot.error)
            self.stop()
        elif snapshot.warning:
            self.show_message(snapshot.warning, error=False)
        self.level_meter.set_level(snapshot.level_db)
        for detection in snapshot.detections:
            self.history.add(detection)
            self.word_view.show_detection(detection)
        if snapshot.pending is not None:  # shown at once; its row's confidence grows to the peak
            self.history.add(snapshot.pending)
            self.word_view.show_detection(snapshot.pending)
        if snapshot.update is not None and self.model is not None:
            self.last_update = snapshot.update
            self._draw_update(snapshot.update)
            self.frames_drawn += 1
        self.word_view.update_time(snapshot.source_time)
        self.timeline.set_time(snapshot.source_time)
        if snapshot.finished:
            self.source_label.setText(f"{self.source_name}: finished")
        self._update_fps()

    def _draw_update(self, update) -> None:
        self.probability_bars.show_probabilities(update.probabilities, update.averaged)
        if update.mfcc is not None:
            self.mfcc_view.show_mfcc(update.mfcc)
        if update.gates:
            self.gate_heatmaps.show_gates(update.gates)
            layer = update.gates[min(self.gate_heatmaps.layer, len(update.gates) - 1)]
            self.saturation_view.show_gates(layer)

    def _update_fps(self) -> None:
        now = time.monotonic()
        if now - self._fps_since >= 1.0:
            fps = (self.frames_drawn - self._fps_frames) / (now - self._fps_since)
            self.fps_label.setText(f"{fps:.0f} windows drawn/s")
            self._fps_since, self._fps_frames = now, self.frames_drawn


def default_settings() -> QSettings:
    return QSettings("speechcmd", "speechcmd")


def display_problem() -> str | None:
    """Why Qt could not open a window here, in one sentence, or None when it can."""
    if os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return None
    if os.environ.get("WAYLAND_DISPLAY"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        return (
            "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set); run it in a desktop session, "
            "or under `xvfb-run -a` for a virtual one."
        )
    if not x_server_answers(display):  # Qt would abort the process instead of saying so
        return (
            f"no X server answers at DISPLAY={display}; check that variable (unset it or point it at your "
            "desktop's display), or run under `xvfb-run -a` for a virtual one."
        )
    return None


def x_server_answers(display: str, timeout: float = 2.0) -> bool:
    """Whether something accepts connections at an X display name (`:0`, `:1.0`, `host:10`,
    `unix:0`); an odd name is left for Qt to judge."""
    import re
    import socket

    match = re.fullmatch(r"(?:(?P<host>[^:/]*)/?)?:(?P<number>\d+)(?:\.\d+)?", display)
    if match is None:
        return True
    host, number = match["host"], int(match["number"])
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as local:
                local.settimeout(timeout)
                path = f"/tmp/.X11-unix/X{number}"
                try:
                    local.connect(path)
                except OSError:
                    local.connect("\0" + path)  # Linux's abstract socket of the same name
            return True
        with socket.create_connection((host, 6000 + number), timeout=timeout):
            return True
    except OSError:
        return False


def run_app(model_path: str | None = None, files: list[str] | tuple = ()) -> int:
    problem = display_problem()
    if problem:
        print(f"speechcmd gui: {problem}", file=sys.stderr)
        return 2
    print("speechcmd gui: starting…", file=sys.stderr, flush=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("speechcmd")
    app.setOrganizationName("speechcmd")
    window = MainWindow(default_settings(), model_path)
    # Ctrl+C in the terminal closes the window properly (settings saved); Python sees the signal
    # because the redraw timer hands control back to the interpreter 30 times a second.
    signal.signal(signal.SIGINT, lambda *args: window.close())
    window.show()
    if files:
        window.open_file(files[0])
        if len(files) > 1:
            window.statusBar().showMessage(f"Opened {Path(files[0]).name}; open the other {len(files) - 1} file(s) one at a time.", 10_000)
    return app.exec()

"""The main window: assembles the views, the sources and the recognition worker; menus and settings.

Data flow (after Friture): microphone callback or file -> `RecognitionWorker` thread ->
mailbox -> `redraw`, which a ~30 Hz timer calls on the GUI thread to draw only the newest window.
Errors the user can fix (no microphone, a bad file or model) appear in the message bar at the top;
the window keeps running and file mode keeps working.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch
from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QLabel,
    QMainWindow,
    QPushButton,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from speechcmd.app import audio_backend
from speechcmd.app.audio_backend import AudioBackendError, InputDevice, MicrophoneSource
from speechcmd.app.file_source import LONG_RECORDING_SECONDS, FileSource
from speechcmd.app.recognition_worker import RecognitionWorker
from speechcmd.app.views.detection_history import DetectionHistory
from speechcmd.app.views.gate_heatmaps import GateHeatmaps
from speechcmd.app.views.level_meter import LevelMeter
from speechcmd.app.views.mfcc_view import MfccView
from speechcmd.app.views.probability_bars import ProbabilityBars
from speechcmd.app.views.saturation_view import SaturationView
from speechcmd.app.views.timeline import Timeline
from speechcmd.app.views.word_view import WordView
from speechcmd.model.audio import AUDIO_EXTENSIONS, AudioError, audio_duration
from speechcmd.model.checkpoint import CheckpointError, load_model
from speechcmd.model.detection import DetectionPolicy
from speechcmd.model.inference import Classifier

REDRAW_MS = 33  # ~30 frames per second
DECODE_IN_BACKGROUND_SECONDS = 60.0  # longer files are decoded off the GUI thread
ERROR_STYLE = "background: #7a1f1f; color: white; padding: 6px; font-weight: bold;"
WARNING_STYLE = "background: #7a6a1f; color: white; padding: 6px;"


class _BackgroundResult(QObject):
    """Carries a background job's (token, result) from its thread to the GUI thread."""

    done = Signal(int, object)


def remembered_policy(settings: QSettings) -> DetectionPolicy:
    """The detection policy with the threshold and suppression last set in the window."""
    try:
        return DetectionPolicy(
            threshold=float(settings.value("detection/threshold", DetectionPolicy.threshold)),
            suppression_seconds=float(settings.value("detection/suppression", DetectionPolicy.suppression_seconds)),
        )
    except (TypeError, ValueError):  # a hand-edited or damaged settings file
        return DetectionPolicy()


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings, model_path: str | None = None, start_worker: bool = True):
        super().__init__()
        # One thread for the model: on a small machine a second torch thread fights the GUI and
        # other processes for the cores and makes each window ~10x slower, not faster.
        torch.set_num_threads(1)
        self.settings = settings
        self.model = None
        self.source_name: str | None = None
        self.last_update = None
        self.frames_drawn = 0  # redraws that showed a new window (the figure bench/gui_fps.py reports)
        self.updates_skipped = 0  # windows scored but replaced by a newer one before they were drawn
        self._fps_since, self._fps_frames = time.monotonic(), 0
        self.playing_audibly = False
        self.worker = RecognitionWorker()
        self.policy = remembered_policy(settings)
        self._scan_token = 0
        self._scan_results = _BackgroundResult(self)
        self._scan_results.done.connect(self._scan_finished)
        self._load_token = 0
        self._load_results = _BackgroundResult(self)
        self._load_results.done.connect(self._file_loaded)
        self.setWindowTitle("speechcmd: spoken commands and the LSTM's gates")
        self.setAcceptDrops(True)
        self._build_views()
        self._build_toolbar()
        self._build_menus()
        self._build_docks()
        self.resize(1440, 900)
        self._restore_layout()
        self.refresh_devices()
        remembered = settings.value("model/path") or None
        if model_path is not None:
            self.load_model(model_path)
        elif not (remembered and Path(remembered).is_file() and self.load_model(remembered)):
            self.load_model(None, remember=False)  # the bundled model
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self.redraw)
        self.redraw_timer.start()
        if start_worker:
            self.worker.start()

    # ---- construction ---------------------------------------------------------------------------

    def _build_views(self) -> None:
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.hide()
        self.word_view = WordView()
        self.level_meter = LevelMeter()
        self.probability_bars = ProbabilityBars()
        self.probability_bars.set_threshold(self.policy.threshold)
        self.history = DetectionHistory()
        self.mfcc_view = MfccView()
        self.gate_heatmaps = GateHeatmaps()
        self.saturation_view = SaturationView()
        self.timeline = Timeline()
        self.gates_title = QLabel()
        self.gates_title.setStyleSheet("font-weight: bold; padding: 2px;")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.message)
        layout.addWidget(self.gates_title)
        layout.addWidget(self.gate_heatmaps, 1)
        self.setCentralWidget(central)
        self.fps_label = QLabel()
        self.model_label = QLabel()
        self.source_label = QLabel("idle")
        self.statusBar().addWidget(self.source_label, 1)
        self.statusBar().addPermanentWidget(self.model_label)
        self.statusBar().addPermanentWidget(self.fps_label)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Controls")
        bar.setObjectName("controls")
        self.addToolBar(bar)
        bar.addWidget(QLabel(" Microphone: "))
        self.device_combo = QComboBox()
        self.device_combo.setMinimumContentsLength(24)
        self.device_combo.setToolTip("Input device; devices without 16 kHz are resampled, stereo is mixed down.")
        bar.addWidget(self.device_combo)
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Scan for microphones again (after plugging one in).")
        refresh.clicked.connect(lambda: self.refresh_devices(rescan=True))
        bar.addWidget(refresh)
        self.listen_button = QPushButton("Listen")
        self.listen_button.setCheckable(True)
        self.listen_button.clicked.connect(self._listen_clicked)
        bar.addWidget(self.listen_button)
        open_file = QPushButton("Open audio…")
        open_file.clicked.connect(self.open_file_dialog)
        bar.addWidget(open_file)
        bar.addSeparator()
        bar.addWidget(QLabel(" Threshold: "))
        self.threshold_spin = QDoubleSpinBox()
        self.threshold_spin.setRange(0.05, 1.0)
        self.threshold_spin.setSingleStep(0.05)
        self.threshold_spin.setValue(self.policy.threshold)
        self.threshold_spin.setToolTip("Averaged probability a command needs to be reported.")
        self.threshold_spin.valueChanged.connect(self._policy_changed)
        bar.addWidget(self.threshold_spin)
        bar.addWidget(QLabel(" Suppression: "))
        self.suppression_spin = QDoubleSpinBox()
        self.suppression_spin.setRange(0.0, 5.0)
        self.suppression_spin.setSingleStep(0.1)
        self.suppression_spin.setSuffix(" s")
        self.suppression_spin.setValue(self.policy.suppression_seconds)
        self.suppression_spin.setToolTip("After a detection, stay quiet this long so one word is reported once.")
        self.suppression_spin.valueChanged.connect(self._policy_changed)
        bar.addWidget(self.suppression_spin)
        bar.addSeparator()
        bar.addWidget(QLabel(" Layer: "))
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Which recurrent layer's gates to show.")
        self.layer_combo.currentIndexChanged.connect(self._layer_changed)
        bar.addWidget(self.layer_combo)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_audio = QAction("Open &audio…", self, shortcut=QKeySequence.Open, triggered=self.open_file_dialog)
        open_model = QAction("Open &model…", self, shortcut="Ctrl+M", triggered=self.open_model_dialog)
        stop = QAction("&Stop listening or playing", self, shortcut="Esc", triggered=self.stop)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.Quit, triggered=self.close)
        for action in (open_audio, open_model, stop):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        self.view_menu = self.menuBar().addMenu("&View")

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
        mfcc = self._dock("MFCC", "mfcc", self.mfcc_view, bottom)
        saturation = self._dock("Gate saturation", "saturation", self.saturation_view, bottom)
        self.splitDockWidget(mfcc, saturation, Qt.Horizontal)
        self._dock("Timeline", "timeline", self.timeline, bottom)
        self._docks_sized = False

    # ---- settings -------------------------------------------------------------------------------

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._docks_sized and self.settings.value("window/state") is None:
            # Default proportions; only possible once the window has its size.
            self.resizeDocks([self.findChild(QDockWidget, "recognized")], [400], Qt.Horizontal)
            self.resizeDocks([self.findChild(QDockWidget, "mfcc")], [250], Qt.Vertical)
            docks = [self.findChild(QDockWidget, name) for name in ("recognized", "probabilities", "history")]
            self.resizeDocks(docks, [170, 300, 150], Qt.Vertical)
        self._docks_sized = True

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("detection/threshold", self.policy.threshold)
        self.settings.setValue("detection/suppression", self.policy.suppression_seconds)
        device = self.device_combo.currentData()
        if device is not None:
            self.settings.setValue("input/device", device.name)
        self.settings.sync()

    def closeEvent(self, event) -> None:
        self.save_settings()
        self.redraw_timer.stop()
        self.worker.shutdown()
        audio_backend.stop_playback()
        super().closeEvent(event)

    # ---- messages -------------------------------------------------------------------------------

    def show_message(self, text: str, error: bool = True) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else WARNING_STYLE)
        self.message.show()

    def has_message(self) -> bool:
        return bool(self.message.text())

    def clear_message(self) -> None:
        self.message.clear()
        self.message.hide()

    # ---- model ----------------------------------------------------------------------------------

    def load_model(self, path: str | None, remember: bool = True) -> bool:
        """Load a checkpoint (None: the bundled one); on failure say why and keep the current model."""
        keep = " The current model stays loaded." if self.model is not None else " Use File > Open model… to load one."
        try:
            model = load_model(path)
        except CheckpointError as error:
            self.show_message(f"{error}{keep}")
            return False
        self.model = model
        config = model.config
        self.worker.set_model(model, self.policy)
        window = config.features.window_seconds
        self.probability_bars.set_labels(model.labels)
        self.gate_heatmaps.set_model(model.gate_names, config.hidden_size, window, config.cell)
        self.saturation_view.set_model(model.gate_names, config.hidden_size)
        self.mfcc_view.set_window(window, config.features.n_mfcc)
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems([f"{i + 1} of {config.num_layers}" for i in range(config.num_layers)])
        layer = min(int(self.settings.value("view/layer", 0)), config.num_layers - 1)
        self.layer_combo.setCurrentIndex(layer)
        self.layer_combo.blockSignals(False)
        self._layer_changed(layer)
        name = Path(model.metadata.get("path", "model")).name
        self.model_label.setText(f"model: {name} ({config.cell.upper()}, {config.num_layers}×{config.hidden_size}, {len(model.labels)} classes)")
        if remember and path is not None:
            self.settings.setValue("model/path", str(Path(path).resolve()))
        if self.has_message() and "model" in self.message.text():
            self.clear_message()
        return True

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", "speechcmd models (*.pt);;All files (*)")
        if path:
            self.load_model(path)

    def _layer_changed(self, layer: int) -> None:
        if layer < 0 or self.model is None:
            return
        self.gate_heatmaps.set_layer(layer)
        self.settings.setValue("view/layer", layer)
        cell = self.model.config.cell.upper()
        self.gates_title.setText(
            f"{cell} gates of layer {layer + 1}, current 1 s window (units × time; colour scales fixed: gates 0..1, tanh values -1..1)"
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
        remembered = self.settings.value("input/device")
        for device in devices:
            self.device_combo.addItem(str(device), device)
            if device.name == remembered:
                self.device_combo.setCurrentIndex(self.device_combo.count() - 1)
        if not devices:
            self.device_combo.addItem("(no microphone found)", None)
            if not self.has_message():
                self.show_message(
                    "No microphone found; plug one in and press Refresh, or open an audio file (File > Open audio…).",
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
        audio_backend.stop_playback()
        try:
            source = MicrophoneSource(device)
        except AudioBackendError as error:
            self.show_message(str(error))
            self.listen_button.setChecked(False)
            return False
        if not self._start_source(source, f"listening to {device.name}"):
            self.listen_button.setChecked(False)
            return False
        self.listen_button.setChecked(True)
        self.listen_button.setText("Stop")
        self.settings.setValue("input/device", device.name)
        return True

    def open_file(self, path: str | Path, paced: bool = True) -> bool:
        """Play a file through the recognizer (audibly when there is an output device).

        A long recording is decoded on a thread, so the window never freezes on an hour of audio;
        it starts playing when decoded (False is returned only for errors known at once)."""
        audio_backend.stop_playback()
        self._load_token += 1
        try:
            decode_in_background = audio_duration(path) > DECODE_IN_BACKGROUND_SECONDS
            if not decode_in_background:
                return self._play(FileSource.from_path(path, paced=paced), paced)
        except AudioError as error:
            self.show_message(str(error))
            return False
        token, results = self._load_token, self._load_results
        self.source_label.setText(f"decoding {Path(path).name}…")

        def decode():
            try:
                result = FileSource.from_path(path, paced=paced)
            except AudioError as error:
                result = error
            try:
                results.done.emit(token, result)
            except RuntimeError:
                pass  # the window was closed while decoding

        threading.Thread(target=decode, name="file-decode", daemon=True).start()
        return True

    def _file_loaded(self, token: int, result) -> None:
        if token != self._load_token:
            return  # another file was opened meanwhile
        if isinstance(result, AudioError):
            self.show_message(str(result))
        else:
            self._play(result, result.paced)

    def _play(self, source: FileSource, paced: bool) -> bool:
        source.restart()
        if not self._start_source(source, f"playing {source.name}"):
            return False
        self.playing_audibly = paced and audio_backend.play(source.samples)
        if paced and not self.playing_audibly:
            self.source_label.setText(f"playing {source.name} silently (no audio output device)")
        self.timeline.set_recording(source.name, source.duration)
        if source.duration >= LONG_RECORDING_SECONDS:
            self._scan(source)
        else:
            self.timeline.plot.setTitle(f"Timeline: {source.name} is a short clip (files over {LONG_RECORDING_SECONDS:g} s are scanned)", size="9pt")
        return True

    def open_file_dialog(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in AUDIO_EXTENSIONS)
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", "", f"Audio ({patterns});;All files (*)")
        if path:
            self.open_file(path)

    def stop(self) -> None:
        self.worker.set_source(None)
        audio_backend.stop_playback()
        self.listen_button.setChecked(False)
        self.listen_button.setText("Listen")
        self.source_label.setText("idle")

    def _start_source(self, source, description: str) -> bool:
        if self.model is None:
            source.close()
            self.show_message("No model loaded; use File > Open model… first.")
            return False
        self.worker.set_source(source)
        self.source_name = source.name
        self.word_view.clear()
        self.history.setRowCount(0)
        self.listen_button.setChecked(False)
        self.listen_button.setText("Listen")
        self.source_label.setText(description)
        if self.has_message():
            self.clear_message()
        return True

    def _scan(self, source: FileSource) -> None:
        """Scan a whole recording for the timeline, on a thread (the same policy as `classify`)."""
        self._scan_token += 1
        token, model, policy, samples = self._scan_token, self.model, self.policy, source.samples
        self.timeline.plot.setTitle(f"Timeline of {source.name}: scanning…", size="9pt")

        def scan():
            detections = Classifier(model, policy=policy).scan([samples])
            try:
                results.done.emit(token, detections)
            except RuntimeError:
                pass  # the window was closed while scanning

        results = self._scan_results

        threading.Thread(target=scan, name="timeline-scan", daemon=True).start()

    def _scan_finished(self, token: int, detections) -> None:
        if token == self._scan_token:
            self.timeline.set_detections(detections, self.source_name)

    # ---- drag and drop --------------------------------------------------------------------------

    def dragEnterEvent(self, event) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
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
        if snapshot.update is not None:
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
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    return (
        "no display found (neither DISPLAY nor WAYLAND_DISPLAY is set); run it in a desktop session, "
        "or under `xvfb-run -a` for a virtual one."
    )


def run_app(model_path: str | None = None, files: list[str] | tuple = ()) -> int:
    problem = display_problem()
    if problem:
        print(f"speechcmd gui: {problem}", file=sys.stderr)
        return 2
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

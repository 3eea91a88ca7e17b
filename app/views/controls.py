"""The control bar (device, listen, files, detector settings, layer, model name) and the message bar.

Widgets only: `MainWindow` connects their signals to the sources and the worker.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QLabel, QPushButton, QToolBar

ERROR_STYLE = "background: #7a1f1f; color: white; padding: 6px; font-weight: bold;"
WARNING_STYLE = "background: #7a6a1f; color: white; padding: 6px;"


class ControlBar(QToolBar):
    def __init__(self, parent=None):
        super().__init__("Controls", parent)
        self.setObjectName("controls")
        self.addWidget(QLabel(" Microphone: "))
        self.device_combo = QComboBox()
        self.device_combo.setMinimumContentsLength(21)  # "(no microphone found)" whole
        self.device_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setToolTip("Input device; devices without 16 kHz are resampled, stereo is mixed down.")
        self.addWidget(self.device_combo)
        self.refresh_button = self._button("Refresh", "Scan for microphones again (after plugging one in).")
        self.listen_button = self._button("Listen", "Recognize what the microphone hears.")
        self.listen_button.setCheckable(True)
        self.open_button = self._button("Open audio…", "Play an audio file through the recognizer.")
        self.demo_button = self._button("Play demo", "Play a short synthesized recording of the ten commands (no microphone needed).")
        self.addSeparator()
        self.threshold_spin = self._spin(" Threshold: ", (0.05, 1.0), 0.05, "", "Averaged probability a command needs to be reported.")
        self.suppression_spin = self._spin(
            " Suppression: ", (0.0, 5.0), 0.1, " s", "After a detection, stay quiet this long so one word is reported once."
        )
        self.addSeparator()
        self.addWidget(QLabel(" Layer: "))
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("Which recurrent layer's gates to show.")
        self.addWidget(self.layer_combo)
        self.addSeparator()
        self.model_label = QLabel(" Model: loading…")
        self.model_label.setTextFormat(Qt.PlainText)
        self.addWidget(self.model_label)

    def _button(self, text: str, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        self.addWidget(button)
        return button

    def _spin(self, label: str, limits: tuple[float, float], step: float, suffix: str, tip: str) -> QDoubleSpinBox:
        self.addWidget(QLabel(label))
        spin = QDoubleSpinBox()
        spin.setRange(*limits)
        spin.setSingleStep(step)
        spin.setSuffix(suffix)
        spin.setToolTip(tip)
        self.addWidget(spin)
        return spin

    def show_values(self, threshold: float, suppression_seconds: float) -> None:
        """Show a policy's settings without reporting them as the user's changes."""
        for spin, value in ((self.threshold_spin, threshold), (self.suppression_spin, suppression_seconds)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)


class MessageBar(QLabel):
    """One sentence the user can act on, above the gate maps; plain text (file names are not markup)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.PlainText)
        self.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.hide()

    def show_message(self, text: str, error: bool = True) -> None:
        self.setText(text)
        self.setStyleSheet(ERROR_STYLE if error else WARNING_STYLE)
        self.show()

    def clear_message(self) -> None:
        self.clear()
        self.hide()

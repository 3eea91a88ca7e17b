"""The recognized word, large, with its confidence; it greys out once the word is old."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from speechcmd.model.detection import Detection

# How long a detection stays bright, in seconds of audio.
FRESH_SECONDS = 1.5


class WordView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.word = QLabel("—")
        font = QFont()
        font.setPointSize(36)
        font.setBold(True)
        self.word.setFont(font)
        self.word.setAlignment(Qt.AlignCenter)
        self.confidence = QLabel("say a command: yes, no, up, down, left, right, on, off, stop, go")
        self.confidence.setAlignment(Qt.AlignCenter)
        self.confidence.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.word)
        layout.addWidget(self.confidence)
        self.detection: Detection | None = None
        self.setToolTip("The last command the detector reported, with its averaged probability.")

    def show_detection(self, detection: Detection) -> None:
        self.detection = detection
        self.word.setText(detection.label)
        self.confidence.setText(f"confidence {detection.score:.0%}  ·  at {detection.end:.2f} s")
        self._set_fresh(True)

    def update_time(self, now: float) -> None:
        if self.detection is not None:
            self._set_fresh(now - self.detection.end < FRESH_SECONDS)

    def clear(self) -> None:
        self.detection = None
        self.word.setText("—")
        self._set_fresh(True)

    def _set_fresh(self, fresh: bool) -> None:
        self.word.setStyleSheet("" if fresh else "color: gray;")

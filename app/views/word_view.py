"""The recognized word, large, with its confidence; it greys out once the word is old."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from speechcmd.model.detection import NON_COMMANDS, Detection

# How long a detection stays bright, in seconds of audio.
FRESH_SECONDS = 1.5


class WordView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.word = QLabel("—")
        font = QFont()
        font.setPointSize(30)
        font.setBold(True)
        self.word.setFont(font)
        self.word.setAlignment(Qt.AlignCenter)
        self.word.setTextFormat(Qt.PlainText)  # a model's labels are text, never markup
        self.placeholder = "Loading the model…"
        self.confidence = QLabel(self.placeholder)
        self.confidence.setAlignment(Qt.AlignCenter)
        self.confidence.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.word)
        layout.addWidget(self.confidence)
        self.detection: Detection | None = None
        self.setToolTip(
            "The last command the detector reported, shown as soon as its averaged probability reaches the "
            "threshold; the confidence is the highest averaged probability the word reaches."
        )

    def set_labels(self, labels: list[str]) -> None:
        """The placeholder names the commands this model knows."""
        commands = [label for label in labels if label not in NON_COMMANDS]
        self.placeholder = f"say {', '.join(commands[:-1])} or {commands[-1]}" if len(commands) > 1 else (
            f"say {commands[0]}" if commands else "this model knows no commands"
        )
        self.clear()

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
        self.confidence.setText(self.placeholder)
        self._set_fresh(True)

    def _set_fresh(self, fresh: bool) -> None:
        self.word.setStyleSheet("" if fresh else "color: gray;")

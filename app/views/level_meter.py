"""The input level in dB re full scale, as a bar: is the microphone hearing anything, is it clipping?"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

FLOOR_DB = -60.0


class LevelMeter(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.level_db = FLOOR_DB
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip(f"Input level (RMS), {FLOOR_DB:g} to 0 dBFS.")

    def set_level(self, level_db: float) -> None:
        level_db = max(FLOOR_DB, min(0.0, level_db))
        if abs(level_db - self.level_db) > 0.1:
            self.level_db = level_db
            self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect())
        painter.fillRect(rect, QColor(40, 40, 40))
        fraction = (self.level_db - FLOOR_DB) / -FLOOR_DB
        colour = QColor(80, 200, 80) if self.level_db < -12 else QColor(230, 200, 40) if self.level_db < -3 else QColor(230, 60, 60)
        painter.fillRect(QRectF(rect.left(), rect.top(), rect.width() * fraction, rect.height()), colour)
        painter.setPen(Qt.white)
        painter.drawText(rect.adjusted(6, 0, -6, 0), Qt.AlignVCenter | Qt.AlignLeft, "level")
        painter.drawText(rect.adjusted(6, 0, -6, 0), Qt.AlignVCenter | Qt.AlignRight, f"{self.level_db:.0f} dBFS")

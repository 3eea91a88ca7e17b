"""Every detection so far, newest first, with its time stamp and confidence."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from speechcmd.model.detection import Detection

MAX_ROWS = 500


class DetectionHistory(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["time (s)", "word", "confidence"])
        self.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.NoSelection)
        self.setToolTip("Time stamps are seconds since listening started (or since the file began), at the end of the window.")

    def add(self, detection: Detection) -> None:
        """A new detection, or a new score for the newest one (a detection under way grows to its peak)."""
        newest = self.item(0, 0) if self.rowCount() else None
        if newest is None or (newest.text(), self.item(0, 1).text()) != (f"{detection.end:.2f}", detection.label):
            self.insertRow(0)
        for column, text in enumerate((f"{detection.end:.2f}", detection.label, f"{detection.score:.0%}")):
            self.setItem(0, column, QTableWidgetItem(text))
        if self.rowCount() > MAX_ROWS:
            self.removeRow(self.rowCount() - 1)

    def words(self) -> list[str]:
        """The detected words, newest first."""
        return [self.item(row, 1).text() for row in range(self.rowCount())]

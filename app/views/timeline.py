"""Detections along a whole recording, with a play head: where in a long file the words are.

On a recording of minutes, the word labels would overlap: only labels at least `LABEL_SPACING_PX`
apart are drawn (every bar is), and more appear as one zooms in with the mouse wheel.
"""

from __future__ import annotations

import pyqtgraph as pg

from speechcmd.model.detection import Detection

LABEL_SPACING_PX = 40


class Timeline(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.getPlotItem()
        self.set_status("open a recording to see its commands")
        self.plot.setLabel("bottom", "time in recording (s)")
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.hideAxis("left")
        self.plot.setMouseEnabled(True, False)  # zoom and pan along time only
        self.plot.hideButtons()
        self.plot.setYRange(0, 1.0, padding=0)
        self.plot.setXRange(0, 10, padding=0)
        self.playhead = pg.InfiniteLine(angle=90, pen=pg.mkPen("w", width=2))
        self.plot.addItem(self.playhead)
        self.detections: list[Detection] = []
        self._bars = None
        self._labels: list[pg.TextItem] = []
        self.duration = 1.0
        self.plot.sigXRangeChanged.connect(self._thin_labels)
        self.setMinimumHeight(90)
        self.setToolTip(
            "Commands found by scanning the whole file (the same detector as `speechcmd classify`), with "
            "their peak averaged probability. Scroll to zoom in time, drag to pan."
        )

    def set_status(self, text: str) -> None:
        self.plot.setTitle(text, size="9pt")

    def set_recording(self, name: str, duration: float) -> None:
        self.set_detections([])
        self.duration = max(duration, 1.0)
        self.set_status(name)
        self.plot.setLimits(xMin=-0.5, xMax=self.duration + 0.5, minXRange=1.0)
        self.plot.setXRange(0, self.duration, padding=0.01)
        self.playhead.setValue(0)

    def set_detections(self, detections: list[Detection], name: str | None = None) -> None:
        if self._bars is not None:
            self.plot.removeItem(self._bars)
            self._bars = None
        for label in self._labels:
            self.plot.removeItem(label)
        self._labels = []
        self.detections = list(detections)
        if name is not None:
            self.set_status(f"{name}: {len(detections)} command(s) found (scroll to zoom)")
        if detections:
            self._bars = pg.BarGraphItem(
                x0=[d.start for d in detections], x1=[d.end for d in detections], y0=0.05, height=0.45,
                brush=(80, 160, 255, 120), pen=(80, 160, 255),
            )  # fmt: skip
            self.plot.addItem(self._bars)
        for d in detections:
            text = pg.TextItem(f"{d.label}\n{d.score:.0%}", anchor=(0.5, 1.0), color="w")
            text.setPos((d.start + d.end) / 2, 0.55)  # just above its bar
            self.plot.addItem(text)
            self._labels.append(text)
        self._thin_labels()

    def visible_labels(self) -> list[str]:
        return [label.toPlainText().split("\n")[0] for label in self._labels if label.isVisible()]

    def _thin_labels(self, *args) -> None:
        """Show a label only when it is far enough (in pixels) from the last one shown."""
        (x0, x1), width = self.plot.viewRange()[0], max(1.0, self.plot.vb.width())
        seconds_per_px = (x1 - x0) / width
        last = -float("inf")
        for label in self._labels:
            x = label.pos().x()
            show = x - last >= LABEL_SPACING_PX * seconds_per_px
            label.setVisible(show)
            if show:
                last = x

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if hasattr(self, "_labels"):  # pyqtgraph resizes once before __init__ is done
            self._thin_labels()

    def set_time(self, seconds: float) -> None:
        self.playhead.setValue(seconds)

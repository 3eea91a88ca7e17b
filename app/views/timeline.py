"""Detections along a whole recording, with a play head: where in a long file the words are."""

from __future__ import annotations

import pyqtgraph as pg

from speechcmd.model.detection import Detection


class Timeline(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.getPlotItem()
        self.plot.setTitle("Timeline: open a recording to see its commands", size="9pt")
        self.plot.setLabel("bottom", "time in recording (s)")
        self.plot.hideAxis("left")
        self.plot.setMouseEnabled(True, False)
        self.plot.hideButtons()
        self.plot.setYRange(0, 1.0, padding=0)
        self.playhead = pg.InfiniteLine(angle=90, pen=pg.mkPen("w", width=2))
        self.plot.addItem(self.playhead)
        self.detections: list[Detection] = []
        self._items = []
        self.setMinimumHeight(90)
        self.setToolTip("Commands found by scanning the whole file (same detection policy as `speechcmd classify`).")

    def set_recording(self, name: str, duration: float) -> None:
        self.set_detections([])
        self.plot.setTitle(f"Timeline of {name}", size="9pt")
        self.plot.setXRange(0, max(duration, 1.0), padding=0.01)
        self.playhead.setValue(0)

    def set_detections(self, detections: list[Detection], name: str | None = None) -> None:
        for item in self._items:
            self.plot.removeItem(item)
        self._items = []
        self.detections = list(detections)
        if name is not None:
            self.plot.setTitle(f"Timeline of {name}: {len(detections)} command(s) found", size="9pt")
        if detections:
            bars = pg.BarGraphItem(
                x0=[d.start for d in detections], x1=[d.end for d in detections], y0=0.05, height=0.45,
                brush=(80, 160, 255, 120), pen=(80, 160, 255),
            )  # fmt: skip
            self.plot.addItem(bars)
            self._items.append(bars)
        for d in detections:
            text = pg.TextItem(f"{d.label}\n{d.score:.0%}", anchor=(0.5, 1.0), color="w")
            text.setPos((d.start + d.end) / 2, 0.55)  # just above its bar
            self.plot.addItem(text)
            self._items.append(text)

    def set_time(self, seconds: float) -> None:
        self.playhead.setValue(seconds)

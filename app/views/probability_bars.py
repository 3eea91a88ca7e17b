"""One bar per class: this window's probability, the detector's averaged value, and the threshold."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg


SHORT_NAMES = {"_silence_": "sil.", "_unknown_": "unk.", "silence": "sil.", "unknown": "unk."}
FULL_NAMES = {"_silence_": "silence", "_unknown_": "unknown (other words)"}  # for the tooltip
TOOLTIP = "Bars: the current 1 s window. Marks: averaged over the detector's window. Dashed: threshold."


def display_label(label: str) -> str:
    """Short enough for 13 bars side by side in a narrow dock: a long taught word keeps its first
    three letters ("ban…"); the tooltip names every bar in full."""
    name = SHORT_NAMES.get(label, label.strip("_"))
    return name if len(name) <= 5 else name[:3] + "…"


class ProbabilityBars(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = self.getPlotItem()
        self.plot.setLabel("left", "probability")
        self.plot.setYRange(0, 1, padding=0.02)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        for side in ("bottom", "left"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        # The key sits in the title, above the plot, where it never covers a bar.
        self.plot.setTitle(
            "<span style='color:#50a0ff'>■</span> window&nbsp; <span style='color:#ffff00'>▬</span> averaged&nbsp; "
            "<span style='color:#ff5a5a'>- -</span> threshold",
            size="8pt",
        )
        font = self.font()
        font.setPointSize(7)  # twelve names side by side in a narrow dock
        self.plot.getAxis("bottom").setStyle(tickFont=font)
        try:  # the last bar's name may reach past the axis' end (a taught "banana"): draw it anyway
            self.plot.getAxis("bottom").setStyle(hideOverlappingLabels=40)
        except (NameError, KeyError):  # a pyqtgraph without the setting
            pass
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7, brush=(80, 160, 255))
        self.averaged = pg.ScatterPlotItem(symbol="_", size=22, pen=pg.mkPen("y", width=3), brush="y")
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen((255, 90, 90), style=pg.QtCore.Qt.DashLine))
        self.plot.addItem(self.bars)
        self.plot.addItem(self.averaged)
        self.plot.addItem(self.threshold_line)
        self.labels: list[str] = []
        self.probabilities = np.zeros(0)
        self.setToolTip(TOOLTIP)

    def set_labels(self, labels: list[str]) -> None:
        self.labels = list(labels)
        x = np.arange(len(labels))
        self.probabilities = np.zeros(len(labels))
        self.bars.setOpts(x=x, height=self.probabilities)
        self.averaged.setData(x=[], y=[])
        self.plot.getAxis("bottom").setTicks([[(i, display_label(label)) for i, label in enumerate(labels)]])
        names = ", ".join(FULL_NAMES.get(label, label.strip("_")) for label in labels)
        self.setToolTip(f"Bars, left to right: {names}. {TOOLTIP}")
        self.plot.setXRange(-0.6, len(labels) - 0.4, padding=0)

    def set_threshold(self, threshold: float) -> None:
        self.threshold_line.setValue(threshold)

    def show_probabilities(self, probabilities: np.ndarray, averaged: np.ndarray | None) -> None:
        self.probabilities = probabilities
        self.bars.setOpts(height=probabilities)
        if averaged is not None:
            self.averaged.setData(x=np.arange(len(averaged)), y=averaged)

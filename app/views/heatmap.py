"""A heat map with a fixed colour scale, a colour bar, axis labels and a hover read-out.

The building block of the gate, MFCC and saturation views. Levels never auto-scale: the same
colour means the same value in every frame, so changes over time can be compared by eye.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QToolTip

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


class HeatMap(pg.GraphicsLayoutWidget):
    """Draws a (rows, columns) array; rows go up the y axis, columns along x."""

    hovered = Signal(str)  # the read-out for the cell under the mouse

    def __init__(
        self,
        title: str,
        levels: tuple[float, float],
        colormap: str,
        x_label: str,
        y_label: str,
        value_label: str,
        parent=None,
    ):
        super().__init__(parent)
        self.title = title
        self.levels = levels
        self.x_label, self.y_label, self.value_label = x_label, y_label, value_label
        self.data: np.ndarray | None = None
        self._rect = QRectF(0, 0, 1, 1)
        self.row_names: list[str] | None = None  # hover names rows by these when set
        self.plot = self.addPlot(title=f"{title} <span style='color:#aaa'>[{value_label}]</span>")
        self.plot.setLabel("bottom", x_label)
        self.plot.setLabel("left", y_label)
        self.plot.setMouseEnabled(False, False)
        for side in ("bottom", "left"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)  # no "(x0.001)" on an empty or small range
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.image = pg.ImageItem()
        self.image.setLevels(levels)
        self.image.setColorMap(pg.colormap.get(colormap))
        self.plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(
            values=levels, colorMap=pg.colormap.get(colormap), interactive=False, width=10
        )
        self.colorbar.setImageItem(self.image)
        self.addItem(self.colorbar)
        self.scene().sigMouseMoved.connect(self._mouse_moved)
        self.ci.layout.setContentsMargins(2, 2, 2, 2)
        self.ci.layout.setSpacing(2)
        self.setMinimumSize(180, 100)

    def set_title(self, title: str, y_label: str) -> None:
        self.title, self.y_label = title, y_label
        self.plot.setTitle(f"{title} <span style='color:#aaa'>[{self.value_label}]</span>")
        self.plot.setLabel("left", y_label)

    def set_extent(self, x0: float, x1: float, y0: float, y1: float) -> None:
        """Where the array sits in axis units (e.g. seconds and units)."""
        self._rect = QRectF(x0, y0, x1 - x0, y1 - y0)
        self.image.setRect(self._rect)
        self.plot.setXRange(x0, x1, padding=0)
        self.plot.setYRange(y0, y1, padding=0)

    def clear_data(self) -> None:
        """Nothing to show (a new model, whose arrays have other shapes, has not drawn yet).
        (Not `clear`: GraphicsLayoutWidget binds that name to its layout's, which removes the plot.)"""
        self.data = None
        self.image.clear()

    def set_data(self, data: np.ndarray) -> None:
        self.data = data
        self.image.setImage(data, levels=self.levels, autoLevels=False)
        self.image.setRect(self._rect)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, column) of the array under axis coordinates (x, y), or None outside it."""
        if self.data is None:
            return None
        rows, columns = self.data.shape
        r = self._rect
        column = int(np.floor((x - r.left()) / r.width() * columns))
        row = int(np.floor((y - r.top()) / r.height() * rows))
        if 0 <= row < rows and 0 <= column < columns:
            return row, column
        return None

    def describe(self, row: int, column: int) -> str:
        """The hover text, e.g. 'forget gate: unit 17, time in window (s) -0.42: 0.931'."""
        rows, columns = self.data.shape
        r = self._rect
        x = r.left() + (column + 0.5) * r.width() / columns
        row_name = self.row_names[row] if self.row_names else f"{self.y_label} {row}"
        return f"{self.title}: {row_name}, {self.x_label} {x:.2f}: {self.value_label} = {self.data[row, column]:.3f}"

    def _mouse_moved(self, scene_pos) -> None:
        if not self.plot.vb.sceneBoundingRect().contains(scene_pos):
            return
        point = self.plot.vb.mapSceneToView(scene_pos)
        cell = self.cell_at(point.x(), point.y())
        if cell is None:
            return
        text = self.describe(*cell)
        self.hovered.emit(text)
        QToolTip.showText(QCursor.pos(), text, self)

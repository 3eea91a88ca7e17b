"""Gate saturation over the current window: how often each unit's gate is nearly shut or wide open.

A gate below 0.1 blocks, one above 0.9 passes through; units that sit there most of the window
act as switches rather than dials. One row per gate and side, one column per unit.
"""

from __future__ import annotations

import numpy as np

from speechcmd.app.views.heatmap import HeatMap

LOW, HIGH = 0.1, 0.9


def gate_saturation(gates: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each sigmoid gate (frames, hidden): the fraction of frames below LOW and above HIGH, per unit."""
    return {
        name: ((values < LOW).mean(axis=0), (values > HIGH).mean(axis=0))
        for name, values in gates.items()
        if name.endswith("_gate")
    }


class SaturationView(HeatMap):
    def __init__(self, parent=None):
        super().__init__(
            "Saturation", (0.0, 1.0), "inferno", "unit", "gate",
            "share of frames", parent,
        )  # fmt: skip
        self.setToolTip(f"Per unit: fraction of the window's frames with the gate < {LOW} (shut) or > {HIGH} (open).")
        self.summary = ""
        self.summary_label = self.addLabel("", row=1, col=0, colspan=2, size="8pt")
        # pyqtgraph drops tick labels that crowd the axis; these six must all show.
        axis = self.plot.getAxis("left")
        axis.setStyle(textFillLimits=[(0, 1.0)])
        axis.setWidth(85)  # room for "output > 0.9"; labels that do not fit are not drawn at all

    def set_model(self, gate_names, hidden_size: int) -> None:
        gates = [name for name in gate_names if name.endswith("_gate")]
        self.row_names = [f"{name.split('_')[0]} {side}" for name in gates for side in (f"< {LOW}", f"> {HIGH}")]
        self.clear_data()
        self.summary_label.setText("")
        self.set_extent(0, hidden_size, 0, len(self.row_names))
        ticks = [(i + 0.5, name) for i, name in enumerate(self.row_names)]
        self.plot.getAxis("left").setTicks([ticks])
        self.plot.setLabel("left", "")

    def show_gates(self, gates: dict[str, np.ndarray]) -> None:
        saturation = gate_saturation(gates)
        rows = [fraction for low, high in saturation.values() for fraction in (low, high)]
        if rows:
            self.set_data(np.stack(rows))
            self.summary = " · ".join(
                f"{name.split('_')[0]} {100 * low.mean():.0f}% / {100 * high.mean():.0f}%" for name, (low, high) in saturation.items()
            )
            self.summary_label.setText(
                f"frames shut (&lt; {LOW}) / open (&gt; {HIGH}), mean of units:<br>{self.summary}"
            )

    def describe(self, row: int, column: int) -> str:
        return f"{self.row_names[row]}, unit {column}: {self.data[row, column]:.0%} of frames"

"""The gates of one recurrent layer for the current window: one heat map (units x time) per quantity.

Which maps exist comes from `model.gate_names`, so an LSTM shows forget, input, candidate, output,
cell and hidden state and a GRU shows reset, update, candidate and hidden state. Colour scales are
fixed per kind of quantity so that a colour means the same value in every frame.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from speechcmd.app.views.heatmap import HeatMap

# The cell state is unbounded; +-3 covers the bulk of a trained model's values, larger ones clip.
CELL_STATE_RANGE = 3.0
SYMBOLS = {
    "forget_gate": "f", "input_gate": "i", "output_gate": "o", "candidate": "g / n", "cell_state": "c",
    "hidden_state": "h", "reset_gate": "r", "update_gate": "z",
}  # fmt: skip
TIME_LABEL = "time (s, 0 = now)"


def frame_times(features) -> tuple[float, float]:
    """(left edge of the first frame's column, right edge of the last) in seconds relative to the
    end of the window, for drawing (frames, ...) maps of a FeatureConfig's frames on an exact
    time axis: column k is centred on frame k's centre and is one frame hop wide."""
    frames = features.num_frames(features.window_samples)
    first_centre = features.first_frame_centre - features.window_samples
    left = first_centre - features.hop_samples / 2
    return left / features.sample_rate, (left + frames * features.hop_samples) / features.sample_rate


def gate_scale(name: str) -> tuple[tuple[float, float], str, str]:
    """(levels, colormap, colour-bar label) for a gate quantity."""
    if name.endswith("_gate"):
        return (0.0, 1.0), "viridis", "σ, 0..1"
    if name == "cell_state":
        return (-CELL_STATE_RANGE, CELL_STATE_RANGE), "CET-D1", f"±{CELL_STATE_RANGE:g}, clipped"
    return (-1.0, 1.0), "CET-D1", "tanh, -1..1"


def gate_title(name: str, cell: str = "lstm") -> str:
    symbol = SYMBOLS.get(name, "")
    if name == "candidate":
        symbol = "n" if cell == "gru" else "g"
    return f"{name.replace('_', ' ')} {symbol}".strip()


class GateHeatmaps(QWidget):

    def __init__(self, parent=None):
        super().__init__(parent)
        self.maps: dict[str, HeatMap] = {}
        self.layer = 0
        self._grid = QGridLayout()
        self._grid.setSpacing(2)
        self.readout = QLabel("Hover over a map to read unit, time and value.")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._grid, 1)
        layout.addWidget(self.readout)

    def set_model(self, gate_names, hidden_size: int, features, cell: str = "lstm") -> None:
        """Maps for `gate_names`, one column per front-end frame of `features` (a FeatureConfig), each
        centred on its frame's centre (time 0 = the end of the window)."""
        for heatmap in self.maps.values():
            heatmap.setParent(None)
            heatmap.deleteLater()
        self.maps = {}
        columns = 3 if len(gate_names) > 4 else 2  # LSTM: 3 x 2, GRU: 2 x 2
        for index, name in enumerate(gate_names):
            levels, colormap, scale = gate_scale(name)
            heatmap = HeatMap(gate_title(name, cell), levels, colormap, TIME_LABEL, "unit", scale)
            note = (
                f" The cell state is unbounded; the scale is fixed at ±{CELL_STATE_RANGE:g} and larger values"
                " are drawn in the end colours." if name == "cell_state" else ""
            )
            heatmap.setToolTip(f"{gate_title(name, cell)}: fixed colour scale {scale}.{note} Hover a cell for its value.")
            heatmap.set_extent(*frame_times(features), 0, hidden_size)
            heatmap.hovered.connect(self.readout.setText)
            self.maps[name] = heatmap
            self._grid.addWidget(heatmap, index // columns, index % columns)

    def set_layer(self, layer: int) -> None:
        self.layer = layer

    def show_gates(self, layers: list[dict[str, np.ndarray]]) -> None:
        """Draw `layers[self.layer]`: name -> (frames, hidden) as hidden rows x frame columns."""
        if not layers:
            return
        gates = layers[min(self.layer, len(layers) - 1)]
        for name, heatmap in self.maps.items():
            if name in gates:
                heatmap.set_data(gates[name].T)

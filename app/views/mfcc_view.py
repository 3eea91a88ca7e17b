"""The MFCC frames of the current window, as the model sees them (normalized per coefficient)."""

from __future__ import annotations

import numpy as np

from speechcmd.app.views.heatmap import HeatMap
from speechcmd.app.views.gate_heatmaps import TIME_LABEL

# The front-end standardizes each coefficient with the training set's statistics, so most
# values fall within +-3; larger ones clip.
MFCC_RANGE = 3.0


class MfccView(HeatMap):
    def __init__(self, parent=None):
        super().__init__(
            "MFCC of the current window", (-MFCC_RANGE, MFCC_RANGE), "CET-D1", TIME_LABEL,
            "coefficient", f"standardized, ±{MFCC_RANGE:g}", parent,
        )  # fmt: skip
        self.setToolTip("Mel-frequency cepstral coefficients per 10 ms frame, standardized; the model's input.")

    def set_window(self, window_seconds: float, n_mfcc: int) -> None:
        self.set_extent(-window_seconds, 0.0, 0, n_mfcc)

    def show_mfcc(self, mfcc: np.ndarray) -> None:
        """mfcc: (frames, n_mfcc)."""
        self.set_data(mfcc.T)

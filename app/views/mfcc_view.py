"""The front-end frames of the current window (MFCC or speech embedding), as the model sees them
(normalized per value)."""

from __future__ import annotations

import numpy as np

from speechcmd.app.views.heatmap import HeatMap
from speechcmd.app.views.gate_heatmaps import TIME_LABEL, frame_times

# The front-end standardizes each coefficient with the training set's statistics, so most
# values fall within +-3; larger ones clip.
MFCC_RANGE = 3.0


class MfccView(HeatMap):
    def __init__(self, parent=None):
        super().__init__(
            "MFCC", (-MFCC_RANGE, MFCC_RANGE), "CET-D1", TIME_LABEL,
            "coefficient", f"standardized, ±{MFCC_RANGE:g}", parent,
        )  # fmt: skip
    def set_features(self, features) -> None:
        """One column per frame of `features` (a FeatureConfig), on the same time axis as the gate maps."""
        self.clear_data()
        self.set_extent(*frame_times(features), 0, features.feature_size)
        if features.kind == "speech_embedding":
            self.set_title(features.title, "embedding value")
            self.setToolTip(
                f"Google's speech embedding: {features.feature_size} values every {features.hop_ms:g} ms, each from the "
                f"{features.frame_ms:g} ms around it, standardized; the LSTM's input."
            )
        else:
            self.set_title(features.title, "coefficient")
            self.setToolTip(
                f"Mel-frequency cepstral coefficients, one column per {features.hop_ms:g} ms frame, standardized; the model's input."
            )

    def show_mfcc(self, mfcc: np.ndarray) -> None:
        """mfcc: (frames, feature size), the front-end's frames."""
        self.set_data(mfcc.T)

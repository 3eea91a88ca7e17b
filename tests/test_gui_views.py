"""Single views, without the window: what they draw for given data."""

from __future__ import annotations

import numpy as np
import pytest

from speechcmd.app.views.gate_heatmaps import frame_times
from speechcmd.app.views.heatmap import HeatMap
from speechcmd.app.views.probability_bars import ProbabilityBars
from speechcmd.app.views.timeline import LABEL_SPACING_PX, Timeline
from speechcmd.model.config import FeatureConfig
from speechcmd.model.detection import Detection


def test_timeline_labels_of_a_long_recording_never_overlap_and_zooming_in_shows_them_all(qtbot):
    timeline = Timeline()
    qtbot.addWidget(timeline)
    timeline.resize(400, 150)
    timeline.show()
    timeline.set_recording("long.wav", 150.0)
    timeline.set_detections([Detection(t - 1, t, "yes", 0.9) for t in np.arange(2.0, 150.0, 1.85)], "long.wav")
    qtbot.wait(10)
    (x0, x1), width = timeline.plot.viewRange()[0], timeline.plot.vb.width()
    shown = sorted(label.pos().x() for label in timeline._labels if label.isVisible())
    assert 3 < len(shown) < len(timeline._labels)
    assert min(np.diff(shown)) * width / (x1 - x0) >= LABEL_SPACING_PX
    timeline.plot.setXRange(10, 20, padding=0)  # what the mouse wheel does
    inside = [label for label in timeline._labels if 10 <= label.pos().x() <= 20]
    assert inside and all(label.isVisible() for label in inside)


def test_empty_views_have_plain_axes_without_a_scale_factor(qtbot):
    heatmap = HeatMap("test", (0, 1), "viridis", "time (s)", "unit", "0..1")
    bars = ProbabilityBars()
    for widget in (heatmap, bars):
        qtbot.addWidget(widget)
        widget.resize(300, 200)
        widget.show()
    heatmap.set_extent(-0.001, 0.0, 0, 0.001)  # a range that pyqtgraph would show as "(x0.001)"
    qtbot.wait(10)
    for plot in (heatmap.plot, bars.plot):
        for side in ("bottom", "left"):
            assert "x0.001" not in plot.getAxis(side).labelString() and "(m" not in plot.getAxis(side).labelString()


def test_the_probability_key_is_above_the_plot_not_on_the_bars(qtbot):
    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    bars.set_labels(["_silence_", "_unknown_", "yes", "no"])
    bars.show_probabilities(np.array([0.0, 0.0, 0.99, 0.01]), np.array([0.0, 0.0, 0.95, 0.05]))
    assert bars.plot.legend is None and getattr(bars.threshold_line, "label", None) is None
    assert "threshold" in bars.plot.titleLabel.text and "averaged" in bars.plot.titleLabel.text


def test_every_bar_is_named_even_a_taught_word_at_the_right_edge(qtbot):
    """pyqtgraph hides a tick label that reaches past the axis' end: a taught 'banana', the last
    bar, lost its name in a dock the width of the app's; in full it ran into "go"."""
    from PySide6.QtGui import QImage, QPainter

    bars = ProbabilityBars()
    qtbot.addWidget(bars)
    labels = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "banana"]
    bars.set_labels(labels)
    bars.resize(310, 200)
    bars.show()
    qtbot.wait(10)
    axis = bars.plot.getAxis("bottom")
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    assert [text for _, _, text in texts] == ["sil.", "unk.", *labels[2:-1], "ban…"]
    rects = [rect for rect, _, _ in texts]
    assert all(left.right() <= right.left() + 1 for left, right in zip(rects, rects[1:]))  # no name runs into the next
    assert "banana" in bars.toolTip() and "silence" in bars.toolTip()


def test_map_columns_are_centred_on_their_mfcc_frames():
    features = FeatureConfig(hop_ms=20.0)  # the bundled model's: 49 frames of 30 ms every 20 ms, 512-point FFT
    left, right = frame_times(features)
    frames = features.num_frames(features.window_samples)
    centres = left + (np.arange(frames) + 0.5) * (right - left) / frames
    expected = (np.arange(frames) * features.hop_samples + features.fft_size / 2 - features.window_samples) / 16_000
    np.testing.assert_allclose(centres, expected, atol=1e-9)
    assert frames == 49 and centres[-1] == pytest.approx(-0.024)


def test_map_columns_of_a_speech_embedding_model_are_centred_on_its_80_ms_frames():
    features = FeatureConfig.speech_embedding()  # 13 embeddings, each of the 775 ms around its centre
    left, right = frame_times(features)
    frames = features.num_frames(features.window_samples)
    centres = left + (np.arange(frames) + 0.5) * (right - left) / frames
    # embedding j sees mel frames 8j..8j+75 of the window with 6080 zeros before it
    expected = (np.arange(frames) * 1280 + (75 * 160 + 512) / 2 - 6080 - 16_000) / 16_000
    np.testing.assert_allclose(centres, expected, atol=1e-9)
    assert frames == 13 and -1.0 < centres[0] < -0.95 and -0.05 < centres[-1] < 0

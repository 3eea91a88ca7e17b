"""Finding the spoken part of a recording by its energy, for takes a user records or drops in.

`speech_bounds` is a two-threshold energy detector: 20 ms frames whose level rises well above the
recording's own noise floor (and not too far below its loudest frame) count as speech, and the
span from the first to the last of them, widened by a margin, is the spoken part. `speech_window`
then cuts one model window centred on that span from the recording itself, so the room's own
background stays around the word, as in Speech Commands clips.
"""

from __future__ import annotations

import numpy as np

FRAME_SECONDS = 0.02
SILENT_DBFS = -60.0  # a recording whose loudest frame stays below this holds nothing to learn from
ABOVE_FLOOR_DB = 6.0  # speech must rise this far over the quietest frames...
BELOW_PEAK_DB = 35.0  # ...and come within this of the loudest, which keeps quiet word endings
MARGIN_SECONDS = 0.08  # kept either side: consonants at the edges are quiet but belong to the word


def frame_size(sample_rate: int) -> int:
    return max(1, round(FRAME_SECONDS * sample_rate))


def frame_levels(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level in dBFS of consecutive frames of FRAME_SECONDS: (frames,); digital silence reads -120 dB."""
    size = frame_size(sample_rate)
    count = len(samples) // size
    if count == 0:
        return np.zeros(0)
    frames = samples[: count * size].astype(np.float64).reshape(count, size)
    return 10 * np.log10(np.maximum((frames**2).mean(axis=1), 1e-12))


def speech_bounds(samples: np.ndarray, sample_rate: int) -> tuple[int, int] | None:
    """(start, end) samples of the spoken part, or None when nothing rises above the background."""
    levels = frame_levels(samples, sample_rate)
    if len(levels) == 0 or levels.max() < SILENT_DBFS:
        return None
    floor = np.percentile(levels, 10)
    threshold = max(floor + ABOVE_FLOOR_DB, levels.max() - BELOW_PEAK_DB)
    if levels.max() < threshold:  # a steady sound (hum, noise) with no louder part
        return None
    loud = np.flatnonzero(levels >= threshold)
    size = frame_size(sample_rate)
    margin = round(MARGIN_SECONDS * sample_rate)
    start = max(0, loud[0] * size - margin)
    end = min(len(samples), (loud[-1] + 1) * size + margin)
    return int(start), int(end)


def speech_window(samples: np.ndarray, bounds: tuple[int, int], window_samples: int) -> np.ndarray:
    """One window of the recording centred on `bounds`, zero-padded where the recording ends."""
    start, end = bounds
    first = (start + end) // 2 - window_samples // 2
    window = np.zeros(window_samples, dtype=np.float32)
    source_start, source_end = max(0, first), min(len(samples), first + window_samples)
    if source_end > source_start:
        window[source_start - first : source_end - first] = samples[source_start:source_end]
    return window

"""A thread-safe ring buffer of audio frames: the audio callback writes, the recognizer reads.

The writer never blocks on the reader and never allocates: when the reader falls behind by more
than the capacity, the oldest frames are overwritten and counted as lost, so live audio always
wins over stale audio (as in Friture's ring buffer).
"""

from __future__ import annotations

import threading

import numpy as np


class RingBuffer:
    def __init__(self, capacity_frames: int, channels: int = 1):
        self.capacity = int(capacity_frames)
        self.channels = int(channels)
        self._data = np.zeros((self.capacity, self.channels), dtype=np.float32)
        self._lock = threading.Lock()
        self._written = 0  # frames ever written
        self._read = 0  # frames ever read (or lost)
        self.lost_frames = 0

    def write(self, frames: np.ndarray) -> None:
        """Copy (n, channels) frames in; called from the audio callback."""
        n = len(frames)
        if n == 0:
            return
        with self._lock:
            if n > self.capacity:  # only the newest `capacity` frames can be kept
                self._written += n - self.capacity
                frames = frames[-self.capacity :]
            start = self._written % self.capacity
            first = min(len(frames), self.capacity - start)
            self._data[start : start + first] = frames[:first]
            self._data[: len(frames) - first] = frames[first:]
            self._written += len(frames)
            behind = self._written - self._read
            if behind > self.capacity:
                self.lost_frames += behind - self.capacity
                self._read = self._written - self.capacity

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """The frames written since the last read (at most `max_frames` of them), oldest first, as a
        new (n, channels) array."""
        with self._lock:
            n = self._written - self._read
            if max_frames is not None:
                n = min(n, max_frames)
            start = self._read % self.capacity
            first = min(n, self.capacity - start)
            out = np.concatenate([self._data[start : start + first], self._data[: n - first]])
            self._read += n
        return out

    @property
    def available(self) -> int:
        with self._lock:
            return self._written - self._read

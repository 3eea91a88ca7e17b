"""The ring buffer between the audio callback and the recognizer."""

from __future__ import annotations

import threading

import numpy as np

from speechcmd.app.ring_buffer import RingBuffer


def frames(start: int, count: int, channels: int = 2) -> np.ndarray:
    return np.repeat(np.arange(start, start + count, dtype=np.float32)[:, None], channels, axis=1)


def test_reading_returns_every_frame_written_since_the_last_read_in_order_across_the_wrap():
    ring = RingBuffer(10, channels=2)
    ring.write(frames(0, 7))
    assert ring.read()[:, 0].tolist() == list(range(7))
    ring.write(frames(7, 6))  # wraps around the end
    assert ring.read()[:, 0].tolist() == list(range(7, 13))
    assert ring.read().shape == (0, 2) and ring.lost_frames == 0


def test_a_reader_that_falls_behind_loses_the_oldest_frames_and_they_are_counted():
    ring = RingBuffer(10, channels=1)
    for start in range(0, 25, 5):
        ring.write(frames(start, 5, channels=1))
    assert ring.read()[:, 0].tolist() == list(range(15, 25))
    assert ring.lost_frames == 15


def test_a_block_larger_than_the_buffer_keeps_its_newest_frames():
    ring = RingBuffer(10, channels=1)
    ring.write(frames(0, 3, channels=1))
    ring.read()
    ring.write(frames(3, 23, channels=1))
    assert ring.read()[:, 0].tolist() == list(range(16, 26))
    ring.write(frames(26, 4, channels=1))
    assert ring.read()[:, 0].tolist() == [26, 27, 28, 29]


def stream_between_threads(ring: RingBuffer, total: int = 48_000, block: int = 480) -> np.ndarray:
    """A writer thread writes frames 0..total-1 in blocks while this thread reads; what was read."""
    received = []

    def write():
        for start in range(0, total, block):
            ring.write(frames(start, block, channels=1))

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive() or ring.available:
        received.append(ring.read()[:, 0])
    writer.join()
    return np.concatenate(received)


def test_a_writer_thread_and_a_reader_thread_see_every_frame_once_or_count_it_lost():
    ring = RingBuffer(4_800, channels=1)
    values = stream_between_threads(ring)
    assert ring.lost_frames + len(values) == 48_000
    assert np.all(np.diff(values) > 0)  # in order, none twice


def test_a_buffer_that_holds_the_whole_stream_loses_nothing_between_threads():
    ring = RingBuffer(48_000, channels=1)
    values = stream_between_threads(ring)
    assert ring.lost_frames == 0
    np.testing.assert_array_equal(values, frames(0, 48_000, channels=1)[:, 0])

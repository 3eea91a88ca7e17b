"""The audio backend: input devices, the microphone stream, and file playback, via sounddevice.

The stream callback only copies frames into a `RingBuffer`; mixing down to mono and resampling to
16 kHz happen in `MicrophoneSource.read`, on the recognition thread. Playback mirrors it: a feeder
thread fills a ring a little ahead, the output callback copies from it. Every way the sound system
can fail (no PortAudio, no device, a device unplugged mid-stream) becomes `AudioBackendError`
with one sentence, so the window can show it and carry on in file mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import soxr

from speechcmd.app.ring_buffer import RingBuffer
from speechcmd.model import SAMPLE_RATE

# Rates tried in order when a device does not take 16 kHz itself; the rest is resampled by soxr.
FALLBACK_RATES = (48_000, 44_100)
RING_SECONDS = 4.0
# A running stream that delivers nothing for this long is taken as gone (unplugged, suspended).
STALL_SECONDS = 2.0


class AudioBackendError(RuntimeError):
    """The sound system cannot do what was asked; the message is one sentence for the user."""


_sd = None


def sounddevice():
    """The sounddevice module, imported on first use: importing it fails without PortAudio."""
    global _sd
    if _sd is None:
        try:
            import sounddevice as sd
        except OSError as error:
            raise AudioBackendError(
                f"The sound system is unavailable (PortAudio: {error}); install libportaudio2 "
                "for the microphone. Opening audio files still works."
            ) from None
        _sd = sd
    return _sd


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int
    default_sample_rate: float

    def __str__(self) -> str:
        return f"{self.name} ({self.channels} ch, {self.default_sample_rate / 1000:g} kHz)"


def input_devices(refresh: bool = False) -> list[InputDevice]:
    """Devices that can record. `refresh` re-scans, to find devices plugged in since the start."""
    sd = sounddevice()
    try:
        if refresh:
            # PortAudio only enumerates devices when it is initialized.
            sd._terminate()
            sd._initialize()
        devices = sd.query_devices()
    except Exception as error:  # PortAudioError and friends: the host API itself failed
        raise AudioBackendError(f"Could not list audio devices ({error}).") from None
    return [
        InputDevice(index, info["name"], int(info["max_input_channels"]), float(info["default_samplerate"]))
        for index, info in enumerate(devices)
        if info["max_input_channels"] > 0
    ]


def supported_sample_rate(device: InputDevice, channels: int) -> int:
    """16 kHz when the device offers it, else the first fallback rate it accepts."""
    sd = sounddevice()
    for rate in (SAMPLE_RATE, *FALLBACK_RATES, int(device.default_sample_rate)):
        try:
            sd.check_input_settings(device=device.index, channels=channels, samplerate=rate, dtype="float32")
            return rate
        except Exception:
            continue
    raise AudioBackendError(f"The microphone '{device.name}' accepts none of 16, 44.1 or 48 kHz; choose another device.")


class Microphone:
    """An open input stream whose callback copies frames into `ring`."""

    def __init__(self, device: InputDevice):
        self.device = device
        # Mixing more than two channels down gains nothing for speech.
        self.channels = max(1, min(2, device.channels))
        self.sample_rate = supported_sample_rate(device, self.channels)
        self.ring = RingBuffer(int(RING_SECONDS * self.sample_rate), self.channels)
        self.overflows = 0
        self.stream_error: str | None = None
        self._stopping = False
        sd = sounddevice()
        try:
            self._stream = sd.InputStream(
                device=device.index,
                channels=self.channels,
                samplerate=self.sample_rate,
                dtype="float32",
                callback=self._callback,
                finished_callback=self._finished,
            )
            self._stream.start()
        except Exception as error:
            raise AudioBackendError(f"Could not open the microphone '{device.name}' ({error}); choose another device.") from None

    def _callback(self, indata, frames, time_info, status) -> None:
        # Runs on PortAudio's thread: copy and count, nothing else.
        if status.input_overflow:
            self.overflows += 1
        self.ring.write(indata)

    def _finished(self) -> None:
        if not self._stopping:
            self.stream_error = f"The microphone '{self.device.name}' stopped (unplugged?)"

    def close(self) -> None:
        self._stopping = True
        try:
            self._stream.stop()
            self._stream.close()
        except Exception:
            pass  # the device may already be gone; there is nothing left to release


class MicrophoneSource:
    """Reads a `Microphone` as 16 kHz mono blocks for the recognizer."""

    def __init__(self, device: InputDevice, clock=time.monotonic):
        self.microphone = Microphone(device)
        self.name = device.name
        self._clock = clock
        self._last_audio = clock()
        self._overflows_reported = 0
        self._resampler = (
            soxr.ResampleStream(self.microphone.sample_rate, SAMPLE_RATE, 1, dtype="float32")
            if self.microphone.sample_rate != SAMPLE_RATE
            else None
        )
        self.finished = False

    def read(self) -> np.ndarray:
        """New samples since the last call; raises AudioBackendError when the device is gone."""
        mic = self.microphone
        if mic.stream_error:
            raise AudioBackendError(f"{mic.stream_error}; plug it back in or choose another device, then press Listen.")
        frames = mic.ring.read()
        now = self._clock()
        if len(frames):
            self._last_audio = now
        elif now - self._last_audio > STALL_SECONDS:
            raise AudioBackendError(
                f"The microphone '{self.name}' delivers no audio (unplugged?); "
                "plug it back in or choose another device, then press Listen."
            )
        mono = frames.mean(axis=1, dtype=np.float32) if frames.shape[1] > 1 else frames[:, 0]
        if self._resampler is not None:
            mono = self._resampler.resample_chunk(np.ascontiguousarray(mono))
        return np.ascontiguousarray(mono, dtype=np.float32)

    def warning(self) -> str | None:
        """A message when audio was lost since the last call (the machine could not keep up)."""
        lost = self.microphone.overflows + (self.microphone.ring.lost_frames > 0)
        if lost > self._overflows_reported:
            self._overflows_reported = lost
            return f"Input overflow on '{self.name}': some audio was lost because the computer fell behind."
        return None

    def close(self) -> None:
        self.microphone.close()


# How far the speaker's feeder decodes ahead of what is heard.
PLAYBACK_AHEAD_SECONDS = 2.0
_playback_lock = threading.Lock()  # held for a few instructions only: never while a device opens or closes
_playback: Playback | None = None
_playback_generation = 0  # bumped by every play and stop: a play that started before the latest one is dropped


class Playback:
    """Plays a stream of blocks on the default output: a feeder thread pulls them (decoding a
    recording from disk as it goes) into a ring a little ahead of the speaker, and the stream's
    callback only copies from the ring, so a file of any length plays in bounded memory."""

    def __init__(self, blocks: Iterable[np.ndarray], sample_rate: int):
        self.ring = RingBuffer(int(PLAYBACK_AHEAD_SECONDS * sample_rate))
        self._stop = threading.Event()
        self._fed_all = False
        self._stream = sounddevice().OutputStream(samplerate=sample_rate, channels=1, dtype="float32", callback=self._callback)
        try:
            self._stream.start()  # silence until the feeder's first block arrives
        except Exception:
            self._stream.close()
            raise
        self._feeder = threading.Thread(target=self._feed, args=(blocks,), name="playback-feeder", daemon=True)
        self._feeder.start()

    def _feed(self, blocks: Iterable[np.ndarray]) -> None:
        piece = self.ring.capacity // 4
        try:
            for block in blocks:
                if self._stop.is_set():
                    return
                block = np.asarray(block, dtype=np.float32).reshape(-1, 1)
                for begin in range(0, len(block), piece):
                    frames = block[begin : begin + piece]
                    while self.ring.capacity - self.ring.available < len(frames):
                        if self._stop.wait(0.02):
                            return
                    self.ring.write(frames)
        except Exception:
            pass  # a recording damaged part-way: the speaker falls silent; the recognizer and the scan say why
        finally:
            self._fed_all = True
            close = getattr(blocks, "close", None)
            if close is not None:
                close()

    def _callback(self, outdata, frames, time_info, status) -> None:
        # Runs on PortAudio's thread: copy from the ring, nothing else.
        data = self.ring.read(frames)
        outdata[: len(data)] = data
        outdata[len(data) :] = 0
        if len(data) < frames and self._fed_all and not self.ring.available:
            raise sounddevice().CallbackStop

    def stop(self) -> None:
        self._stop.set()
        try:
            self._stream.abort()
            self._stream.close()
        except Exception:
            pass  # the device may already be gone; there is nothing left to release


def play(audio: np.ndarray | Iterable[np.ndarray], sample_rate: int = SAMPLE_RATE) -> bool:
    """Start playing `audio` (samples, or an iterable of blocks read as it plays) on the default
    output, in place of anything playing; False (silently) when there is no output, or when another
    play or a stop came from another thread while this one was starting."""
    global _playback
    generation = _stop_current()
    try:
        playback = Playback([audio] if isinstance(audio, np.ndarray) else audio, sample_rate)
    except Exception:
        return False
    with _playback_lock:
        if generation == _playback_generation:
            _playback = playback
            return True
    playback.stop()
    return False


def stop_playback() -> None:
    _stop_current()


def _stop_current() -> int:
    """Stop what plays (outside the lock) and start a new generation; returns it."""
    global _playback, _playback_generation
    with _playback_lock:
        _playback_generation += 1
        old, _playback = _playback, None
        generation = _playback_generation
    if old is not None:
        old.stop()
    return generation

"""The audio backend: input devices, the microphone stream, and file playback, via sounddevice.

The stream callback only copies frames into a `RingBuffer`; mixing down to mono and resampling to
16 kHz happen in `MicrophoneSource.read`, on the recognition thread. Every way the sound system
can fail (no PortAudio, no device, a device unplugged mid-stream) becomes `AudioBackendError`
with one sentence, so the window can show it and carry on in file mode.
"""

from __future__ import annotations

import time
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


def play(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bool:
    """Start playing `samples` on the default output; False (silently) when there is none."""
    try:
        sd = sounddevice()
        sd.play(samples, sample_rate)
        return True
    except Exception:
        return False


def stop_playback() -> None:
    try:
        sounddevice().stop()
    except Exception:
        pass  # nothing was playing, or there is no sound system

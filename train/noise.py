"""Levels, SNR and the sounds of a room: the one home of "how loud is a word" and of noise mixing,
shared by training augmentation (batched torch, on the training device) and the robustness suite.

Level conventions (every function here):
- levels are dBFS of mean power (a full-scale sine is -3 dBFS, full-scale white noise 0 dBFS);
- the level of a word is its *active* level: the mean power of its 20 ms frames that lie within
  `ACTIVE_RANGE_DB` of its loudest frame, so the silence around a word in a 1 s clip does not
  count (a crude, fast stand-in for ITU-T P.56 active speech level);
- the level of a noise is its mean power over the whole window;
- SNR = word active level - noise level.

Synthetic noise kinds (numpy, seeded) for the training noise bank: coloured noise (white, pink,
brown, blue, violet), mains hum with harmonics, clicks and knocks, resonant impacts. Babble from
synthetic talkers is made by `scripts/make_room_data.py` with espeak-ng and flite and mixed by
`babble`; `conversation` makes a few continuous talkers who take turns (people talking in the room).
"""

from __future__ import annotations

import math

import numpy as np
import torch

ACTIVE_FRAME = 320  # 20 ms at 16 kHz
ACTIVE_RANGE_DB = 30.0
_TINY = 1e-12


def power_db(waveform: torch.Tensor) -> torch.Tensor:
    """(batch, samples) -> (batch,) mean power in dBFS."""
    return 10 * torch.log10(waveform.pow(2).mean(dim=-1).clamp_min(_TINY))


def active_power_db(waveform: torch.Tensor, frame: int = ACTIVE_FRAME) -> torch.Tensor:
    """(batch, samples) -> (batch,) active level in dBFS: the mean power of the frames within
    `ACTIVE_RANGE_DB` of the loudest one (the word, not the silence around it)."""
    frames, loud = loud_frames(waveform, frame, ACTIVE_RANGE_DB)
    active = (frames * loud).sum(dim=-1) / loud.sum(dim=-1).clamp_min(1)
    return 10 * torch.log10(active.clamp_min(_TINY))


def loud_frames(waveform: torch.Tensor, frame: int, range_db: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, samples) -> the mean power of each whole `frame` of samples, (batch, frames), and
    which of them lie within `range_db` of the row's loudest (a row of zeros: all of them)."""
    batch, samples = waveform.shape
    frames = waveform[:, : samples // frame * frame].reshape(batch, -1, frame).pow(2).mean(dim=-1)
    return frames, frames >= frames.amax(dim=-1, keepdim=True) * 10 ** (-range_db / 10)


def scale_to_db(waveform: torch.Tensor, level_db: torch.Tensor | float) -> torch.Tensor:
    """Scale each row to a mean power of `level_db` dBFS (rows of zeros stay zeros)."""
    gain_db = torch.as_tensor(level_db, dtype=waveform.dtype, device=waveform.device) - power_db(waveform)
    silent = waveform.pow(2).mean(dim=-1) < _TINY
    return waveform * torch.where(silent, 0.0, 10 ** (gain_db / 20))[:, None]


def mix_at_snr(word: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor | float) -> torch.Tensor:
    """word + noise scaled so that (word active level - noise level) = `snr_db` per row.
    word, noise: (batch, samples); snr_db: scalar or (batch,). Not clipped: the caller decides."""
    snr = torch.as_tensor(snr_db, dtype=word.dtype, device=word.device)
    return word + scale_to_db(noise, active_power_db(word) - snr)


def measured_snr_db(word: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """The SNR of a mixture whose word component is known: active level of the word minus the
    level of what was added (mixture - word)."""
    return active_power_db(word) - power_db(mixture - word)


def decay_impulse_response(rt60: torch.Tensor, samples: int, sample_rate: int, generator: torch.Generator) -> torch.Tensor:
    """(batch,) reverberation times in seconds -> (batch, samples) room impulse responses: a direct
    path plus exponentially decaying noise (the statistical model of a diffuse late field),
    scaled to unit energy so reverberation keeps the level."""
    t = torch.arange(samples, device=rt60.device) / sample_rate
    envelope = torch.exp(-6.9078 * t[None] / rt60[:, None])  # -60 dB at t = rt60
    tail = torch.randn((len(rt60), samples), generator=generator, device=rt60.device) * envelope * 0.3
    tail[:, 0] = 1.0  # the direct sound
    return tail / tail.norm(dim=-1, keepdim=True)


def reverberate(waveform: torch.Tensor, impulse: torch.Tensor) -> torch.Tensor:
    """Convolve each row with its impulse response (FFT), keeping the first `samples` samples."""
    samples = waveform.shape[-1]
    size = 1 << (samples + impulse.shape[-1] - 1).bit_length()
    wet = torch.fft.irfft(torch.fft.rfft(waveform, size) * torch.fft.rfft(impulse, size), size)
    return wet[..., :samples]


# ---- synthetic noise kinds (numpy, for the noise bank files) -----------------------------------

COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0, "blue": -1.0, "violet": -2.0}


def coloured_noise(colour: str, samples: int, rng: np.random.Generator, sample_rate: int = 16_000) -> np.ndarray:
    """Gaussian noise whose power falls as 1/f^k (white 0, pink 1, brown 2, blue -1, violet -2),
    at -20 dBFS. Below 20 Hz the spectrum is flat, so brown noise does not drift."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequency = np.maximum(np.fft.rfftfreq(samples, 1 / sample_rate), 20.0)
    shaped = np.fft.irfft(spectrum / frequency ** (COLOURS[colour] / 2), samples)
    return _at_db(shaped, -20.0)


def mains_hum(fundamental: float, samples: int, rng: np.random.Generator, sample_rate: int = 16_000) -> np.ndarray:
    """Mains hum: a fundamental (50 or 60 Hz) with odd and even harmonics falling off at random,
    slowly wandering in amplitude, with a little broadband hiss, at -20 dBFS."""
    t = np.arange(samples) / sample_rate
    hum = np.zeros(samples)
    for k in range(1, 16):
        if fundamental * k >= sample_rate / 2:
            break
        amplitude = rng.uniform(0.2, 1.0) / k ** rng.uniform(0.5, 1.5)
        hum += amplitude * np.sin(2 * np.pi * fundamental * k * t + rng.uniform(0, 2 * np.pi))
    wander = 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t)
    hiss = rng.standard_normal(samples) * np.sqrt(np.mean(hum**2)) * 10 ** (-30 / 20)
    return _at_db(hum * wander + hiss, -20.0)


def clicks(samples: int, rng: np.random.Generator, rate_per_second: float = 4.0, sample_rate: int = 16_000) -> np.ndarray:
    """Clicks and knocks (keyboard, mouse, a table tapped): short decaying bursts of filtered
    noise at random times and levels, over a faint noise floor, at -20 dBFS."""
    out = rng.standard_normal(samples) * 1e-3
    for start in rng.integers(0, samples, rng.poisson(rate_per_second * samples / sample_rate)):
        length = int(rng.uniform(0.002, 0.04) * sample_rate)
        burst = rng.standard_normal(length) * np.exp(-np.arange(length) / (length / rng.uniform(3, 8)))
        if rng.random() < 0.5:  # a knock: low-passed
            burst = np.convolve(burst, np.ones(8) / 8, mode="same")
        end = min(samples, start + length)
        out[start:end] += burst[: end - start] * 10 ** rng.uniform(-1.5, 0)
    return _at_db(out, -20.0)


def impacts(samples: int, rng: np.random.Generator, sample_rate: int = 16_000) -> np.ndarray:
    """Impacts: things set down, dishes, a door. Clusters of 1 to 3 hits (about 1.7 clusters a
    second, levels spread over 25 dB), each hit a noisy 3 ms attack and 2 to 6 resonant modes
    between 800 and 7000 Hz ringing for 20 to 400 ms, over a faint floor; at -20 dBFS unless the
    loudest hit would pass 0.9 of full scale, then peak 0.9 (these sounds are all peaks)."""
    out = rng.standard_normal(samples) * 1e-4
    start = 0
    while (start := start + int(rng.exponential(0.6) * sample_rate)) < samples:
        level = 10 ** (-rng.uniform(0, 25) / 20)
        for _ in range(rng.integers(1, 4)):
            hit_start = start + int(rng.uniform(0, 0.15) * sample_rate)
            decay = rng.uniform(0.02, 0.4)
            length = min(int(decay * 5 * sample_rate), samples - hit_start)
            if length <= 0:
                continue
            t = np.arange(length) / sample_rate
            hit = np.zeros(length)
            for _ in range(rng.integers(2, 7)):  # resonant modes
                frequency = rng.uniform(800, 7000)
                hit += (rng.uniform(0.2, 1) * np.sin(2 * np.pi * frequency * t + rng.uniform(0, 2 * np.pi))
                        * np.exp(-t / (decay * rng.uniform(0.3, 1))))
            attack = min(length, int(0.003 * sample_rate))
            hit[:attack] += rng.standard_normal(attack) * 0.5
            out[hit_start : hit_start + length] += hit * level * rng.uniform(0.3, 1)
    return _at_db(out, -20.0, peak=0.9)


def babble(talkers: list[np.ndarray], samples: int, rng: np.random.Generator) -> np.ndarray:
    """Several talkers (each a long recording) at equal active level, each from a random offset,
    summed: the sound of other people talking, at -20 dBFS."""
    out = np.zeros(samples)
    for talker in talkers:
        talker = np.tile(talker, math.ceil(samples / len(talker)) + 1)
        start = int(rng.integers(0, len(talker) - samples))
        piece = torch.from_numpy(talker[start : start + samples].astype(np.float32))[None]
        out += scale_to_db(piece, -20.0 - (active_power_db(piece) - power_db(piece)))[0].numpy()
    return _at_db(out, -20.0)


def conversation(talkers: list[np.ndarray], samples: int, rng: np.random.Generator, voices: int = 2,
                 turn_seconds: tuple[float, float] = (5.0, 15.0), sample_rate: int = 16_000) -> np.ndarray:
    """People talking in the room: `voices` talkers at once, each speaking continuously, and each
    voice handed to another talker (a recording of continuous speech) every `turn_seconds`. Every
    turn is a stretch of its recording from a random place at the same active level, so the track
    is as loud throughout as the speech in it (at -20 dBFS, as `babble`). Unlike `babble`, which
    mixes many voices into a murmur, these are a few voices a listener can follow, like a
    television or a conversation behind the user."""
    if not talkers:
        raise ValueError("conversation needs at least one recording of continuous speech.")
    out = np.zeros(samples)
    for _ in range(voices):
        position = 0
        while position < samples:
            length = min(samples - position, int(rng.uniform(*turn_seconds) * sample_rate))
            talker = talkers[int(rng.integers(len(talkers)))]
            # A stretch of the recording looped end to start (without copying it: the draw is that of
            # a stretch of the recording tiled often enough to hold it, as the measured tracks were made)
            looped = (math.ceil(length / len(talker)) + 1) * len(talker)
            start = int(rng.integers(0, looped - length + 1))
            piece = torch.from_numpy(np.take(talker, np.arange(start, start + length), mode="wrap").astype(np.float32))[None]
            out[position : position + length] += scale_to_db(piece, -20.0 - (active_power_db(piece) - power_db(piece)))[0].numpy()
            position += length
    return _at_db(out, -20.0)


def _at_db(samples: np.ndarray, level_db: float, peak: float | None = None) -> np.ndarray:
    """`samples` at `level_db` dBFS; with `peak`, quieter where that level would put a sample above it."""
    scaled = samples * 10 ** ((level_db - 10 * np.log10(np.mean(samples**2) + _TINY)) / 20)
    if peak is not None:
        scaled = scaled * min(1.0, peak / np.abs(scaled).max())
    return scaled.astype(np.float32)

"""Shared fixtures: generated audio, small models, and the real clips where they exist."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# The suite writes nothing into the checkout: Hypothesis keeps what it stores (the examples that
# failed, to replay first next time) in the user's cache instead of .hypothesis/ in the working folder.
set_hypothesis_home_dir(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "speechcmd" / "hypothesis")
# CI replays the same fuzz examples every run, so a red build is reproducible and never luck.
settings.register_profile("ci", derandomize=True, print_blob=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("SPEECHCMD_DATA", ROOT.parent / "shared" / "data" / "speech_commands_12"))
LABELS_12 = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


@pytest.fixture(scope="session")
def speech_commands_dir() -> Path:
    """The real Speech Commands subset (set SPEECHCMD_DATA to move it); skipped where absent."""
    if not (REAL_DATA / "yes").is_dir():
        pytest.skip(f"real Speech Commands clips not found at {REAL_DATA} (set SPEECHCMD_DATA)")
    return REAL_DATA


@pytest.fixture(scope="session")
def merged_speech_commands(tmp_path_factory, speech_commands_dir) -> Path:
    """speech_commands_12 and speech_commands_extra linked into one tree, the way the bundled model's
    data was merged (`scripts/make_room_data.py`), without the noise; skipped where the extra is absent."""
    from speechcmd.train.data import link_clips

    extra = speech_commands_dir.parent / "speech_commands_extra"
    if not (extra / "yes").is_dir():
        pytest.skip(f"speech_commands_extra not found at {extra} (beside SPEECHCMD_DATA)")
    merged = tmp_path_factory.mktemp("merged")
    link_clips(speech_commands_dir, merged)
    link_clips(extra, merged)
    return merged


def tone(frequency: float = 440.0, seconds: float = 1.0, sample_rate: int = 16_000, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int = 16_000, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype)
    return path


def deny_listing(monkeypatch, folder: Path) -> None:
    """Make listing `folder` fail with "permission denied", as chmod 000 does for anyone but root
    (the tests run as root here, where chmod would stop nothing)."""
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)


@pytest.fixture()
def tiny_model():
    """An untrained, small 12-label LSTM: for shape, equivalence and plumbing tests, never accuracy."""
    import torch

    from speechcmd.model.network import ModelConfig, SpeechCommandsModel

    torch.manual_seed(0)
    return SpeechCommandsModel(ModelConfig(hidden_size=16, num_layers=2), LABELS_12).eval()


@pytest.fixture()
def tiny_checkpoint(tmp_path, tiny_model) -> Path:
    from speechcmd.model.checkpoint import save_checkpoint

    return save_checkpoint(tmp_path / "tiny.pt", tiny_model, {"trained_on": "nothing (test fixture)"})

"""The bundled model in a room: no input, muted input and room tone are `_silence_`, never a command,
through the path `speechcmd classify` takes; and it carries the detection operating point chosen
for it on validation speakers, which the detector then uses."""

import json

import numpy as np
import pytest

from speechcmd.app.cli import main
from speechcmd.model.checkpoint import load_model
from speechcmd.model.detection import DetectionPolicy
from speechcmd.train.noise import coloured_noise
from tests.conftest import write_wav


@pytest.fixture(scope="module")
def bundled():
    return load_model(None)


def classify(capsys, *paths):
    code = main(["classify", "--json", *map(str, paths)])
    assert code == 0
    return [json.loads(line)["label"] for line in capsys.readouterr().out.splitlines()]


def test_digital_silence_and_an_8_ms_file_are_silence(tmp_path, capsys):
    muted = write_wav(tmp_path / "muted.wav", np.zeros(16_000, np.float32))
    tiny = write_wav(tmp_path / "tiny.wav", np.zeros(128, np.float32))
    assert classify(capsys, muted, tiny) == ["_silence_", "_silence_"]


@pytest.mark.parametrize("colour, level_db", [("pink", -70.0), ("white", -80.0), ("brown", -60.0), ("pink", -50.0)])
def test_room_tone_is_silence(tmp_path, capsys, colour, level_db):
    rng = np.random.default_rng(0)
    tones = [write_wav(tmp_path / f"tone{k}.wav", coloured_noise(colour, 16_000, rng) * 10 ** ((level_db + 20) / 20)) for k in range(5)]
    assert classify(capsys, *tones) == ["_silence_"] * 5


def test_the_bundled_model_carries_its_chosen_operating_point(bundled):
    stored = bundled.metadata["detection_policy"]
    assert DetectionPolicy.for_model(bundled) == DetectionPolicy(**stored)
    assert "quiet" in bundled.metadata["detection_policy_validation"]

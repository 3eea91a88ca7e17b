"""The bundled model in a room: no input, muted input and room tone are `_silence_`, never a command,
through the path `speechcmd classify` takes; and an operating point saved with a model comes back with it."""

import json

import numpy as np
import pytest
import torch

from speechcmd.app.cli import main
from speechcmd.model.checkpoint import load_model, save_checkpoint
from speechcmd.model.detection import DetectionPolicy
from speechcmd.train.noise import coloured_noise
from conftest import write_wav


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


def test_an_operating_point_saved_with_a_model_comes_back_with_it(tmp_path, tiny_model):
    policy = DetectionPolicy(average_seconds=0.3, threshold=0.8, suppression_seconds=1.5)
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, {"detection_policy": policy.to_dict()})
    assert DetectionPolicy.for_model(load_model(path)) == policy
    assert DetectionPolicy.for_model(tiny_model) == DetectionPolicy()  # none saved: the defaults


def test_the_silence_gate_holds_for_a_model_that_says_a_word_to_everything(tmp_path, tiny_model):
    with torch.no_grad():
        tiny_model.head.bias[tiny_model.labels.index("yes")] = 10.0
    quiet = torch.from_numpy(coloured_noise("white", 16_000, np.random.default_rng(0)) * 10 ** (-75 / 20))[None].float()
    speech_level = quiet * 10 ** (40 / 20)  # the same sound, 40 dB louder: above the gate
    with torch.no_grad():
        assert tiny_model.labels[int(tiny_model(quiet).argmax())] == "_silence_"
        assert tiny_model.labels[int(tiny_model.trace(quiet).logits.argmax())] == "_silence_"
        assert tiny_model.labels[int(tiny_model(speech_level).argmax())] == "yes"

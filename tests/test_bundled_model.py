"""The bundled model: it loads, knows the 12 labels, and still scores its held-out speakers at the
accuracy its model card states, so a regression in the audio or feature code is caught."""

import pytest

from speechcmd.app.cli import main

from speechcmd.model.checkpoint import bundled_model_path, load_model
from conftest import LABELS_12
from speechcmd.train.evaluate import evaluate_clips
from speechcmd.train.data import build_dataset


@pytest.fixture(scope="module")
def bundled():
    return load_model(None)


def test_bundled_model_loads_with_the_12_labels_and_its_provenance(bundled):
    assert sorted(bundled.labels) == sorted(LABELS_12)
    assert bundled.config.cell == "lstm"
    assert bundled_model_path().stat().st_size < 5_000_000
    for key in ("trained_on", "split_parameters", "test_accuracy", "command", "speechcmd_version"):
        assert key in bundled.metadata, key


@pytest.mark.real_data
def test_bundled_model_scores_its_held_out_speakers_as_stated(bundled, merged_speech_commands):
    dataset = build_dataset(merged_speech_commands, **bundled.metadata["split_parameters"])
    truth = {clip.path: label for clip, label in dataset.splits["test"]}
    result, failures = evaluate_clips(bundled, truth)
    assert not failures
    assert result["n"] == len(truth) > 500
    assert result["accuracy"] == pytest.approx(bundled.metadata["test_accuracy"], abs=0.01)


@pytest.mark.real_data
def test_evaluate_reproduces_the_held_out_figure_and_warns_on_the_models_own_speakers(capsys, merged_speech_commands, speech_commands_dir):
    assert main(["evaluate", "--data", str(merged_speech_commands), "--split", "test"]) == 0
    out, err = capsys.readouterr()
    assert f"accuracy {bundled_accuracy():.2%}" in out and "warning" not in err

    # The shared folder is mostly the bundled model's own training speakers: a figure it must not pass off.
    assert main(["evaluate", "--data", str(speech_commands_dir)]) == 0
    out, err = capsys.readouterr()
    assert "speakers the model was trained on" in err and "--split test" in err


def bundled_accuracy() -> float:
    return load_model(None).metadata["test_accuracy"]

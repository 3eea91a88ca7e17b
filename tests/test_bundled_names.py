"""Choosing a bundled model by name: `--model NAME` everywhere a model is taken, and what the
bundled MFCC model is (the MFCC path's front-end and gates)."""

import json

import numpy as np
import pytest
import torch

from speechcmd.app.cli import main
from speechcmd.model import bundled
from speechcmd.model.bundled import bundled_names, bundled_path, model_path, summary
from speechcmd.model.checkpoint import CheckpointError, load_model, save_checkpoint
from speechcmd.model.network import ModelConfig, SpeechCommandsModel
from conftest import LABELS_12, tone, write_wav


@pytest.fixture()
def two_bundled(tmp_path, monkeypatch):
    """Two small models installed as the bundled ones, with summaries in their metadata."""
    folder = tmp_path / "models"
    folder.mkdir()
    for seed, (name, hidden) in enumerate((("speechcmd-lstm", 8), ("speechcmd-mfcc-lstm", 6))):
        torch.manual_seed(seed)
        model = SpeechCommandsModel(ModelConfig(hidden_size=hidden, num_layers=1), LABELS_12).eval()
        save_checkpoint(folder / f"{name}.pt", model, {"summary": f"a model of {hidden} units"})
    monkeypatch.setattr(bundled, "bundled_path", lambda name: folder / f"{name}.pt")
    return folder


def classify(capsys, *argv):
    code = main(["classify", "--json", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_model_takes_a_bundled_name_with_or_without_pt_as_it_takes_the_file(two_bundled, tmp_path, capsys):
    clip = write_wav(tmp_path / "tone.wav", tone(700))
    _, by_file, _ = classify(capsys, "--model", two_bundled / "speechcmd-mfcc-lstm.pt", clip)
    for name in ("speechcmd-mfcc-lstm", "speechcmd-mfcc-lstm.pt"):
        code, by_name, err = classify(capsys, "--model", name, clip)
        assert code == 0 and not err
        assert by_name == by_file
    assert model_path("speechcmd-lstm") == two_bundled / "speechcmd-lstm.pt"
    assert model_path(None) is None  # the default model


def test_an_unknown_model_name_is_one_sentence_listing_the_bundled_names_and_exit_2(two_bundled, tmp_path, capsys):
    clip = write_wav(tmp_path / "tone.wav", tone(700))
    code, out, err = classify(capsys, "--model", "speechcmd-gru", clip)
    assert code == 2 and out == []
    (line,) = err.strip().splitlines()
    assert "speechcmd-gru" in line and "speechcmd-lstm, speechcmd-mfcc-lstm" in line and "Traceback" not in err
    with pytest.raises(CheckpointError):
        model_path("nonesuch.pt")


def test_a_file_beside_the_user_wins_over_a_bundled_name(two_bundled, tmp_path, monkeypatch):
    own = save_checkpoint(tmp_path / "speechcmd-lstm.pt", SpeechCommandsModel(ModelConfig(hidden_size=4, num_layers=1), LABELS_12))
    monkeypatch.chdir(tmp_path)
    assert model_path("speechcmd-lstm.pt").resolve() == own.resolve()
    assert model_path("speechcmd-lstm") == two_bundled / "speechcmd-lstm.pt"


def test_adapt_starts_from_a_bundled_model_named(two_bundled, tmp_path, capsys):
    takes = tmp_path / "takes" / "hello"
    takes.mkdir(parents=True)
    for k in range(8):  # a word-like burst in a second of near silence
        take = np.random.default_rng(k).normal(0, 1e-3, 16_000).astype(np.float32)
        take[5_000:11_000] += tone(500 + 40 * k, 6_000 / 16_000) * np.hanning(6_000).astype(np.float32)
        write_wav(takes / f"take{k}.wav", take)
    code = main(["adapt", "--data", str(tmp_path / "takes"), "--base", "speechcmd-mfcc-lstm", "--out", str(tmp_path / "taught.pt"),
                 "--steps", "5", "--folds", "2", "--copies", "2", "--no-replay"])
    err = capsys.readouterr().err
    assert code == 0, err
    taught = load_model(tmp_path / "taught.pt")
    assert code == 0 and "hello" in taught.labels and taught.config.hidden_size == 6


def test_each_bundled_model_has_a_one_line_summary_from_its_metadata(two_bundled):
    assert summary("speechcmd-mfcc-lstm") == "a model of 6 units"
    assert bundled_names() == ["speechcmd-lstm", "speechcmd-mfcc-lstm"]


# ---- the shipped files ------------------------------------------------------------------------------


def needs(name):
    if name not in bundled_names():
        pytest.skip(f"{bundled_path(name)} is not bundled in this checkout")
    return load_model(bundled_path(name))


def test_the_bundled_mfcc_model_reads_mfccs_and_its_gates_are_the_step_loops():
    model = needs("speechcmd-mfcc-lstm")
    features = model.config.features
    assert features.kind == "mfcc" and features.hop_ms <= 20 and model.config.cell == "lstm"
    waveform = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (2, 16_000)).astype(np.float32))
    with torch.inference_mode():
        fast, stepped = model.trace(waveform), model.trace(waveform, steps=True)
        reference = model.frontend.mfcc(waveform).transpose(-1, -2)  # torchaudio's transform
        torch.testing.assert_close(model.frontend.raw(waveform) if not features.window_mean_normalization
                                   else model.frontend.coefficients(waveform), reference, atol=1e-4, rtol=1e-5)
    assert fast.mfcc.shape == (2, features.num_frames(16_000), features.n_mfcc)
    torch.testing.assert_close(fast.logits, stepped.logits, atol=1e-5, rtol=1e-5)
    for fast_layer, step_layer in zip(fast.layers, stepped.layers):
        for name in model.gate_names:
            torch.testing.assert_close(fast_layer[name], step_layer[name], atol=1e-5, rtol=1e-5, msg=name)


def test_every_bundled_model_is_small_and_says_what_it_is_costs_and_scores():
    for name in bundled_names():
        assert bundled_path(name).stat().st_size < 5_000_000
        line = summary(name)
        assert "\n" not in line and len(line) < 200 and "%" in line

"""Checkpoints: a round trip keeps everything; bad or hostile files are refused with a sentence."""

import os
import pickle

import pytest
import torch

from speechcmd.model.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from speechcmd.model.network import ModelConfig, SpeechCommandsModel


def test_round_trip_keeps_weights_config_labels_normalization_and_metadata(tmp_path, tiny_model):
    tiny_model.frontend.set_statistics(torch.arange(40.0), torch.full((40,), 3.0))
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, {"trained_on": "unit test", "test_accuracy": 0.5})
    loaded = load_model(path)
    assert loaded.labels == tiny_model.labels and loaded.config == tiny_model.config
    assert loaded.metadata["trained_on"] == "unit test" and loaded.metadata["test_accuracy"] == 0.5
    assert "speechcmd_version" in loaded.metadata
    torch.testing.assert_close(loaded.frontend.mean, torch.arange(40.0))
    waveform = torch.randn(2, 16_000) * 0.1
    with torch.no_grad():
        torch.testing.assert_close(loaded(waveform), tiny_model(waveform))


@pytest.mark.parametrize("cell", ["peephole", "gru"])
def test_every_cell_round_trips(tmp_path, cell):
    torch.manual_seed(0)
    model = SpeechCommandsModel(ModelConfig(cell=cell, hidden_size=8, num_layers=2), ["a", "b"]).eval()
    loaded = load_model(save_checkpoint(tmp_path / "m.pt", model))
    waveform = torch.randn(2, 16_000) * 0.1
    assert loaded.config.cell == cell
    with torch.no_grad():
        torch.testing.assert_close(loaded(waveform), model(waveform))


def _format_1_checkpoint(cell: str, rnn: torch.nn.Module, peephole: torch.Tensor | None = None) -> dict:
    """A checkpoint as speechcmd saved it before one module per layer: the recurrent weights were
    those of one multi-layer torch RNN under `recurrent.rnn.`, peepholes one (layers, 3, H) tensor."""
    torch.manual_seed(1)
    config = ModelConfig(cell=cell, hidden_size=rnn.hidden_size, num_layers=rnn.num_layers)
    others = SpeechCommandsModel(config, ["a", "b", "c"]).state_dict()
    state = {k: v for k, v in others.items() if not k.startswith("recurrent.")}
    state.update({f"recurrent.rnn.{k}": v.detach().clone() for k, v in rnn.state_dict().items()})
    if peephole is not None:
        state["recurrent.peephole"] = peephole
    return {"format": "speechcmd-checkpoint", "format_version": 1, "config": config.to_dict(),
            "labels": ["a", "b", "c"], "state_dict": state, "metadata": {}}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_format_1_checkpoint_loads_and_computes_what_its_multi_layer_rnn_computed(tmp_path, cell):
    torch.manual_seed(0)
    rnn = (torch.nn.LSTM if cell == "lstm" else torch.nn.GRU)(40, 12, 2, batch_first=True).eval()
    path = tmp_path / "old.pt"
    torch.save(_format_1_checkpoint(cell, rnn), path)
    model = load_model(path)
    mfcc = torch.randn(3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(model.recurrent(mfcc), rnn(mfcc)[0], atol=1e-5, rtol=1e-5)


def test_a_format_1_peephole_checkpoint_keeps_each_layers_peepholes(tmp_path):
    rnn = torch.nn.LSTM(40, 12, 3, batch_first=True)
    peephole = torch.randn(3, 3, 12)
    path = tmp_path / "old.pt"
    torch.save(_format_1_checkpoint("peephole", rnn, peephole), path)
    model = load_model(path)
    for index, layer in enumerate(model.recurrent.layers):
        torch.testing.assert_close(layer.peephole.detach(), peephole[index])
        torch.testing.assert_close(layer.rnn.weight_hh_l0.detach(), getattr(rnn, f"weight_hh_l{index}").detach())


def test_file_is_loadable_with_weights_only(tmp_path, tiny_model):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model)
    data = torch.load(path, weights_only=True)
    assert data["format"] == "speechcmd-checkpoint" and data["labels"] == tiny_model.labels


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": "speechcmd-checkpoint", "payload": RunsCode()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not (tmp_path / "PWNED").exists()


def _corrupt(tmp_path, tiny_model, kind):
    path = tmp_path / f"{kind}.pt"
    if kind == "truncated":
        good = save_checkpoint(tmp_path / "good.pt", tiny_model)
        path.write_bytes(good.read_bytes()[:2000])
    elif kind == "random bytes":
        path.write_bytes(os.urandom(5000))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "foreign":
        torch.save({"weight": torch.zeros(3)}, path)
    elif kind == "raw pickle":
        path.write_bytes(pickle.dumps({"a": 1}))
    elif kind == "wrong shapes":
        data = torch.load(save_checkpoint(tmp_path / "good.pt", tiny_model), weights_only=True)
        data["labels"] = data["labels"][:5]  # head has 12 outputs
        torch.save(data, path)
    elif kind == "newer format":
        data = torch.load(save_checkpoint(tmp_path / "good.pt", tiny_model), weights_only=True)
        data["format_version"] = 99
        torch.save(data, path)
    elif kind == "missing":
        pass
    return path


@pytest.mark.parametrize(
    "kind", ["truncated", "random bytes", "empty", "foreign", "raw pickle", "wrong shapes", "newer format", "missing"]
)
def test_bad_model_files_give_one_sentence_naming_the_file(tmp_path, tiny_model, kind):
    path = _corrupt(tmp_path, tiny_model, kind)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, tiny_model, monkeypatch):
    path = save_checkpoint(tmp_path / "m.pt", tiny_model, {"version": "old"})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        save_checkpoint(path, tiny_model, {"version": "new"})
    monkeypatch.undo()
    assert read_checkpoint(path)["metadata"]["version"] == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_a_flipped_byte_in_the_labels_is_caught_by_the_checksum(tmp_path, tiny_model):
    good = save_checkpoint(tmp_path / "m.pt", tiny_model).read_bytes()
    at = good.index(b"stop")  # the labels live uncompressed in the pickle record
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(good[:at] + b"X" + good[at + 1 :])
    with pytest.raises(CheckpointError, match="damaged"):
        load_model(damaged)


def test_a_damaged_hidden_size_is_refused_before_anything_is_allocated(tmp_path, tiny_model):
    data = torch.load(save_checkpoint(tmp_path / "good.pt", tiny_model), weights_only=True)
    data["config"]["hidden_size"] = 30_000  # would be ~14 GB of LSTM weights
    torch.save(data, tmp_path / "big.pt")
    with pytest.raises(CheckpointError, match="hidden_size must be a whole number from 1 to 1024"):
        load_model(tmp_path / "big.pt")

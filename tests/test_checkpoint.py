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


def _module_pickled(tmp_path, tiny_model):
    path = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), path)  # how other programs often save: the object, not its weights
    return path


def _text(tmp_path, tiny_model):
    path = tmp_path / "notes.pt"
    path.write_text("these are not the weights you are looking for\n")
    return path


def _zip_archive(tmp_path, tiny_model):
    import zipfile

    path = tmp_path / "photos.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("photo.jpg", b"\xff\xd8")
    return path


BAD_FILE_SENTENCES = {
    "truncated": "the model file is cut short or damaged; train, save or copy it again.",
    "random bytes": "not a model file (a file of another kind, not a checkpoint); use a .pt file that `speechcmd train` or `speechcmd adapt` saved.",
    "empty": "not a model file (an empty file, not a checkpoint)",
    "text": "not a model file (a text file, not a checkpoint)",
    "zip archive": "not a model file (a zip archive, not a checkpoint)",
    "foreign": "a PyTorch file of another program, not a speechcmd model; use a .pt file",
    "raw pickle": "refused to load: a Python pickle, not a checkpoint",
    "pickled module": "refused to load, for safety: it holds Python objects that only running code could rebuild",
}
MAKERS = {"text": _text, "zip archive": _zip_archive, "pickled module": _module_pickled}


@pytest.mark.parametrize("kind", BAD_FILE_SENTENCES)
def test_each_kind_of_bad_model_file_has_its_own_sentence_in_our_words(tmp_path, tiny_model, kind):
    path = MAKERS[kind](tmp_path, tiny_model) if kind in MAKERS else _corrupt(tmp_path, tiny_model, kind)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ") and BAD_FILE_SENTENCES[kind] in message and message.endswith(".")
    assert "\n" not in message
    for pytorch_words in ("Weights only", "weights_only", "WeightsUnpickler", "torch.", "PytorchStreamReader", "objects other than"):
        assert pytorch_words not in message


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.6, 0.95, 0.999])
def test_a_model_file_cut_anywhere_is_called_cut_short_or_damaged(tmp_path, tiny_model, keep):
    good = save_checkpoint(tmp_path / "good.pt", tiny_model).read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(good[: int(len(good) * keep)])
    with pytest.raises(CheckpointError, match="the model file is cut short or damaged"):
        load_model(path)


def test_weights_that_do_not_fit_the_settings_are_named_without_pytorchs_key_list(tmp_path, tiny_model):
    data = torch.load(save_checkpoint(tmp_path / "good.pt", tiny_model), weights_only=True)
    data["state_dict"]["head.extra"] = torch.zeros(2)
    torch.save(data, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError) as error:
        load_model(tmp_path / "extra.pt")
    assert str(error.value) == f"{tmp_path / 'extra.pt'}: the model file does not match this version of speechcmd (its weights do not fit its settings)."

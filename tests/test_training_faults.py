"""Training under faults: Ctrl-C mid-epoch or mid-save, a full disk, and a diverging run.

What must hold: `last.pt` always holds the last whole epoch and stays loadable; an interrupted run
leaves `interrupted.pt` and resumes to exactly the weights of an uninterrupted run; a failed save
leaves the previous file intact; a run that diverges stops with one `TrainingError` sentence and
saves no garbage. (Resuming at an epoch boundary is in tests/test_training.py.)
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

import speechcmd.train.loop as training_loop
from speechcmd.app.cli import main
from speechcmd.model.checkpoint import load_model, read_checkpoint
from speechcmd.model.network import ModelConfig, SpeechCommandsModel
from test_data import make_folder
from speechcmd.train.config import AugmentConfig
from speechcmd.train.data import build_dataset
from speechcmd.train.loop import Trainer, TrainConfig, TrainingError

LABELS = "yes,no,up,_unknown_"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = make_folder(tmp_path_factory.mktemp("tones"), speakers=20, clips_per_speaker=1)
    return build_dataset(root, LABELS, 0.2, 0.2)


@pytest.fixture(autouse=True)
def one_thread():
    # A second torch thread can stall for seconds at each barrier on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_trainer(dataset, run_dir: Path, epochs: int = 3, **config) -> Trainer:
    torch.manual_seed(0)
    model = SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), dataset.labels)
    settings = {"epochs": epochs, "batch_size": 8, "warmup_epochs": 0, "seed": 3, **config}
    return Trainer(model, dataset, TrainConfig(**settings), run_dir, run_dir.parent / "cache", progress=False)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["state_dict"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def leftovers(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp"))


# ---- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_mid_epoch_keeps_last_epoch_writes_interrupted_and_resumes_to_the_same_weights(tmp_path, dataset, monkeypatch):
    straight = make_trainer(dataset, tmp_path / "straight")
    straight.fit()
    steps = straight.steps_per_epoch
    assert steps >= 3, "the test needs several steps per epoch"

    run = tmp_path / "interrupted"
    trainer = make_trainer(dataset, run)
    augment = training_loop.add_background
    calls, after_first_epoch = [], {}

    def ctrl_c_in_the_middle_of_the_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == steps + 1:  # first step of epoch 2: last.pt now holds epoch 1
            after_first_epoch.update(weights(run / "last.pt"))
        if len(calls) == steps + 3:  # two optimizer steps into epoch 2
            raise KeyboardInterrupt
        return augment(*args, **kwargs)

    monkeypatch.setattr(training_loop, "add_background", ctrl_c_in_the_middle_of_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    monkeypatch.undo()

    last = read_checkpoint(run / "last.pt")
    assert last["training"]["epoch"] == 1
    assert_same_weights(last["state_dict"], after_first_epoch)  # untouched by the half epoch
    interrupted = read_checkpoint(run / "interrupted.pt")
    assert interrupted["metadata"]["interrupted"] is True
    assert not torch.equal(interrupted["state_dict"]["head.weight"], last["state_dict"]["head.weight"])
    assert load_model(run / "interrupted.pt").labels == dataset.labels
    assert leftovers(run) == []

    resumed = make_trainer(dataset, run)
    resumed.resume(run / "last.pt")
    resumed.fit()
    assert_same_weights(weights(run / "last.pt"), weights(tmp_path / "straight" / "last.pt"))
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in straight.history], abs=1e-6)


def test_ctrl_c_while_last_pt_is_being_written_keeps_the_previous_one(tmp_path, dataset, monkeypatch):
    run = tmp_path / "run"
    trainer = make_trainer(dataset, run)
    real_save = torch.save

    def ctrl_c_halfway_through_the_second_last_pt(obj, file, *args, **kwargs):
        if "training" in obj and obj["training"]["epoch"] == 2:
            file.write(b"PK\x03\x04" + bytes(1000))  # a partly written zip
            raise KeyboardInterrupt
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", ctrl_c_halfway_through_the_second_last_pt)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    monkeypatch.undo()
    assert read_checkpoint(run / "last.pt")["training"]["epoch"] == 1
    assert load_model(run / "last.pt").labels == dataset.labels
    assert (run / "interrupted.pt").is_file()
    assert leftovers(run) == []


# ---- a full disk --------------------------------------------------------------------------------


def disk_fills_up_at_epoch(epoch: int):
    """A torch.save that writes part of the file and then fails with ENOSPC, from `epoch` on."""
    real_save = torch.save

    def save(obj, file, *args, **kwargs):
        if obj["metadata"].get("epochs_trained", 0) >= epoch:
            file.write(b"PK\x03\x04" + bytes(4096))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, file, *args, **kwargs)

    return save


def test_a_full_disk_while_saving_keeps_the_previous_checkpoints_intact(tmp_path, dataset, monkeypatch):
    run = tmp_path / "run"
    trainer = make_trainer(dataset, run)
    monkeypatch.setattr(torch, "save", disk_fills_up_at_epoch(2))
    with pytest.raises(TrainingError, match="No space left on device"):
        trainer.fit()
    monkeypatch.undo()
    assert read_checkpoint(run / "last.pt")["training"]["epoch"] == 1
    assert load_model(run / "last.pt").labels == dataset.labels
    assert load_model(run / "best.pt").metadata["epochs_trained"] == 1
    assert leftovers(run) == []
    resumed = make_trainer(dataset, run)  # the disk has room again: the run goes on from epoch 1
    resumed.resume(run / "last.pt")
    resumed.fit()
    assert read_checkpoint(run / "last.pt")["training"]["epoch"] == 3


def test_a_full_disk_is_one_sentence_from_speechcmd_train(tmp_path, dataset, monkeypatch, capsys):
    monkeypatch.setattr(torch, "save", disk_fills_up_at_epoch(1))
    code = main(["train", "--data", str(dataset.root), "--labels", LABELS, "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--epochs", "2", "--hidden", "8", "--layers", "1",
                 "--batch-size", "8", "--quiet", "--validation-fraction", "0.2", "--test-fraction", "0.2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "space" in err[-1].lower() and "Traceback" not in "\n".join(err)


# ---- divergence ---------------------------------------------------------------------------------


def test_a_nan_loss_stops_with_one_sentence_and_last_pt_keeps_the_last_good_epoch(tmp_path, dataset, monkeypatch):
    run = tmp_path / "run"
    trainer = make_trainer(dataset, run)
    steps = trainer.steps_per_epoch
    augment = training_loop.add_background
    calls = []

    def poisoned_batch_in_epoch_2(*args, **kwargs):
        calls.append(1)
        waveform = augment(*args, **kwargs)
        return waveform * float("nan") if len(calls) == steps + 2 else waveform

    monkeypatch.setattr(training_loop, "add_background", poisoned_batch_in_epoch_2)
    with pytest.raises(TrainingError, match="loss became nan at epoch 2, step 2") as error:
        trainer.fit()
    assert "\n" not in str(error.value)
    assert read_checkpoint(run / "last.pt")["training"]["epoch"] == 1
    assert load_model(run / "last.pt").labels == dataset.labels  # loading refuses non-finite weights


def test_a_huge_learning_rate_is_reported_by_speechcmd_train_as_one_sentence(tmp_path, dataset, capsys):
    code = main(["train", "--data", str(dataset.root), "--labels", LABELS, "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--epochs", "3", "--hidden", "8", "--layers", "1",
                 "--batch-size", "4", "--quiet", "--lr", "1e30", "--warmup-epochs", "0",
                 "--validation-fraction", "0.2", "--test-fraction", "0.2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "loss became nan" in err[-1] and "lower --lr" in err[-1]


def test_weights_that_blow_up_in_the_last_step_of_an_epoch_are_not_saved(tmp_path, dataset):
    run = tmp_path / "run"
    trainer = make_trainer(dataset, run, batch_size=64, learning_rate=1e30)  # one step per epoch
    assert trainer.steps_per_epoch == 1
    with pytest.raises(TrainingError, match="epoch 2"):
        trainer.fit()
    # Epoch 1 ends with huge but finite weights, which are saved; epoch 2's infinite ones are not.
    assert read_checkpoint(run / "last.pt")["training"]["epoch"] == 1
    for name in ("last.pt", "best.pt"):
        assert all(t.isfinite().all() for t in weights(run / name).values()), name


def test_word_fragments_without_an_unknown_label_are_one_sentence_from_speechcmd_train(tmp_path, dataset, capsys):
    code = main(["train", "--data", str(dataset.root), "--labels", "yes,no,up", "--out", str(tmp_path / "run"),
                 "--cache-dir", str(tmp_path / "cache"), "--epochs", "1", "--hidden", "8", "--layers", "1",
                 "--quiet", "--fragments", "0.2", "--validation-fraction", "0.2", "--test-fraction", "0.2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "_unknown_" in err[-1] and "without fragments" in err[-1]
    assert not (tmp_path / "run" / "last.pt").exists()


def test_training_with_word_fragments_runs_and_records_the_setting(tmp_path, dataset):
    make_trainer(dataset, tmp_path / "run", epochs=1, augment=AugmentConfig(fragment_probability=0.5, fragment_noise=False)).fit()
    augment = read_checkpoint(tmp_path / "run" / "last.pt")["metadata"]["train_config"]["augment"]
    assert augment["fragment_probability"] == 0.5 and augment["fragment_noise"] is False

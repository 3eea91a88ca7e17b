"""`speechcmd train --resume`: a resumed run is the run it continues (issue 11, items 1-3).

It takes its data, model, features and training settings from its last.pt; options that
contradict them are refused in one sentence; a damaged training state is refused like damaged
weights; a run resumed into another folder still ends with a best.pt; run folders are locked and
a finished run is not replaced without --overwrite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechcmd.app.cli import main
from speechcmd.model.checkpoint import load_model, read_checkpoint
from test_data import make_folder

LABELS = "yes,no,up,_unknown_"
TINY = ["--hidden", "8", "--layers", "1", "--batch-size", "8", "--quiet", "--warmup-epochs", "0",
        "--validation-fraction", "0.2", "--test-fraction", "0.2"]
# Not the defaults: a resume that rebuilt the model from the command line would get them wrong.
RUN_SETTINGS = ["--hop-ms", "20", "--cmn", "--pooling", "mean", "--dropout", "0.2", "--seed", "5", "--ema-decay", "0.9"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished one-epoch run with non-default settings, and its data and cache."""
    base = tmp_path_factory.mktemp("resume")
    data = make_folder(base / "data", speakers=10, clips_per_speaker=1)
    out = base / "run"
    code = main(["train", "--data", str(data), "--labels", LABELS, "--out", str(out), "--cache-dir", str(base / "cache"),
                 "--epochs", "1", *TINY, *RUN_SETTINGS])
    assert code == 0
    return out


@pytest.fixture()
def run_copy(run, tmp_path):
    """A private copy of the run folder, to resume or damage."""
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("last.pt", "best.pt"):
        (copy / name).write_bytes((run / name).read_bytes())
    return copy


def resume(capsys, last: Path, *options, alone: bool = False) -> tuple[int, str, str]:
    """`train --resume last`, with the run's own options repeated (allowed: they agree with it)
    unless `alone`; `options` come after them, so they win."""
    data = read_checkpoint(last)["metadata"]["trained_on"]
    same = [] if alone else ["--data", data, "--labels", LABELS, *TINY, *RUN_SETTINGS]
    code = main(["train", "--resume", str(last), "--cache-dir", str(Path(data).parent / "cache"), *same, *map(str, options)])
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines, err
    return lines[-1]


def test_resume_alone_takes_the_data_and_every_setting_from_the_run(run, run_copy, capsys):
    (run_copy / ".last.pt.abc123.tmp").write_bytes(b"")  # left by a save that was killed
    code, out, err = resume(capsys, run_copy / "last.pt", "--epochs", 2, "--quiet", alone=True)
    assert code == 0, err
    best, last = load_model(run_copy / "best.pt"), read_checkpoint(run_copy / "last.pt")
    assert best.config == load_model(run / "best.pt").config  # hop 20 ms, CMN, mean pooling, dropout 0.2
    assert best.config.features.hop_ms == 20 and best.config.pooling == "mean"
    assert last["training"]["epoch"] == 2 and last["metadata"]["train_config"]["seed"] == 5
    assert last["metadata"]["train_config"]["ema_decay"] == 0.9 and len(last["training"]["average"]) == len(list(best.parameters()))
    assert len((run_copy / "metrics.jsonl").read_text().splitlines()) == 2
    assert not list(run_copy.glob("*.tmp"))


@pytest.mark.parametrize("options, named", [
    (["--hop-ms", "10"], "--hop-ms 10.0 (the run has 20.0)"),
    (["--hidden", "16", "--pooling", "last"], "--hidden 16 (the run has 8); --pooling last (the run has mean)"),
    (["--optimizer", "rmsprop"], "--optimizer rmsprop (the run has adamw)"),
    (["--labels", "yes,no,_unknown_"], "--labels yes,no,_unknown_ (the run has yes,no,up,_unknown_)"),
    (["--seed", "0"], "--seed 0 (the run has 5)"),  # the default, typed: still a contradiction
    (["--ema-decay", "0"], "--ema-decay 0.0 (the run has 0.9)"),
])
def test_resume_with_changed_options_is_refused_naming_them_and_changes_nothing(run_copy, capsys, options, named):
    before = {name: (run_copy / name).read_bytes() for name in ("last.pt", "best.pt")}
    code, _, err = resume(capsys, run_copy / "last.pt", *options)
    assert code == 2
    assert named in one_sentence(err)
    assert {name: (run_copy / name).read_bytes() for name in before} == before


def damage(path: Path, change) -> None:
    data = torch.load(path, weights_only=True)
    change(data)
    torch.save(data, path)


def _wrong_optimizer_shape(data):
    state = data["training"]["optimizer"]["state"]
    state[0]["exp_avg"] = torch.zeros(3, 3)


DAMAGE = {
    "epoch as a string": (lambda d: d["training"].update(epoch="1"), "epoch is '1'"),
    "no epoch": (lambda d: d["training"].pop("epoch"), "epoch is None"),
    "negative epoch": (lambda d: d["training"].update(epoch=-100), "epoch is -100"),
    "optimizer state of the wrong shape": (_wrong_optimizer_shape, "has shape (3, 3)"),
    "NaN in the optimizer state": (lambda d: d["training"]["optimizer"]["state"][0]["exp_avg"].fill_(float("nan")), "not a finite tensor"),
    "NaN weights": (lambda d: d["state_dict"]["head.weight"].fill_(float("nan")), "NaN or infinite weights"),
    "no optimizer": (lambda d: d["training"].pop("optimizer"), "no optimizer state"),
    "history shorter than the epochs": (lambda d: d["training"].update(history=[]), "one entry per epoch"),
    "best accuracy of 7": (lambda d: d["training"].update(best_accuracy=7.0), "best accuracy is 7.0"),
    "no moving average": (lambda d: d["training"].pop("average"), "no moving average of the weights"),
    "NaN in the moving average": (lambda d: d["training"]["average"][0].fill_(float("nan")), "moving average does not fit"),
}


@pytest.mark.parametrize("damaged", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_training_state_is_refused_in_one_sentence(run_copy, capsys, damaged):
    change, words = DAMAGE[damaged]
    damage(run_copy / "last.pt", change)
    code, _, err = resume(capsys, run_copy / "last.pt")
    assert code == 2
    sentence = one_sentence(err)
    assert str(run_copy / "last.pt") in sentence and words in sentence


def test_resume_into_another_folder_without_a_better_epoch_keeps_the_runs_best_model(run, run_copy, tmp_path, capsys):
    damage(run_copy / "last.pt", lambda d: d["training"].update(best_accuracy=1.0))  # nothing can beat it
    out = tmp_path / "elsewhere"
    code, stdout, err = resume(capsys, run_copy / "last.pt", "--epochs", 2, "--out", out)
    assert code == 0, err
    assert "no such model file" not in err
    assert "best model (epoch 1)" in stdout
    assert torch.equal(read_checkpoint(out / "best.pt")["state_dict"]["head.weight"],
                       read_checkpoint(run / "best.pt")["state_dict"]["head.weight"])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # the run's history came along


def test_a_finished_run_is_not_replaced_without_overwrite(run, run_copy, capsys):
    data = read_checkpoint(run / "last.pt")["metadata"]["trained_on"]
    before = (run_copy / "best.pt").read_bytes()
    argv = ["train", "--data", data, "--labels", LABELS, "--out", str(run_copy), "--cache-dir",
            str(run.parent / "cache"), "--epochs", "1", *TINY]
    assert main(argv) == 2
    assert "--overwrite" in one_sentence(capsys.readouterr().err)
    assert (run_copy / "best.pt").read_bytes() == before
    assert main([*argv, "--overwrite"]) == 0
    assert load_model(run_copy / "best.pt").config.features.hop_ms == 10  # the new run's settings


def test_resuming_into_a_folder_that_holds_another_run_needs_overwrite(run, run_copy, capsys):
    before = (run / "best.pt").read_bytes()
    code, _, err = resume(capsys, run_copy / "last.pt", "--epochs", 2, "--out", run)
    assert code == 2 and "--overwrite" in one_sentence(err)
    assert (run / "best.pt").read_bytes() == before


def test_a_second_run_into_a_folder_being_trained_into_is_refused(run, run_copy, capsys):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from speechcmd.train.locks import folder_lock\n"
         f"with folder_lock({str(run_copy)!r}, 'training'):\n    print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = resume(capsys, run_copy / "last.pt", "--epochs", 2)
    finally:
        holder.kill()
        holder.wait()
    assert code == 2
    assert "another speechcmd process is training here" in one_sentence(err)
    assert read_checkpoint(run_copy / "last.pt")["training"]["epoch"] == 1


def test_a_run_that_tunes_the_embedding_resumes_tuning_it(run, tmp_path, capsys):
    data = read_checkpoint(run / "last.pt")["metadata"]["trained_on"]
    out = tmp_path / "tuned"
    code = main(["train", "--data", data, "--labels", LABELS, "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                 "--epochs", "1", *TINY, "--front-end", "speech_embedding", "--tune-embedding", "2", "--lr", "0.01"])
    assert code == 0, capsys.readouterr().err
    before = read_checkpoint(out / "last.pt")["state_dict"]["frontend.last_weight"].clone()
    code, _, err = resume(capsys, out / "last.pt", "--epochs", 2, "--quiet", alone=True)
    assert code == 0, err
    last = read_checkpoint(out / "last.pt")
    assert last["training"]["epoch"] == 2 and last["metadata"]["train_config"]["tune_embedding"] == 2
    assert not torch.equal(last["state_dict"]["frontend.last_weight"], before)  # the second epoch tuned it too

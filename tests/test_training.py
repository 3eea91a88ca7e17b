"""Training end to end: `speechcmd train` learns, resumes exactly, and `evaluate` reports."""

import json

import numpy as np
import pytest
import torch

from speechcmd.app.cli import main
from speechcmd.model.checkpoint import load_model, read_checkpoint, save_checkpoint
from speechcmd.model.network import ModelConfig, SpeechCommandsModel
from test_data import make_folder
from speechcmd.train.data import build_dataset
from speechcmd.train.loop import Trainer, TrainConfig

FAST = ["--epochs", "3", "--hidden", "16", "--layers", "1", "--batch-size", "16", "--quiet", "--warmup-epochs", "0"]


@pytest.fixture(scope="module")
def tone_words(tmp_path_factory):
    """Four 'words' that are tones of different pitch, 30 speakers each: learnable in seconds."""
    return make_folder(tmp_path_factory.mktemp("tones"), speakers=30, clips_per_speaker=1)


def train_cli(capsys, data, out, *extra):
    code = main(["train", "--data", str(data), "--labels", "yes,no,up,_unknown_", "--out", str(out),
                 "--cache-dir", str(out.parent / "cache"), *FAST, *map(str, extra)])
    return code, capsys.readouterr()


def test_train_learns_generated_words_and_writes_its_run_folder(tmp_path, capsys, tone_words):
    code, (out, err) = train_cli(capsys, tone_words, tmp_path / "run", "--epochs", 8, "--lr", 0.01)
    assert code == 0, err
    run = tmp_path / "run"
    for name in ("best.pt", "last.pt", "metrics.jsonl", "learning_curves.png", "confusion.png", "test_report.json"):
        assert (run / name).is_file(), name
    model = load_model(run / "best.pt")
    assert model.labels == ["yes", "no", "up", "_unknown_"]
    assert model.metadata["test_accuracy"] > 0.6  # chance is 0.25
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 8
    assert "accuracy" in out and "confusion" in out


def test_evaluate_reports_accuracy_per_class_and_confusion_as_json(tmp_path, capsys, tone_words):
    train_cli(capsys, tone_words, tmp_path / "run", "--epochs", 8, "--lr", 0.01)
    code = main(["evaluate", "--model", str(tmp_path / "run" / "best.pt"), "--data", str(tone_words), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(result) == {"accuracy", "n", "per_class", "confusion", "trained_speakers"}
    assert result["n"] == 120 and result["accuracy"] > 0.6
    assert result["confusion"]["labels"] == ["yes", "no", "up", "_unknown_"]
    assert np.array(result["confusion"]["matrix"]).sum() == 120
    assert set(result["per_class"]["yes"]) == {"precision", "recall", "support"}


def test_evaluate_split_test_scores_only_held_out_speakers_and_warns_about_trained_ones(tmp_path, capsys, tone_words):
    train_cli(capsys, tone_words, tmp_path / "run", "--epochs", 2)
    model = tmp_path / "run" / "best.pt"
    split = build_dataset(tone_words, **load_model(model).metadata["split_parameters"])
    trained, held_out = split.splits["train"], split.splits["test"]

    code = main(["evaluate", "--model", str(model), "--data", str(tone_words)])
    err = capsys.readouterr().err
    assert code == 0
    assert f"warning: {len(trained)} of these 120 spoken clips are of {len(split.speakers('train'))} speakers the model was trained on" in err
    assert "--split test" in err

    code = main(["evaluate", "--model", str(model), "--data", str(tone_words), "--split", "test", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and "warning" not in err
    result = json.loads(out)
    assert result["n"] == len(held_out) > 0 and "trained_speakers" not in result


def _trainer(dataset, run_dir, cache_dir, epochs, ema_decay=0.0):
    torch.manual_seed(0)
    model = SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), dataset.labels)
    config = TrainConfig(epochs=epochs, batch_size=16, warmup_epochs=0, seed=3, ema_decay=ema_decay)
    return Trainer(model, dataset, config, run_dir, cache_dir, progress=False)


@pytest.mark.parametrize("ema_decay", [0.0, 0.9], ids=["plain", "moving-average"])
def test_resume_gives_the_same_result_as_an_uninterrupted_run(tmp_path, tone_words, ema_decay):
    dataset = build_dataset(tone_words, "yes,no,up,_unknown_", 0.2, 0.2)
    straight = _trainer(dataset, tmp_path / "straight", tmp_path / "cache", epochs=3, ema_decay=ema_decay)
    straight.fit()

    interrupted = _trainer(dataset, tmp_path / "split", tmp_path / "cache", epochs=3, ema_decay=ema_decay)
    train_epoch = interrupted.train_epoch

    def ctrl_c_in_third_epoch(epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return train_epoch(epoch)

    interrupted.train_epoch = ctrl_c_in_third_epoch
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    assert (tmp_path / "split" / "interrupted.pt").is_file()
    resumed = _trainer(dataset, tmp_path / "split", tmp_path / "cache", epochs=3, ema_decay=ema_decay)
    resumed.resume(tmp_path / "split" / "last.pt")
    resumed.fit()

    for name in ("last.pt", "best.pt"):  # with the moving average, best.pt holds it: it must resume too
        a = read_checkpoint(tmp_path / "straight" / name)["state_dict"]
        b = read_checkpoint(tmp_path / "split" / name)["state_dict"]
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=f"{name} {key}")
    assert [h["validation_accuracy"] for h in straight.history] == [h["validation_accuracy"] for h in resumed.history]


def test_same_seed_same_model(tmp_path, capsys, tone_words):
    train_cli(capsys, tone_words, tmp_path / "a", "--epochs", 2)
    train_cli(capsys, tone_words, tmp_path / "b", "--epochs", 2)
    a = read_checkpoint(tmp_path / "a" / "last.pt")["state_dict"]
    b = read_checkpoint(tmp_path / "b" / "last.pt")["state_dict"]
    train_cli(capsys, tone_words, tmp_path / "c", "--epochs", 2, "--seed", 1)
    c = read_checkpoint(tmp_path / "c" / "last.pt")["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_bad_training_settings_are_one_sentence(tmp_path, capsys, tone_words):
    code, (_, err) = train_cli(capsys, tone_words, tmp_path / "run", "--validation-fraction", 0.9)
    assert code == 2 and "fractions" in err
    code = main(["train", "--data", str(tmp_path / "missing"), "--quiet"])
    assert code == 2 and "no such dataset folder" in capsys.readouterr().err


@pytest.mark.real_data
def test_short_run_on_real_clips_clearly_beats_chance(tmp_path, capsys, speech_commands_dir):
    code, (out, err) = train_cli(
        capsys, speech_commands_dir, tmp_path / "run", "--labels", "yes,no", "--epochs", 8,
        "--hidden", 32, "--batch-size", 32, "--lr", 0.005, "--validation-fraction", 0.15, "--test-fraction", 0.15,
    )
    assert code == 0, err
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(h["validation_accuracy"] for h in history) > 0.7  # chance: 0.5 (yes and no are balanced)


def test_a_refit_without_validation_speakers_keeps_the_last_epoch(tmp_path, capsys, tone_words):
    code, (_, err) = train_cli(capsys, tone_words, tmp_path / "run", "--validation-fraction", 0, "--test-fraction", 0.2)
    assert code == 0, err
    best = load_model(tmp_path / "run" / "best.pt")
    assert best.metadata["best_epoch"] == 3 and best.metadata["validation_accuracy"] is None
    assert best.metadata["split_counts"]["validation"] == {}
    assert (tmp_path / "run" / "learning_curves.png").is_file()


def test_distillation_from_a_teacher_trains_a_student_that_matches_it(tmp_path, capsys, tone_words):
    # A teacher that says "up" to everything: a student that only follows it learns to say "up" too,
    # where the labels alone would teach it the four tones.
    labels = ["yes", "no", "up", "_unknown_"]
    teacher_model = SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), labels)
    with torch.no_grad():
        teacher_model.head.bias[labels.index("up")] = 10.0
    teacher = save_checkpoint(tmp_path / "teacher.pt", teacher_model)
    code, (_, err) = train_cli(capsys, tone_words, tmp_path / "student", "--epochs", 8, "--lr", 0.01,
                               "--teacher", teacher, "--distill-weight", 1.0, "--cell", "gru")
    assert code == 0, err
    student = load_model(tmp_path / "student" / "best.pt")
    assert student.metadata["teachers"] == [str(teacher)]
    main(["evaluate", "--model", str(tmp_path / "student" / "best.pt"), "--data", str(tone_words), "--json"])
    confusion = np.array(json.loads(capsys.readouterr().out)["confusion"]["matrix"])  # rows: truth
    assert confusion[:, labels.index("up")].sum() >= 0.9 * confusion.sum()


@pytest.mark.parametrize("clean", [False, True])
def test_with_distill_clean_teachers_hear_the_clip_before_the_room(tmp_path, capsys, tone_words, monkeypatch, clean):
    import speechcmd.train.loop as training_loop

    labels = ["yes", "no", "up", "_unknown_"]
    teacher = save_checkpoint(tmp_path / "teacher.pt", SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), labels))
    augment, heard = training_loop.add_background, []

    def a_room_with_a_loud_hum(*args, **kwargs):
        return augment(*args, **kwargs) + 0.25  # an offset no clip of the tone words has

    def distillation_loss(self, waveform, logits):
        heard.append(float(waveform.mean()))
        return logits.sum() * 0

    monkeypatch.setattr(training_loop, "add_background", a_room_with_a_loud_hum)
    monkeypatch.setattr(Trainer, "distillation_loss", distillation_loss)
    code, (_, err) = train_cli(capsys, tone_words, tmp_path / "student", "--epochs", 1, "--teacher", teacher,
                               *(["--distill-clean"] if clean else []))
    assert code == 0, err
    assert heard and all(abs(mean - (0.0 if clean else 0.25)) < 0.05 for mean in heard)
    assert load_model(tmp_path / "student" / "last.pt").metadata["train_config"]["distill_clean"] is clean


def test_a_teacher_with_other_labels_is_one_sentence(tmp_path, capsys, tone_words, tiny_checkpoint):
    code, (_, err) = train_cli(capsys, tone_words, tmp_path / "student", "--teacher", tiny_checkpoint)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("speechcmd train: ") and "teacher" in err.strip().splitlines()[-1]


def test_train_options_default_to_the_settings_classes(tone_words):
    import argparse

    from speechcmd.app.cli_train import add_train_arguments, configs_from_args
    from speechcmd.train.config import SplitConfig

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--data", str(tone_words)])
    dataset, config, model_config = configs_from_args(args, tone_words, "cpu")
    assert model_config == ModelConfig()
    assert config == TrainConfig()
    split = SplitConfig()
    assert dataset.split_parameters["validation_fraction"] == split.validation_fraction
    assert dataset.split_parameters["test_fraction"] == split.test_fraction and dataset.split_parameters["salt"] == split.salt


@pytest.mark.parametrize("stream_context", [False, True], ids=["window", "stream-context-in-a-room"])
def test_train_with_the_pretrained_embedding_front_end_learns_and_keeps_its_weights(tmp_path, capsys, tone_words, stream_context):
    from speechcmd.model.features import SpeechEmbedding

    extra = ["--stream-context", "--room"] if stream_context else []
    code, (out, err) = train_cli(capsys, tone_words, tmp_path / "run", "--front-end", "speech_embedding", "--epochs", 6, "--lr", 0.01, *extra)
    assert code == 0, err
    model = load_model(tmp_path / "run" / "best.pt")
    assert model.config.features.kind == "speech_embedding"
    assert model.config.features.stream_context == stream_context
    assert model.metadata["test_accuracy"] > 0.6  # chance is 0.25
    pretrained = SpeechEmbedding().load_pretrained().state_dict()
    for name, value in model.frontend.state_dict().items():
        if name not in ("mean", "std"):  # the normalization is fitted to the training clips
            torch.testing.assert_close(value, pretrained[name], msg=name)
    assert not torch.equal(model.frontend.std, torch.ones(96))


def test_tune_embedding_trains_only_the_embeddings_last_convolutions_and_ships_them_frozen(tmp_path, capsys, tone_words):
    from speechcmd.model.features import SpeechEmbedding

    code, (out, err) = train_cli(capsys, tone_words, tmp_path / "run", "--front-end", "speech_embedding", "--epochs", 6, "--lr", 0.01,
                                 "--tune-embedding", 2)
    assert code == 0, err
    assert "(55,392 of them in the embedding)" in err  # two 96 x 96 x 3 kernels and one bias
    model = load_model(tmp_path / "run" / "best.pt")
    assert model.metadata["test_accuracy"] > 0.6  # chance is 0.25
    assert model.metadata["train_config"]["tune_embedding"] == 2
    assert not list(model.frontend.parameters())  # loaded for use, the embedding is frozen again
    pretrained = SpeechEmbedding().load_pretrained().state_dict()
    tuned = {"weight17", "bias17", "last_weight"}  # the last two convolutions
    for name, value in model.frontend.state_dict().items():
        if name in tuned:
            assert not torch.equal(value, pretrained[name]), name
        elif name not in ("mean", "std"):
            torch.testing.assert_close(value, pretrained[name], msg=name)


def test_with_ema_decay_the_kept_model_is_the_moving_average_of_the_weights_and_it_learns(tmp_path, capsys, tone_words):
    code, (out, err) = train_cli(capsys, tone_words, tmp_path / "run", "--epochs", 8, "--lr", 0.01, "--ema-decay", 0.95)
    assert code == 0, err
    model = load_model(tmp_path / "run" / "best.pt")
    assert model.metadata["test_accuracy"] > 0.6  # chance is 0.25
    assert model.metadata["train_config"]["ema_decay"] == 0.95

    code, (out, err) = train_cli(capsys, tone_words, tmp_path / "one", "--epochs", 1, "--lr", 0.01, "--ema-decay", 0.95)
    assert code == 0, err
    best, last = read_checkpoint(tmp_path / "one" / "best.pt"), read_checkpoint(tmp_path / "one" / "last.pt")
    average = dict(zip([name for name, _ in model.named_parameters()], last["training"]["average"]))
    assert set(average) < set(best["state_dict"])  # the parameters; buffers (normalization) are not averaged
    for name, value in average.items():  # the only epoch is the best: best.pt holds the average, last.pt the weights
        torch.testing.assert_close(best["state_dict"][name], value, rtol=0, atol=0, msg=name)
    assert any(not torch.equal(last["state_dict"][name], value) for name, value in average.items())

    code, (out, err) = train_cli(capsys, tone_words, tmp_path / "bad", "--ema-decay", 1)
    assert code == 2 and "--ema-decay must be" in err and "Traceback" not in err


def test_tune_embedding_with_the_mfcc_front_end_is_one_sentence(tmp_path, capsys, tone_words):
    code, (out, err) = train_cli(capsys, tone_words, tmp_path / "run", "--epochs", 1, "--tune-embedding", 2)
    assert code != 0 and "only the speech embedding front-end can be tuned" in err and "Traceback" not in err
    code, (out, err) = train_cli(capsys, tone_words, tmp_path / "run2", "--front-end", "speech_embedding", "--epochs", 1, "--tune-embedding", 21)
    assert code == 2 and "--tune-embedding must be a whole number from 0 to 20" in err and "Traceback" not in err

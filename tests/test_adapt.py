"""Teaching a model new words (train/adapt.py): the whole flow from takes to a saved model, with
takes from files and from speech synthesized at test time (espeak-ng, flite)."""

from __future__ import annotations

import copy
import dataclasses
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechcmd.model.audio import load_audio
from speechcmd.model.checkpoint import bundled_model_path, load_model
from speechcmd.model.inference import Classifier
from speechcmd.train.adapt import (
    AdaptCancelled, AdaptConfig, AdaptError, ReplayBank, adapt, augmented_features, base_augmentation, body_fingerprint,
    bundled_replay_bank, format_adapt_report, frozen_features, load_replay_bank, replay_clips, replay_takes, save_adapted, save_replay_bank,
)
from speechcmd.train.data import build_dataset
from speechcmd.train.takes import Take, load_take, prepare_take
from conftest import LABELS_12, tone

# (voice, words per minute, pitch 0-99): different enough to stand for different speakers.
ESPEAK_VOICES = [("en-us", 150, 50), ("en-gb", 140, 40), ("en+m3", 170, 35), ("en+f2", 150, 70), ("en-gb-scotland", 130, 50),
                 ("en+m1", 160, 60), ("en+f4", 140, 55), ("en-gb-x-rp", 175, 45), ("en+f3", 165, 65), ("en+m7", 145, 30)]
QUICK = AdaptConfig(steps=30, copies=2, folds=2)  # plumbing, not accuracy


def synthesize(text: str, path: Path, voice: int = 0, engine: str = "espeak-ng") -> Path:
    """`text` spoken by espeak-ng (voice: index into ESPEAK_VOICES) or flite (voice: a flite voice name)."""
    if shutil.which(engine) is None:
        pytest.skip(f"{engine} is not installed (Debian package {engine})")
    path.parent.mkdir(parents=True, exist_ok=True)
    if engine == "flite":
        command = ["flite", "-voice", str(voice), "-t", text, "-o", str(path)]
    else:
        name, speed, pitch = ESPEAK_VOICES[voice]
        command = ["espeak-ng", "-v", name, "-s", str(speed), "-p", str(pitch), "-w", str(path), text]
    subprocess.run(command, check=True, capture_output=True)
    return path


def spoken_takes(tmp_path: Path, word: str, count: int, label: str | None = None, window: int = 16_000) -> list[Take]:
    return [load_take(synthesize(word, tmp_path / f"{word}_{k}.wav", k), label or word, window) for k in range(count)]


def tone_takes(label: str, frequency: float, count: int) -> list[Take]:
    """Stand-in takes for plumbing: a tone burst in the middle of a quiet second."""
    rng = np.random.default_rng(int(frequency))
    takes = []
    for k in range(count):
        samples = rng.normal(0, 0.003, 16_000).astype(np.float32)
        samples[5000:11000] += tone(frequency * (1 + 0.02 * k), 6000 / 16_000)
        takes.append(prepare_take(samples, label, f"tone {k}", 16_000))
    return takes


def test_a_new_word_becomes_a_label_after_the_base_labels(tiny_model):
    adapted = adapt(tiny_model, tone_takes("lights", 700, 4) + tone_takes("_silence_", 50, 2), QUICK)
    assert adapted.model.labels == LABELS_12 + ["lights"]
    assert adapted.report["new_words"] == ["lights"]
    assert adapted.report["takes"] == {"_silence_": 2, "lights": 4}
    # The body is the base model's, untouched; only the head grew a row.
    for name, value in tiny_model.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(adapted.model.state_dict()[name], value), name
    # The new head reads the pooled LSTM output and the mean front-end feature; the base rows start
    # where the base head was, reading nothing from the front-end.
    config = tiny_model.config
    assert adapted.model.config.head_reads_frontend and not config.head_reads_frontend
    assert adapted.model.head.weight.shape == (13, config.hidden_size + config.features.feature_size)


def test_every_take_is_judged_once_by_a_model_that_did_not_learn_from_it(tiny_model):
    takes = tone_takes("lights", 700, 5) + tone_takes("music", 1500, 3)
    report = adapt(tiny_model, takes, QUICK).report
    confusion = np.array(report["confusion"]["matrix"])
    assert report["confusion"]["rows"] == ["lights", "music"]
    assert confusion.sum(axis=1).tolist() == [5, 3]
    assert 0 <= report["held_out_accuracy"] <= 1
    assert "held-out takes" in format_adapt_report(report)


def test_a_new_words_row_starts_where_its_takes_are(tiny_model):
    """Imprinting: after a single small step, the new row already points along the mean frozen
    feature of the word's takes (without it, a near-zero random row points anywhere)."""
    takes = tone_takes("lights", 700, 4) + tone_takes("_silence_", 50, 2)
    one_step = AdaptConfig(steps=1, copies=1, folds=2, learning_rate=1e-4)
    features = frozen_features(tiny_model, torch.from_numpy(np.stack([t.window for t in takes[:4]])), last_layer=False)
    mean = features.mean(0)
    for config, imprinted in ((one_step, True), (dataclasses.replace(one_step, imprint=False), False)):
        row = adapt(tiny_model, takes, config).model.head.weight[-1].detach()
        cosine = float(torch.nn.functional.cosine_similarity(row, mean, dim=0))
        assert (cosine > 0.99) == imprinted, cosine
        if imprinted:  # as long as the base words' rows, so it competes with them from the start
            assert abs(row.norm() - tiny_model.head.weight.norm(dim=1).mean()) < 0.01


def test_takes_far_quieter_than_the_rest_are_named_in_a_warning(tiny_model):
    takes = tone_takes("lights", 700, 5)
    for k in (1, 3):  # 40 dB quieter: the user stepped back from the microphone
        takes[k] = dataclasses.replace(takes[k], window=takes[k].window * 0.01, source=f"/takes/lights/me_nohash_{k}.wav")
    warnings = adapt(tiny_model, takes, QUICK).report["warnings"]
    level = [w for w in warnings if "dB quieter" in w]
    assert len(level) == 1 and "me_nohash_1.wav, me_nohash_3.wav are about 40 dB quieter" in level[0], warnings
    assert not [w for w in adapt(tiny_model, tone_takes("lights", 700, 5), QUICK).report["warnings"] if " dB " in w]


def test_too_few_takes_or_no_word_at_all_is_one_sentence(tiny_model):
    with pytest.raises(AdaptError, match="Too few takes of 'lights' \\(2\\)"):
        adapt(tiny_model, tone_takes("lights", 700, 2), QUICK)
    with pytest.raises(AdaptError, match="record takes of the word"):
        adapt(tiny_model, tone_takes("_silence_", 50, 4), QUICK)
    with pytest.raises(AdaptError, match="No takes"):
        adapt(tiny_model, [], QUICK)


def test_cancel_stops_training_and_reports_progress_until_then(tiny_model):
    seen, stop = [], threading.Event()

    def progress(fraction, message):
        seen.append(fraction)
        if fraction > 0.3:
            stop.set()

    with pytest.raises(AdaptCancelled):
        adapt(tiny_model, tone_takes("lights", 700, 4), AdaptConfig(steps=500, copies=2, folds=2), progress=progress, cancelled=stop.is_set)
    assert seen == sorted(seen) and 0.3 < seen[-1] < 1.0


def test_personalizing_a_known_word_adds_no_label(tiny_model):
    adapted = adapt(tiny_model, tone_takes("yes", 700, 4), QUICK)
    assert adapted.model.labels == LABELS_12
    assert adapted.report["new_words"] == []


def test_the_saved_model_loads_with_its_provenance(tiny_model, tiny_checkpoint, tmp_path):
    base = load_model(tiny_checkpoint)
    adapted = adapt(base, tone_takes("lights", 700, 4), QUICK)
    path = save_adapted(tmp_path / "out" / "taught.pt", base, adapted, command="test")
    loaded = load_model(path)  # weights_only
    assert loaded.labels == LABELS_12 + ["lights"]
    metadata = loaded.metadata
    assert metadata["takes"] == {"lights": 4}
    assert metadata["new_words"] == ["lights"]
    assert metadata["adapted_from"]["path"] == str(tiny_checkpoint)
    assert metadata["adapted_from"]["labels"] == LABELS_12
    assert metadata["adapted_from"]["trained_on"] == "nothing (test fixture)"
    assert metadata["held_out_accuracy"] == adapted.report["held_out_accuracy"]
    assert metadata["adapt_config"]["steps"] == QUICK.steps
    assert metadata["command"] == "test"
    windows = np.stack([t.window for t in tone_takes("lights", 700, 2)])
    assert np.allclose(Classifier(loaded).probabilities(windows), Classifier(adapted.model).probabilities(windows), atol=1e-6)


def test_last_layer_mode_changes_only_the_top_layer_and_head(tiny_model):
    adapted = adapt(tiny_model, tone_takes("lights", 700, 4), AdaptConfig(steps=5, copies=1, folds=2, last_layer=True))
    state = adapted.model.state_dict()
    assert torch.equal(state["recurrent.layers.0.rnn.weight_hh_l0"], tiny_model.state_dict()["recurrent.layers.0.rnn.weight_hh_l0"])
    assert not torch.equal(state["recurrent.layers.1.rnn.weight_hh_l0"], tiny_model.state_dict()["recurrent.layers.1.rnn.weight_hh_l0"])


def test_replayed_clips_come_from_the_base_models_training_speakers_only(speech_commands_dir):
    if not bundled_model_path().is_file():
        pytest.skip("the bundled model is absent")
    base = load_model()
    chosen, noise_files = replay_clips(base, speech_commands_dir, per_label=10_000, avoid_words=["zero"])
    split = build_dataset(speech_commands_dir, **base.metadata["split_parameters"])
    test_speakers, test_files = split.speakers("test"), {clip.path for clip, _ in split.splits["test"]}
    assert {label for _, label in chosen} == set(base.labels)
    assert not [clip for clip, _ in chosen if clip.speaker in test_speakers or clip.path in test_files]
    assert not [clip for clip, _ in chosen if clip.path.name.startswith("zero_")]
    assert [clip for clip, _ in chosen if clip.path.name.startswith("nine_")]  # other unknown words stay
    assert len(noise_files) == 6
    takes, noise = replay_takes(base, speech_commands_dir, per_label=2)
    assert len(takes) == 24 and all(t.window.shape == (16_000,) for t in takes) and len(noise) > 60 * 16_000


def test_data_without_silence_clips_replays_silence_cut_from_its_background_noise(tiny_model, tmp_path):
    """The full release has no `_silence_` folder: its silence is cut from the noise recordings,
    and teaching must still replay it (a taught model that forgot silence would fire on room tone)."""
    from test_data import make_folder

    from speechcmd.train.data import SILENCE

    root = make_folder(tmp_path / "release", speakers=40, clips_per_speaker=1, words=["yes", "no", "cat"])
    tiny_model.metadata = {"split_parameters": {"validation_fraction": 0.1, "test_fraction": 0.1, "salt": "speechcmd"}}
    chosen, _ = replay_clips(tiny_model, root, per_label=4)
    assert {label for _, label in chosen} == {"yes", "no", "_unknown_", SILENCE}
    takes, _ = replay_takes(tiny_model, root, per_label=4)
    silence = [take for take in takes if take.label == SILENCE]
    recording = sf.read(root / "_background_noise_" / "white.wav", dtype="float32")[0]
    for take, (clip, _) in zip(silence, [c for c in chosen if c[1] == SILENCE]):
        offset, gain = clip.noise_cut
        assert take.window.shape == (16_000,)
        np.testing.assert_allclose(take.window, recording[offset : offset + 16_000] * gain, atol=1e-6)  # the cut, at its gain
    assert len(silence) == 4 and max(np.abs(take.window).max() for take in silence) > 0.01


def test_a_replay_bank_serves_its_own_body_only_and_never_replays_the_taught_word(tiny_model, tmp_path):
    base_words = tone_takes("yes", 300, 3) + tone_takes("_unknown_", 900, 2) + tone_takes("_unknown_", 700, 2)
    said = ["yes"] * 3 + ["music"] * 2 + ["lights"] * 2  # the last two: 'lights' filed under _unknown_
    features, targets, _ = augmented_features(tiny_model, base_words, LABELS_12, 2, np.zeros(0, np.float32),
                                              base_augmentation(tiny_model), torch.Generator(), False)
    bank = ReplayBank(features, [LABELS_12[t] for t in targets], said * 2, body_fingerprint(tiny_model), "test")
    bank = load_replay_bank(save_replay_bank(tmp_path / "bank.pt", bank))  # weights_only
    report = adapt(tiny_model, tone_takes("lights", 700, 4), QUICK, bank=bank).report
    assert report["replayed_bank_rows"] == 10  # 14 rows less the 4 of 'lights'
    assert not [w for w in report["warnings"] if w.startswith("No clips of the model's own words")]
    other_body = copy.deepcopy(tiny_model)
    with torch.no_grad():
        other_body.recurrent.layers[0].rnn.weight_hh_l0.add_(0.01)
    report = adapt(other_body, tone_takes("lights", 700, 4), QUICK, bank=bank).report
    assert report["replayed_bank_rows"] == 0
    assert [w for w in report["warnings"] if w.startswith("No clips of the model's own words")]


def test_the_shipped_replay_bank_fits_the_bundled_model():
    """Fails when the bundled model is retrained without `scripts/replay_bank.py`."""
    if not bundled_model_path().is_file():
        pytest.skip("the bundled model is absent")
    base = load_model()
    bank = bundled_replay_bank(base)
    assert bank is not None, "resources/models/speechcmd-lstm.replay.pt is missing or belongs to another model"
    assert set(bank.labels) == set(base.labels)
    assert bank.features.shape[1] == base.config.hidden_size + base.config.features.feature_size
    assert "CC BY 4.0" in bank.source


@pytest.mark.slow
def test_the_bundled_model_learns_a_synthesized_word_and_keeps_its_own(tmp_path):
    """Realistic: 'banana' in 8 espeak-ng and 2 flite voices, a few other words as other speech,
    and a quiet room. Then 'banana' in three voices it never heard is 'banana', and the commands
    said by other voices are heard as the base model heard them (which is right for most of them:
    the base's own accuracy on synthetic voices is not what teaching can change)."""
    if not bundled_model_path().is_file():
        pytest.skip("the bundled model is absent")
    base = load_model()
    takes = spoken_takes(tmp_path, "banana", 8)
    takes += [load_take(synthesize("banana", tmp_path / f"banana_{v}.wav", v, "flite"), "banana", 16_000) for v in ("awb", "rms")]
    for word in ("apple", "window", "music", "table"):
        takes += spoken_takes(tmp_path, word, 2, label="_unknown_")
    room = np.random.default_rng(0).normal(0, 0.004, 32_000).astype(np.float32)
    takes += [prepare_take(room[k * 8000 : k * 8000 + 16_000], "_silence_", "room", 16_000) for k in range(3)]
    adapted = adapt(base, takes, AdaptConfig(copies=8, folds=2))
    classifier = Classifier(adapted.model)
    unseen = [("banana", "kal", "flite"), ("banana", 8, "espeak-ng"), ("banana", 9, "espeak-ng"),
              ("yes", "slt", "flite"), ("stop", "slt", "flite"), ("no", "slt", "flite"), ("go", 9, "espeak-ng")]
    before = Classifier(base)
    heard, heard_before = [], []
    for text, voice, engine in unseen:
        samples = load_audio(synthesize(text, tmp_path / "test" / f"{text}_{voice}.wav", voice, engine))
        window = prepare_take(samples, text, str(voice), 16_000).window[None]
        heard.append(classifier.clip_result(classifier.probabilities(window)[0]).label)
        heard_before.append(before.clip_result(before.probabilities(window)[0]).label)
    assert heard[:3] == ["banana"] * 3
    assert heard[3:] == heard_before[3:]
    assert sum(label == text for label, (text, _, _) in zip(heard_before[3:], unseen[3:])) >= 3
    # The leave-some-out estimate (two folds: taught on 5 takes, tested on the other 5) is the
    # report's honest figure, lower than the final model's: 0.7 on the speech-embedding base (0.8 or
    # more on the MFCC base before it; issue 12's notes have the teaching benchmark on both).
    assert adapted.report["per_label"]["banana"]["accuracy"] >= 0.6


def test_takes_of_a_room_trained_model_get_its_speaker_variation_and_light_noise_not_the_room(tiny_model):
    from dataclasses import asdict

    from speechcmd.train.config import ROOM, AugmentConfig

    trained = AugmentConfig(speed_range=0.1, volume_range=0.3, noise_probability=0.5, **ROOM)
    tiny_model.metadata["train_config"] = {"augment": asdict(trained)}
    augment = base_augmentation(tiny_model)
    assert augment.snr_db_min is None  # no -5 dB SNR or 40 dB quieter copies of a handful of takes
    assert (augment.speed_range, augment.volume_range, augment.noise_probability) == (0.1, 0.3, 0.5)
    tiny_model.metadata["train_config"] = {"augment": {"no_such_setting": 1}}  # another version's
    assert base_augmentation(tiny_model) == AugmentConfig()

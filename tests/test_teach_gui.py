"""The Teach panel (app/teach.py), offscreen: takes from files and a fake microphone, training off
the GUI thread with progress and cancel, the result handed to the window, saving."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMainWindow

from speechcmd.app import audio_backend
from speechcmd.app.audio_backend import AudioBackendError
from speechcmd.app.teach import TeachPanel, install_teach
from speechcmd.model.checkpoint import load_model
from speechcmd.train.adapt import AdaptConfig
from conftest import LABELS_12, write_wav
from test_teach_takes import burst

QUICK = AdaptConfig(steps=30, copies=2, folds=2)


@pytest.fixture(autouse=True)
def no_sound_system(monkeypatch):
    monkeypatch.setattr(audio_backend, "input_devices", lambda refresh=False: [])
    monkeypatch.setattr(audio_backend, "play", lambda samples, sample_rate=16_000: False)


class FakeMicrophone:
    """Hands out a take in 0.1 s blocks: room noise with a word in it."""

    def __init__(self, samples: np.ndarray):
        self.blocks = list(np.array_split(samples, len(samples) // 1600))
        self.closed = False

    def read(self) -> np.ndarray:
        return self.blocks.pop(0) if self.blocks else np.zeros(0, np.float32)

    def close(self) -> None:
        self.closed = True


@pytest.fixture()
def make_panel(qtbot, tmp_path, tiny_checkpoint):
    def make(config=QUICK, **options) -> TeachPanel:
        model = load_model(tiny_checkpoint)
        panel = TeachPanel(lambda: model, tmp_path / "takes", config=config, **options)
        qtbot.addWidget(panel)
        panel.show()
        return panel

    return make


def take_files(folder, count: int, word_seconds: float = 0.4) -> list[str]:
    return [str(write_wav(folder / f"take{k}.wav", burst(word=word_seconds, seed=k))) for k in range(count)]


def choose_new_word(panel: TeachPanel, word: str) -> bool:
    panel.new_word_edit.setText(word)
    return panel.add_new_word()


def test_a_name_that_clashes_with_a_label_is_refused_and_nothing_is_added(make_panel):
    panel = make_panel()
    words = [panel.word_combo.itemData(i) for i in range(panel.word_combo.count())]
    assert not choose_new_word(panel, "Yes")
    assert "'yes' is already one of the model's words" in panel.status.text()
    assert [panel.word_combo.itemData(i) for i in range(panel.word_combo.count())] == words


def test_dropped_files_become_takes_and_bad_ones_are_named(make_panel, tmp_path):
    panel = make_panel()
    assert choose_new_word(panel, "lights")
    good = take_files(tmp_path / "in", 3)
    silent = str(write_wav(tmp_path / "in" / "silent.wav", np.zeros(16_000, np.float32)))
    too_long = str(write_wav(tmp_path / "in" / "long.wav", burst(word=2.5)))
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(p) for p in [*good, silent, too_long]])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, data, Qt.LeftButton, Qt.NoModifier)
    panel.dropEvent(event)
    assert panel.store.counts() == {"lights": 3}
    assert panel.take_list.count() == 3
    assert panel.counter.text() == "3 of 8+ takes"
    text = panel.status.text()
    assert "Added 3 of 5 files" in text and "silent.wav: no speech" in text and "long.wav: the spoken part lasts" in text


def test_a_recorded_take_is_kept_trimmed_and_shown(make_panel, qtbot):
    microphone = FakeMicrophone(burst(before=0.3, after=1.0))
    panel = make_panel(open_microphone=lambda: microphone)
    panel.recorder.countdown_seconds = 1
    choose_new_word(panel, "lights")
    with qtbot.waitSignal(panel.recorder.recorded, timeout=5000):
        panel.record()
        assert not panel.record_button.isEnabled() and panel.cancel_button.isEnabled()
    assert microphone.closed
    assert panel.store.counts() == {"lights": 1}
    assert panel.preview.spoken.isVisible()  # the spoken part found by trimming is shaded
    low, high = panel.preview.spoken.getRegion()
    # The word is 0.3-0.7 s into the stream, whose first 0.1 s block went by in the countdown;
    # trimming keeps 0.08 s either side.
    assert low == pytest.approx(0.12, abs=0.025) and high == pytest.approx(0.68, abs=0.025)
    assert panel.preview.mfcc.data is not None


def test_no_microphone_is_one_sentence_and_files_still_work(make_panel):
    def missing():
        raise AudioBackendError("No microphone found; plug one in, or drop audio files on the Teach panel instead.")

    panel = make_panel(open_microphone=missing)
    choose_new_word(panel, "lights")
    panel.record()
    assert panel.status.text().startswith("No microphone found")
    assert panel.record_button.isEnabled() and panel.files_button.isEnabled()


def test_training_runs_off_the_gui_thread_and_hands_the_model_over(make_panel, tmp_path, qtbot):
    panel = make_panel()
    choose_new_word(panel, "lights")
    panel.add_files(take_files(tmp_path / "in", 4))
    with qtbot.waitSignal(panel.model_ready, timeout=20_000) as ready:
        assert panel.train()
        assert panel.job.running and not panel.train_button.isEnabled() and panel.cancel_button.isEnabled()
    model, source = ready.args
    assert model.labels == LABELS_12 + ["lights"]
    assert source == "taught 'lights'"
    assert panel.progress.value() == 1000
    assert "Held-out takes recognized" in panel.result_label.text()
    assert panel.confusion.isVisible() and panel.confusion.verticalHeaderItem(0).text() == "lights"
    assert "'lights' has 4 takes; 8 or more" in panel.warnings_label.text()
    with qtbot.waitSignal(panel.model_ready) as saved:
        path = panel.save(tmp_path / "models" / "taught.pt")
    assert saved.args[1] == str(path)
    assert load_model(path).metadata["takes"] == {"lights": 4}


def test_cancel_stops_training_and_keeps_the_model_in_use(make_panel, tmp_path, qtbot):
    panel = make_panel(config=AdaptConfig(steps=20_000, copies=2, folds=2))
    handed = []
    panel.model_ready.connect(lambda model, source: handed.append(model))
    choose_new_word(panel, "lights")
    panel.add_files(take_files(tmp_path / "in", 4))
    with qtbot.waitSignal(panel.job.cancelled, timeout=20_000):
        panel.train()
        qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=10_000)
        panel.cancel_button.click()
    assert handed == []
    assert "cancelled" in panel.status.text() and panel.train_button.isEnabled()


def test_too_few_takes_is_said_not_trained(make_panel, tmp_path, qtbot):
    panel = make_panel()
    choose_new_word(panel, "lights")
    panel.add_files(take_files(tmp_path / "in", 2))
    with qtbot.waitSignal(panel.job.failed, timeout=10_000):
        panel.train()
    assert "Too few takes of 'lights' (2)" in panel.status.text()


class FakeWindow(QMainWindow):
    """What install_teach needs from the main window: a model and use_model."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.used = []

    def use_model(self, model, source: str) -> None:
        self.used.append((model, source))
        self.model = model


def test_install_teach_adds_a_menu_and_switches_the_window_to_the_taught_model(qtbot, tmp_path, tiny_checkpoint):
    window = FakeWindow(load_model(tiny_checkpoint))
    qtbot.addWidget(window)
    panel = install_teach(window, tmp_path / "takes", config=QUICK, replay=None)
    window.show()
    teach_window = window.teach_window
    assert not teach_window.isVisible()
    teach_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Teach")
    teach_menu.actions()[0].trigger()
    assert teach_window.isVisible() and teach_window.isWindow()  # a window of its own: the main one is not squeezed
    choose_new_word(panel, "lights")
    panel.add_files(take_files(tmp_path / "in", 4))
    base = window.model
    with qtbot.waitSignal(panel.model_ready, timeout=20_000):
        panel.train()
    assert [(m.labels[-1], s) for m, s in window.used] == [("lights", "taught 'lights'")]
    assert panel.current_base() is base  # teaching again starts from the same base, not from its own result
    panel.rebase_button.click()
    assert panel.current_base() is window.model and "13 labels" in panel.base_label.text()


def test_takes_are_kept_in_the_users_speechcmd_folder_and_an_earlier_folder_with_takes_is_kept(monkeypatch, tmp_path):
    from speechcmd.app.teach import default_takes_dir

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_takes_dir() == tmp_path / "speechcmd" / "takes"  # not speechcmd/speechcmd/takes
    earlier = tmp_path / "speechcmd" / "speechcmd" / "takes"
    (earlier / "lights").mkdir(parents=True)
    assert default_takes_dir() == earlier  # a user's takes from before are not left behind


def test_an_unexpected_error_in_training_is_shown_and_gives_the_controls_back(make_panel, tmp_path, qtbot, monkeypatch):
    from speechcmd.app import teach

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(teach, "adapt", broken)
    panel = make_panel()
    choose_new_word(panel, "lights")
    panel.add_files(take_files(tmp_path / "in", 4))
    with qtbot.waitSignal(panel.job.failed, timeout=10_000):
        panel.train()
    assert "internal error" in panel.status.text() and "ZeroDivisionError" in panel.status.text()
    assert panel.train_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_a_file_far_longer_than_a_take_is_refused_from_its_header_without_decoding_it(make_panel, tmp_path, monkeypatch):
    from speechcmd.train import takes

    panel = make_panel()
    choose_new_word(panel, "lights")
    long = write_wav(tmp_path / "an_hour_of_radio.wav", np.zeros(16_000 * 45, np.float32))
    monkeypatch.setattr(takes, "load_audio", lambda *args, **kwargs: pytest.fail("the long file was decoded"))
    assert panel.add_files([str(long)]) == 0
    assert "the take lasts 45 s; cut it to the word alone" in panel.status.text()

"""The desktop window, driven offscreen by file sources and a fake sound system (no audio device needed).

Time is driven by hand: a file source with `paced=False` hands out one block per `worker.step()`,
and `window.redraw()` draws what the worker produced. Models load and files decode on their own
threads, as in the app; the tests wait for them with `settle`.
"""

from __future__ import annotations

import builtins
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtWidgets import QApplication

from speechcmd.app import audio_backend, main_window
from speechcmd.app.main_window import MainWindow
from speechcmd.app.views.saturation_view import gate_saturation
from speechcmd.model.audio import load_audio
from speechcmd.model.checkpoint import bundled_model_path, load_model, save_checkpoint
from speechcmd.model.detection import DetectionPolicy
from speechcmd.model.inference import Classifier
from speechcmd.model.network import FeatureConfig, ModelConfig, SpeechCommandsModel
from conftest import LABELS_12, tone, write_wav

_real_input_devices = audio_backend.input_devices


@pytest.fixture(autouse=True)
def no_sound_system(monkeypatch):
    """By default the machine has no microphone and no speaker; tests that need one install a fake."""
    monkeypatch.setattr(audio_backend, "input_devices", lambda refresh=False: [])
    monkeypatch.setattr(audio_backend, "play", lambda samples, sample_rate=16_000: False)
    monkeypatch.setattr(audio_backend, "stop_playback", lambda: None)


@pytest.fixture()
def settings(tmp_path) -> QSettings:
    """A settings file of the test's own, so the user's settings are never read or written."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.IniFormat)


def settle(condition, timeout: float = 20.0) -> None:
    """Let the window's threads and queued signals run until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the window"
        QApplication.processEvents()
        time.sleep(0.005)


def model_settled(window: MainWindow) -> bool:
    return not window.loader.busy and "loading" not in window.model_label.text()


@pytest.fixture()
def make_window(qtbot, settings, tiny_checkpoint):
    def make(model_path=tiny_checkpoint, start_worker=False, settings=settings) -> MainWindow:
        window = MainWindow(settings, str(model_path) if model_path else None, start_worker=start_worker)
        qtbot.addWidget(window)
        window.show()
        settle(lambda: model_settled(window))
        return window

    return make


def load(window: MainWindow, path) -> None:
    """File > Open model, waited for."""
    window.load_model(str(path) if path else None)
    settle(lambda: model_settled(window))


@pytest.fixture()
def speech_file(tmp_path) -> Path:
    """2 s of a vowel-like chord: enough windows for every view."""
    samples = tone(220, 2.0) * 0.5 + tone(660, 2.0) * 0.3 + tone(1300, 2.0) * 0.1
    return write_wav(tmp_path / "chord.wav", samples)


def play_through(window: MainWindow, path, until: float | None = None) -> None:
    """Play a file synchronously (to its end or until `until` seconds) and draw the result."""
    assert window.open_file(path, paced=False), window.message.text()
    settle(lambda: window.worker.source is not None or window.has_message())  # decoded on the file thread
    while window.worker.source is not None:
        window.worker.step()
        update = window.worker.peek().update
        if until is not None and update is not None and update.time >= until:
            break
    window.redraw()


def traced_gates(model, window_samples: np.ndarray):
    with torch.inference_mode():
        return model.trace(torch.from_numpy(window_samples.copy())[None])


# ---- showing --------------------------------------------------------------------------------------


def test_the_level_meter_shows_a_played_files_level_as_it_does_the_microphones(make_window, speech_file):
    window = make_window()
    play_through(window, speech_file, until=2.0)  # mid-sound: the chord's RMS is about -12 dBFS
    assert -20 < window.level_meter.level_db < -5


def test_a_played_file_fills_the_probability_mfcc_and_gate_views(make_window, speech_file):
    window = make_window()
    play_through(window, speech_file, until=2.0)  # mid-sound: the clip is padded with silence
    update = window.last_update
    assert update is not None and len(update.window) == 16_000
    np.testing.assert_allclose(window.probability_bars.probabilities, update.probabilities)
    np.testing.assert_allclose(window.mfcc_view.data, update.mfcc.T)
    assert set(window.gate_heatmaps.maps) == set(window.model.gate_names)
    frames = window.model.config.features.num_frames(16_000)
    for name, heat_map in window.gate_heatmaps.maps.items():  # layer 1 of the update, units x frames
        np.testing.assert_allclose(heat_map.data, update.gates[0][name].T, err_msg=name)
        assert heat_map.data.shape == (window.model.config.hidden_size, frames)
    assert window.level_meter.level_db > -30
    play_through(window, speech_file)
    assert "finished" in window.source_label.text()


def lstm_gates_by_hand(model, window_samples: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Every gate of every layer from the weights and the textbook equations, in numpy, step by
    step: independent of the model's `trace` (its fused kernel and its recomputation)."""

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    with torch.inference_mode():
        x = model.frontend(torch.from_numpy(window_samples.copy())[None])[0].double().numpy()  # (frames, n_mfcc)
    layers = []
    for layer in model.recurrent.layers:
        rnn = layer.rnn
        w_ih, w_hh = rnn.weight_ih_l0.detach().double().numpy(), rnn.weight_hh_l0.detach().double().numpy()
        b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach().double().numpy()
        hidden = w_hh.shape[1]
        h, c = np.zeros(hidden), np.zeros(hidden)
        kept = {name: [] for name in ("forget_gate", "input_gate", "candidate", "output_gate", "cell_state", "hidden_state")}
        for x_t in x:
            z_i, z_f, z_g, z_o = np.split(w_ih @ x_t + w_hh @ h + b, 4)  # PyTorch's row order: i, f, g, o
            f, i, g, o = sigmoid(z_f), sigmoid(z_i), np.tanh(z_g), sigmoid(z_o)
            c = f * c + i * g
            h = o * np.tanh(c)
            for name, value in zip(kept, (f, i, g, o, c, h)):
                kept[name].append(value)
        layers.append({name: np.stack(values) for name, values in kept.items()})  # (frames, hidden)
        x = layers[-1]["hidden_state"]  # the next layer's input (no dropout in inference)
    return layers


@pytest.mark.parametrize("layer", [0, 1])
def test_gate_maps_show_the_gates_the_lstm_equations_give_for_the_current_window(make_window, speech_file, layer):
    window = make_window()
    window.layer_combo.setCurrentIndex(layer)
    play_through(window, speech_file, until=2.0)
    expected = lstm_gates_by_hand(window.model, window.last_update.window)[layer]
    for name in window.model.gate_names:
        np.testing.assert_allclose(window.gate_heatmaps.maps[name].data, expected[name].T, atol=1e-4, err_msg=name)
    # and the network's own fused kernel (torch.nn.LSTM) agrees on the hidden state
    with torch.inference_mode():
        mfcc = window.model.frontend(torch.from_numpy(window.last_update.window.copy())[None])
        h0 = window.model.recurrent.layers[0].rnn(mfcc)[0][0].numpy()
    np.testing.assert_allclose(h0, lstm_gates_by_hand(window.model, window.last_update.window)[0]["hidden_state"], atol=1e-4)


def test_gate_maps_of_a_real_clip_match_the_lstm_equations(make_window, speech_commands_dir):
    clip = sorted((speech_commands_dir / "yes").glob("*.wav"))[0]
    window = make_window()
    play_through(window, clip, until=2.0)
    expected = lstm_gates_by_hand(window.model, window.last_update.window)[0]["forget_gate"]
    np.testing.assert_allclose(window.gate_heatmaps.maps["forget_gate"].data, expected.T, atol=1e-4)


def test_the_time_axis_of_the_maps_puts_a_click_where_it_was_heard(make_window, tmp_path):
    """A click 0.3 s before the end of the window shows in the MFCC column drawn at -0.3 s."""
    samples = np.zeros(16_000 * 5, np.float32)  # a recording: played as it is, without padding
    click_at = 2.0 - 0.3  # the window drawn at t = 2.0 s ends 0.3 s after the click
    samples[int(click_at * 16_000) : int(click_at * 16_000) + 32] = 0.9
    path = write_wav(tmp_path / "click.wav", samples)
    window = make_window()
    window.open_file(path, paced=False)
    settle(lambda: window.worker.source is not None)
    while window.worker.peek().update is None or window.worker.peek().update.time < 2.0 - 1e-9:
        window.worker.step()
    window.redraw()
    assert window.last_update.time == pytest.approx(2.0)
    view = window.mfcc_view
    column = int(np.argmax(view.data[0]))  # c0, the frame's loudness (kept by the per-window mean removal)
    rect = view._rect
    centre = rect.left() + (column + 0.5) * rect.width() / view.data.shape[1]
    hop = window.model.config.features.hop_ms / 1000
    assert abs(centre - (-0.3)) <= hop / 2 + 0.002  # within half a frame (the click is 2 ms long)


def test_gate_colour_scales_are_fixed_per_quantity(make_window, speech_file):
    window = make_window()
    play_through(window, speech_file)
    maps = window.gate_heatmaps.maps
    assert maps["forget_gate"].image.getLevels().tolist() == [0.0, 1.0]
    assert maps["candidate"].image.getLevels().tolist() == [-1.0, 1.0]
    low, high = maps["cell_state"].image.getLevels()
    assert low == -high and high > 0
    assert "clipped" in maps["cell_state"].title + maps["cell_state"].value_label


def test_a_gru_model_shows_its_own_gates(make_window, tmp_path, speech_file):
    torch.manual_seed(0)
    gru = SpeechCommandsModel(ModelConfig(cell="gru", hidden_size=8, num_layers=1), LABELS_12)
    window = make_window(save_checkpoint(tmp_path / "gru.pt", gru))
    play_through(window, speech_file)
    assert list(window.gate_heatmaps.maps) == ["reset_gate", "update_gate", "candidate", "hidden_state"]
    assert window.saturation_view.row_names[:2] == ["reset < 0.1", "reset > 0.9"]
    assert window.saturation_view.data.shape == (4, 8)  # (reset, update) x (shut, open), 8 units


def test_hovering_a_gate_map_reads_out_unit_time_and_value(make_window, speech_file):
    window = make_window()
    play_through(window, speech_file)
    heatmap = window.gate_heatmaps.maps["input_gate"]
    scene_point = heatmap.plot.vb.mapViewToScene(QPointF(-0.985, 5.5))  # first frame (centred at -0.984 s), unit 5
    heatmap._mouse_moved(scene_point)
    text = window.gate_heatmaps.readout.text()
    assert "input gate" in text and "unit 5" in text and "time" in text
    assert f"{heatmap.data[5, 0]:.3f}" in text


def test_gate_saturation_counts_frames_below_and_above_the_limits():
    gates = {
        "forget_gate": np.array([[0.05, 0.5], [0.95, 0.5], [0.02, 0.99], [0.5, 0.99]]),  # (frames, units)
        "cell_state": np.zeros((4, 2)),  # not a gate: no saturation
    }
    saturation = gate_saturation(gates)
    assert list(saturation) == ["forget_gate"]
    low, high = saturation["forget_gate"]
    np.testing.assert_allclose(low, [0.5, 0.0])
    np.testing.assert_allclose(high, [0.25, 0.5])


# ---- detections -----------------------------------------------------------------------------------


def test_threshold_and_suppression_set_in_the_window_reach_the_detector(make_window, speech_file):
    window = make_window()
    window.threshold_spin.setValue(0.35)
    window.suppression_spin.setValue(2.5)
    play_through(window, speech_file, until=1.1)
    policy = window.worker.recognizer.policy
    assert (policy.threshold, policy.suppression_seconds) == (0.35, 2.5)
    assert window.probability_bars.threshold_line.value() == pytest.approx(0.35)


def test_detections_appear_large_and_in_the_history_with_time_stamps(make_window, speech_file):
    window = make_window()
    window.threshold_spin.setValue(0.05)  # an untrained model is never confident; let anything through
    play_through(window, speech_file)
    words = window.history.words()
    assert words and window.word_view.word.text() == words[0]
    assert window.word_view.word.text() in window.model.labels
    assert "%" in window.word_view.confidence.text()
    assert float(window.history.item(0, 0).text()) > 0


def test_a_long_recording_shows_its_detections_on_the_timeline(qtbot, make_window, tmp_path, tiny_model):
    with torch.no_grad():
        tiny_model.head.bias[LABELS_12.index("go")] = 10.0  # a model that hears "go" everywhere
    long_file = write_wav(tmp_path / "long.wav", tone(300, 6.0) * 0.3)
    window = make_window(save_checkpoint(tmp_path / "go.pt", tiny_model))
    window.open_file(long_file, paced=False)
    qtbot.waitUntil(lambda: "found" in window.timeline.plot.titleLabel.text, timeout=10_000)
    # "go" everywhere: the first decision needs 3 windows (ends 1.0, 1.1, 1.2 s), then one per second
    # (the suppression time); each detection is the 1 s window that ends at its time.
    detections = window.timeline.detections
    assert [d.label for d in detections] == ["go"] * 5
    assert [d.end for d in detections] == pytest.approx([1.2, 2.2, 3.2, 4.2, 5.2])
    assert [d.end - d.start for d in detections] == pytest.approx([1.0] * 5)


@pytest.mark.real_data
def test_the_bundled_model_shows_the_spoken_word_for_real_clips(make_window, speech_commands_dir):
    if not bundled_model_path().is_file():
        pytest.skip(f"the bundled model {bundled_model_path()} has not been trained yet")
    window = make_window(model_path=None)
    assert window.model is not None, window.message.text()
    right = []
    for word in ("yes", "no", "stop"):
        clip = sorted((speech_commands_dir / word).glob("*.wav"))[0]
        play_through(window, clip)
        right.append(word in window.history.words())
    assert sum(right) >= 2, f"right word shown for {right} of yes, no, stop"


def test_the_recognition_thread_keeps_up_with_a_file_played_in_real_time(qtbot, make_window, speech_file):
    window = make_window(start_worker=True)
    window.open_file(speech_file)  # paced by the clock, on the worker thread
    qtbot.waitUntil(lambda: "finished" in window.source_label.text(), timeout=8_000)
    # Every window scored was drawn or replaced by a newer one before the next redraw; most of the
    # file's windows (one every display hop, padding included) were scored in time.
    scored = window.frames_drawn + window.updates_skipped
    hop = window.worker.recognizer.hop_samples / 16_000
    windows = (1.0 + 2.0 + 1.0 - 1.0) / hop  # 1 s of silence either side of the 2 s file, 1 s windows
    assert window.last_update is not None and scored >= 0.5 * windows


# ---- files and models -----------------------------------------------------------------------------


def test_a_bad_audio_file_gives_a_message_and_the_app_carries_on(make_window, tmp_path, speech_file):
    window = make_window()
    bad = tmp_path / "noise.wav"
    bad.write_text("not audio")
    window.open_file(bad)
    settle(lambda: "noise.wav" in window.message.text())
    play_through(window, speech_file)
    assert window.last_update is not None


def test_a_dropped_audio_file_plays_and_a_dropped_model_loads(make_window, speech_file, tmp_path):
    window = make_window()
    window.open_dropped(str(speech_file))
    assert window.source_name == speech_file.name
    torch.manual_seed(1)
    other = save_checkpoint(tmp_path / "other.pt", SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=3), LABELS_12))
    window.open_dropped(str(other))
    settle(lambda: model_settled(window))
    assert window.model.config.num_layers == 3 and window.layer_combo.count() == 3


def needs_bundled_model():
    if not bundled_model_path().is_file():
        pytest.skip(f"the bundled model {bundled_model_path()} has not been trained yet")


# ---- microphone and its failures --------------------------------------------------------------------


class FakeSoundDevice:
    """Just enough of the sounddevice module: a speaker, a 16 kHz mono microphone and a 48 kHz stereo one."""

    def __init__(self):
        self.devices = [
            {"name": "Speaker", "max_input_channels": 0, "default_samplerate": 48_000.0},
            {"name": "Built-in mic", "max_input_channels": 1, "default_samplerate": 16_000.0},
            {"name": "USB mic", "max_input_channels": 2, "default_samplerate": 48_000.0},
        ]
        self.stream = None

    def query_devices(self):
        return self.devices

    def _terminate(self):
        pass

    def _initialize(self):
        pass

    def check_input_settings(self, device, channels, samplerate, dtype):
        if samplerate != self.devices[device]["default_samplerate"]:
            raise ValueError("Invalid sample rate")

    def InputStream(self, **kwargs):
        fake = self

        class Stream:
            def __init__(self):
                self.kwargs = kwargs
                fake.stream = self

            def start(self):
                pass

            def stop(self):
                pass

            def close(self):
                pass

        return Stream()

    def feed(self, frames: np.ndarray, overflow: bool = False) -> None:
        """What PortAudio does: call the callback with a block of (frames, channels)."""
        self.stream.kwargs["callback"](frames, len(frames), None, SimpleNamespace(input_overflow=overflow))


@pytest.fixture()
def fake_microphone(monkeypatch):
    fake = FakeSoundDevice()
    monkeypatch.setattr(audio_backend, "_sd", fake)
    monkeypatch.setattr(audio_backend, "input_devices", _real_input_devices)
    return fake


def stereo_48k(seconds: float) -> np.ndarray:
    left = tone(440, seconds, sample_rate=48_000)
    return np.stack([left, 0.5 * left], axis=1)


def choose_device(window, name: str) -> None:
    names = [window.device_combo.itemData(i).name for i in range(window.device_combo.count())]
    window.device_combo.setCurrentIndex(names.index(name))


def test_the_device_picker_lists_input_devices_only(make_window, fake_microphone):
    window = make_window()
    names = [window.device_combo.itemText(i) for i in range(window.device_combo.count())]
    assert len(names) == 2 and names[0].startswith("Built-in mic") and names[1].startswith("USB mic")
    assert window.listen_button.isEnabled()


def test_a_48khz_stereo_microphone_is_mixed_down_and_resampled_to_16khz(make_window, fake_microphone):
    window = make_window()
    choose_device(window, "USB mic")
    assert window.start_microphone(), window.message.text()
    assert window.worker.source.microphone.sample_rate == 48_000
    for _ in range(15):  # 1.5 s in 100 ms callbacks
        fake_microphone.feed(stereo_48k(0.1))
    window.worker.step()
    window.redraw()
    received = window.worker.recognizer.received_samples
    assert abs(received - 24_000) < 1_000  # 1.5 s at 16 kHz, less the resampler's delay
    # The channels are averaged: (1 + 0.5) / 2 of a 0.5 tone, an RMS of 20 log10(0.375 / sqrt 2) dB
    # (left alone would read -9 dB, their sum -5.5 dB).
    assert window.level_meter.level_db == pytest.approx(20 * np.log10(0.375 / np.sqrt(2)), abs=1.0)
    heard = window.last_update.window[-8_000:]
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard))))
    assert np.fft.rfftfreq(len(heard), 1 / 16_000)[spectrum.argmax()] == pytest.approx(440, abs=5)  # at 16 kHz
    assert window.message.text() == ""


def test_the_chosen_microphone_is_remembered_between_runs(make_window, fake_microphone):
    window = make_window()
    choose_device(window, "USB mic")
    window.start_microphone()
    window.close()
    assert make_window().device_combo.currentData().name == "USB mic"


def test_an_unplugged_microphone_gives_a_message_and_listening_recovers(make_window, fake_microphone, speech_file):
    window = make_window()
    choose_device(window, "USB mic")
    window.start_microphone()
    fake_microphone.feed(stereo_48k(0.5))
    fake_microphone.stream.kwargs["finished_callback"]()  # PortAudio: the stream ended by itself
    window.worker.step()
    window.redraw()
    assert "USB mic" in window.message.text() and "unplugged" in window.message.text()
    assert not window.listen_button.isChecked()
    play_through(window, speech_file)  # file mode still works
    assert window.last_update is not None
    window.refresh_devices(rescan=True)  # plugged back in
    assert window.start_microphone()
    assert window.listen_button.isChecked()


def test_an_input_overflow_is_reported_and_listening_goes_on(make_window, fake_microphone):
    window = make_window()
    choose_device(window, "USB mic")
    window.start_microphone()
    fake_microphone.feed(stereo_48k(0.2), overflow=True)
    window.worker.step()
    window.redraw()
    assert "overflow" in window.message.text().lower()
    assert window.worker.source is not None


def test_no_microphone_gives_a_message_and_file_mode_still_works(make_window, speech_file):
    window = make_window()  # no_sound_system: no input devices
    assert "No microphone" in window.message.text()
    assert not window.listen_button.isEnabled()
    play_through(window, speech_file)
    assert window.last_update is not None


def test_without_portaudio_the_window_says_so_and_file_mode_still_works(make_window, monkeypatch, speech_file):
    real_import = builtins.__import__

    def import_without_portaudio(name, *args, **kwargs):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", import_without_portaudio)
    monkeypatch.setattr(audio_backend, "_sd", None)
    monkeypatch.setattr(audio_backend, "input_devices", _real_input_devices)
    window = make_window()
    assert "PortAudio" in window.message.text() and "audio files still works" in window.message.text()
    play_through(window, speech_file)
    assert window.last_update is not None


def test_a_microphone_that_goes_silent_without_notice_is_reported(make_window, fake_microphone, monkeypatch):
    monkeypatch.setattr(audio_backend, "STALL_SECONDS", 0.0)  # no callbacks at all from now on
    window = make_window()
    choose_device(window, "USB mic")
    window.start_microphone()
    window.worker.step()
    window.redraw()
    assert "delivers no audio" in window.message.text() and window.worker.source is None


def test_file_open_model_menu_loads_the_chosen_checkpoint(make_window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    torch.manual_seed(2)
    other = save_checkpoint(tmp_path / "chosen.pt", SpeechCommandsModel(ModelConfig(hidden_size=12, num_layers=1), LABELS_12))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args, **kwargs: (str(other), ""))
    window = make_window()
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Open &model…")
    action.trigger()
    settle(lambda: model_settled(window))
    assert window.model.config.hidden_size == 12 and "chosen.pt" in window.model_label.text()


def test_dropping_a_file_on_the_window_plays_it(make_window, speech_file):
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(speech_file))])
    event = QDropEvent(QPointF(10, 10), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)
    settle(lambda: "playing" in window.source_label.text())
    assert window.source_name == speech_file.name


def test_without_a_display_the_gui_command_says_so_instead_of_aborting(monkeypatch, capsys):
    from speechcmd.app.main_window import run_app

    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert run_app() == 2
    assert "no display found" in capsys.readouterr().err


def test_a_display_set_to_where_no_x_server_answers_is_one_sentence_not_an_abort(monkeypatch, capsys):
    import socket

    from speechcmd.app.main_window import run_app, x_server_answers

    with socket.socket() as probe:  # a TCP display whose port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1] - 6000
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("DISPLAY", f"127.0.0.1:{dead}")
    monkeypatch.setattr("sys.platform", "linux")
    assert run_app() == 2
    assert f"no X server answers at DISPLAY=127.0.0.1:{dead}" in capsys.readouterr().err

    with socket.socket() as server:  # and one where something does
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert x_server_answers(f"127.0.0.1:{server.getsockname()[1] - 6000}")


def test_without_any_model_the_window_opens_and_says_how_to_load_one(make_window, monkeypatch, tmp_path, speech_file):
    from speechcmd.model import checkpoint

    real_load = checkpoint.load_model

    def no_bundled_model(path=None, device="cpu"):
        return real_load(path or tmp_path / "missing.pt", device)

    monkeypatch.setattr(checkpoint, "load_model", no_bundled_model)
    window = make_window(model_path=None)
    assert window.model is None and "Open model" in window.message.text()
    assert not window.open_file(speech_file)
    assert "No model loaded" in window.message.text()


def test_every_file_is_decoded_off_the_gui_thread_then_plays(make_window, speech_file, monkeypatch):
    from speechcmd.app import file_player

    decoded_on = []
    from_path = file_player.FileSource.from_path

    def recording_thread(*args, **kwargs):
        decoded_on.append(threading.current_thread() is threading.main_thread())
        return from_path(*args, **kwargs)

    monkeypatch.setattr(file_player.FileSource, "from_path", recording_thread)
    window = make_window()
    assert window.open_file(speech_file, paced=False)
    assert "decoding chord.wav" in window.source_label.text()
    settle(lambda: "playing" in window.source_label.text())
    assert decoded_on == [False] and window.worker.source.duration == pytest.approx(4.0)  # 2 s + 1 s of silence each side


def test_a_bad_model_file_gives_its_reason_whole_and_the_current_model_stays(make_window, tmp_path):
    from speechcmd.model.checkpoint import CheckpointError

    window = make_window()
    model = window.model
    for name, content in (("broken.pt", b"this is not a checkpoint"), ("truncated.pt", Path(model.metadata["path"]).read_bytes()[:500])):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(CheckpointError) as reason:
            load_model(bad)
        load(window, bad)
        assert window.model is model
        assert str(reason.value) in window.message.text()  # whole, not cut off
        assert "tiny.pt" in window.message.text() and "stays loaded" in window.message.text()
        assert "tiny.pt" in window.model_label.text()


def test_file_names_are_shown_as_text_not_markup(make_window, tmp_path):
    window = make_window()
    bad = tmp_path / "<b>bold & <i>x.wav"
    bad.write_text("not audio")
    window.open_file(bad)
    settle(lambda: window.has_message() and "bold" in window.message.text())
    assert window.message.textFormat() == Qt.PlainText and "<b>bold & <i>x.wav" in window.message.text()


def test_the_layout_is_remembered_but_a_plain_start_uses_the_bundled_model_at_its_operating_point(make_window, settings):
    from PySide6.QtWidgets import QDockWidget

    needs_bundled_model()
    window = make_window()  # started with --model tiny.pt
    window.threshold_spin.setValue(0.45)
    window.findChild(QDockWidget, "timeline").hide()
    window.close()
    again = make_window(model_path=None)  # a plain start: no experiment model comes back silently
    assert again.policy == DetectionPolicy.for_model(again.model)  # as `speechcmd classify` starts
    assert again.threshold_spin.value() == pytest.approx(again.policy.threshold)
    assert Path(again.model.metadata["path"]).resolve() == bundled_model_path().resolve()
    assert "(bundled)" in again.model_label.text()
    assert again.findChild(QDockWidget, "timeline").isHidden()
    assert again.findChild(QDockWidget, "mfcc").isVisible()


def test_use_bundled_model_switches_back_from_an_experiment(make_window):
    needs_bundled_model()
    window = make_window()
    assert "tiny.pt" in window.model_label.text()
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "Use &bundled model")
    action.trigger()
    settle(lambda: model_settled(window))
    assert "(bundled)" in window.model_label.text() and window.model.config.hidden_size == 128


def install_bundled(monkeypatch, folder: Path, models: dict) -> None:
    """`models` (name -> model) saved as the bundled models, with a one-line summary each."""
    from speechcmd.model import bundled

    folder.mkdir(exist_ok=True)
    for name, model in models.items():
        config = model.config
        save_checkpoint(folder / f"{name}.pt", model, {"summary": f"{config.cell} {config.num_layers} x {config.hidden_size}, 99% somewhere"})
    monkeypatch.setattr(bundled, "bundled_path", lambda name: folder / f"{name}.pt")


def test_the_model_menu_lists_the_bundled_models_with_their_summaries_and_switches_every_view(make_window, monkeypatch, tmp_path, speech_file):
    torch.manual_seed(5)
    install_bundled(monkeypatch, tmp_path / "models", {
        "speechcmd-lstm": SpeechCommandsModel(ModelConfig(hidden_size=10, num_layers=2), LABELS_12).eval(),
        "speechcmd-mfcc-lstm": SpeechCommandsModel(ModelConfig(hidden_size=6, num_layers=1, features=FeatureConfig(n_mfcc=20, hop_ms=20)), LABELS_12).eval(),
    })
    window = make_window()  # on tiny.pt: no bundled entry is checked
    actions = {a.text().split(":")[0]: a for a in window.model_menu.actions() if a.isCheckable()}
    assert list(actions) == ["speechcmd-lstm", "speechcmd-mfcc-lstm"] and not any(a.isChecked() for a in actions.values())
    window.describe_bundled_models()  # what opening the menu does
    assert actions["speechcmd-mfcc-lstm"].text() == "speechcmd-mfcc-lstm: lstm 1 x 6, 99% somewhere"
    for name, hidden, layers, frames in (("speechcmd-mfcc-lstm", 6, 1, 49), ("speechcmd-lstm", 10, 2, 97)):
        actions[name].trigger()
        settle(lambda: model_settled(window))
        assert f"{name}.pt (bundled)" in window.model_label.text() and actions[name].isChecked()
        assert window.model.config.hidden_size == hidden and window.layer_combo.count() == layers
        play_through(window, speech_file, until=2.0)
        assert window.gate_heatmaps.maps["forget_gate"].data.shape == (hidden, frames)
        assert window.mfcc_view.data.shape[0] == window.model.config.features.n_mfcc
        assert window.probability_bars.probabilities.shape == (12,)
    load(window, window.model.metadata["path"])  # the same file opened as a file is not "bundled"
    assert not any(a.isChecked() for a in actions.values())


def test_the_model_menu_switches_between_the_shipped_models_and_every_view_follows(make_window, speech_file):
    from speechcmd.model.bundled import bundled_names

    if len(bundled_names()) < 2:
        pytest.skip("only one model is bundled in this checkout")
    window = make_window()
    actions = {a.text().split(":")[0]: a for a in window.model_menu.actions() if a.isCheckable()}
    for name in bundled_names():
        actions[name].trigger()
        settle(lambda: model_settled(window))
        assert actions[name].isChecked() and f"{name}.pt (bundled)" in window.model_label.text()
        features, config = window.model.config.features, window.model.config
        play_through(window, speech_file, until=2.0)
        assert window.gate_heatmaps.maps["cell_state"].data.shape == (config.hidden_size, features.num_frames(16_000))
        assert window.mfcc_dock.windowTitle() == features.title


def test_switching_models_drops_the_old_update_and_rebuilds_the_views_even_for_other_labels(make_window, speech_file):
    window = make_window()
    play_through(window, speech_file, until=2.0)
    window.worker.step()  # the old model's next update now waits in the mailbox
    torch.manual_seed(3)
    labels = ["_silence_", "_unknown_", "cat", "dog", "bird"]
    five = SpeechCommandsModel(ModelConfig(cell="gru", hidden_size=6, num_layers=1), labels).eval()
    window.use_model(five, "five-words.pt")
    window.redraw()  # drew the 12-label update into 5 bars before: an exception
    assert window.last_update is None
    assert window.mfcc_view.data is None and window.saturation_view.data is None
    assert window.probability_bars.labels == labels and "five-words.pt" in window.model_label.text()
    assert window.word_view.confidence.text() == "say cat, dog or bird"
    assert list(window.gate_heatmaps.maps) == list(five.gate_names) and window.layer_combo.count() == 1
    play_through(window, speech_file, until=2.0)
    assert window.probability_bars.probabilities.shape == (5,)
    assert window.gate_heatmaps.maps["hidden_state"].data.shape[0] == 6


def test_a_bad_model_named_at_start_up_falls_back_to_the_bundled_model_and_says_why(qtbot, settings, tmp_path, speech_file):
    needs_bundled_model()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    window = MainWindow(settings, str(garbage), start_worker=False)
    qtbot.addWidget(window)
    window.open_file(speech_file, paced=False)  # `speechcmd gui --model garbage.pt FILE`
    settle(lambda: model_settled(window) and window.worker.source is not None)
    assert "(bundled)" in window.model_label.text()
    assert "garbage.pt" in window.message.text() and "bundled model instead" in window.message.text()
    assert window.source_name == speech_file.name


def test_a_model_that_fails_when_run_is_refused_and_the_current_one_stays(make_window, tmp_path):
    from speechcmd.app.model_loader import try_model

    torch.manual_seed(4)
    broken = SpeechCommandsModel(ModelConfig(hidden_size=8, num_layers=1), LABELS_12).eval()
    with torch.no_grad():
        broken.recurrent.layers[0].rnn.weight_hh_l0.fill_(float("nan"))
    assert "NaN" in try_model(broken)
    window = make_window()
    model = window.model
    load(window, save_checkpoint(tmp_path / "nan.pt", broken))
    assert window.model is model and "nan.pt" in window.message.text() and "tiny.pt" in window.model_label.text()


def test_a_slow_model_file_loads_while_the_window_keeps_running(make_window, monkeypatch, tiny_checkpoint):
    from PySide6.QtCore import QTimer

    from speechcmd.model import checkpoint

    window = make_window()
    release, real_load = threading.Event(), checkpoint.load_model

    def slow_load(path=None, device="cpu"):
        release.wait(20)  # a zip bomb or a slow disk
        return real_load(path, device)

    monkeypatch.setattr(checkpoint, "load_model", slow_load)
    window.load_model(str(tiny_checkpoint))
    ticks = []
    QTimer.singleShot(0, lambda: ticks.append("GUI thread ran"))
    settle(lambda: ticks)
    assert window.loader.busy and "loading tiny.pt" in window.model_label.text()
    release.set()
    settle(lambda: model_settled(window))


def test_closing_the_window_mid_scan_stops_and_joins_the_background_jobs(make_window, tmp_path):
    recording = write_wav(tmp_path / "long.wav", tone(300, 120.0) * 0.3)
    window = make_window()
    window.open_file(recording, paced=False)
    settle(lambda: "scanning" in window.timeline.plot.titleLabel.text)
    window.close()
    assert not window.player.busy and not window.loader.busy
    assert not [t for t in threading.enumerate() if t.name in ("file-job", "model-load", "recognition")]


def test_a_damaged_settings_file_does_not_stop_the_window(make_window, settings):
    settings.setValue("view/layer", "abc")
    settings.setValue("window/state", "not bytes")
    window = make_window()
    assert window.model is not None and window.layer_combo.currentIndex() == 0


def test_the_window_fits_a_1366_by_768_laptop_screen(make_window):
    from PySide6.QtWidgets import QDockWidget

    window = make_window()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768 - 70, hint  # less a title bar and a task bar
    assert all(dock.isVisible() for dock in window.findChildren(QDockWidget))


def test_a_device_rescan_restarts_the_file_that_was_playing_audibly(make_window, fake_microphone, speech_file, monkeypatch):
    played = []
    monkeypatch.setattr(audio_backend, "play", lambda samples, sample_rate=16_000: played.append(len(samples)) or True)
    window = make_window()
    window.open_file(speech_file)  # paced by the clock and audible
    settle(lambda: "playing" in window.source_label.text())
    time.sleep(0.3)
    window.worker.step()
    window.refresh_devices(rescan=True)  # PortAudio restarts, which stops every stream
    assert len(played) == 2 and 0 < played[1] < played[0]  # on from the play head
    assert window.player.audible


def test_the_demo_recording_plays_and_the_bundled_model_finds_its_commands_in_order(make_window):
    needs_bundled_model()
    window = make_window(model_path=None)
    window.play_demo()
    settle(lambda: "found" in window.timeline.plot.titleLabel.text, timeout=60)
    assert window.source_name == "commands.flac"
    # The bundled model finds all ten, in order, and no word that was not said (resources/demo/README.md).
    words = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
    assert [d.label for d in window.timeline.detections] == words


def test_the_window_starts_from_the_operating_point_stored_with_the_model(make_window, tmp_path, tiny_model):
    stored = {"threshold": 0.8, "suppression_seconds": 0.7, "average_seconds": 0.3}
    path = save_checkpoint(tmp_path / "tuned.pt", tiny_model, {"detection_policy": stored})
    window = make_window(path)
    assert window.policy == DetectionPolicy(**stored) == window.worker.policy
    assert (window.threshold_spin.value(), window.suppression_spin.value()) == (0.8, 0.7)


def test_a_detection_shows_at_once_and_its_row_grows_to_the_peak_confidence(make_window, tmp_path, tiny_model):
    with torch.no_grad():
        tiny_model.head.bias[LABELS_12.index("go")] = 3.0  # a model that leans to "go" (its average keeps rising after the crossing)
    recording = write_wav(tmp_path / "go.wav", np.concatenate([np.zeros(16_000, np.float32), tone(300, 4.0) * 0.3]))
    window = make_window(save_checkpoint(tmp_path / "go.pt", tiny_model))
    window.threshold_spin.setValue(0.3)
    window.open_file(recording, paced=False)
    settle(lambda: window.worker.source is not None)
    while window.worker.peek().pending is None:
        window.worker.step()
    window.redraw()
    pending = window.word_view.detection
    assert window.word_view.word.text() == "go" and window.history.rowCount() == 1  # before it is final
    while window.worker.source is not None:
        window.worker.step()
    window.redraw()
    final = window.history.item(window.history.rowCount() - 1, 2).text()  # the oldest row: the first detection
    scanned = Classifier(window.model, policy=window.policy).scan([load_audio(recording)])
    assert window.history.words()[::-1] == [d.label for d in scanned]
    assert final == f"{scanned[0].score:.0%}" and scanned[0].score > pending.score


def test_an_unexpected_error_while_opening_a_file_is_shown_and_the_window_stays_usable(make_window, speech_file, monkeypatch):
    from speechcmd.app import file_player

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    window = make_window()
    monkeypatch.setattr(file_player.FileSource, "from_path", broken)
    assert window.open_file(speech_file, paced=False)
    settle(lambda: window.has_message())
    assert "internal error" in window.message.text() and "ZeroDivisionError" in window.message.text()
    assert window.source_label.text() == "idle" and not window.player.busy
    monkeypatch.undo()
    play_through(window, speech_file)  # the next file plays as ever
    assert window.last_update is not None


def test_an_unexpected_error_while_loading_a_model_keeps_the_model_in_use(make_window, tmp_path, monkeypatch):
    from speechcmd.model import checkpoint

    window = make_window()
    before = window.model

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(checkpoint, "load_model", broken)
    load(window, tmp_path / "other.pt")
    assert window.model is before
    assert "internal error" in window.message.text()


def test_quitting_with_an_unsaved_taught_model_asks_first(make_window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    window = make_window()
    window.open_teach()
    window.teach_panel.unsaved = True  # what a finished Teach training leaves: a model only in memory
    answers, saves = [QMessageBox.Cancel, QMessageBox.Save, QMessageBox.Discard], []
    monkeypatch.setattr(QMessageBox, "question", lambda *args: answers.pop(0))
    monkeypatch.setattr(window.teach_panel, "save_dialog", lambda: saves.append(1) or False)  # the user cancels the file dialog

    assert not window.close() and window.isVisible()  # Cancel: nothing closes
    assert not window.close() and saves == [1]  # Save, then the save dialog cancelled: still open
    assert window.close()  # Discard
    assert not answers


def test_quitting_after_saving_the_taught_model_does_not_ask(make_window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    window = make_window()
    window.open_teach()
    monkeypatch.setattr(QMessageBox, "question", lambda *args: pytest.fail("asked although nothing is unsaved"))
    assert window.close()


def test_the_teach_window_shows_every_control_whole_on_a_1366x768_screen(make_window):
    from PySide6.QtWidgets import QLabel, QPushButton, QScrollArea

    window = make_window()
    window.open_teach()
    teach = window.teach_window
    teach.resize(780, 768 - 40)  # what show_beside gives it on a 1366x768 screen
    QApplication.processEvents()
    panel = teach.panel
    assert teach.findChild(QScrollArea).verticalScrollBar().maximum() == 0  # Train, the report and the table: no scrolling
    for button in panel.findChildren(QPushButton):
        assert button.width() >= button.sizeHint().width(), button.text()  # "Start from the model in u", "Add wor"...
    assert panel.base_label.width() > 0 and isinstance(panel.base_label, QLabel)


def test_the_teach_menu_opens_the_panel_and_a_taught_model_goes_live(make_window, tiny_model, speech_file):
    window = make_window()
    teach_menu = next(action.menu() for action in window.menuBar().actions() if action.text() == "&Teach")
    teach_menu.actions()[0].trigger()
    assert window.teach_window.isVisible()
    assert window.teach_panel.current_base() is window.model

    taught = SpeechCommandsModel(tiny_model.config, [*tiny_model.labels, "lights"]).eval()
    window.teach_panel.model_ready.emit(taught, "taught 'lights'")

    assert window.model is taught and window.probability_bars.labels[-1] == "lights"
    assert window.model_label.text() == " Model: taught 'lights'"
    play_through(window, speech_file)
    assert window.last_update.probabilities.shape == (13,)

"""`speechcmd listen`: the live detector without a window, fed a file as if it were the microphone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from speechcmd.app import audio_backend
from speechcmd.app.audio_backend import AudioBackendError, InputDevice
from speechcmd.app.cli import main
from speechcmd.app.cli_listen import format_detection
from speechcmd.model.audio import load_audio
from speechcmd.model.checkpoint import bundled_model_path, load_model
from speechcmd.model.detection import Detection, DetectionPolicy
from conftest import ROOT, tone, write_wav

DEMO = ROOT / "resources" / "demo" / "commands.flac"
needs_bundled_model = pytest.mark.skipif(not bundled_model_path().is_file(), reason="the bundled model is absent")


def run(capsys, command, *argv):
    code = main([command, *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def classify_detections(capsys, path) -> list[dict]:
    code, out, _ = run(capsys, "classify", "--json", path)
    assert code == 0
    (result,) = [json.loads(line) for line in out.splitlines()]
    return result["detections"]


def listen_detections(capsys, path, *options) -> list[dict]:
    code, out, err = run(capsys, "listen", "--json", "--speed", 0, "--input", path, *options)
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def assert_same_detections(heard: list[dict], scanned: list[dict]) -> None:
    assert [(d["label"], d["start"], d["end"]) for d in heard] == [(d["label"], d["start"], d["end"]) for d in scanned]
    # one window at a time vs batches of windows: the same sums in another order, so the last digit may differ
    np.testing.assert_allclose([d["score"] for d in heard], [d["score"] for d in scanned], atol=2e-3)


def real_words(speech_commands_dir: Path, words: list[str], gap_seconds: float = 0.75) -> np.ndarray:
    pieces = [np.zeros(8_000, np.float32)]
    for word in words:
        pieces += [load_audio(sorted((speech_commands_dir / word).glob("*.wav"))[2]), np.zeros(int(gap_seconds * 16_000), np.float32)]
    return np.concatenate(pieces)


# ---- the same detections as classify ----------------------------------------------------------


@needs_bundled_model
def test_listen_to_the_demo_recording_finds_what_classify_finds(capsys):
    heard = listen_detections(capsys, DEMO)
    assert_same_detections(heard, classify_detections(capsys, DEMO))
    assert len(heard) >= 5
    assert all(set(d) == {"time", "start", "end", "label", "score"} and d["time"] == d["end"] for d in heard)


@needs_bundled_model
def test_listen_to_real_words_finds_what_classify_finds(capsys, tmp_path, speech_commands_dir):
    words = ["yes", "no", "stop", "left", "go"]
    path = write_wav(tmp_path / "five-words.wav", real_words(speech_commands_dir, words))
    heard = listen_detections(capsys, path)
    assert_same_detections(heard, classify_detections(capsys, path))
    assert sum(d["label"] in words for d in heard) >= 4


@needs_bundled_model
def test_a_recording_shorter_than_the_windows_padding_is_played_as_it_is_as_classify_scans_it(capsys, tmp_path, speech_commands_dir):
    path = write_wav(tmp_path / "one-word.wav", real_words(speech_commands_dir, ["stop"], gap_seconds=1.0))  # 2.5 s
    assert_same_detections(listen_detections(capsys, path), classify_detections(capsys, path))


@needs_bundled_model
def test_a_one_second_clip_is_padded_with_silence_so_the_word_is_heard(capsys, tmp_path, speech_commands_dir):
    clip = sorted((speech_commands_dir / "yes").glob("*.wav"))[2]
    code, out, _ = run(capsys, "classify", "--json", clip)
    assert json.loads(out)["label"] == "yes"
    assert [d["label"] for d in listen_detections(capsys, clip)] == ["yes"]


# ---- output -------------------------------------------------------------------------------------


def test_human_lines_keep_their_columns_past_10_and_100_seconds():
    lines = [format_detection(Detection(end - 1, end, label, score), width=5) for end, label, score in
             [(1.3, "yes", 0.78), (12.34, "stop", 0.931), (123.4, "right", 0.7), (4321.0, "go", 1.0)]]  # fmt: skip
    assert lines[1] == "   12.34 s  stop   0.93"
    assert len({line.index(" s ") for line in lines}) == 1
    assert len({len(line) for line in lines}) == 1


def test_a_file_is_played_in_real_time_scaled_by_speed(capsys, tmp_path, tiny_checkpoint):
    path = write_wav(tmp_path / "two-seconds.wav", tone(440, 2.0))
    started = time.monotonic()
    code, _, err = run(capsys, "listen", "--model", tiny_checkpoint, "--input", path, "--speed", 4)
    assert code == 0, err
    assert 0.45 <= time.monotonic() - started < 2.0


# ---- --on WORD COMMAND --------------------------------------------------------------------------

RECORDER = """\
import json, os, sys
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"argv": sys.argv[2:], "env": {k: v for k, v in os.environ.items() if k.startswith("SPEECHCMD_")}}) + "\\n")
print("the command's own output")
"""


@needs_bundled_model
def test_on_runs_the_program_without_a_shell_and_hands_it_the_word_in_the_environment(capfd, tmp_path):
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    calls, marker = tmp_path / "calls.jsonl", tmp_path / "expanded"
    command = f"{sys.executable} {recorder} {calls} '$(touch {marker})' $HOME"
    code = main(["listen", "--json", "--speed", "0", "--input", str(DEMO), "--on", "yes", command])
    out, err = capfd.readouterr()
    assert code == 0, err
    heard = [json.loads(line) for line in out.splitlines()]  # the command's output went to stderr, not among the JSON
    assert "the command's own output" in err
    runs = [json.loads(line) for line in calls.read_text().splitlines()]  # the input ended: listen waited for them
    assert len(runs) == sum(d["label"] == "yes" for d in heard) >= 1
    assert runs[0]["argv"] == [f"$(touch {marker})", "$HOME"] and not marker.exists()
    first_yes = next(d for d in heard if d["label"] == "yes")
    assert runs[0]["env"]["SPEECHCMD_WORD"] == "yes"
    assert float(runs[0]["env"]["SPEECHCMD_TIME"]) == pytest.approx(first_yes["end"])
    assert 0.0 < float(runs[0]["env"]["SPEECHCMD_SCORE"]) <= first_yes["score"] + 1e-3  # heard at once, before its peak


# ---- what a user can get wrong ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--on", "banana", "true"], "banana"),
        (["--on", "_silence_", "true"], "_silence_"),
        (["--on", "yes", "no-such-program-here --flag"], "no-such-program-here"),
        (["--on", "yes", "'unbalanced"], "quotes"),
        (["--on", "yes", ""], "empty"),
        (["--threshold", "1.5"], "--threshold"),
        (["--speed", "-1"], "--speed"),
        (["--device", "cuda:7"], "cuda:7"),
    ],
)
def test_a_bad_option_is_one_sentence_naming_it_and_exit_2(capsys, tmp_path, tiny_checkpoint, options, named):
    path = write_wav(tmp_path / "tone.wav", tone(440, 2.0))
    code, out, err = run(capsys, "listen", "--model", tiny_checkpoint, "--input", path, *options)
    assert code == 2 and out == ""
    assert named in err and err.count("\n") == 1 and "Traceback" not in err
    if options[0] == "--on" and named in ("banana", "_silence_"):
        assert "yes, no, up, down" in err  # the words it can use


def test_a_missing_input_file_is_named_with_exit_2(capsys, tmp_path, tiny_checkpoint):
    code, _, err = run(capsys, "listen", "--model", tiny_checkpoint, "--input", tmp_path / "nope.flac")
    assert code == 2 and "nope.flac" in err and err.count("\n") == 1


FAKE_MICS = [InputDevice(0, "Built-in Audio Analog Stereo", 2, 48_000.0), InputDevice(3, "USB Headset Mic", 1, 16_000.0)]


@pytest.fixture()
def fake_mics(monkeypatch):
    monkeypatch.setattr(audio_backend, "input_devices", lambda refresh=False: list(FAKE_MICS))
    monkeypatch.setattr(audio_backend, "sounddevice", lambda: SimpleNamespace(default=SimpleNamespace(device=(3, -1))))


@pytest.mark.parametrize(("mic", "named"), [("Bluetooth", "--mic Bluetooth: no such microphone"), ("7", "--mic 7: no such microphone")])
def test_an_unknown_microphone_is_named_and_the_known_ones_listed(capsys, fake_mics, tiny_checkpoint, mic, named):
    code, _, err = run(capsys, "listen", "--model", tiny_checkpoint, "--mic", mic)
    assert code == 2 and named in err and "3: USB Headset Mic" in err and err.count("\n") == 1


def test_no_sound_system_is_one_sentence_and_exit_2(capsys, monkeypatch, tiny_checkpoint):
    def no_portaudio():
        raise AudioBackendError("The sound system is unavailable (PortAudio library not found); install libportaudio2.")

    monkeypatch.setattr(audio_backend, "sounddevice", no_portaudio)
    code, _, err = run(capsys, "listen", "--model", tiny_checkpoint)
    assert code == 2 and "PortAudio" in err and err.count("\n") == 1


def test_no_microphone_suggests_input(capsys, monkeypatch, tiny_checkpoint):
    monkeypatch.setattr(audio_backend, "input_devices", lambda refresh=False: [])
    code, _, err = run(capsys, "listen", "--model", tiny_checkpoint)
    assert code == 2 and "no microphone found" in err and "--input" in err


def test_list_mics_marks_the_default(capsys, fake_mics):
    code, out, _ = run(capsys, "listen", "--list-mics")
    assert code == 0 and out.splitlines() == ["    0  Built-in Audio Analog Stereo (2 ch, 48 kHz)", "*   3  USB Headset Mic (1 ch, 16 kHz)"]


# ---- the microphone and Ctrl-C ------------------------------------------------------------------


class FakeMicrophone:
    """Hands out a recording in 0.3 s blocks as a microphone would, then presses Ctrl-C."""

    opened: list[FakeMicrophone] = []

    def __init__(self, device: InputDevice, samples: np.ndarray):
        self.name, self.samples, self.position, self.closed = device.name, samples, 0, False
        self.finished = False
        FakeMicrophone.opened.append(self)

    def read(self) -> np.ndarray:
        if self.position >= len(self.samples):
            os.kill(os.getpid(), signal.SIGINT)
            return np.zeros(0, np.float32)
        block = self.samples[self.position : self.position + 4_800]
        self.position += len(block)
        return block

    def warning(self):
        return None

    def close(self):
        self.closed = True


@needs_bundled_model
def test_ctrl_c_stops_the_microphone_prints_the_word_under_way_and_exits_0(capsys, monkeypatch, fake_mics, tmp_path):
    # yes, no, and up, which ends at 4.9 s: Ctrl-C at 5.5 s comes while it is still under way
    path = write_wav(tmp_path / "three-words.wav", load_audio(DEMO)[: int(5.5 * 16_000)], subtype="FLOAT")
    monkeypatch.setattr(audio_backend, "MicrophoneSource", lambda device: FakeMicrophone(device, load_audio(path)))
    previous = signal.getsignal(signal.SIGINT)
    code, out, err = run(capsys, "listen", "--json", "--mic", "usb")
    assert code == 0 and "Traceback" not in err and "listening to 'USB Headset Mic'" in err
    assert FakeMicrophone.opened[-1].name == "USB Headset Mic" and FakeMicrophone.opened[-1].closed
    assert signal.getsignal(signal.SIGINT) is previous
    heard = [json.loads(line) for line in out.splitlines()]
    assert_same_detections(heard, classify_detections(capsys, path))  # classify ends the last one at the end of the file
    assert heard and heard[-1]["end"] > 5.5 - DetectionPolicy.for_model(load_model(None)).suppression_seconds


@pytest.mark.slow
@needs_bundled_model
def test_ctrl_c_in_a_terminal_ends_a_real_time_run_quietly_with_exit_0():
    process = subprocess.Popen(
        [sys.executable, "-m", "speechcmd.app.cli", "listen", "--json", "--input", str(DEMO)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    started = time.monotonic()
    first = process.stdout.readline()  # flushed per line, so it arrives while the file plays
    waited = time.monotonic() - started
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "Traceback" not in err
    first_detection = json.loads(first)
    assert waited >= first_detection["end"]  # not before its audio was played
    assert all(json.loads(line)["end"] <= waited + 3 for line in rest.splitlines())  # stopped long before the file's end

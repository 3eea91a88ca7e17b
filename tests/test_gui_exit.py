"""The app as a process: closing it while background jobs run exits cleanly (no abort, exit code 0)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from conftest import tone, write_wav

SCRIPT = """
import sys, time
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from speechcmd.app import audio_backend
from speechcmd.app.main_window import MainWindow

audio_backend.play = lambda samples, sample_rate=16_000: False
app = QApplication([])
window = MainWindow(QSettings(sys.argv[3], QSettings.IniFormat), sys.argv[1])
window.show()

def close_when_scanning():
    if "scanning" in window.timeline.plot.titleLabel.text:
        QTimer.singleShot(200, window.close)
        QTimer.singleShot(300, app.quit)
    else:
        QTimer.singleShot(20, close_when_scanning)

def open_when_loaded():
    if window.model is None:
        QTimer.singleShot(20, open_when_loaded)
    else:
        window.open_file(sys.argv[2])
        close_when_scanning()

open_when_loaded()
sys.exit(app.exec())
"""


def test_closing_the_app_while_a_long_recording_is_scanned_exits_cleanly(tmp_path, tiny_checkpoint):
    recording = write_wav(tmp_path / "long.wav", np.tile(tone(300, 1.0) * 0.3, 180))  # 3 minutes
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_checkpoint), str(recording), str(tmp_path / "settings.ini")],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "terminate called" not in result.stderr


def test_screenshots_without_their_data_fail_and_leave_the_docs_pictures_alone(tmp_path):
    from conftest import ROOT

    docs = sorted((ROOT / "docs").glob("*.png"))
    before = {path: path.stat().st_mtime_ns for path in docs}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "screenshots.py"), str(tmp_path / "missing-clip.wav")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "missing-clip.wav" in result.stderr
    assert {path: path.stat().st_mtime_ns for path in docs} == before


SLOW_LOAD = """
import sys, time
import torch
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication
from speechcmd.model import checkpoint

real = checkpoint.load_model

def slow(path):  # a model whose loading keeps a thread inside torch for seconds
    deadline, x = time.monotonic() + 7, torch.randn(300, 300)
    while time.monotonic() < deadline:
        x = torch.tanh(x @ x.T / 300)
    return real(path)

checkpoint.load_model = slow
from speechcmd.app.main_window import MainWindow

app = QApplication([])
window = MainWindow(QSettings(sys.argv[2], QSettings.IniFormat), sys.argv[1])
window.show()
QTimer.singleShot(300, window.close)
QTimer.singleShot(400, app.quit)
sys.exit(app.exec())
"""


def test_closing_the_app_while_a_slow_model_loads_exits_cleanly(tmp_path, tiny_checkpoint):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", SLOW_LOAD, str(tiny_checkpoint), str(tmp_path / "settings.ini")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]  # it was 134: "terminate called without an active exception"
    assert "terminate called" not in result.stderr

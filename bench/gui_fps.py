"""How fast does the window redraw while recognizing a file played in real time?

Drives the real main window (offscreen by default; run under `xvfb-run -a` with
QT_QPA_PLATFORM=xcb for an X server) from a file source paced at real-time speed, and prints JSON:
windows drawn per second (each a new 1 s window: gates, MFCC, bars), windows scored by the
recognizer, windows skipped because a newer one was ready, and the process's CPU use.

    .venv/bin/python bench/gui_fps.py [--seconds 10] [--model PATH] [--file AUDIO]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "speech_commands_12"


def bench_audio(seconds: float, folder: Path) -> Path:
    """Real clips back to back when the data set is here, else a chord with gaps."""
    import soundfile as sf

    from speechcmd.model.audio import load_audio

    clips = sorted(DATA.glob("*/*.wav"))[::97] if DATA.is_dir() else []
    pieces, total = [], 0
    rng = np.random.default_rng(0)
    while total < seconds * 16_000:
        if clips:
            piece = load_audio(clips[len(pieces) % len(clips)])
        else:
            t = np.arange(16_000) / 16_000
            piece = (0.3 * np.sin(2 * np.pi * rng.uniform(150, 400) * t)).astype(np.float32)
        pieces += [piece, np.zeros(4_000, np.float32)]
        total += len(piece) + 4_000
    path = folder / "bench.wav"
    sf.write(path, np.concatenate(pieces)[: int(seconds * 16_000)], 16_000)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to play and measure")
    parser.add_argument("--model", help="checkpoint (default: the bundled model, else an untrained 2x128 LSTM)")
    parser.add_argument("--file", help="audio file to play (default: real clips back to back)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from speechcmd.app import audio_backend
    from speechcmd.app.main_window import MainWindow
    from speechcmd.model.checkpoint import bundled_model_path, save_checkpoint
    from speechcmd.model.network import ModelConfig, SpeechCommandsModel

    folder = Path(tempfile.mkdtemp(prefix="speechcmd-bench-"))
    model_path = args.model
    if model_path is None:
        if bundled_model_path().is_file():
            model_path = str(bundled_model_path())
        else:
            labels = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
            model_path = str(save_checkpoint(folder / "untrained.pt", SpeechCommandsModel(ModelConfig(), labels)))
    audio = Path(args.file) if args.file else bench_audio(args.seconds + 1.0, folder)
    audio_backend.play = lambda samples, sample_rate=16_000: False  # measure drawing, not the speaker

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(QSettings(str(folder / "settings.ini"), QSettings.IniFormat), model_path)
    window.show()
    app.processEvents()
    window.open_file(audio)
    start_wall, start_cpu = time.monotonic(), time.process_time()
    drawn0, skipped0 = window.frames_drawn, window.updates_skipped
    QTimer.singleShot(int(args.seconds * 1000), app.quit)
    app.exec()
    wall, cpu = time.monotonic() - start_wall, time.process_time() - start_cpu
    drawn, skipped = window.frames_drawn - drawn0, window.updates_skipped - skipped0
    result = {
        "platform": app.platformName(),
        "model": Path(model_path).name,
        "hidden_size": window.model.config.hidden_size,
        "num_layers": window.model.config.num_layers,
        "hop_seconds": window.worker.hop_seconds,
        "seconds": round(wall, 2),
        "windows_drawn_per_second": round(drawn / wall, 1),
        "windows_scored_per_second": round((drawn + skipped) / wall, 1),
        "windows_skipped": skipped,
        "cpu_share_of_one_core": round(cpu / wall, 3),
        "cpu_share_of_machine": round(cpu / wall / os.cpu_count(), 3),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    window.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

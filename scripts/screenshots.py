"""Screenshots of the window for docs/: a real clip through the main window, and a long recording.

Runs the app under Xvfb (re-executing itself with `xvfb-run -a` when there is no display), plays
the clip through the same pipeline as the app (synchronously, so the picture is reproducible),
stops when the word is inside the current window, and saves PNGs under docs/.

    .venv/bin/python scripts/screenshots.py [CLIP] [--model PATH] [--gru-model PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "speech_commands_12"
DEFAULT_CLIP = DATA / "yes" / "0cb74144_nohash_3.wav"
DOCS = ROOT / "docs"
SIZE = (1440, 900)


def ensure_display() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("SPEECHCMD_SCREENSHOTS_CHILD"):
        return
    if shutil.which("xvfb-run") is None:
        sys.exit("screenshots: needs an X display or xvfb-run (apt-get install xvfb xauth).")
    env = {**os.environ, "SPEECHCMD_SCREENSHOTS_CHILD": "1", "QT_QPA_PLATFORM": "xcb"}
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {SIZE[0] + 100}x{SIZE[1] + 100}x24", sys.executable, *sys.argv]
    sys.exit(subprocess.call(command, env=env))


def save_png(widget, path: Path) -> None:
    """Grab the window; quantized to 256 colours (when Pillow is there) to keep the file small."""
    widget.fps_label.clear()  # synchronous playback: the live rate means nothing here
    widget.grab().save(str(path))
    try:
        from PIL import Image
    except ImportError:
        return
    Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KB")


def play_until_word(window, path, after: float = 1.5, patience: float = 0.3) -> None:
    """Play `path` synchronously until `after` seconds, longer (by up to `patience`) if no word was detected yet."""
    from PySide6.QtWidgets import QApplication

    window.open_file(path, paced=False)
    while window.timeline.plot.titleLabel.text.endswith("scanning…"):
        QApplication.processEvents()  # a long file's whole-file scan runs on its own thread
    detected = False
    while window.worker.source is not None:
        window.worker.step()
        box = window.worker.peek()
        detected = detected or bool(box.detections)
        time = box.update.time if box.update is not None else 0.0
        if time >= after + patience or (time >= after and detected):
            break
        if box.detections:
            window.redraw()
    window.redraw()
    QApplication.processEvents()


def long_recording(folder: Path) -> Path:
    """Eight real clips with pauses, as one recording for the timeline."""
    import numpy as np
    import soundfile as sf

    from speechcmd.model.audio import load_audio

    words = ["yes", "no", "up", "down", "left", "right", "stop", "go"]
    pieces = []
    for word in words:
        clips = sorted((DATA / word).glob("*.wav"))
        if clips:
            pieces += [load_audio(clips[1]), np.zeros(8_000, np.float32)]
    path = folder / "eight-commands.wav"
    sf.write(path, np.concatenate(pieces), 16_000)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", nargs="?", default=str(DEFAULT_CLIP), help="a short clip with one command")
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--gru-model", help="also save docs/gru.png with this GRU checkpoint")
    args = parser.parse_args()
    ensure_display()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from speechcmd.app import audio_backend
    from speechcmd.app.main_window import MainWindow

    audio_backend.play = lambda samples, sample_rate=16_000: False  # silent: this is for pictures
    folder = Path(tempfile.mkdtemp(prefix="speechcmd-screenshots-"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    DOCS.mkdir(exist_ok=True)

    def window_for(model):
        window = MainWindow(QSettings(str(folder / "settings.ini"), QSettings.IniFormat), model, start_worker=False)
        window.resize(*SIZE)
        window.show()
        app.processEvents()
        if window.model is None:
            sys.exit(f"screenshots: {window.message.text()}")
        window.clear_message()  # no microphone here; that is not what the picture is about
        return window

    window = window_for(args.model)
    play_until_word(window, args.clip)
    save_png(window, DOCS / "main_window.png")

    if DATA.is_dir():
        play_until_word(window, long_recording(folder), after=4.6)
        save_png(window, DOCS / "long_recording.png")
    window.close()

    if args.gru_model:
        gru = window_for(args.gru_model)
        play_until_word(gru, args.clip)
        save_png(gru, DOCS / "gru.png")
        gru.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

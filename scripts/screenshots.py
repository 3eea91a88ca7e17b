"""Screenshots of the window for docs/, at a laptop's 1366x768 and a desktop's 1920x1080.

Runs the app under Xvfb (re-executing itself with `xvfb-run -a` and a virtual screen of each size
when there is no display), plays each input through the same pipeline as the app (synchronously,
so the pictures are reproducible) and stops when a word is inside the current window:
- `main_window[_1366x768].png`: a real held-out "yes" clip (needs ../shared/data);
- `demo[_1366x768].png`: the shipped demo recording (Play demo), with its timeline;
- `long_recording[_1366x768].png`: 2.5 minutes (the demo eight times), where timeline labels thin out;
- `start[_1366x768].png`: the window as it opens, before any audio (empty views).
Nothing in docs/ is replaced unless every picture of the run was made; without its data or its
model it says why and exits non-zero.

    .venv/bin/python scripts/screenshots.py [CLIP] [--model PATH] [--screen WxH]
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
SCREENS = ("1920x1080", "1366x768")


def under_xvfb(screen: str) -> int:
    """Run this script again on a virtual screen of `screen` pixels."""
    if shutil.which("xvfb-run") is None:
        sys.exit("screenshots: needs an X display or xvfb-run (apt-get install xvfb xauth).")
    env = {**os.environ, "SPEECHCMD_SCREENSHOTS_CHILD": "1", "QT_QPA_PLATFORM": "xcb"}
    arguments = [a for a in sys.argv[1:]] + ["--screen", screen]
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {screen}x24", sys.executable, sys.argv[0], *arguments]
    return subprocess.call(command, env=env)


def save_png(window, path: Path) -> None:
    """Grab the window; quantized to 256 colours (when Pillow is there) to keep the file small."""
    window.fps_label.clear()  # synchronous playback: the live rate means nothing here
    window.grab().save(str(path))
    try:
        from PIL import Image
    except ImportError:
        return
    Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def settle(condition, timeout: float = 120.0) -> bool:
    import time

    from PySide6.QtWidgets import QApplication

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        QApplication.processEvents()
        time.sleep(0.01)
    return True


def play_until_word(window, path, after: float = 2.0, patience: float = 0.3) -> None:
    """Play `path` synchronously until `after` seconds, longer (by up to `patience`) if no word was detected yet."""
    from PySide6.QtWidgets import QApplication

    from speechcmd.app.file_source import LONG_RECORDING_SECONDS
    from speechcmd.model.audio import audio_duration

    window.open_file(path, paced=False)
    if not settle(lambda: window.worker.source is not None or window.has_message()):
        sys.exit(f"screenshots: {path} did not start playing.")
    if window.has_message():
        sys.exit(f"screenshots: {window.message.text()}")
    if audio_duration(path) >= LONG_RECORDING_SECONDS:  # a recording's whole-file scan: wait for its own result
        settle(lambda: Path(path).name in window.timeline.plot.titleLabel.text
               and not window.timeline.plot.titleLabel.text.endswith("scanning…"))
    detected = False
    while window.worker.source is not None:
        window.worker.step()
        box = window.worker.peek()
        detected = detected or bool(box.detections) or box.pending is not None
        time = box.update.time if box.update is not None else 0.0
        if time >= after + patience or (time >= after and detected):
            break
    window.redraw()
    QApplication.processEvents()


def repeated(recording: Path, times: int, folder: Path) -> Path:
    import numpy as np
    import soundfile as sf

    from speechcmd.model.audio import load_audio

    path = folder / f"{times}x-{recording.stem}.flac"
    sf.write(path, np.tile(load_audio(recording), times), 16_000)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", nargs="?", default=str(DEFAULT_CLIP), help="a short clip with one command")
    parser.add_argument("--model", help="checkpoint (default: the bundled model)")
    parser.add_argument("--screen", choices=SCREENS, help="one screen size (default: each in turn)")
    args = parser.parse_args()
    if not Path(args.clip).is_file():
        print(f"screenshots: the clip {args.clip} is missing (the Speech Commands data, ../shared/data); "
              "docs/ is left as it is.", file=sys.stderr)
        return 2
    if not os.environ.get("SPEECHCMD_SCREENSHOTS_CHILD"):
        screens = [args.screen] if args.screen else SCREENS
        return max(under_xvfb(screen) for screen in screens)

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from speechcmd.app import audio_backend
    from speechcmd.app.main_window import MainWindow, demo_clip

    audio_backend.play = lambda samples, sample_rate=16_000: False  # silent: this is for pictures
    suffix = "" if args.screen == SCREENS[0] else f"_{args.screen}"
    folder = Path(tempfile.mkdtemp(prefix="speechcmd-screenshots-"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(QSettings(str(folder / "settings.ini"), QSettings.IniFormat), args.model, start_worker=False)
    window.show()
    settle(lambda: not window.loader.busy and "loading" not in window.model_label.text())
    settle(lambda: False, timeout=0.5)  # a few rounds of layout for the views the model brought
    if window.model is None or "instead" in window.message.text():
        print(f"screenshots: {window.message.text()}", file=sys.stderr)
        return 1
    window.clear_message()  # no microphone here; that is not what the pictures are about
    pictures = folder / "pictures"
    pictures.mkdir()
    save_png(window, pictures / f"start{suffix}.png")
    play_until_word(window, args.clip)
    save_png(window, pictures / f"main_window{suffix}.png")
    play_until_word(window, demo_clip(), after=9.0)
    save_png(window, pictures / f"demo{suffix}.png")
    play_until_word(window, repeated(demo_clip(), 8, folder), after=60.0)
    save_png(window, pictures / f"long_recording{suffix}.png")
    window.close()
    DOCS.mkdir(exist_ok=True)
    for picture in sorted(pictures.iterdir()):
        shutil.copyfile(picture, DOCS / picture.name)
        print(f"docs/{picture.name} ({args.screen}): {picture.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

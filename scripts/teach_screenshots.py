"""Screenshots of Teach mode for docs/: 'banana' taught from synthesized takes, then heard live,
at a laptop's 1366x768 and a desktop's 1920x1080.

Drives the real Teach window the way a user does (new word, takes added as files, Train, wait),
with takes spoken by espeak-ng and flite at run time, then plays a 'banana' in a voice the takes did
not have through the main window. Writes `teach[_1366x768].png` (the main window hearing it) and
`teach_window[_1366x768].png` (the Teach window after training, as placed on that screen). Runs
under Xvfb (re-executing itself with xvfb-run and a virtual screen of each size when there is no
display).

    .venv/bin/python scripts/teach_screenshots.py [--screen WxH]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshots import DOCS, SCREENS, play_until_word, save_png, under_xvfb  # noqa: E402

ESPEAK = [("en-us", 150, 50), ("en-gb", 140, 40), ("en+m3", 170, 35), ("en+f2", 150, 70),
          ("en-gb-scotland", 130, 50), ("en+m1", 160, 60), ("en+f4", 140, 55), ("en-gb-x-rp", 175, 45)]


def screen_size() -> tuple[int, int] | None:
    """The --screen WxH this process draws at; None in the parent, which runs one child per screen."""
    if "--screen" not in sys.argv:
        return None
    width, height = sys.argv[sys.argv.index("--screen") + 1].split("x")
    return int(width), int(height)


def say(text: str, path: Path, voice) -> str:
    if isinstance(voice, tuple):
        name, speed, pitch = voice
        command = ["espeak-ng", "-v", name, "-s", str(speed), "-p", str(pitch), "-w", str(path), text]
    else:
        command = ["flite", "-voice", voice, "-t", text, "-o", str(path)]
    subprocess.run(command, check=True, capture_output=True)
    return str(path)


def main() -> int:
    size = screen_size()
    if size is None:
        if os.environ.get("DISPLAY"):
            sys.argv += ["--screen", "1366x768"]
            return main()
        return max(under_xvfb(screen) for screen in SCREENS)
    suffix = "" if size == (1920, 1080) else f"_{size[0]}x{size[1]}"
    import numpy as np
    import soundfile as sf
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from speechcmd.app import audio_backend
    from speechcmd.app.main_window import MainWindow
    from speechcmd.train.takes import TakeStore

    audio_backend.play = lambda samples, sample_rate=16_000: False  # silent: this is for pictures
    folder = Path(tempfile.mkdtemp(prefix="speechcmd-teach-shots-"))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(QSettings(str(folder / "settings.ini"), QSettings.IniFormat), None, start_worker=False)
    window.resize(*size)
    window.show()
    while window.model is None:  # the bundled model loads on a thread
        app.processEvents()
    window.clear_message()
    next(a.menu() for a in window.menuBar().actions() if a.text() == "&Teach").actions()[0].trigger()
    panel, teach_window = window.teach_panel, window.teach_window
    panel.store = TakeStore(folder / "takes")  # not the user's own takes
    panel.refresh()

    panel.new_word_edit.setText("banana")
    panel.add_new_word()
    panel.add_files([say("banana", folder / f"banana{k}.wav", v) for k, v in enumerate(ESPEAK + ["awb", "rms"])])
    panel.word_combo.setCurrentIndex(panel.word_combo.findData("_unknown_"))
    panel.add_files([say(w, folder / f"{w}{k}.wav", ESPEAK[k]) for w in ("apple", "window", "music", "table") for k in range(2)])
    panel.word_combo.setCurrentIndex(panel.word_combo.findData("_silence_"))
    room = np.random.default_rng(0).normal(0, 0.004, 48_000).astype(np.float32)
    for k in range(3):
        sf.write(folder / f"room{k}.wav", room[k * 16_000 : (k + 1) * 16_000], 16_000)
    panel.add_files([str(folder / f"room{k}.wav") for k in range(3)])
    panel.word_combo.setCurrentIndex(panel.word_combo.findData("banana"))

    outcome = []
    panel.job.finished.connect(lambda adapted: outcome.append(adapted))
    panel.job.failed.connect(lambda message: outcome.append(message))
    panel.train()
    while not outcome:
        app.processEvents()
    if isinstance(outcome[0], str):
        sys.exit(f"teach_screenshots: training failed: {outcome[0]}")
    app.processEvents()
    panel.take_list.setCurrentRow(8)  # a flite take: the waveform with its spoken part shaded
    # A picture of the live view with the new word in it: the first of these unheard voices that
    # the taught model recognizes above the detection threshold (how often that happens is
    # measured on real speech in bench/teaching.py, not here).
    from speechcmd.model.inference import Classifier

    classifier = Classifier(window.model)
    voices = ["kal", ("en+m7", 145, 30), ("en+f3", 165, 65), ("en-us", 120, 60), ("en+m2", 150, 45), ("en+f1", 135, 50), "slt"]
    for k, voice in enumerate(voices):
        heard = say("banana", folder / f"heard{k}.wav", voice)
        result = next(classifier.classify_files([Path(heard)]))
        print("candidate", voice, result["label"], result["score"])
        if result["label"] == "banana" and result["score"] >= window.policy.threshold + 0.1:
            break
    play_until_word(window, heard)
    history = window.history
    print("detected live:", [history.item(r, 1).text() for r in range(history.rowCount())])
    save_png(window, DOCS / f"teach{suffix}.png")
    teach_window.show_beside()
    app.processEvents()
    teach_window.grab().save(str(DOCS / f"teach_window{suffix}.png"))
    print(f"docs/teach_window{suffix}.png: {teach_window.width()}x{teach_window.height()}, "
          f"{(DOCS / f'teach_window{suffix}.png').stat().st_size // 1024} KB")
    panel.unsaved = False  # a picture, not a model to keep
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the hostile sweep of issue 34 (scripts/hostile_sweep.py) found, one case per parameter.

Each command is given a path, number or name of a class that broke it: a name too long for the
system, a folder that may not be searched or written, a FIFO or device where a file or the clip
cache belongs, an unreadable clip, absurd numbers, a takes folder that is no folder. Each ends in
one sentence naming the thing and exit code 2, and leaves the user's files as they were.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from speechcmd.app.cli import main
from conftest import deny_listing, tone, write_wav
from test_adapt_cli import takes_folder
from test_data import make_folder
from test_fuzz import no_hang

LONG = "n" * 300  # longer than a name may be (255 bytes): looking it up fails with ENAMETOOLONG
FAST_TRAIN = ["--labels", "yes,no", "--epochs", "1", "--hidden", "8", "--layers", "1", "--batch-size", "8", "--quiet",
              "--warmup-epochs", "0", "--validation-fraction", "0", "--test-fraction", "0", "--device", "cpu"]
QUICK_ADAPT = ["--steps", "10", "--copies", "1", "--folds", "2", "--no-replay"]


def refusal(capsys, code: int) -> str:
    """The one sentence a refused command printed (and that it was refused with exit code 2)."""
    printed = capsys.readouterr()
    last = printed.err.strip().splitlines()[-1] if printed.err.strip() else ""
    assert code == 2 and "Traceback" not in printed.err and last.startswith("speechcmd "), printed.err
    return last


def tree(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder` with its kind, size and modification time."""
    return {str(p): (p.lstat().st_mode, p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture()
def world(tmp_path, tiny_checkpoint):
    """What a user has: a clip, a model, a dataset, a folder of takes."""
    return {
        "tmp": tmp_path, "model": str(tiny_checkpoint), "clip": str(write_wav(tmp_path / "clip.wav", tone())),
        "data": str(make_folder(tmp_path / "data", speakers=4, clips_per_speaker=1, words=["yes", "no"])),
        "takes": str(takes_folder(tmp_path / "takes", {"lights": 4, "_silence_": 2})),
    }


# ---- names too long for the system --------------------------------------------------------------

LONG_NAMES = {
    "classify --model": lambda w, bad: ["classify", "--model", bad + ".pt", w["clip"]],
    "listen --model": lambda w, bad: ["listen", "--model", bad + ".pt", "--input", w["clip"], "--speed", "0"],
    "evaluate --model": lambda w, bad: ["evaluate", "--model", bad + ".pt", "--data", w["data"]],
    "evaluate --data": lambda w, bad: ["evaluate", "--model", w["model"], "--data", bad],
    "train --data": lambda w, bad: ["train", "--data", bad, "--out", f"{w['tmp']}/run", *FAST_TRAIN],
    "train --out": lambda w, bad: ["train", "--data", w["data"], "--out", bad, *FAST_TRAIN],
    "train --cache-dir": lambda w, bad: ["train", "--data", w["data"], "--out", f"{w['tmp']}/run", "--cache-dir", bad, *FAST_TRAIN],
    "train --resume": lambda w, bad: ["train", "--resume", bad + ".pt", "--quiet"],
    "train --teacher": lambda w, bad: ["train", "--data", w["data"], "--out", f"{w['tmp']}/run", "--teacher", bad + ".pt", *FAST_TRAIN],
    "adapt --base": lambda w, bad: ["adapt", "--base", bad + ".pt", "--data", w["takes"], "--out", f"{w['tmp']}/new.pt", *QUICK_ADAPT],
    "adapt --data": lambda w, bad: ["adapt", "--base", w["model"], "--data", bad, "--out", f"{w['tmp']}/new.pt", *QUICK_ADAPT],
    "adapt --out": lambda w, bad: ["adapt", "--base", w["model"], "--data", w["takes"], "--out", bad + ".pt", *QUICK_ADAPT],
    "adapt --replay": lambda w, bad: ["adapt", "--base", w["model"], "--data", w["takes"], "--out", f"{w['tmp']}/new.pt",
                                      "--steps", "10", "--copies", "1", "--folds", "2", "--replay", bad],
}


@pytest.mark.parametrize("where", LONG_NAMES, ids=list(LONG_NAMES))
def test_a_name_too_long_for_the_system_is_one_sentence_naming_it(world, capsys, where):
    bad = f"{world['tmp']}/{LONG}"
    before = tree(world["tmp"])
    sentence = refusal(capsys, main(LONG_NAMES[where](world, bad)))
    assert LONG[:50] in sentence and "too long" in sentence.lower()
    assert tree(world["tmp"]) == before  # nothing made, nothing changed


# ---- folders that may not be searched or written ------------------------------------------------


@pytest.fixture()
def locked(tmp_path, monkeypatch) -> Path:
    """A folder that may be neither searched nor written, for root too: what is under it cannot
    even be looked up (stat fails with EACCES), as under a folder of mode 000 for any other user."""
    folder = tmp_path / "locked"
    folder.mkdir()
    real_stat, real_access = os.stat, os.access

    def stat(path, *args, **kwargs):
        if Path(os.fsdecode(path)).is_relative_to(folder) and Path(os.fsdecode(path)) != folder:
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_stat(path, *args, **kwargs)

    def access(path, mode, *args, **kwargs):
        return False if Path(os.fsdecode(path)) == folder else real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "access", access)
    return folder


@pytest.mark.parametrize("option", ["--out", "--cache-dir"])
def test_a_run_or_cache_folder_under_a_folder_that_may_not_be_searched_is_one_sentence(world, capsys, locked, option):
    extra = ["--out", str(world["tmp"] / "run")] if option == "--cache-dir" else []
    code = main(["train", "--data", world["data"], *extra, option, str(locked / "run"), *FAST_TRAIN])
    sentence = refusal(capsys, code)
    assert sentence.startswith(f"speechcmd train: {option} {locked / 'run'}:") and "Permission denied" in sentence


def test_adapt_refuses_an_out_in_a_folder_that_may_not_be_written_before_any_work(world, capsys, monkeypatch):
    from speechcmd.app import cli_adapt

    locked = world["tmp"] / "read-only"  # may be searched, not written (mode 555 for any other user)
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: False if Path(os.fsdecode(path)) == locked else real_access(path, mode, *a, **k))
    monkeypatch.setattr(cli_adapt, "adapt_and_save", lambda *a: pytest.fail("the takes were read"))
    code = main(["adapt", "--base", world["model"], "--data", world["takes"], "--out", str(locked / "new.pt"), *QUICK_ADAPT])
    assert f"--out {locked / 'new.pt'}: {locked} may not be written (permission denied)" in refusal(capsys, code)


def test_adapt_with_a_replay_folder_that_may_not_be_read_is_one_sentence(world, capsys, monkeypatch):
    replay = make_folder(world["tmp"] / "replay", speakers=2, clips_per_speaker=1, words=["yes", "no"])
    deny_listing(monkeypatch, replay)
    code = main(["adapt", "--base", world["model"], "--data", world["takes"], "--out", str(world["tmp"] / "new.pt"),
                 "--steps", "10", "--copies", "1", "--folds", "2", "--replay", str(replay)])
    assert f"--replay {replay}: permission denied" in refusal(capsys, code)
    assert not (world["tmp"] / "new.pt").exists()


def test_a_training_clip_that_may_not_be_read_is_named_as_such_not_as_a_system_error(world, capsys, monkeypatch):
    clip = Path(world["data"]) / "yes" / "spk000y_nohash_0.wav"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, *a, **k: False if Path(os.fsdecode(path)) == clip else real_access(path, mode, *a, **k))
    sentence = refusal(capsys, main(["train", "--data", world["data"], "--out", str(world["tmp"] / "run"),
                                     "--cache-dir", str(world["tmp"] / "cache"), *FAST_TRAIN]))
    assert f"{clip}: permission denied; check who may read it." in sentence


# ---- FIFOs and devices where a file belongs -----------------------------------------------------


def _fifo(tmp_path: Path) -> str:
    os.mkfifo(tmp_path / "pipe.wav")
    return str(tmp_path / "pipe.wav")


def _link_to(device: str):
    def make(tmp_path: Path) -> str:
        (tmp_path / "clip-link.wav").symlink_to(device)
        return str(tmp_path / "clip-link.wav")
    return make


NOT_FILES = {"a FIFO nobody writes": _fifo, "/dev/zero": lambda tmp_path: "/dev/zero", "a link to /dev/urandom": _link_to("/dev/urandom"),
             "/dev/null": lambda tmp_path: "/dev/null"}


@pytest.mark.parametrize("kind", NOT_FILES, ids=list(NOT_FILES))
@pytest.mark.parametrize("command", ["classify", "listen", "evaluate --background"])
def test_a_pipe_or_device_given_as_audio_is_refused_as_not_a_file_at_once(world, capsys, kind, command):
    path = NOT_FILES[kind](world["tmp"])
    argv = {"classify": ["classify", "--model", world["model"], path],
            "listen": ["listen", "--model", world["model"], "--input", path, "--speed", "0"],
            "evaluate --background": ["evaluate", "--model", world["model"], "--data", world["data"], "--streaming",
                                      "--minutes", "0.2", "--background", path]}[command]
    with no_hang(20):
        code = main(argv)
    printed = capsys.readouterr()
    assert code != 0 and "Traceback" not in printed.err
    assert f"{path}: is not a file (a device, pipe or socket); give an audio file" in printed.out + printed.err


@pytest.mark.parametrize("kind", ["a FIFO", "a folder", "a link to /dev/zero"])
def test_a_pipe_device_or_folder_where_the_clip_cache_goes_is_one_sentence_not_a_hang(world, capsys, kind):
    cache = world["tmp"] / "cache"
    assert main(["train", "--data", world["data"], "--out", str(world["tmp"] / "first"), "--cache-dir", str(cache), *FAST_TRAIN]) == 0
    (clips,) = (cache / "clips").glob("clips-*.npy")
    clips.unlink()
    {"a FIFO": lambda: os.mkfifo(clips), "a folder": clips.mkdir, "a link to /dev/zero": lambda: clips.symlink_to("/dev/zero")}[kind]()
    capsys.readouterr()
    with no_hang(30):
        code = main(["train", "--data", world["data"], "--out", str(world["tmp"] / "second"), "--cache-dir", str(cache), *FAST_TRAIN])
    assert f"{clips}: is not a file (a folder, device or pipe stands where the decoded-clip cache goes)" in refusal(capsys, code)
    assert clips.is_symlink() or clips.exists()  # left for the user to look at, not removed


# ---- numbers ------------------------------------------------------------------------------------

BAD_NUMBERS = {
    "listen --speed inf": (["listen", "--input", "{clip}", "--speed", "inf"], "--speed must be 0 (as fast as possible) or up to 1000"),
    "listen --speed nan": (["listen", "--input", "{clip}", "--speed", "nan"], "--speed must be"),
    "listen --speed 1e308": (["listen", "--input", "{clip}", "--speed", "1e308"], "--speed must be"),
    "evaluate --seed -1": (["evaluate", "--data", "{data}", "--streaming", "--minutes", "0.2", "--seed", "-1"], "--seed must be a whole number, 0 or more"),
    "adapt --steps 0": (["adapt", "--data", "{takes}", "--out", "{tmp}/new.pt", "--steps", "0"], "--steps must be a whole number from 1"),
    "adapt --copies -1": (["adapt", "--data", "{takes}", "--out", "{tmp}/new.pt", "--copies", "-1"], "--copies must be a whole number from 1"),
    "adapt --folds 0": (["adapt", "--data", "{takes}", "--out", "{tmp}/new.pt", "--folds", "0"], "--folds must be a whole number from 2"),
    "train --validation-fraction nan": (["train", "--data", "{data}", "--out", "{tmp}/run", "--validation-fraction", "nan"],
                                        "--validation-fraction must be a number from 0 to below 1, not nan."),
    "train --test-fraction -1": (["train", "--data", "{data}", "--out", "{tmp}/run", "--test-fraction", "-1"], "--test-fraction must be"),
    "train --unknown-fraction 0": (["train", "--data", "{data}", "--out", "{tmp}/run", "--unknown-fraction", "0"], "--unknown-fraction must be"),
}


@pytest.mark.parametrize("case", BAD_NUMBERS, ids=list(BAD_NUMBERS))
def test_an_absurd_number_is_one_sentence_naming_its_option(world, capsys, case):
    argv, expected = BAD_NUMBERS[case]
    argv = [a.format(**world) for a in argv]
    if argv[0] != "train":
        argv[1:1] = ["--base" if argv[0] == "adapt" else "--model", world["model"]]
    before = tree(world["tmp"])
    assert expected in refusal(capsys, main(argv))
    assert tree(world["tmp"]) == before


def test_adapt_on_a_folder_without_takes_names_the_folder(world, capsys):
    empty = world["tmp"] / "empty"
    empty.mkdir()
    code = main(["adapt", "--base", world["model"], "--data", str(empty), "--out", str(world["tmp"] / "new.pt"), *QUICK_ADAPT])
    assert f"speechcmd adapt: {empty}: no takes in it;" in refusal(capsys, code)


# ---- the Teach panel's folder of takes ----------------------------------------------------------


def _a_file(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "takes.wav", tone())


TAKES_FOLDERS = {"a file": _a_file, "/dev/null": lambda tmp_path: Path("/dev/null"), "under a file": lambda tmp_path: _a_file(tmp_path) / "takes",
                 "a name too long": lambda tmp_path: tmp_path / LONG}


@pytest.mark.parametrize("kind", TAKES_FOLDERS, ids=list(TAKES_FOLDERS))
def test_a_takes_folder_that_cannot_be_one_is_said_when_a_take_is_kept_and_the_panel_goes_on(qtbot, tmp_path, tiny_checkpoint, kind):
    from speechcmd.app.teach import TeachPanel
    from speechcmd.model.checkpoint import load_model
    from test_teach_takes import burst

    model = load_model(tiny_checkpoint)
    root = TAKES_FOLDERS[kind](tmp_path)
    before = tree(tmp_path)
    panel = TeachPanel(lambda: model, root)  # listing the takes already fails here for some
    qtbot.addWidget(panel)
    panel.new_word_edit.setText("lights")
    assert panel.add_new_word()
    clip = write_wav(tmp_path / "in" / "take.wav", burst())
    assert panel.add_files([str(clip)]) == 0
    assert "cannot keep the take there" in panel.status.text() and "check that it is a folder you may write to" in panel.status.text()
    assert panel.files_button.isEnabled() and panel.train_button.isEnabled()
    assert {p: v for p, v in tree(tmp_path).items() if "/in" not in p} == before

"""Every entry point against the kinds of input that broke it before (issue 34's widening pass).

For each `speechcmd` command (classify, evaluate, train, adapt, listen) and each path, number and
name it reads, the hostile classes are tried: the wrong kind of path (a folder, a FIFO, /dev/null,
a device, under a file, under /proc), unreadable, a full device, a damaged cache, absurd numbers
(NaN, inf, 1e38, negative, 0, huge), endless input (/dev/zero, /dev/urandom, a FIFO nobody
writes) and hostile names (bytes that are not UTF-8, line breaks, escape sequences, 300-character
names, a tree 1000 folders deep). The window's entry points (open a file, drop a file, the Model
menu, Teach's takes, words and save) are driven in a second process, offscreen.

Each outcome is one of
  ok         refused in one line naming the thing (exit non-zero), or a correct success
  traceback  "Traceback" (or "Exception ignored") on stderr, or an exception escaping the window
  hang       still running at the timeout, or the window's thread blocked
  unbounded  MemoryError or killed under the memory limit (RLIMIT_AS)
  crash      killed by a signal
  wrong      exit 0 where it had to refuse, NaN in the output, a window that shows no message
             or leaves its controls disabled
  vague      refused, but the last line does not name the file, device or setting
  touched    a file, FIFO or device that was there before was changed, removed or replaced

Run:  OMP_NUM_THREADS=1 .venv/bin/python scripts/hostile_sweep.py [--only classify,gui] [--subprocess]
Commands run in forked children of a process that has imported torch once (fast); --subprocess
runs each as `python -m speechcmd.app.cli ...` instead (slower, the same outcomes). As root, the
children give up the capabilities that override file modes, so that unreadable files are unreadable.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 6 << 30
TIMEOUT = 60.0
OUTCOMES = ["ok", "traceback", "hang", "unbounded", "crash", "wrong", "vague", "touched"]
TRAIN_QUICK = ["train", "--labels", "yes,no", "--epochs", "1", "--hidden", "8", "--layers", "1", "--batch-size", "8", "--quiet",
               "--device", "cpu", "--validation-fraction", "0.2", "--test-fraction", "0.2"]
LABELS_12 = ["_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]


# ---- the work folder: what a user has ---------------------------------------------------------


def tone(frequency: float = 440.0, seconds: float = 1.0, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * 16_000)) / 16_000
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    return (amplitude * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32)


def burst(seed: int = 0) -> np.ndarray:
    """Room noise with a 0.4 s 'word' in it (a take)."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 0.003, 28_800).astype(np.float32)
    samples[9600:16000] += tone(300, 0.4, amplitude=0.3, seed=seed)
    return samples


def wav(path: Path, samples: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fsencode(path), samples, 16_000, subtype="PCM_16")
    return path


def deep(top: Path, depth: int = 1000) -> Path:
    """top/d/d/.../d (depth folders), made with relative steps: the path is too long to make at once."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            new = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = new
        with open(os.open("clip.wav", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as file:
            sf.write(file, tone(), 16_000, format="WAV", subtype="PCM_16")
    finally:
        os.close(fd)
    return top / "/".join(["d"] * depth) / "clip.wav"


def plant(w: dict, kind: str, target: Path, sound: np.ndarray) -> bool:
    """A hostile member of a folder of clips at `target`: a FIFO, a link to an endless device, an
    unreadable file (made so by `lock_down`), or a tree 1000 folders deep beside it; False for
    another kind, which the caller plants."""
    if kind == "fifo":
        os.mkfifo(target)
    elif kind in ("zero", "urandom"):
        target.symlink_to(f"/dev/{kind}")
    elif kind == "unreadable":
        wav(target, sound)
        w.setdefault("chmod000", []).append(target)
    elif kind == "deep":
        deep(target.parent / "sub", 1000)
    else:
        return False
    return True


def make_data(root: Path, words=("yes", "no"), speakers: int = 6, noise: bool = True) -> Path:
    for w, word in enumerate(words):
        for s in range(speakers):
            wav(root / word / f"spk{s}{word[0]}_nohash_0.wav", tone(200 + 150 * w, seed=s))
    if noise:
        wav(root / "_background_noise_" / "white.wav", np.random.default_rng(0).normal(0, 0.1, 48_000).astype(np.float32))
    return root


def make_takes(root: Path) -> Path:
    for k in range(4):
        wav(root / "lights" / f"me_nohash_{k}.wav", burst(seed=k))
    for k in range(2):
        wav(root / "_silence_" / f"me_nohash_{k}.wav", np.random.default_rng(k).normal(0, 0.003, 24_000).astype(np.float32))
    return root


def build_work(work: Path) -> dict:
    """The fixtures every case starts from; returns named paths."""
    import torch

    from speechcmd.model.checkpoint import save_checkpoint
    from speechcmd.model.network import ModelConfig, SpeechCommandsModel

    w = {}
    w["good"] = wav(work / "good.wav", tone())
    torch.manual_seed(0)
    w["model"] = save_checkpoint(work / "tiny.pt", SpeechCommandsModel(ModelConfig(hidden_size=16, num_layers=2), LABELS_12).eval(),
                                 {"trained_on": "nothing (sweep fixture)"})
    w["data"] = make_data(work / "data")
    w["takes"] = make_takes(work / "takes")
    w["folder"] = work / "empty_folder"
    w["folder"].mkdir()
    w["fifo"] = work / "pipe.wav"
    os.mkfifo(w["fifo"])
    w["fifo_pt"] = work / "pipe.pt"
    os.mkfifo(w["fifo_pt"])
    w["dev_link"] = work / "zero.wav"  # a device behind an audio name
    w["dev_link"].symlink_to("/dev/zero")
    w["urandom"] = work / "noise.wav"
    w["urandom"].symlink_to("/dev/urandom")
    w["urandom_pt"] = work / "noise.pt"
    w["urandom_pt"].symlink_to("/dev/urandom")
    w["locked"] = wav(work / "locked.wav", tone())
    w["locked_pt"] = work / "locked.pt"
    shutil.copy(w["model"], w["locked_pt"])
    w["locked_folder"] = make_data(work / "locked_data")
    w["cut_flac"] = work / "cut.flac"  # opens; its decoder loses sync half-way through (a recording damaged part-way)
    noise = (0.1 * np.random.default_rng(1).standard_normal(16_000 * 30)).astype(np.float32)
    sf.write(str(w["cut_flac"]), noise, 16_000, subtype="PCM_16")
    w["cut_flac"].write_bytes(w["cut_flac"].read_bytes()[: w["cut_flac"].stat().st_size // 2])
    w["text"] = work / "notes.wav"
    w["text"].write_text("not audio\n")
    w["garbage_pt"] = work / "garbage.pt"
    w["garbage_pt"].write_bytes(np.random.default_rng(0).bytes(5000))
    w["cut_pt"] = work / "cut.pt"
    w["cut_pt"].write_bytes(Path(w["model"]).read_bytes()[:3000])
    w["empty_pt"] = work / "empty.pt"
    w["empty_pt"].write_bytes(b"")
    w["non_utf8"] = wav(Path(os.fsdecode(os.fsencode(work) + b"/caf\xe9\xff.wav")), tone())
    w["newline"] = wav(work / "two\nlines.wav", tone())
    w["escape"] = wav(work / "\x1b[31mred\x1b[0m.wav", tone())
    w["long_name"] = work / ("n" * 296 + ".wav")  # 300 characters: longer than a name may be
    w["long_ok"] = wav(work / ("l" * 250 + ".wav"), tone())  # 254: as long as a name may be
    w["deep_clip"] = deep(work / "deep")
    w["deep"] = work / "deep"
    # Folders of data with one hostile member each (train, evaluate, adapt read whole trees).
    for kind in ("fifo", "zero", "urandom", "unreadable", "non_utf8", "escape", "deep", "noise_fifo", "noise_zero", "label_newline"):
        root = make_data(work / f"data_{kind}")
        if plant(w, kind, root / "yes" / "x.wav", tone()):
            pass
        elif kind == "non_utf8":
            wav(Path(os.fsdecode(os.fsencode(root / "no") + b"/\xff\xfe_nohash_0.wav")), tone(350))
        elif kind == "escape":
            wav(root / "no" / "\x1b]0;title\x07_nohash_0.wav", tone(350))
        elif kind == "noise_fifo":
            os.mkfifo(root / "_background_noise_" / "pipe.wav")
        elif kind == "noise_zero":
            (root / "_background_noise_" / "zero.wav").symlink_to("/dev/zero")
        elif kind == "label_newline":
            make_data(root, words=("ye\ns",))
        w[f"data_{kind}"] = root
    for kind in ("fifo", "zero", "non_utf8", "deep", "unreadable"):
        root = make_takes(work / f"takes_{kind}")
        if not plant(w, kind, root / "lights" / "x.wav", burst(7)):  # non_utf8
            wav(Path(os.fsdecode(os.fsencode(root / "lights") + b"/\xff_nohash_9.wav")), burst(9))
        w[f"takes_{kind}"] = root
    w["under_file"] = work / "good.wav" / "x.wav"
    w["home"] = work / "home"
    w["home"].mkdir()
    return w


def lock_down(w: dict) -> None:
    """Make the 'unreadable' members unreadable (to root too, once `drop_file_capabilities` ran)."""
    for path in [w["locked"], w["locked_pt"], w["locked_folder"], *w.get("chmod000", [])]:
        os.chmod(path, 0)


def drop_file_capabilities() -> None:
    """As root, give up CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that file modes hold as for
    any user (a file of mode 000 cannot be read) while everything else root owns stays readable."""
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # (effective, permitted, inheritable) x 2
    if libc.capget(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capget")
    for i in (0, 1, 2):
        data[i] &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.capset(header, data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


# ---- cases --------------------------------------------------------------------------------------


@dataclass
class Case:
    entry: str  # classify, train, ..., gui:open
    klass: str  # the hostile class, e.g. "fifo" or "nan"
    what: str  # the argument it goes to, e.g. "PATH" or "--top-k"
    argv: list = field(default_factory=list)
    expect: str = "refuse"  # refuse | either | succeed
    names: list = field(default_factory=list)  # one of these must be in a refusal's last line
    stdout_to: str | None = None  # a device for stdout (/dev/full)
    may_run_long: bool = False  # a legal, long request: the timeout is not a failure

    @property
    def id(self) -> str:
        return f"{self.entry}:{self.what}:{self.klass}"


def shown(path) -> str:
    """How the program prints a path (app.cli_common.shown), to find it in a sentence."""
    from speechcmd.app.cli_common import shown as program_shown

    return program_shown(Path(path).name or str(path))


def path_classes(w: dict, kind: str) -> dict[str, tuple[str, str]]:
    """class -> (path, expected) for an input of `kind`: audio, model, folder, out_file, out_folder."""
    work = Path(w["good"]).parent
    if kind == "audio":
        return {
            "missing": (work / "missing.wav", "refuse"), "folder": (w["folder"], "refuse"), "fifo": (w["fifo"], "refuse"),
            "dev_null": ("/dev/null", "refuse"), "device": (w["dev_link"], "refuse"), "dev_zero": ("/dev/zero", "refuse"),
            "urandom": (w["urandom"], "refuse"), "under_file": (w["under_file"], "refuse"), "proc": ("/proc/self/status", "refuse"),
            "unreadable": (w["locked"], "refuse"), "not_audio": (w["text"], "refuse"), "non_utf8": (w["non_utf8"], "succeed"),
            "newline": (w["newline"], "succeed"), "escape": (w["escape"], "succeed"), "long_300": (w["long_name"], "refuse"),
            "long_254": (w["long_ok"], "succeed"), "deep_1000": (w["deep_clip"], "succeed"),
            "damaged_part_way": (w["cut_flac"], "refuse"),
        }
    if kind == "model":
        return {
            "missing": (work / "missing.pt", "refuse"), "folder": (w["folder"], "refuse"), "fifo": (w["fifo_pt"], "refuse"),
            "dev_null": ("/dev/null", "refuse"), "dev_zero": ("/dev/zero", "refuse"), "urandom": (w["urandom_pt"], "refuse"),
            "under_file": (work / "tiny.pt" / "x.pt", "refuse"), "proc": ("/proc/self/status", "refuse"),
            "unreadable": (w["locked_pt"], "refuse"), "damaged_garbage": (w["garbage_pt"], "refuse"),
            "damaged_cut": (w["cut_pt"], "refuse"), "damaged_empty": (w["empty_pt"], "refuse"),
            "long_300": (work / ("m" * 297 + ".pt"), "refuse"),
        }
    if kind == "folder":
        return {
            "missing": (work / "missing_folder", "refuse"), "file": (w["good"], "refuse"), "fifo": (w["fifo"], "refuse"),
            "dev_null": ("/dev/null", "refuse"), "dev_zero": ("/dev/zero", "refuse"), "under_file": (w["under_file"], "refuse"),
            "proc": ("/proc/self", "refuse"), "unreadable": (w["locked_folder"], "refuse"), "empty": (w["folder"], "refuse"),
            "long_300": (work / ("f" * 300), "refuse"),
        }
    if kind == "out_file":
        return {
            "folder": (w["folder"], "refuse"), "fifo": (w["fifo_pt"], "refuse"), "dev_null": ("/dev/null", "refuse"),
            "dev_full": ("/dev/full", "refuse"), "under_file": (work / "tiny.pt" / "new.pt", "refuse"),
            "proc": ("/proc/self/new.pt", "refuse"), "unreadable_dir": (w["locked_folder"] / "new.pt", "refuse"),
            "long_300": (work / "out" / ("o" * 297 + ".pt"), "refuse"),
        }
    if kind == "out_folder":
        return {
            "file": (w["good"], "refuse"), "fifo": (w["fifo"], "refuse"), "dev_null": ("/dev/null", "refuse"),
            "dev_full": ("/dev/full", "refuse"), "under_file": (w["under_file"], "refuse"), "proc": ("/proc/self/run", "refuse"),
            "unreadable": (w["locked_folder"] / "run", "refuse"), "long_300": (work / "out" / ("r" * 300), "refuse"),
        }
    raise ValueError(kind)


def numbers(kind: str) -> dict[str, str]:
    if kind == "int":
        return {"negative": "-1", "zero": "0", "huge": "1000000000000", "nan": "nan"}
    return {"nan": "nan", "inf": "inf", "-inf": "-inf", "1e38": "1e38", "negative": "-1", "zero": "0", "huge": "1e308"}


def cli_cases(w: dict, out: Path, only: set[str]) -> list[Case]:
    cases: list[Case] = []
    model, good, data, takes = str(w["model"]), str(w["good"]), str(w["data"]), str(w["takes"])
    train_base = [*TRAIN_QUICK, "--data", data]
    adapt_quick = ["--steps", "10", "--copies", "1", "--folds", "2", "--no-replay"]

    def add(entry, klass, what, argv, expect="refuse", names=(), **options):
        argv = [str(a) for a in argv]
        if what.startswith("--") and " " not in what and what in argv:  # --opt=-inf: argparse takes "-inf" for an option
            i = argv.index(what)
            argv[i : i + 2] = [f"{what}={argv[i + 1]}"]
        if entry in only:
            cases.append(Case(entry, klass, what, argv, expect, [n for n in names if n], **options))

    # classify PATH, --model, numbers, stdout
    for klass, (path, expect) in path_classes(w, "audio").items():
        add("classify", klass, "PATH", ["classify", "--model", model, path], expect, [shown(path)])
    for klass, (path, expect) in path_classes(w, "folder").items():
        if klass not in ("file", "fifo", "dev_null", "dev_zero", "under_file"):
            add("classify", klass, "FOLDER", ["classify", "--model", model, path], expect, [shown(path)])
    add("classify", "deep_1000", "FOLDER", ["classify", "--model", model, w["deep"]], "succeed")
    for klass, (path, expect) in path_classes(w, "model").items():
        add("classify", klass, "--model", ["classify", "--model", path, good], expect, [shown(path)])
    for klass, value in numbers("int").items():
        add("classify", klass, "--top-k", ["classify", "--model", model, "--top-k", value, good],
            "either" if klass == "huge" else "refuse", ["--top-k"])
    for klass, value in numbers("float").items():
        add("classify", klass, "--threshold", ["classify", "--model", model, "--threshold", value, good],
            "either" if klass == "zero" else "refuse", ["--threshold"])
    add("classify", "dev_full", "stdout", ["classify", "--model", model, good], "refuse", ["output"], stdout_to="/dev/full")
    add("classify", "escape", "--device", ["classify", "--model", model, "--device", "\x1b[2J", good], "refuse", ["--device"])

    # evaluate --data, --model, --background, --talk, numbers
    for klass, (path, expect) in path_classes(w, "folder").items():
        add("evaluate", klass, "--data", ["evaluate", "--model", model, "--data", path], expect, [shown(path)])
    for kind in ("fifo", "zero", "urandom", "unreadable", "non_utf8", "escape", "deep", "label_newline"):
        expect = "either"
        add("evaluate", kind, "--data member", ["evaluate", "--model", model, "--data", w[f"data_{kind}"]], expect, ["x.wav"])
    for klass, (path, expect) in path_classes(w, "model").items():
        add("evaluate", klass, "--model", ["evaluate", "--model", path, "--data", data], expect, [shown(path)])
    stream = ["evaluate", "--model", model, "--data", data, "--streaming", "--minutes", "0.2"]
    for option in ("--background", "--talk"):
        for klass, (path, expect) in path_classes(w, "audio").items():
            if klass in ("newline", "escape", "long_254", "deep_1000", "non_utf8"):
                expect = "either"  # a 1 s tone is a background, if a poor one
            add("evaluate", klass, option, [*stream, option, path], expect, [shown(path)])
        add("evaluate", "fifo_in_folder", option, [*stream, option, w["data_noise_fifo"] / "_background_noise_"], "either", ["pipe.wav"])
        add("evaluate", "zero_in_folder", option, [*stream, option, w["data_noise_zero"] / "_background_noise_"], "either", ["zero.wav"])
    for option in ("--minutes", "--snr"):
        for klass, value in numbers("float").items():
            expect = "either" if (option, klass) in (("--snr", "zero"), ("--snr", "negative")) else "refuse"
            add("evaluate", klass, option, ["evaluate", "--model", model, "--data", data, "--streaming", option, value]
                + (["--minutes", "0.2"] if option == "--snr" else []), expect, [option])
    for klass, value in numbers("int").items():
        add("evaluate", klass, "--seed", [*stream, "--seed", value], "either", ["--seed"])

    # train --data, --out, --cache-dir, --resume, --teacher, members, numbers
    def train(*extra, out_name):
        return [*train_base, "--out", out / out_name, *extra]

    for klass, (path, expect) in path_classes(w, "folder").items():
        argv = [a if a != data else str(path) for a in train_base]
        add("train", klass, "--data", [*argv, "--out", out / f"train-data-{klass}"], expect, [shown(path)])
    for kind in ("fifo", "zero", "urandom", "unreadable", "non_utf8", "escape", "deep", "noise_fifo", "noise_zero", "label_newline"):
        argv = [a if a != data else str(w[f"data_{kind}"]) for a in train_base]
        if kind == "label_newline":
            argv[argv.index("yes,no")] = "yes,no,ye\ns"
        add("train", kind, "--data member", [*argv, "--out", out / f"train-member-{kind}"], "either",
            ["x.wav", "pipe.wav", "zero.wav", "ye\\ns"])
    for klass, (path, expect) in path_classes(w, "out_folder").items():
        add("train", klass, "--out", [*train_base, "--out", path], expect, [shown(path), "--out"])
    for klass, (path, expect) in path_classes(w, "out_folder").items():
        add("train", klass, "--cache-dir", train("--cache-dir", path, out_name=f"train-cache-{klass}"), expect, [shown(path), "--cache-dir"])
    for klass in ("damaged_cache_garbage", "damaged_cache_cut", "damaged_cache_fifo", "damaged_cache_folder", "damaged_cache_dev_zero"):
        add("train", klass, "cache file", train("--cache-dir", out / f"cache-{klass}", out_name=f"train-{klass}"), "either", ["cache"])
    for klass, (path, expect) in path_classes(w, "model").items():
        add("train", klass, "--resume", ["train", "--resume", path, "--epochs", "1", "--quiet", "--device", "cpu",
                                          "--out", out / f"train-resume-{klass}"], expect, [shown(path)])
        add("train", klass, "--teacher", train("--teacher", path, out_name=f"train-teacher-{klass}"), expect, [shown(path)])
    floats = ["--dropout", "--frame-ms", "--hop-ms", "--lr", "--weight-decay", "--warmup-epochs", "--clip-grad", "--label-smoothing",
              "--distill-weight", "--temperature", "--tune-lr-scale", "--ema-decay", "--time-shift-ms", "--fragments",
              "--noise-probability", "--noise-volume", "--speed", "--volume", "--validation-fraction", "--test-fraction",
              "--unknown-fraction"]
    ints = ["--epochs", "--batch-size", "--hidden", "--layers", "--n-mfcc", "--n-mels", "--patience", "--tune-embedding",
            "--time-masks", "--freq-masks", "--seed"]
    zero_ok = {"--tune-lr-scale", "--dropout", "--weight-decay", "--warmup-epochs", "--clip-grad", "--label-smoothing", "--distill-weight",
               "--ema-decay", "--time-shift-ms", "--fragments", "--noise-probability", "--noise-volume", "--speed", "--volume",
               "--validation-fraction", "--test-fraction", "--unknown-fraction", "--patience", "--tune-embedding", "--time-masks",
               "--freq-masks", "--seed"}
    for option in floats + ints:
        for klass, value in numbers("int" if option in ints else "float").items():
            expect = "either" if (klass == "zero" and option in zero_ok) or (option == "--seed" and klass != "nan") else "refuse"
            argv = [a for a in train(out_name=f"train-{option[2:]}-{klass}")]
            if option in argv:  # replace the quick default
                i = argv.index(option)
                argv[i + 1] = value
            else:
                argv += [option, value]
            add("train", klass, option, argv, expect, [option], may_run_long=option in ("--epochs", "--patience"))
    add("train", "hostile", "--labels", train("--labels", "yes,\x1b[2J,no", out_name="train-labels-escape"), "refuse", ["--labels", "\\x1b"])
    add("train", "non_utf8", "--split-salt", train("--split-salt", os.fsdecode(b"\xff\xfe"), out_name="train-salt"), "either", ["--split-salt"])

    # adapt --base, --data, --out, --replay, members, numbers
    adapt_base = ["adapt", "--base", model, "--data", takes, *adapt_quick]
    for klass, (path, expect) in path_classes(w, "model").items():
        add("adapt", klass, "--base", ["adapt", "--base", path, "--data", takes, "--out", out / f"adapt-base-{klass}.pt", *adapt_quick],
            expect, [shown(path)])
    for klass, (path, expect) in path_classes(w, "folder").items():
        add("adapt", klass, "--data", ["adapt", "--base", model, "--data", path, "--out", out / f"adapt-data-{klass}.pt", *adapt_quick],
            expect, [shown(path)])
    for kind in ("fifo", "zero", "non_utf8", "deep", "unreadable"):
        add("adapt", kind, "--data member", ["adapt", "--base", model, "--data", w[f"takes_{kind}"], "--out", out / f"adapt-member-{kind}.pt",
                                             *adapt_quick], "either", ["x.wav"])
    for klass, (path, expect) in path_classes(w, "out_file").items():
        add("adapt", klass, "--out", [*adapt_base, "--out", path], expect, [shown(path), "--out"])
    for name, nice in (("newline", "new\nmodel.pt"), ("escape", "\x1b[31mred.pt"), ("non_utf8", os.fsdecode(b"\xff.pt"))):
        add("adapt", name, "--out", [*adapt_base, "--out", out / nice], "succeed")
    for klass, (path, expect) in path_classes(w, "folder").items():
        add("adapt", klass, "--replay", ["adapt", "--base", model, "--data", takes, "--out", out / f"adapt-replay-{klass}.pt",
                                         "--steps", "10", "--copies", "1", "--folds", "2", "--replay", path], expect, [shown(path), "--replay"])
    for option in ("--steps", "--copies", "--folds", "--seed"):
        for klass, value in numbers("int").items():
            expect = "either" if option == "--seed" and klass != "nan" else "refuse"
            argv = [*adapt_base, "--out", out / f"adapt-{option[2:]}-{klass}.pt"]
            i = argv.index(option) if option in argv else None
            if i is not None:
                argv[i + 1] = value
            else:
                argv += [option, value]
            add("adapt", klass, option, argv, expect, [option])

    # listen --input, --model, --mic, --on, numbers
    for klass, (path, expect) in path_classes(w, "audio").items():
        add("listen", klass, "--input", ["listen", "--model", model, "--input", path, "--speed", "0"], expect, [shown(path)])
    for klass, (path, expect) in path_classes(w, "model").items():
        add("listen", klass, "--model", ["listen", "--model", path, "--input", good, "--speed", "0"], expect, [shown(path)])
    for klass, value in numbers("float").items():
        add("listen", klass, "--speed", ["listen", "--model", model, "--input", good, "--speed", value],
            "either" if klass in ("zero", "1e38", "huge") else "refuse", ["--speed"])
        add("listen", klass, "--threshold", ["listen", "--model", model, "--input", good, "--speed", "0", "--threshold", value],
            "either" if klass == "zero" else "refuse", ["--threshold"])
    add("listen", "escape", "--mic", ["listen", "--model", model, "--mic", "\x1b[2Jmic"], "refuse", ["--mic", "microphone"])
    add("listen", "escape", "--on WORD", ["listen", "--model", model, "--input", good, "--speed", "0", "--on", "\x1b[2J", "true"],
        "refuse", ["--on"])
    add("listen", "newline", "--on COMMAND", ["listen", "--model", model, "--input", good, "--speed", "0", "--on", "yes", "no\nsuch"],
        "refuse", ["--on"])
    add("listen", "dev_full", "stdout", ["listen", "--model", model, "--input", w["data"] / "yes" / "spk0y_nohash_0.wav", "--speed", "0",
                                         "--threshold", "0"], "either", ["output"], stdout_to="/dev/full")
    return cases


def prepare(case: Case, out: Path, w: dict) -> None:
    """Anything a case needs made just before it runs (a damaged cache to find)."""
    if not case.klass.startswith("damaged_cache"):
        return
    cache = out / f"cache-{case.klass}"
    source = out / "cache-good"
    if not source.exists():
        raise RuntimeError("the good cache was not built")
    shutil.copytree(source, cache, symlinks=True)
    for clip_cache in (cache / "clips").glob("clips-*.npy"):
        if case.klass.endswith("garbage"):
            clip_cache.write_bytes(np.random.default_rng(0).bytes(clip_cache.stat().st_size))
        elif case.klass.endswith("cut"):
            clip_cache.write_bytes(clip_cache.read_bytes()[:200])
        elif case.klass.endswith("fifo"):
            clip_cache.unlink()
            os.mkfifo(clip_cache)
        elif case.klass.endswith("folder"):
            clip_cache.unlink()
            clip_cache.mkdir()
        elif case.klass.endswith("dev_zero"):
            clip_cache.unlink()
            clip_cache.symlink_to("/dev/zero")


# ---- running a case -----------------------------------------------------------------------------


def snapshot(top: Path, skip: set[Path]) -> dict[str, tuple]:
    """(type, size, mtime) of everything under `top`, walked with a stack (the tree is 1000 deep)."""
    seen, stack = {}, [str(top)]
    skip = {str(p) for p in skip}
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            if entry.path in skip:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            seen[entry.path] = (stat.S_IFMT(info.st_mode), info.st_size, info.st_mtime_ns, stat.S_IMODE(info.st_mode))
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return seen


def child_limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    drop_file_capabilities()


def run_forked(argv: list[str], cwd: Path, env: dict, stdout_to: str | None, timeout: float):
    """(exit code or -signal, stdout, stderr, seconds, timed out) of `speechcmd argv` in a fork."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: become `python -m speechcmd.app.cli argv`
        code = 99
        try:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(os.open(stdout_to, os.O_WRONLY) if stdout_to else out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            child_limits()
            sys.argv = ["speechcmd", *argv]
            from speechcmd.app.cli import main

            try:
                code = main(argv)
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except BaseException:
                traceback.print_exc()
                code = 1
            try:
                sys.stdout.flush()
            except BaseException as error:  # what Python prints when its final flush fails
                sys.stderr.write(f"Exception ignored in: <_io.TextIOWrapper name='<stdout>'>\n{type(error).__name__}: {error}\n")
                code = 120
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else 1)
    timed_out = False
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            timed_out, status = True, -signal.SIGKILL
            break
        time.sleep(0.02)
    seconds = time.monotonic() - start
    code = status if timed_out else (os.waitstatus_to_exitcode(status))
    out.seek(0)
    err.seek(0)
    return code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"), seconds, timed_out


def run_subprocess(argv: list[str], cwd: Path, env: dict, stdout_to: str | None, timeout: float):
    start = time.monotonic()
    stdout = open(stdout_to, "wb") if stdout_to else subprocess.PIPE
    try:
        result = subprocess.run([sys.executable, "-m", "speechcmd.app.cli", *map(os.fsencode, argv)], cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, timeout=timeout,
                                preexec_fn=child_limits)
    except subprocess.TimeoutExpired as expired:
        return -9, "", (expired.stderr or b"").decode("utf-8", "replace"), time.monotonic() - start, True
    finally:
        if stdout_to:
            stdout.close()
    return (result.returncode, (result.stdout or b"").decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace"),
            time.monotonic() - start, False)


def classify_outcome(case: Case, code: int, stdout: str, stderr: str, timed_out: bool, changed: list[str]) -> tuple[str, str]:
    """(outcome, why)."""
    last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "")
    if timed_out:
        return ("ok", "ran as long as asked") if case.may_run_long else ("hang", f"still running after {TIMEOUT:g} s")
    if "MemoryError" in stderr or "bad_alloc" in stderr or "can't allocate memory" in stderr or "Cannot allocate memory" in stderr:
        return "unbounded", last
    if code < 0:
        return ("unbounded" if code == -signal.SIGKILL else "crash"), f"signal {-code}"
    if "Traceback" in stderr or "Exception ignored" in stderr:
        return "traceback", last
    if changed:
        return "touched", ", ".join(changed[:3])
    if code == 0:
        if re.search(r"\bnan\b|\bNaN\b", stdout):
            return "wrong", "NaN in the output"
        if case.expect == "refuse":
            return "wrong", f"exit 0: {stdout.strip().splitlines()[-1][:100] if stdout.strip() else 'no output'}"
        return "ok", "succeeded"
    if case.expect == "succeed":
        return "wrong", f"exit {code}: {last[:160]}"
    if not last and "error:" in stdout:  # classify gives each file's error in its place in the table
        last = " ".join(line.strip() for line in stdout.strip().splitlines()[-2:])
    if not case.names or any(name in last for name in case.names):
        return "ok", last
    return "vague", last


def run_cli(cases: list[Case], work: Path, w: dict, out: Path, runner, log) -> list[dict]:
    results = []
    skip = {out, work / "home", work / "cache"}
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(work / "home"), "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1",
        "SPEECHCMD_CACHE": str(work / "cache"), "MPLCONFIGDIR": str(work / "home" / "mpl"), "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "SPEECHCMD_DATA": str(work / "no-data-here"),
    }
    if any(c.klass.startswith("damaged_cache") for c in cases):  # one good run leaves a cache to damage
        good_run = [*TRAIN_QUICK, "--data", str(w["data"]), "--out", str(out / "good-run"), "--cache-dir", str(out / "cache-good")]
        code, _, stderr, _, _ = runner(good_run, work, env, None, TIMEOUT)
        if code != 0:
            log(f"the good training run failed ({code}): {stderr[-400:]}")
    for n, case in enumerate(cases, 1):
        try:
            prepare(case, out, w)
        except Exception as error:
            log(f"!! [{n}/{len(cases)}] {case.id}: not run ({error})")
            continue
        before = snapshot(work, skip)
        code, stdout, stderr, seconds, timed_out = runner(case.argv, work, env, case.stdout_to, TIMEOUT)
        after = snapshot(work, skip)
        changed = [p for p, v in before.items() if after.get(p) != v]
        outcome, why = classify_outcome(case, code, stdout, stderr, timed_out, changed)
        results.append({"entry": case.entry, "class": case.klass, "what": case.what, "outcome": outcome, "why": why,
                        "code": code, "seconds": round(seconds, 2), "argv": case.argv})
        mark = "  " if outcome == "ok" else "!!"
        log(f"{mark} [{n}/{len(cases)}] {case.id}: {outcome} ({seconds:.1f} s, exit {code}) {ascii(why)[:220]}")
        if outcome == "traceback":
            log("     " + "\n     ".join(stderr.strip().splitlines()[-6:]))
    return results


# ---- the window ---------------------------------------------------------------------------------


def gui_sweep(work: Path, w: dict, log) -> list[dict]:
    """The window's entry points, in this process (run as its own process by `main`)."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from speechcmd.app import audio_backend
    from speechcmd.app.main_window import MainWindow
    from speechcmd.app.teach import TeachPanel
    from speechcmd.model.checkpoint import load_model
    from speechcmd.train.adapt import AdaptConfig

    audio_backend.input_devices = lambda refresh=False: []
    audio_backend.play = lambda samples, sample_rate=16_000: False
    audio_backend.stop_playback = lambda: None
    escaped: list[str] = []
    sys.excepthook = lambda kind, value, tb: escaped.append("".join(traceback.format_exception(kind, value, tb)))
    threading.excepthook = lambda args: escaped.append("".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)))
    app = QApplication.instance() or QApplication([])  # noqa: F841
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from screenshots import settle  # the window's threads and queued signals run until a condition holds

    results = []
    fifos = [w["fifo"], w["fifo_pt"]]

    def unblock_fifos(stop: threading.Event, after: float) -> None:
        """A FIFO that the window's thread waits on forever is opened and closed from here, so that
        the sweep goes on (and the case is counted as a hang)."""
        if stop.wait(after):
            return
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    def attempt(entry, klass, what, act, done, message, controls, expect="refuse", names=()):
        """`act()` on the GUI thread, then wait for `done()`; judge by `message()` and `controls()`."""
        escaped.clear()
        skip = {work / "home", work / "out"}
        before = snapshot(work, skip)
        stop = threading.Event()
        threading.Thread(target=unblock_fifos, args=(stop, 10.0), daemon=True).start()
        start = time.monotonic()
        try:
            act()
        except BaseException:
            escaped.append(traceback.format_exc())
        blocked = time.monotonic() - start
        finished = settle(done, 20.0)
        settle(lambda: False, 0.3)  # the answer's queued signals
        stop.set()
        text = message()
        after = snapshot(work, skip)
        changed = [p for p, v in before.items() if after.get(p) != v]
        if escaped:
            outcome, why = "traceback", escaped[-1].strip().splitlines()[-1]
        elif blocked > 2.0:
            outcome, why = "hang", f"the window's thread was blocked {blocked:.1f} s"
        elif not finished:
            outcome, why = "hang", "no answer in 20 s"
        elif changed:
            outcome, why = "touched", ", ".join(changed[:3])
        elif not controls():
            outcome, why = "wrong", "controls left disabled"
        elif expect == "refuse" and not text:
            outcome, why = "wrong", "no message shown"
        elif expect == "refuse" and names and not any(n in text for n in names):
            outcome, why = "vague", text
        elif expect == "succeed" and text and "error" in text.lower():
            outcome, why = "wrong", text
        else:
            outcome, why = "ok", text or "succeeded"
        results.append({"entry": entry, "class": klass, "what": what, "outcome": outcome, "why": why[:300], "seconds": round(blocked, 2)})
        log(f"{'  ' if outcome == 'ok' else '!!'} {entry}:{what}:{klass}: {outcome} {ascii(why)[:200]}")

    settings = QSettings(str(work / "home" / "settings.ini"), QSettings.IniFormat)
    log("the window's sweep: opening the window")
    window = MainWindow(settings, str(w["model"]), start_worker=False)
    window.show()
    settle(lambda: not window.loader.busy and "loading" not in window.model_label.text(), 60)
    model_ok = lambda: window.model is not None  # noqa: E731

    def file_done():
        return not window.player.busy

    for verb, act_on in (("open", window.open_file), ("drop", window.open_dropped)):
        for klass, (path, expect) in path_classes(w, "audio").items():
            window.clear_message()
            attempt(f"gui:{verb}", klass, "audio file", lambda p=path: act_on(str(p)), file_done,
                    lambda: window.message.text(), model_ok, expect, [Path(path).name[:20]])
            window.stop()
    for verb, act_on in (("model menu", window.load_model), ("drop", window.open_dropped)):
        for klass, (path, expect) in path_classes(w, "model").items():
            if verb == "drop" and not str(path).endswith(".pt"):
                continue  # a drop takes a .pt as a model, anything else as audio (tried above)
            window.clear_message()
            attempt(f"gui:{verb}", klass, "model file", lambda p=path: act_on(str(p)),
                    lambda: not window.loader.busy and "loading" not in window.model_label.text(),
                    lambda: window.message.text(), model_ok, expect, [Path(path).name[:20]])

    # Teach: takes from files, names of words, the takes folder, saving
    quick = AdaptConfig(steps=10, copies=1, folds=2)
    base = load_model(w["model"])
    panel = TeachPanel(lambda: base, work / "home" / "takes", config=quick, replay=None)
    panel.show()
    panel.new_word_edit.setText("lights")
    panel.add_new_word()
    teach_controls = lambda: panel.files_button.isEnabled() and panel.train_button.isEnabled()  # noqa: E731
    for klass, (path, expect) in path_classes(w, "audio").items():
        if expect == "succeed":
            expect = "either"  # a tone is not a take of speech: refused or kept, as long as it is said
        panel._say("")
        attempt("gui:teach", klass, "take file", lambda p=path: panel.add_files([str(p)]), lambda: True,
                lambda: panel.status.text(), teach_controls, expect, [Path(path).name[:20]])
    for klass, name in (("newline", "two\nwords"), ("escape", "\x1b[31mred"), ("long_300", "w" * 300), ("empty", ""),
                        ("dot_dot", ".."), ("slash", "a/b"), ("nul", "a\x00b"), ("surrogate", "caf\udcff"), ("rtl", "\u202eevil")):
        panel._say("")
        attempt("gui:teach", klass, "word name", lambda n=name: (panel.new_word_edit.setText(n), panel.add_new_word()), lambda: True,
                lambda: panel.status.text(), teach_controls, "either")
    for klass, (path, expect) in path_classes(w, "out_folder").items():
        def build(p=path):
            other = TeachPanel(lambda: base, p, config=quick, replay=None)
            other.new_word_edit.setText("lights")
            other.add_new_word()
            other.add_files([str(w["takes"] / "lights" / "me_nohash_0.wav")])
            holder.append(other)
        holder: list = []
        attempt("gui:teach", klass, "takes folder", build, lambda: True,
                lambda: holder[0].status.text() if holder else "", lambda: bool(holder) and holder[0].files_button.isEnabled(),
                "refuse", [Path(path).name[:20]])
        for other in holder:
            other.job.shutdown()
            other.deleteLater()
    # Train once on good takes, then save to each hostile place
    good_panel = TeachPanel(lambda: base, work / "out" / "gui-takes", config=quick, replay=None)
    good_panel.new_word_edit.setText("lights")
    good_panel.add_new_word()
    good_panel.add_files([str(p) for p in sorted((w["takes"] / "lights").glob("*.wav"))])
    good_panel.word_combo.setCurrentIndex(good_panel.word_combo.findData("_silence_"))
    good_panel.add_files([str(p) for p in sorted((w["takes"] / "_silence_").glob("*.wav"))])
    good_panel.train()
    settle(lambda: False, 0.5)
    settle(lambda: not good_panel.job.running, 120)
    settle(lambda: False, 0.5)
    if good_panel.adapted is None:
        log(f"!! teaching the takes failed: {good_panel.status.text()}")
    else:
        for klass, (path, expect) in path_classes(w, "out_file").items():
            good_panel._say("")
            attempt("gui:teach", klass, "save model", lambda p=path: good_panel.save(str(p)), lambda: True,
                    lambda: good_panel.status.text(), lambda: good_panel.save_button.isEnabled(), expect, [Path(path).name[:20]])
    good_panel.job.shutdown()
    panel.job.shutdown()
    window.close()
    return results


# ---- the table ----------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    by_entry: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_entry[r["entry"]][r["outcome"]] += 1
    width = max([len(e) for e in by_entry] + [12])
    lines = [f"{'entry point':<{width}}  " + "  ".join(f"{o:>9}" for o in OUTCOMES) + "      all"]
    total = Counter()
    for entry, counts in by_entry.items():
        total.update(counts)
        lines.append(f"{entry:<{width}}  " + "  ".join(f"{counts[o]:>9}" for o in OUTCOMES) + f"  {sum(counts.values()):>7}")
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{total[o]:>9}" for o in OUTCOMES) + f"  {sum(total.values()):>7}")
    by_class: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_class[r["class"]][r["outcome"]] += 1
    lines += ["", "by class (not ok):"]
    for klass, counts in sorted(by_class.items()):
        bad = {o: n for o, n in counts.items() if o != "ok"}
        if bad:
            lines.append(f"  {klass:<24} " + ", ".join(f"{o} {n}" for o, n in bad.items()) + f" (of {sum(counts.values())})")
    lines += ["", "not ok:"]
    for r in results:
        if r["outcome"] != "ok":
            lines.append(f"  {r['entry']}:{r['what']}:{r['class']}: {r['outcome']}: {ascii(r['why'])[:200]}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="classify,evaluate,train,adapt,listen,gui", help="comma list of entry points")
    parser.add_argument("--match", default="", help="only cases whose id holds this text")
    parser.add_argument("--subprocess", action="store_true", help="run each command as its own `python -m speechcmd.app.cli`")
    parser.add_argument("--json", metavar="FILE", help="write every case's outcome here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--gui-in", metavar="DIR", help=argparse.SUPPRESS)  # the window's half, in its own process
    args = parser.parse_args()
    log = lambda text: print(text, flush=True)  # noqa: E731

    if args.gui_in:
        import faulthandler

        faulthandler.register(signal.SIGUSR1)  # `kill -USR1` shows where the window's sweep is
        work = Path(args.gui_in)
        w = json.loads((work / "fixtures.json").read_text())
        w = {k: Path(v) if isinstance(v, str) else v for k, v in w.items()}
        drop_file_capabilities()
        results = gui_sweep(work, w, lambda text: print(text, file=sys.stderr, flush=True))
        (work / "gui-results.json").write_text(json.dumps(results))
        os._exit(0)  # the window's threads are joined; Qt's teardown is not what is swept

    only = set(args.only.split(","))
    work = Path(tempfile.mkdtemp(prefix="hostile-sweep-"))
    try:
        w = build_work(work)
        out = work / "out"
        out.mkdir()
        (work / "cache").mkdir()
        lock_down(w)
        import torch  # noqa: F401  (imported once, before the forks)

        import speechcmd.app.cli  # noqa: F401
        import speechcmd.train.loop  # noqa: F401

        cases = [c for c in cli_cases(w, out, only) if args.match in c.id]
        runner = run_subprocess if args.subprocess else run_forked
        started = time.monotonic()
        results = run_cli(cases, work, w, out, runner, log)
        if "gui" in only:
            (work / "fixtures.json").write_text(json.dumps({k: os.fsdecode(v) if isinstance(v, Path) else None for k, v in w.items()
                                                            if isinstance(v, Path)}, ensure_ascii=True))
            env = {**os.environ, "HOME": str(work / "home"), "QT_QPA_PLATFORM": "offscreen", "XDG_RUNTIME_DIR": str(work / "home"),
                   "SPEECHCMD_CACHE": str(work / "cache"), "MPLCONFIGDIR": str(work / "home" / "mpl")}
            try:
                subprocess.run([sys.executable, __file__, "--gui-in", str(work)], env=env, timeout=900, preexec_fn=lambda: resource.setrlimit(
                    resource.RLIMIT_AS, (MEMORY_LIMIT * 2, MEMORY_LIMIT * 2)))
                gui = json.loads((work / "gui-results.json").read_text())
                results += [r for r in gui if args.match in f"{r['entry']}:{r['what']}:{r['class']}"]
            except (subprocess.TimeoutExpired, FileNotFoundError) as error:
                log(f"!! the window's sweep did not finish: {error}")
                results.append({"entry": "gui", "class": "all", "what": "sweep", "outcome": "hang", "why": str(error)})
        print(f"\n{len(results)} cases in {time.monotonic() - started:.0f} s ({'subprocesses' if args.subprocess else 'forks'}, "
              f"timeout {TIMEOUT:g} s, memory limit {MEMORY_LIMIT >> 30} GiB{', as root without CAP_DAC_*' if os.geteuid() == 0 else ''})\n")
        print(table(results))
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, ensure_ascii=True))
    finally:
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)  # shutil.rmtree recurses: the tree is 1000 deep
        else:
            print(f"work folder kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

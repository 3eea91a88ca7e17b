"""`speechcmd listen`: the live detector without a window.

The microphone (or `--input FILE`, played as if it were the microphone) goes through the window's
own path: `audio_backend.MicrophoneSource` or `file_source.FileSource` hands out 16 kHz samples,
`StreamingRecognizer` scores the windows on the detector's grid with the model's stored policy,
and each detection is printed as soon as its score is final. So `listen --input FILE` finds what
`classify FILE` finds. Recognition runs on the main thread; the audio callback only copies.

`--on WORD COMMAND` runs COMMAND the moment WORD is first heard (its line follows when its score
is final, up to the suppression time later), without a shell: the word reaches the program in
environment variables, never inside a command line built from audio.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from speechcmd.app.cli_common import UserError, add_device_argument, add_model_argument, load_model_or_fail, resolve_device

if TYPE_CHECKING:
    from speechcmd.app.audio_backend import InputDevice
    from speechcmd.model.detection import Detection

# How often the microphone (or a file in real time) is read; the detector's hop is 80-100 ms.
POLL_SECONDS = 0.02
# `--speed 0` hands the recognizer this much of the file per read.
FAST_BLOCK_SECONDS = 1.0
# Faster than this is `--speed 0` in effect; far faster (1e308) would overflow the playing clock.
MAX_SPEED = 1000.0

EPILOG = """\
output:
  one line per detection, as soon as its score is final:
     12.34 s  stop   0.93     (seconds since listening began, word, confidence)
  with --json, one object per line: {"time", "start", "end", "label", "score"}, the
  fields `classify --json` gives the same detection (time is end: when the word was heard).
  Messages go to stderr, so stdout holds only detections (`listen --json | jq` works live).

--on WORD COMMAND:
  COMMAND is split as a shell would split it (shlex) but run without a shell, the moment
  WORD is heard, without waiting for it; its output goes to stderr. It gets the detection in
  SPEECHCMD_WORD, SPEECHCMD_SCORE (confidence so far) and SPEECHCMD_TIME (seconds).
  Example: speechcmd listen --on stop 'playerctl pause' --on go 'playerctl play'

exit status:
  0 when the input ends, or on Ctrl-C or SIGTERM (the detection under way is printed first;
  a second Ctrl-C stops at once, status 130); 2 for a problem you can fix, told in one
  sentence on stderr (a bad option, file, microphone or model).
"""


def add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    add_model_argument(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object per line per detection")
    parser.add_argument("--threshold", type=float, default=None, help="detection threshold (0..1; default: the model's own)")
    parser.add_argument(
        "--on", nargs=2, action="append", default=[], metavar=("WORD", "COMMAND"),
        help="run COMMAND each time WORD is heard (repeatable; see below)",
    )  # fmt: skip
    parser.add_argument("--mic", metavar="NAME", help="the microphone: its number or part of its name (default: the system's default input)")
    parser.add_argument("--list-mics", action="store_true", help="list the microphones and exit")
    parser.add_argument("--input", metavar="FILE", help="play FILE in real time as if it were the microphone")
    parser.add_argument(
        "--speed", type=float, default=1.0, metavar="X",
        help="with --input: play X times faster than real time; 0: as fast as the computer can (same detections)",
    )  # fmt: skip
    add_device_argument(parser)


def run_listen(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from speechcmd.model.detection import DetectionPolicy
    from speechcmd.model.streaming import StreamingRecognizer

    if args.list_mics:
        return list_microphones()
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise UserError(f"--threshold must be between 0 and 1, not {args.threshold}.")
    if not 0 <= args.speed <= MAX_SPEED:  # NaN too; beyond it the player's clock overflows
        raise UserError(f"--speed must be 0 (as fast as possible) or up to {MAX_SPEED:g} times real time, not {args.speed:g}.")
    if args.speed != 1 and args.input is None:
        raise UserError("--speed plays a file faster; it needs --input FILE (a microphone is always real time).")
    if args.input is not None and args.mic is not None:
        raise UserError("--input and --mic both name the sound to listen to; give one.")
    model = load_model_or_fail(args.model, resolve_device(args.device))
    policy = DetectionPolicy.for_model(model)  # the operating point chosen when the model was trained
    if args.threshold is not None:
        policy = replace(policy, threshold=args.threshold)
    actions = Actions(args.on, model.labels)

    import torch

    # One thread: a live stream scores one window at a time, and more threads only fight over the cores.
    torch.set_num_threads(1)
    source, what = open_file(args.input, args.speed) if args.input is not None else open_microphone(args.mic)
    # A file never loses audio, so no window of it is skipped even if scoring falls behind.
    backlog = {"max_backlog_windows": sys.maxsize} if args.input is not None else {}
    recognizer = StreamingRecognizer(model, policy, hop_seconds=policy.hop_seconds, with_gates=False, **backlog)
    width = max(len(word) for word in actions.words)
    print(f"speechcmd listen: {what} (threshold {policy.threshold:g}); Ctrl-C stops.", file=sys.stderr, flush=True)

    def report(detection: Detection) -> None:
        if args.json:
            line = json.dumps({"time": round(detection.end, 3), **detection.to_dict()})
        else:
            line = format_detection(detection, width)
        print(line, flush=True)

    stop = threading.Event()
    ended = False
    try:
        with stop_on_signals(stop):
            ended = listen(source, recognizer, report, actions, stop, paced=args.input is None or args.speed > 0)
    finally:
        source.close()
        actions.finish(wait=ended)
    return 0


def listen(source, recognizer, report: Callable[[Detection], None], actions: Actions, stop: threading.Event, paced: bool) -> bool:
    """Feed `source` through `recognizer` until it ends (True) or `stop` is set (False), reporting
    each final detection and starting the actions of each word as soon as it is heard."""
    from speechcmd.app.audio_backend import AudioBackendError
    from speechcmd.model.audio import AudioError

    fired = None  # (label, end) of the last detection whose actions ran
    ended = False
    while not stop.is_set() and not ended:
        try:
            samples = source.read()
        except (AudioBackendError, AudioError) as error:  # a device gone, or a recording damaged part-way
            raise UserError(str(error)) from None
        if (warning := source.warning()) is not None:
            print(f"speechcmd listen: warning: {warning}", file=sys.stderr, flush=True)
        updates = recognizer.push(samples) if len(samples) else []
        ended = bool(getattr(source, "finished", False))
        if ended:
            updates += recognizer.flush()  # the last windows of a model with stream context
        for update in updates:
            if update.detection is not None:
                report(update.detection)
            if update.pending is not None and (update.pending.label, update.pending.end) != fired:
                fired = (update.pending.label, update.pending.end)
                actions.run(update.pending)
        actions.reap()
        if paced and not ended:
            stop.wait(POLL_SECONDS)
    if (last := recognizer.finish()) is not None:  # the input ended or we were stopped: it is final now
        report(last)
    return ended


def format_detection(detection: Detection, width: int) -> str:
    return f"{detection.end:8.2f} s  {detection.label:<{width}}  {detection.score:.2f}"


# ---- sources ------------------------------------------------------------------------------------


def open_file(path: str, speed: float):
    """A `FileSource` for `path` played as it is (as `classify` scans it), `speed` times real time;
    a clip too short for `classify` to scan is padded with silence, as the window plays it."""
    from speechcmd.app.file_source import MAX_READ_SECONDS, FileSource
    from speechcmd.model import SAMPLE_RATE
    from speechcmd.model.audio import AudioError, audio_duration
    from speechcmd.model.inference import LONG_RECORDING_SECONDS

    if speed > 0:
        # Each poll may hand out what `speed` times its interval plays (and a margin), not just 2 s.
        most = max(MAX_READ_SECONDS, 4 * speed * POLL_SECONDS)
        pacing = {"paced": True, "clock": lambda: time.monotonic() * speed, "max_read_seconds": most}
    else:
        pacing = {"paced": False, "block_samples": int(FAST_BLOCK_SECONDS * SAMPLE_RATE)}
    try:
        recording = audio_duration(path) > LONG_RECORDING_SECONDS
        source = FileSource.from_path(path, recording=recording, **pacing)
    except AudioError as error:
        raise UserError(str(error)) from None
    source.restart()  # the clock starts now, not before decoding
    pace = "as fast as possible" if speed == 0 else "in real time" if speed == 1 else f"at {speed:g}x real time"
    return source, f"playing {path} {pace}"


def open_microphone(spec: str | None):
    from speechcmd.app import audio_backend

    try:
        device = choose_microphone(audio_backend.input_devices(), spec)
        return audio_backend.MicrophoneSource(device), f"listening to '{device.name}'"
    except audio_backend.AudioBackendError as error:
        raise UserError(str(error)) from None


def choose_microphone(devices: list[InputDevice], spec: str | None) -> InputDevice:
    """The device `spec` names (its number, or part of its name), or the system's default input."""
    from speechcmd.app import audio_backend

    if not devices:
        raise UserError("no microphone found; plug one in, or use --input FILE to listen to a recording.")
    if spec is None:
        try:
            default = audio_backend.sounddevice().default.device[0]
        except Exception:  # no default set: the first device will do
            default = None
        return next((d for d in devices if d.index == default), devices[0])
    known = "; ".join(f"{d.index}: {d.name}" for d in devices)
    if spec.strip().isdigit():
        found = [d for d in devices if d.index == int(spec)]
    else:
        found = [d for d in devices if d.name.lower() == spec.lower()] or [d for d in devices if spec.lower() in d.name.lower()]
    if not found:
        raise UserError(f"--mic {spec}: no such microphone (the microphones are {known}); give its number or part of its name.")
    if len(found) > 1:
        names = "; ".join(f"{d.index}: {d.name}" for d in found)
        raise UserError(f"--mic {spec}: {len(found)} microphones match ({names}); give its number or more of its name.")
    return found[0]


def list_microphones() -> int:
    from speechcmd.app import audio_backend

    try:
        devices = audio_backend.input_devices()
        default = audio_backend.sounddevice().default.device[0] if devices else None
    except audio_backend.AudioBackendError as error:
        raise UserError(str(error)) from None
    if not devices:
        print("no microphone found", file=sys.stderr)
    for device in devices:
        print(f"{'*' if device.index == default else ' '} {device.index:3d}  {device}")
    return 0


class stop_on_signals:
    """Ctrl-C (and SIGTERM) set `stop`, so the loop ends between two reads with nothing half done;
    a second Ctrl-C interrupts at once. The previous handlers come back on exit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.previous: dict = {}

    def _handle(self, signum, frame) -> None:
        self.stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


# ---- --on WORD COMMAND --------------------------------------------------------------------------


class Actions:
    """The `--on WORD COMMAND` programs: checked at start, started without a shell, never waited on
    while listening."""

    def __init__(self, pairs: Iterable[tuple[str, str]], labels: list[str]):
        from speechcmd.model.detection import NON_COMMANDS

        self.words = words = [label for label in labels if label not in NON_COMMANDS]  # what can be detected
        self.commands: dict[str, list[list[str]]] = {}
        self.running: list[tuple[str, subprocess.Popen]] = []
        for word, command in pairs:
            if word not in words:
                raise UserError(f"--on {word}: the model does not detect '{word}'; its words are {', '.join(words)}.")
            try:
                argv = shlex.split(command)
            except ValueError as error:
                raise UserError(f"--on {word} {command!r}: cannot read the command ({error}); check its quotes.") from None
            if not argv:
                raise UserError(f"--on {word}: the command is empty; give a program to run, e.g. --on {word} 'notify-send {word}'.")
            if shutil.which(argv[0]) is None:
                raise UserError(f"--on {word}: program '{argv[0]}' not found; install it or give its full path.")
            self.commands.setdefault(word, []).append(argv)

    def run(self, detection: Detection) -> None:
        env = {
            **os.environ,
            "SPEECHCMD_WORD": detection.label,
            "SPEECHCMD_SCORE": f"{detection.score:.3f}",
            "SPEECHCMD_TIME": f"{detection.end:.2f}",
        }
        for argv in self.commands.get(detection.label, ()):
            command = shlex.join(argv)
            try:
                # Its stdout goes to our stderr (fd 2): our stdout carries only detections.
                process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=2)
            except OSError as error:
                print(f"speechcmd listen: warning: could not run {command} for '{detection.label}' ({error.strerror}).", file=sys.stderr, flush=True)
                continue
            self.running.append((command, process))

    def reap(self) -> None:
        """Collect the programs that ended, saying which failed."""
        still = []
        for command, process in self.running:
            if process.poll() is None:
                still.append((command, process))
            elif process.returncode != 0:
                print(f"speechcmd listen: warning: {command} exited with status {process.returncode}.", file=sys.stderr, flush=True)
        self.running = still

    def finish(self, wait: bool) -> None:
        """At the end of the input, wait for the programs still running (their effects are part of
        the run); when stopped by Ctrl-C, leave them to finish on their own."""
        if wait:
            for _, process in self.running:
                process.wait()
        self.reap()

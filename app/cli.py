"""The `speechcmd` command: classify and gui here, train and evaluate in `cli_train`.

Heavy modules (torch, Qt) are imported inside each command, so `speechcmd --help` is instant.
Errors a user can cause print one sentence to stderr and exit non-zero; tracebacks mean bugs.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys

from speechcmd.app import cli_adapt, cli_listen, cli_train
from speechcmd.app.cli_common import UserError, add_device_argument, add_model_argument, load_model_or_fail, resolve_device, shown


# ---- classify ---------------------------------------------------------------------------------


def add_classify_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files or folders (searched recursively)")
    add_model_argument(parser)
    parser.add_argument("--top-k", type=int, default=None, metavar="K", help="how many labels to list per clip (default: 3); given for a recording, each detection lists its top K averaged labels")
    parser.add_argument("--json", action="store_true", help="print one JSON object per line per input")
    parser.add_argument("--threshold", type=float, default=None, help="detection threshold for long recordings (0..1)")
    add_device_argument(parser)


def run_classify(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from speechcmd.model.audio import AudioError, find_audio_files
    from speechcmd.model.detection import DetectionPolicy
    from speechcmd.model.inference import Classifier

    top_k = 3 if args.top_k is None else args.top_k
    if top_k < 1:
        raise UserError("--top-k must be at least 1.")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise UserError(f"--threshold must be between 0 and 1, not {args.threshold}.")
    try:
        files = find_audio_files(args.paths)
    except AudioError as error:
        raise UserError(str(error)) from None
    if not files:
        raise UserError(f"no audio files found in {', '.join(args.paths)}.")
    model = load_model_or_fail(args.model, resolve_device(args.device))
    policy = DetectionPolicy.for_model(model)  # the operating point chosen when the model was trained
    if args.threshold is not None:
        policy = replace(policy, threshold=args.threshold)
    classifier = Classifier(model, device=next(model.parameters()).device, policy=policy)
    failed = 0
    for result in classifier.classify_files(files, top_k=top_k, detection_top_k=args.top_k or 0):
        failed += "error" in result
        print(json.dumps(result) if args.json else format_result(result), flush=True)
    if failed and len(files) > 1 and not args.json:
        print(f"{failed} of {len(files)} files could not be classified.", file=sys.stderr)
    return 1 if failed else 0


def format_result(result: dict) -> str:
    path = shown(result["path"])  # a file name cannot drive the terminal or split the table
    if "error" in result:
        return f"{path}\n    error: {shown(result['error'])}"
    if "detections" in result:
        if not result["detections"]:
            return f"{path}\n    no command detected"
        lines = [f"{path}"]
        for d in result["detections"]:
            others = "  ".join(f"{label} {score:.2f}" for label, score in d.get("top", [])[1:])
            span = f"{d['start']:.2f}-{d['end']:.2f} s"  # right-aligned, so the labels line up past 10 s and 1000 s
            lines.append(f"    {span:>17}  {d['label']:<10} {d['score']:.2f}    {others}".rstrip())
        return "\n".join(lines)
    others = "  ".join(f"{label} {score:.2f}" for label, score in result["top"][1:])
    text = f"{path}\n    {result['label']:<10} {result['score']:.2f}    {others}".rstrip()
    return f"{text}\n    warning: {shown(result['warning'])}" if "warning" in result else text


# ---- gui ----------------------------------------------------------------------------------------


def add_gui_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_argument(parser)
    parser.add_argument("files", nargs="*", metavar="FILE", help="audio file to open at start (optional)")


def run_gui(args: argparse.Namespace) -> int:
    from speechcmd.app.main_window import run_app

    return run_app(model_path=args.model, files=args.files)


COMMANDS = {
    "classify": ("classify audio files or folders with a trained model", add_classify_arguments, run_classify),
    "train": ("train a model on Speech Commands or a folder-per-label dataset", cli_train.add_train_arguments, cli_train.run_train),
    "evaluate": ("measure a model's accuracy on a folder-per-label dataset", cli_train.add_evaluate_arguments, cli_train.run_evaluate),
    "adapt": ("teach a model new words from a folder of recordings", cli_adapt.add_adapt_arguments, cli_adapt.run_adapt),
    "listen": ("print spoken commands as they are heard, from the microphone or a file, without a window", cli_listen.add_listen_arguments, cli_listen.run_listen),
    "gui": ("open the desktop app: live microphone recognition with the LSTM's gates", add_gui_arguments, run_gui),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechcmd",
        description="Recognize spoken commands (yes, no, up, down, ...) with an LSTM and watch its gates.",
    )
    from speechcmd.model import __version__

    parser.add_argument("--version", action="version", version=f"speechcmd {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, add_arguments, run) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        add_arguments(sub)
        sub.set_defaults(run=run)
    return parser


def torch_install_problem(error: BaseException) -> str | None:
    """One sentence for a PyTorch install whose parts do not fit together (a CPU torch beside a
    torchaudio built for CUDA dies loading `libc10_cuda.so`); None for any other error."""
    text = str(error)
    broken_library = any(name in text for name in ("libc10", "libtorch", "libtorchaudio", "_torchaudio"))
    if not broken_library and not (isinstance(error, ImportError) and (error.name or "").split(".")[0] in ("torch", "torchaudio")):
        return None
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    return (f"PyTorch ({installed('torch')}) and torchaudio ({installed('torchaudio')}) do not load together "
            f"({text.splitlines()[0] if text else type(error).__name__}); install a matching pair with "
            f"`.venv/bin/pip install --force-reinstall torch torchaudio` or run `bash scripts/setup.sh` again.")


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads must sleep, not spin: on a small shared machine two spinning torch threads
    # wait on each other at every op (bench/NOTES.md: classify 160 -> 850 clips/s). Before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # A file name that is not valid UTF-8 prints with its odd bytes escaped instead of crashing.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in trained models' metadata
    try:
        return args.run(args)
    except UserError as error:
        print(f"speechcmd {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"speechcmd {args.command}: interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`speechcmd classify ... | head`): stop quietly, as Unix tools do.
        # Python would otherwise complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ImportError, OSError) as error:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            # The output itself could not be written (`> /dev/full`, a full disk): say so, once,
            # and keep Python from failing again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            print(f"speechcmd {args.command}: could not write the output ({error.strerror}); free some space or write it elsewhere.", file=sys.stderr)
            return 1
        problem = torch_install_problem(error)
        if problem is None:
            raise
        print(f"speechcmd {args.command}: {problem}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

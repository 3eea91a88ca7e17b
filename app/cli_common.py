"""What every `speechcmd` command shares: the user-error type, device and model options."""

from __future__ import annotations

import argparse
from pathlib import Path


def shown(text: object) -> str:
    """`text` safe to print on a terminal: every character that is not printable (escape sequences,
    line breaks, the bytes of a file name that is not UTF-8) written as its backslash escape, so a
    file or label name can neither drive the terminal nor split a line. Every printer calls this."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii") for c in text)


class UserError(Exception):
    """A problem the user can fix; printed as one sentence, exit code 2. The sentence is `shown`:
    a file name in it cannot break it into lines or send escape sequences."""

    def __str__(self) -> str:
        return shown(super().__str__())


def folder_problem(folder: str | Path) -> str | None:
    """Why `folder` cannot be made or written into (a phrase), or None: a file (or a device such as
    /dev/null) in its place or above it, or a folder above it that may not be written."""
    import os

    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            return "is a file, not a folder" if folder.is_file() else "is not a folder (a device, pipe or socket)"
        for existing in (folder, *folder.parents):
            if existing.exists():
                if not existing.is_dir():
                    return f"{existing} is a file, not a folder"
                if not os.access(existing, os.W_OK | os.X_OK):
                    return f"{existing} may not be written (permission denied)"
                return None
    except OSError as error:  # a name too long to look up, a folder above it that may not be searched
        return f"cannot be looked up ({error.strerror})"
    return None


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA GPU is available here; use --device cpu.")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UserError(f"--device {name}: use auto, cpu or cuda.")
    if name.startswith("cuda:"):
        index = name.removeprefix("cuda:")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not index.isdigit() or int(index) >= count:
            raise UserError(
                f"--device {name}: no such GPU here ({count} CUDA GPU{'' if count == 1 else 's'} found); "
                "use --device cpu or a GPU from cuda:0 on."
            )
    return name


def load_model_or_fail(path: str | None, device: str = "cpu"):
    """The model at `path` or of that bundled name (`model.bundled.model_path`; None: the default);
    a file that cannot be used, or a name that is not bundled, is a UserError, and what loading ignored
    (an unusable stored policy) a one-line warning on stderr."""
    import sys
    import warnings

    from speechcmd.model.bundled import model_path
    from speechcmd.model.checkpoint import CheckpointError, CheckpointWarning, load_model

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CheckpointWarning)
            model = load_model(model_path(path), device)
    except CheckpointError as error:
        raise UserError(str(error)) from None
    for warning in caught:
        if issubclass(warning.category, CheckpointWarning):
            print(f"warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return model


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", metavar="NAME|PATH",
        help="a bundled model's name (speechcmd-lstm, the default, or speechcmd-mfcc-lstm) or a model file",
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: %(default)s)"
    )

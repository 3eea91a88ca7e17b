"""Folder locks: two processes never write one run folder, or download into one cache, at once.

An advisory `flock` on the folder itself, so nothing is left in it. The kernel drops the lock
when its process ends, however it ends, so a killed run never leaves a stale lock behind. Within
one process the lock is re-entrant, so the command line can hold it around work that takes it again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected from each other
    fcntl = None

_held: dict[str, list[int]] = {}  # folder -> [open descriptor, depth]


class FolderBusy(RuntimeError):
    """Another process holds the folder; the message names the folder and what that process does."""


@contextmanager
def folder_lock(folder: str | Path, doing: str) -> Iterator[None]:
    """Hold `folder` (created if missing) exclusively, or raise `FolderBusy` at once: a second
    `speechcmd train` into the same folder is a mistake to report, not a queue to wait in."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(folder)
    if key in _held:
        _held[key][1] += 1
    else:
        descriptor = os.open(key, os.O_RDONLY)
        if fcntl is not None:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                raise FolderBusy(f"{folder}: another speechcmd process is {doing} here") from None
        _held[key] = [descriptor, 1]
    try:
        yield
    finally:
        _held[key][1] -= 1
        if not _held[key][1]:
            os.close(_held.pop(key)[0])

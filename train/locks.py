"""Folder locks: two processes never write one run folder, or download into one cache, at once.

An advisory `flock` on a small file in the folder. The kernel drops it when its process ends,
however it ends, so a killed run never leaves a stale lock behind. Within one process the lock is
re-entrant, so the command line can hold it around work that takes it again.
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

_held: dict[str, list] = {}  # lock file -> [open file, depth]


class FolderBusy(RuntimeError):
    """Another process holds the lock; the message says which process and what it is doing."""


@contextmanager
def folder_lock(folder: str | Path, name: str, doing: str) -> Iterator[None]:
    """Hold `folder/name` exclusively, or raise `FolderBusy` at once (never wait: a second
    `speechcmd train` into the same folder is a mistake to report, not a queue)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = str((folder / name).resolve())
    if key in _held:
        _held[key][1] += 1
    else:
        file = open(key, "a+")
        if fcntl is not None:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip() or "?"
                file.close()
                raise FolderBusy(f"{folder}: another process (pid {holder}) is {doing} here") from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        _held[key] = [file, 1]
    try:
        yield
    finally:
        _held[key][1] -= 1
        if not _held[key][1]:
            _held.pop(key)[0].close()

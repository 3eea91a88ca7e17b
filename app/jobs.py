"""Background threads of the window's helpers (file player, model loader, teaching): each owner
starts its jobs here and joins them when the window closes, since a thread still inside torch when
Qt and Python tear down aborts the process ("terminate called without an active exception")."""

from __future__ import annotations

import threading
from collections.abc import Callable

JOIN_SECONDS = 5.0


class Jobs:
    """The threads one owner started: `busy` while any runs, `join` waits for them."""

    def __init__(self, name: str):
        self.name = name
        self._threads: list[threading.Thread] = []

    def start(self, target: Callable, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=self.name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    @property
    def busy(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def join(self, timeout: float = JOIN_SECONDS) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads = []


def emit(signal, *args) -> None:
    """Emit a Qt signal from a job thread; nothing when its object was destroyed meanwhile."""
    try:
        signal.emit(*args)
    except RuntimeError:
        pass

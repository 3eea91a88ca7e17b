"""Files dropped on a widget: the window takes audio or a model, the Teach panel takes takes."""

from __future__ import annotations


def dropped_files(event) -> list[str]:
    """The local files a drag carries (none for web links or text)."""
    return [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]


def accept_files(event) -> None:
    """dragEnterEvent: take a drag only if it carries local files."""
    if dropped_files(event):
        event.acceptProposedAction()

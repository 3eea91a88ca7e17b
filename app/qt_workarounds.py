"""Work around PySide6 6.12 on Python 3.11: every call of a void Qt method drops a reference to None.

shiboken6 6.12 returns None without taking a reference, which is only harmless where None is
immortal (Python 3.12+). On 3.11, None's count (a few thousand at start) runs out after a few
seconds of drawing and the process aborts with "none_dealloc". When the bug is detected, None,
True and False get a reference count no program can exhaust, which is what 3.12 does itself.
Delete this module once PySide6 is pinned below 6.12 or Python 3.12 is required.
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QRectF

# 2**40 void calls at a million per second would take 12 days.
_EXTRA_REFERENCES = 1 << 40


def _void_calls_leak_none() -> bool:
    rect = QRectF()
    before = sys.getrefcount(None)
    for _ in range(100):
        rect.setWidth(1.0)
    return sys.getrefcount(None) < before - 50


def make_singletons_immortal() -> None:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython" or not _void_calls_leak_none():
        return
    for singleton in (None, True, False):
        # ob_refcnt is the first field of every CPython object.
        ctypes.c_ssize_t.from_address(id(singleton)).value += _EXTRA_REFERENCES


make_singletons_immortal()

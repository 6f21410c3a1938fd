"""How many threads one engine process may use: the machine's cores, or ``AI_DEBLUR_THREADS``.

Every thread pool the engine starts sizes itself from :func:`thread_budget` (FFTs, onnxruntime, OpenCV).
A batch with ``--jobs N`` sets the variable to cores / N in its worker processes before they import the
engine: N processes that each spread over every core fight for them (onnxruntime's workers spin while
they wait), and the batch runs no faster than one job.
"""
from __future__ import annotations

import os

__all__ = ["THREADS_ENV", "thread_budget"]

THREADS_ENV = "AI_DEBLUR_THREADS"


def thread_budget() -> int:
    """Threads this process may use (>= 1): ``AI_DEBLUR_THREADS`` when set to a positive integer, else
    the number of CPUs."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n >= 1:
            return n
    return max(1, os.cpu_count() or 1)

"""The classic estimator's FFTs: :mod:`deblur_core.fftutils`'s transforms with as many threads as help.

Large transforms use :attr:`ClassicSettings.fft_workers` threads, small ones one (thread start-up would
cost more than it saves). An estimate running beside another (the pair of windows, the cells of a grid)
keeps to one thread until the others are done (:func:`set_fft_sharing`). The choice is per calling
thread, so estimates in different threads do not disturb each other; the kernels do not depend on it.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from .. import fftutils
from .settings import DEFAULT_SETTINGS, ClassicSettings

__all__ = ["rfft2", "irfft2", "fft_workers", "fft_policy", "set_fft_sharing"]

_thread = threading.local()     # per calling thread: .policy (min elements, workers) and .alone (callable)


def fft_workers(x: np.ndarray) -> int:
    """Threads for a transform of ``x`` in the calling thread."""
    minimum, workers = getattr(_thread, "policy", None) or (DEFAULT_SETTINGS.parallel_fft_min,
                                                             DEFAULT_SETTINGS.fft_workers)
    if x.size < minimum:
        return 1
    alone = getattr(_thread, "alone", None)
    return workers if alone is None or alone() else 1


@contextmanager
def fft_policy(settings: ClassicSettings):
    """In the calling thread, while the block runs: ``settings``' thread count and size threshold."""
    before = getattr(_thread, "policy", None)
    _thread.policy = (settings.parallel_fft_min, settings.fft_workers)
    try:
        yield
    finally:
        _thread.policy = before


def set_fft_sharing(alone) -> None:
    """In the calling thread: large FFTs use several threads only while ``alone()`` is true (no other
    estimate runs beside this one); None: always (the default)."""
    _thread.alone = alone


def rfft2(x: np.ndarray) -> np.ndarray:
    return fftutils.rfft2(x, workers=fft_workers(x))


def irfft2(x: np.ndarray, shape) -> np.ndarray:
    return fftutils.irfft2(x, shape, workers=fft_workers(x))

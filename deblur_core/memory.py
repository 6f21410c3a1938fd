"""Process-wide memory policy for big images.

glibc's malloc serves every block above 32 MB (its highest mmap threshold) with a fresh ``mmap`` and
unmaps it when freed. A 12 MP colour plane is 144 MB, and the engine frees and allocates dozens of such
temporaries per photo, so each one is page-faulted (and zeroed by the kernel) afresh: measured here on a
12 MP smart sharpen, about 2 s of a 5 s call were system time. Serving big blocks from malloc's heap
and keeping freed memory for reuse halves that call (2.5 s from the second photo of a process on; the
first one is faster too, since temporaries are reused within the call). The price: the process keeps
its peak memory until :func:`release_free_memory`. So this is applied by the programs that own their
process (the command line, the GIMP worker, the benchmarks), not by importing the library.
"""
from __future__ import annotations

import ctypes
import sys

__all__ = ["keep_freed_memory", "release_free_memory"]

_M_TRIM_THRESHOLD = -1   # mallopt parameters (malloc.h)
_M_MMAP_MAX = -4


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018 - glibc only (musl has none)
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """Have malloc serve big arrays from its heap and keep freed memory for reuse (glibc; a no-op
    elsewhere). Returns whether the policy applies."""
    libc = _libc()
    if libc is None:
        return False
    # no mmap-served blocks; give memory back only when 2 GB at the heap's top are free
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))


def release_free_memory() -> bool:
    """Give the free parts of malloc's heap back to the system (glibc's ``malloc_trim``)."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False

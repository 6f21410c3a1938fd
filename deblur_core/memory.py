"""Process-wide memory policy for big images.

glibc's malloc serves every block above 32 MB (its highest mmap threshold) with a fresh ``mmap`` and
unmaps it when freed. A 12 MP colour plane is 144 MB, and the engine frees and allocates dozens of such
temporaries per photo, so each one is page-faulted (and zeroed by the kernel) afresh: measured here on a
12 MP smart sharpen, about 2 s of a 5 s call were system time. Serving big blocks from malloc's heap
and keeping freed memory for reuse halves that call (2.5 s from the second photo of a process on; the
first one is faster too, since temporaries are reused within the call). The price: the process keeps
its peak memory until :func:`release_free_memory`, and a fragmented heap can peak higher (a 24 MP
hyper-Laplacian deconvolution: 2.0 GB instead of 1.8 GB). So :func:`policy_for` keeps freed memory for
photos up to :data:`KEEP_FREED_MAX_PIXELS` only (peak memory first above), and it is applied by the
programs that own their process (the command line, the GIMP worker, the benchmarks), never by
importing the library.
"""
from __future__ import annotations

import ctypes
import sys

__all__ = ["KEEP_FREED_MAX_PIXELS", "keep_freed_memory", "policy_for", "release_free_memory"]

KEEP_FREED_MAX_PIXELS = 16_000_000
_M_TRIM_THRESHOLD = -1   # mallopt parameters (malloc.h) and glibc's defaults
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536


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


def keep_freed_memory(keep: bool = True) -> bool:
    """Have malloc serve big arrays from its heap and keep freed memory for reuse (glibc; a no-op
    elsewhere); ``keep=False`` goes back to glibc's way (big arrays mmapped, freed memory handed back)
    and hands the free heap back now. Returns whether freed memory is now kept."""
    libc = _libc()
    if libc is None:
        return False
    if keep:
        # no mmap-served blocks; give memory back only when 2 GB at the heap's top are free
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
    libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
    libc.malloc_trim(0)
    return False


def policy_for(pixels: int) -> bool:
    """The policy for a photo of ``pixels`` pixels: keep freed memory up to :data:`KEEP_FREED_MAX_PIXELS`
    (speed), hand it back above (peak memory). Returns whether freed memory is kept."""
    return keep_freed_memory(int(pixels) <= KEEP_FREED_MAX_PIXELS)


def release_free_memory() -> bool:
    """Give the free parts of malloc's heap back to the system (glibc's ``malloc_trim``)."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def prefault(nbytes: int = 1 << 30, *, ram_fraction: float = 0.125, stop=None) -> int:
    """Keep freed memory and touch ``nbytes`` of malloc's heap (at most ``ram_fraction`` of the
    machine's memory), then free it: the next photo's arrays land on pages that are already there
    instead of being faulted in and zeroed during the call (a 12 MP photo's first call faulted in
    about a gigabyte). For a process kept waiting for its next photo (the GIMP plug-in's standby
    worker); the process then holds that memory while it waits. ``stop()``, asked between chunks of
    64 MB, ends the warm-up early (a photo has arrived: it must not wait for it). Returns the bytes
    touched."""
    import os
    if not keep_freed_memory():
        return 0
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 0
    n = int(min(nbytes, ram_fraction * total)) if total else 0
    if n <= 0:
        return 0
    import numpy as np
    block = np.empty(n, np.uint8)
    chunk = 64 << 20
    done = 0
    while done < n:
        block[done:done + chunk:4096] = 1   # one write per page faults it in
        done = min(n, done + chunk)
        if stop is not None and stop():
            break
    del block
    return done

"""The standby worker's lifecycle (POSIX): a worker kept waiting on a Unix socket between calls, with
the engine imported and warm.

``python -m deblur_core.worker --standby SOCKET [--stdin-first]`` serves the protocol
(:mod:`.protocol`) over a Unix socket, one client at a time. With ``--stdin-first`` the process first
answers the request on stdin (a plug-in's new worker) and then goes on as the standby; without it, it
starts waiting at once (after a warm-up, :func:`deblur_core.warm_up`). Each client first reads one
hello line ``{"standby": pid, "protocol": 2, "log": path}`` (or ``{"stale": true}`` when the engine's
files changed since the worker started). A standby worker exits after ``--idle`` seconds without a
request, as soon as the process ``--watch-pid`` (GIMP) is gone, when a client leaves mid-request
(cancel: the client kills it), or after :data:`MAX_REQUESTS`.

This module knows sockets, locks, logs and when to leave; answering a request is the caller's
``serve_guarded(stdin, chan, engine_import) -> exit code`` (:func:`.serve.serve_guarded`).
"""
from __future__ import annotations

import os
import sys
import time

from .protocol import PROTOCOL_VERSION, Channel

MAX_REQUESTS = 100        # a standby worker then makes way for a fresh process
MAX_IDLE_RSS_MB = 1500    # ... and so does one that kept this much memory after a request


def engine_token():
    """Modification times of the engine's files (deblur_core, this worker package, the engine module's
    folder, models): a standby refuses to serve a request when they changed since it started."""
    import importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    package = os.path.dirname(here)
    folders = {here, package, os.path.join(os.path.dirname(package), "models")}
    try:
        spec = importlib.util.find_spec(os.environ.get("AI_DEBLUR_ENGINE") or "deblur_core")
        if spec is not None and spec.origin:
            folders.add(os.path.dirname(os.path.abspath(spec.origin)))
    except (ImportError, ValueError):
        pass
    token = []
    for folder in sorted(folders):
        try:
            with os.scandir(folder) as it:
                token.extend((e.path, e.stat().st_mtime_ns) for e in it if e.is_file())
        except OSError:
            pass
    return sorted(token)


def _pid_alive(pid):
    if not pid:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rss_mb():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return 0.0


def _log_to(path):
    """Point fds 1 and 2 (and sys.stdout / sys.stderr) at the standby worker's log, emptied."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 2)
    os.dup2(fd, 1)
    os.close(fd)
    sys.stdout = sys.stderr = open(2, "w", buffering=1, closefd=False)


def listen(path):
    """Take the socket ``path``: ``(lock, server)`` listening on it, or None when another standby worker
    already waits there. One waiting worker per socket: the lock is held while it waits, released once
    it has a client (so another can take its place while it works)."""
    import fcntl
    import socket

    lock = open(path + ".lock", "a+b")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None  # another standby worker is already waiting
    try:
        _remove(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(path)
            server.listen(1)
        except BaseException:
            server.close()
            raise
    except BaseException:
        lock.close()
        raise
    return lock, server


def _wait_for_client(path, idle, watch_pid, on_listen=None, listener=None):
    """Listen on ``path`` (or use ``listener``, from :func:`listen`) until one client connects (returns
    the socket) or it is time to go (None); ``on_listen(stop=...)`` runs once the socket listens (a
    client arriving meanwhile waits in the backlog; ``stop()`` tells it one does)."""
    import select

    listener = listener or listen(path)
    if listener is None:
        return None
    server = listener[1]
    conn = None
    try:
        def client_waiting():
            return bool(select.select([server], [], [], 0)[0])

        if on_listen is not None and not client_waiting():
            on_listen(stop=client_waiting)  # skipped, or cut short, when a client is waiting
        deadline = time.monotonic() + float(idle)
        while conn is None:
            if select.select([server], [], [], 1.0)[0]:
                conn, _ = server.accept()
            elif time.monotonic() > deadline or not _pid_alive(watch_pid):
                break
    finally:
        _release(listener, path)  # nobody may connect to a busy worker
    return conn


def _release(listener, path):
    """Give up a socket taken by :func:`listen`: stop listening, remove it, release the lock."""
    lock, server = listener
    try:
        server.close()
        _remove(path)
    finally:
        lock.close()


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def standby(path, serve_guarded, start_engine_import, idle=600.0, watch_pid=0, engine_import=None,
            served=0, listener=None, started=None):
    """Answer requests on the Unix socket ``path``, one client at a time (see the module docstring),
    until ``idle`` seconds pass without one, the process ``watch_pid`` is gone, the engine's files
    change, a client goes away mid-request (cancel), or :data:`MAX_REQUESTS`; returns the exit code.

    ``serve_guarded(stdin, chan, engine_import)`` answers one request and returns its exit code (0, 1:
    answered; anything else: the client went away). ``engine_import``: the engine being imported, from
    the request this process answered first; None (started ahead of any request): one is started with
    ``start_engine_import(warm=True)``, and the heap is warmed up while the worker waits (its time is
    recorded in ``engine_import.box`` in seconds since ``started``, a ``time.monotonic()``).
    ``listener``: the socket already taken (:func:`listen`), for the first wait; after each request the
    worker takes it again at once, so it listens by the time the plug-in has read its answer."""
    log = path + ".%d.log" % os.getpid()
    _log_to(log)
    token = engine_token()
    warm_heap = None
    if engine_import is None:  # started ahead of any request: warm the engine and the heap up
        engine_import = start_engine_import(warm=True)
        started = time.monotonic() if started is None else started
        # the heap in this (main) thread: memory that a helper thread frees goes straight back
        from ..memory import prefault

        def warm_heap(stop):
            touched = prefault(stop=stop)
            engine_import.box["heap_at"] = time.monotonic() - started
            engine_import.box["heap_mb"] = touched >> 20
    import gc
    rc = 0
    try:
        while served < MAX_REQUESTS:
            if listener is None:
                # Listen at once, before tidying up: the plug-in's next call may come right after our
                # answer, and a call that finds no socket starts a new process (it waits in the
                # backlog meanwhile).
                listener = listen(path)
                if listener is None:
                    return 0  # another standby worker already waits
            # Drop the last request's Python objects. The C heap stays as it is: handing it back
            # (malloc_trim) made the next 12 MP request 0.8 s slower, every page faulted in again.
            gc.collect()
            if _rss_mb() > MAX_IDLE_RSS_MB:
                from ..memory import release_free_memory
                release_free_memory()  # malloc keeps freed memory (memory.policy_for): hand it back, check again
                if _rss_mb() > MAX_IDLE_RSS_MB:
                    return 0
            conn = _wait_for_client(path, idle, watch_pid, on_listen=warm_heap, listener=listener)
            warm_heap = listener = None
            if conn is None:
                return 0
            engine_import.connected.set()
            with conn:
                chan = Channel(conn.makefile("wb"))
                if engine_token() != token:
                    chan.line({"stale": True})
                    return 0
                os.ftruncate(2, 0)  # the log holds this request's messages only
                os.lseek(2, 0, os.SEEK_SET)
                chan.line({"standby": os.getpid(), "protocol": PROTOCOL_VERSION, "log": log})
                rc = serve_guarded(conn.makefile("rb"), chan, engine_import)
            served += 1
            if rc not in (0, 1):  # the client went away (cancel): start afresh next time
                return rc
        return rc
    finally:
        if listener is not None:  # left before waiting on it: give the socket up
            _release(listener, path)
        _remove(log)

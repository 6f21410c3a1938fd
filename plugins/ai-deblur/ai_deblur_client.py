"""Talks to the AI Deblur engine process (deblur_core.worker) for the GIMP plug-in.

Standard library only: this module runs inside GIMP's Python (which has gi but no numpy); all pixel
maths happens in the worker, which runs in the venv install.py created. See deblur_core/worker/protocol.py
for the protocol.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CONFIG_NAME = "ai-deblur.json"
WORKER_MODULE = "deblur_core.worker"
_CHUNK = 1 << 24
ITEMSIZE = {"f32": 4, "u16": 2, "u8": 1}  # the worker's wire types (deblur_core/worker/protocol.py)
PROTOCOL = 2
# A standby worker (deblur_core/worker/standby.py) waits this long for the next request, then exits; it also
# exits as soon as GIMP is gone. AI_DEBLUR_STANDBY=0 turns standby workers off.
STANDBY_IDLE_S = 900
# When GIMP starts, start the standby worker at once ("preload" in the settings, AI_DEBLUR_PRELOAD):
# "batch" (default) only when GIMP runs without its user interface (batch mode, where no dialog opens
# to warm the engine up while the user chooses), "always", or "never".
PRELOAD_CHOICES = ("batch", "always", "never")
# Environment that changes what a worker does: a standby started under other values is not reused.
_ENGINE_ENV_PREFIXES = ("AI_DEBLUR_", "OMP_", "OPENBLAS_", "MKL_", "ORT_")
_NOT_ENGINE_ENV = ("AI_DEBLUR_RUNTIME_DIR", "AI_DEBLUR_PRELOAD")


class WorkerError(Exception):
    """A failure with a message meant for the user (one clear sentence)."""


class Cancelled(WorkerError):
    pass


def plugin_dir():
    return os.path.dirname(os.path.realpath(__file__))


def load_config(directory=None):
    """{"python": venv python, "repo": repo root} from the JSON install.py writes beside the plug-in.

    Without that file (running from a checkout), the plug-in folder's grand-parent is the repo and
    its .venv the engine's Python."""
    directory = directory or plugin_dir()
    path = os.path.join(directory, CONFIG_NAME)
    cfg = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                cfg = json.load(fh)
        except (OSError, ValueError) as exc:
            raise WorkerError(f"The AI Deblur settings file {path} cannot be read ({exc}); "
                              "run install.py again.") from None
    repo = cfg.get("repo") or os.path.dirname(os.path.dirname(directory))
    python = cfg.get("python")
    if not python:
        bindir = "Scripts" if os.name == "nt" else "bin"
        exe = "python.exe" if os.name == "nt" else "python"
        python = os.path.join(repo, ".venv", bindir, exe)
    preload = cfg.get("preload") if cfg.get("preload") in PRELOAD_CHOICES else "batch"
    return {"python": python, "repo": repo, "config_path": path, "preload": preload}


def _worker_env(repo):
    env = dict(os.environ)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__"):
        env.pop(key, None)
    extra = os.environ.get("AI_DEBLUR_PYTHONPATH")  # tests / development only
    env["PYTHONPATH"] = repo + (os.pathsep + extra if extra else "")
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _last_lines(fh, limit=4000):
    try:
        fh.flush()
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - limit))
        text = fh.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _read_exact(stream, n):
    parts = []
    got = 0
    while got < n:
        chunk = stream.read(min(_CHUNK, n - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    data = b"".join(parts)
    if len(data) != n:
        raise WorkerError(f"The AI Deblur engine sent {len(data)} of {n} result bytes and stopped.")
    return data


def standby_enabled():
    return os.name == "posix" and hasattr(socket, "AF_UNIX") and os.environ.get("AI_DEBLUR_STANDBY", "1") != "0"


def standby_path(config):
    """The Unix socket where a standby worker for this engine and environment waits (None: no standby).

    In a private folder (mode 700) of the user's runtime directory; the name hashes the engine's Python,
    the repo and the environment variables that change what the worker does."""
    base = os.environ.get("AI_DEBLUR_RUNTIME_DIR") or os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = os.path.join(base, "ai-deblur-%d" % os.getuid())
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        st = os.stat(folder)
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            return None  # not ours alone: never talk to a socket someone else could have put there
    except OSError:
        return None
    env = sorted((k, v) for k, v in os.environ.items()
                 if k.startswith(_ENGINE_ENV_PREFIXES) and k not in _NOT_ENGINE_ENV)
    key = json.dumps([config["python"], config["repo"], PROTOCOL, env]).encode("utf-8")
    path = os.path.join(folder, "standby-%s.sock" % hashlib.sha256(key).hexdigest()[:16])
    return path if len(path.encode("utf-8")) < 100 else None  # AF_UNIX path limit


def _standby_args(path, watch_pid):
    watch = os.getppid() if watch_pid is None else int(watch_pid)
    return ["--standby", path, "--idle", str(STANDBY_IDLE_S), "--watch-pid", str(watch)]


def _popen_worker(config, args, **kwargs):
    """``<engine python> -m deblur_core.worker ARGS`` in the repo, with the worker's environment."""
    repo = config["repo"]
    return subprocess.Popen([config["python"], "-m", WORKER_MODULE] + list(args),
                            cwd=repo if os.path.isdir(repo) else None, env=_worker_env(repo), **kwargs)


def spawn_standby(config=None, watch_pid=None):
    """Start a worker that imports and warms up the engine now and waits for the next request, unless
    one is already waiting (its socket exists). Called when a dialog opens (the engine warms up while
    the user chooses) and after a cancel killed the standby. Best effort: returns whether one was
    started (False when standby workers are off, the settings cannot be read, or one waits)."""
    if not standby_enabled():
        return False
    try:
        config = config or load_config()
        path = standby_path(config)
    except Exception:  # noqa: BLE001 - unreadable settings: the real call reports them
        return False
    if not path or os.path.exists(path) or not os.path.exists(config["python"]):
        return False
    try:
        _popen_worker(config, _standby_args(path, watch_pid), stdin=subprocess.DEVNULL,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        return False
    return True


def gimp_is_headless(pid):
    """Whether the GIMP process ``pid`` runs without its user interface (gimp-console, -i,
    --no-interface), from its command line; False where that cannot be read (no /proc)."""
    try:
        with open("/proc/%d/cmdline" % int(pid), "rb") as fh:
            argv = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except (OSError, ValueError):
        return False
    if not argv:
        return False
    if os.path.basename(argv[0]).startswith("gimp-console"):
        return True
    for arg in argv[1:]:
        if arg == "--":
            break
        if arg == "--no-interface" or (arg.startswith("-") and not arg.startswith("--") and "i" in arg[1:]):
            return True
    return False


def preload_installed():
    """Whether the installed settings may start the worker with GIMP (preload other than "never"):
    then the plug-in registers a start-up pass, which AI_DEBLUR_PRELOAD can still turn off."""
    try:
        return load_config()["preload"] != "never"
    except WorkerError:
        return False


def preload_at_start(gimp_pid):
    """Called in GIMP's start-up ("init") pass: start the standby worker now when the settings ask for
    it (see PRELOAD_CHOICES), so the first call of the session finds the engine imported and warm.
    Best effort and quick (GIMP waits for its start-up pass): returns whether one was started."""
    try:
        config = load_config()
    except WorkerError:
        return False
    choice = os.environ.get("AI_DEBLUR_PRELOAD") or config["preload"]
    if choice == "never" or (choice != "always" and not gimp_is_headless(gimp_pid)):
        return False
    return spawn_standby(config, watch_pid=gimp_pid)


class Worker:
    """One request to a worker process: the standby one when it is waiting, else a new one.

    With ``standby=True`` (the plug-in) the worker, once it has answered, stays as the standby worker
    for the next request, which then skips the process start, the imports and the first-call costs
    (``watch_pid``: the process whose end ends it; default: our parent, GIMP). A worker killed by a
    cancel is replaced by a new standby one; one that crashed is not."""

    def __init__(self, config=None, standby=False, watch_pid=None):
        self.config = config or load_config()
        self.standby = bool(standby) and standby_enabled()
        self.watch_pid = watch_pid
        self.proc = None
        self.sock = None
        self.pid = None          # the standby worker's pid (not our child)
        self.log = None          # its stderr file
        self.source = None       # "standby" or "new process"
        self._in = self._out = None
        self._stderr = None
        self._stays = False      # the worker goes on as the standby worker after answering
        self._dead = False
        self._answered = False
        self._respawn = False    # start a standby worker in close() (ours was killed by a cancel)
        self._standby_at = None  # the socket a new worker will listen on once it answered

    # -- process --------------------------------------------------------------------------------
    def start(self):
        path = standby_path(self.config) if self.standby else None
        if path and self._connect_standby(path):
            return
        python = self.config["python"]
        if not os.path.exists(python):
            raise WorkerError(f"The AI Deblur engine's Python ({python}) does not exist; "
                              "run install.py again.")
        self._stderr = tempfile.TemporaryFile(prefix="ai-deblur-worker-")
        kwargs = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # our kill() takes the whole group
        args = _standby_args(path, self.watch_pid) + ["--stdin-first"] if path else []  # then it stays, warm
        try:
            self.proc = _popen_worker(self.config, args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, **kwargs)
        except OSError as exc:
            raise WorkerError(f"The AI Deblur engine could not be started with {python} ({exc.strerror or exc}); "
                              "run install.py again.") from None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        self.source = "new process"
        self._stays = bool(path)
        self._standby_at = path

    def _await_standby(self, seconds=5.0):
        """A worker that answered goes on as the standby worker: wait until it listens again (it does
        so first thing, so this is a few milliseconds at most), so the next call, however soon, finds it
        instead of starting another process. Stops waiting when the worker is gone."""
        def alive():
            if self.proc is not None:
                return self.proc.poll() is None
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except OSError:
                pass
            return True

        end = time.monotonic() + seconds
        while self._standby_at and not os.path.exists(self._standby_at) and alive() and time.monotonic() < end:
            time.sleep(0.002)

    def _connect_standby(self, path):
        if not os.path.exists(path):
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(5.0)
            sock.connect(path)
            rfile = sock.makefile("rb")
            hello = json.loads(rfile.readline(4096).decode("utf-8") or "{}")
            if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL or not hello.get("standby"):
                raise ValueError("stale or foreign standby worker")
            sock.settimeout(None)
        except (OSError, ValueError):
            sock.close()
            return False  # gone, busy, stale or foreign: a new process does the work
        self.sock, self._out, self._in = sock, rfile, sock.makefile("wb")
        self.pid, self.log = int(hello["standby"]), hello.get("log")
        self.source = "standby"
        self._stays = True
        self._standby_at = path
        return True

    def kill(self):
        """Stop the worker unless it answered and stays as the standby worker."""
        if self._answered and self._stays:
            return
        if self._stays and self.standby and not self._dead:
            self._respawn = True  # cancelled: the next request should not pay for a cold start
        if self.sock is not None:
            pid, self.pid = self.pid, None  # once: the pid could be reused after the worker is gone
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)  # its own session: the group is just the worker
                except OSError:
                    pass
            return
        p = self.proc
        if p is None or p.poll() is not None:
            return
        try:
            if os.name == "posix":
                os.killpg(p.pid, signal.SIGKILL)
            else:
                p.kill()
        except OSError:
            try:
                p.kill()
            except OSError:
                pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def close(self):
        self.kill()
        for fh in (self._in, self._out, self.sock, self._stderr):
            try:
                if fh:
                    fh.close()
            except OSError:
                pass
        if self._respawn:
            self._respawn = False
            spawn_standby(self.config, self.watch_pid)

    def _died(self, what):
        self._dead = True  # a worker that dies would die again: no standby for the next call
        msg = f"The AI Deblur engine stopped {what}"
        if self.sock is not None:
            tail = ""
            if self.log:
                try:
                    with open(self.log, "rb") as fh:
                        tail = _last_lines(fh)
                except OSError:
                    pass
                try:
                    os.unlink(self.log)
                except OSError:
                    pass
        else:
            rc = self.proc.wait() if self.proc else None
            tail = _last_lines(self._stderr) if self._stderr else ""
            if rc is not None:
                msg += f" (exit code {rc})" if rc >= 0 else f" (killed by signal {-rc})"
        if tail:
            msg += f": {tail}"
        return WorkerError(msg.rstrip(".") + ". Run `install.py --check` to diagnose.")

    # -- request ---------------------------------------------------------------------------------
    def request(self, op, width=0, height=0, channels=0, pixels=b"", options=None,
                progress=None, cancelled=None, dtype="f32"):
        """Send one request; return (report, {name: (shape, bytes, dtype)}).

        pixels are width x height x channels values of dtype ("f32", "u16" or "u8"); images come back
        in the same type. progress(fraction, message) is called for each progress line; cancelled() ->
        True kills the worker and raises Cancelled. start() may be called earlier, so the worker
        imports the engine while the caller reads the layer."""
        if dtype not in ITEMSIZE:
            raise WorkerError(f"Internal error: unknown pixel type {dtype!r}.")
        if self.proc is None and self.sock is None:
            self.start()
        header = {"op": op, "width": int(width), "height": int(height), "channels": int(channels),
                  "dtype": dtype, "options": options or {}}
        expect = int(width) * int(height) * int(channels) * ITEMSIZE[dtype]
        if pixels is not None and op != "ping" and len(pixels) != expect:
            raise WorkerError(f"Internal error: {len(pixels)} pixel bytes for {width}x{height}x{channels}.")

        write_error = []

        def writer():
            try:
                self._in.write(json.dumps(header).encode("utf-8") + b"\n")
                mv = memoryview(pixels or b"")
                for i in range(0, len(mv), _CHUNK):
                    self._in.write(mv[i:i + _CHUNK])
                self._in.flush()
                if self.sock is not None:
                    self.sock.shutdown(socket.SHUT_WR)
                else:
                    self._in.close()
            except (BrokenPipeError, OSError, ValueError) as exc:  # the worker went away: its answer says why
                write_error.append(exc)

        # Write from a thread so progress lines (and an early error line) are read while we send.
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            while True:
                if cancelled is not None and cancelled():
                    self.kill()
                    raise Cancelled("Cancelled.")
                line = self._out.readline()
                if not line:
                    raise self._died("without an answer")
                try:
                    msg = json.loads(line.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    raise WorkerError("The AI Deblur engine wrote something that is not part of the protocol: "
                                      f"{line[:120]!r}.") from None
                if not isinstance(msg, dict):
                    continue
                if "ok" not in msg:
                    if progress is not None and "progress" in msg:
                        try:
                            progress(float(msg.get("progress") or 0.0), str(msg.get("message") or ""))
                        except Cancelled:
                            self.kill()
                            raise
                    continue
                if not msg["ok"]:
                    self._answered = True
                    err = str(msg.get("error") or "unknown error").strip()
                    raise WorkerError(f"AI Deblur failed: {err.rstrip('.')}.")
                outputs = {}
                for out in msg.get("outputs") or []:
                    shape = [int(s) for s in out["shape"]]
                    kind = out.get("dtype") or "f32"
                    if kind not in ITEMSIZE:
                        raise WorkerError(f"The AI Deblur engine sent pixels of an unknown type {kind!r}; "
                                          "run install.py again.")
                    n = ITEMSIZE[kind]
                    for s in shape:
                        n *= s
                    outputs[out["name"]] = (shape, _read_exact(self._out, n), kind)
                self._answered = True
                t.join(timeout=5)
                if self.proc is not None and not self._stays:
                    try:
                        self.proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        self.kill()
                else:
                    self._await_standby()
                return msg.get("report") or {}, outputs
        finally:
            t.join(timeout=1)
            self.close()


def run(op, width, height, channels, pixels, options, progress=None, cancelled=None, config=None, dtype="f32"):
    return Worker(config).request(op, width, height, channels, pixels, options, progress, cancelled, dtype)


def ping(config=None):
    report, _ = Worker(config).request("ping")
    return report


if __name__ == "__main__":  # `python3 ai_deblur_client.py` : check the engine from the plug-in's side
    try:
        print(json.dumps(ping(), indent=1))
    except WorkerError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)

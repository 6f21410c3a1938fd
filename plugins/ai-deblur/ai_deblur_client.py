"""Talks to the AI Deblur engine process (deblur_core.worker) for the GIMP plug-in.

Standard library only: this module runs inside GIMP's Python (which has gi but no numpy); all pixel
maths happens in the worker, which runs in the venv install.py created. See deblur_core/worker.py for
the protocol.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading

CONFIG_NAME = "ai-deblur.json"
WORKER_MODULE = "deblur_core.worker"
_CHUNK = 1 << 24
ITEMSIZE = {"f32": 4, "u16": 2, "u8": 1}  # the worker's wire types (deblur_core/worker.py)


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
    return {"python": python, "repo": repo, "config_path": path}


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


class Worker:
    """One request to one worker process."""

    def __init__(self, config=None):
        self.config = config or load_config()
        self.proc = None
        self._stderr = None

    # -- process --------------------------------------------------------------------------------
    def start(self):
        python, repo = self.config["python"], self.config["repo"]
        if not os.path.exists(python):
            raise WorkerError(f"The AI Deblur engine's Python ({python}) does not exist; "
                              "run install.py again.")
        self._stderr = tempfile.TemporaryFile(prefix="ai-deblur-worker-")
        kwargs = {}
        if os.name == "posix":
            kwargs["start_new_session"] = True  # our kill() takes the whole group
        try:
            self.proc = subprocess.Popen([python, "-m", WORKER_MODULE], cwd=repo if os.path.isdir(repo) else None,
                                         env=_worker_env(repo), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=self._stderr, **kwargs)
        except OSError as exc:
            raise WorkerError(f"The AI Deblur engine could not be started with {python} ({exc.strerror or exc}); "
                              "run install.py again.") from None

    def kill(self):
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
        for fh in (getattr(self.proc, "stdin", None), getattr(self.proc, "stdout", None), self._stderr):
            try:
                if fh:
                    fh.close()
            except OSError:
                pass

    def _died(self, what):
        rc = self.proc.wait() if self.proc else None
        tail = _last_lines(self._stderr) if self._stderr else ""
        msg = f"The AI Deblur engine stopped {what}"
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
        if self.proc is None:
            self.start()
        header = {"op": op, "width": int(width), "height": int(height), "channels": int(channels),
                  "dtype": dtype, "options": options or {}}
        expect = int(width) * int(height) * int(channels) * ITEMSIZE[dtype]
        if pixels is not None and op != "ping" and len(pixels) != expect:
            raise WorkerError(f"Internal error: {len(pixels)} pixel bytes for {width}x{height}x{channels}.")

        write_error = []

        def writer():
            try:
                self.proc.stdin.write(json.dumps(header).encode("utf-8") + b"\n")
                mv = memoryview(pixels or b"")
                for i in range(0, len(mv), _CHUNK):
                    self.proc.stdin.write(mv[i:i + _CHUNK])
                self.proc.stdin.close()
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
                line = self.proc.stdout.readline()
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
                    outputs[out["name"]] = (shape, _read_exact(self.proc.stdout, n), kind)
                t.join(timeout=5)
                try:
                    self.proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.kill()
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

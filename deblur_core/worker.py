"""The process GIMP's plug-ins talk to: `<venv python> -m deblur_core.worker` (cwd / PYTHONPATH = repo root).

Protocol (one request per connection: stdin / stdout, or a standby worker's socket, below; cancel = the
plug-in kills the process):

request, on stdin:
    one JSON line  {"op": "deblur" | "analyze" | "ping", "width": W, "height": H, "channels": C,
                    "dtype": "f32" | "u16" | "u8", "options": {...}}
    then W*H*C little-endian values of that type (row-major, channels last; default "f32"),
    sRGB-encoded, [0, 1] for f32 or the full integer range (the bytes of a GIMP "R'G'B'A float" /
    "R'G'B' u16" / "Y'A u8" ... buffer). 8- and 16-bit layers travel as integers: 4x / 2x fewer bytes
    than float, and GIMP reads and writes them without a conversion.
    "ping" sends no pixels (W = H = C = 0); it only imports the engine.

answer, on stdout:
    any number of  {"progress": f, "message": s}  lines, then exactly one of
    {"ok": true, "report": {...}, "outputs": [{"name": "image", "shape": [H, W, C], "dtype": D},
                                              {"name": "mask", "shape": [H, W], "dtype": M},
                                              {"name": "layer0", ...}, {"name": "layer0-mask", ...}, ...]}
        followed by the raw little-endian bytes of each output, in order. Images come back in the
        request's dtype (rounded), masks as "u16" for integer requests (linear coverage 0-65535, finer
        than an 8-bit mask needs) and "f32" otherwise; a missing "dtype" means "f32";
    {"ok": false, "error": "one clear sentence"}

deblur options: mode ("auto", "motion", "focus", "shake", "sharpen", "old-photo"), strength (0-100),
mask ("auto", "full", "none", "faces", "subject"), and the engine's mode options (length, angle,
radius, kernel_size, sharpen_radius, amount, threshold, use_network, roi, shake_regions); None / 0 /
missing = auto
(angle 0 counts only with "angle_set": true); kernel (2-D list) = a known PSF;
preview_blend ("mask" / "original", for dialog previews) returns the image already blended with the
mask (or the original), as the new layer with its mask will look.

stdout carries the protocol only: everything else printed in this process (Python or C libraries)
goes to stderr, which the plug-in keeps for its error messages.

Standby (POSIX): ``-m deblur_core.worker --standby SOCKET [--stdin-first]`` serves the same protocol
over a Unix socket, one client at a time, with the engine imported and warm. With ``--stdin-first``
the process first answers the request on stdin (a plug-in's new worker) and then goes on as the
standby; without it, it starts waiting at once (after a warm-up, :func:`deblur_core.warm_up`). Each
client first reads one hello line ``{"standby": pid, "protocol": 2, "log": path}`` (or
``{"stale": true}`` when the engine's files changed since the worker started). A standby worker exits
after ``--idle`` seconds without a request, as soon as the process ``--watch-pid`` (GIMP) is gone,
when a client leaves mid-request (cancel: the client kills it), or after :data:`MAX_REQUESTS`.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import sys
import threading
import time
import traceback

_STARTED = time.monotonic()  # the process's start, for the timing report of its first request

PROTOCOL_VERSION = 2
MAX_PIXELS = 400_000_000  # sanity bound on W*H*C (1.6 GB of float32)

# Mode options the engine knows; 0 / None from the plug-in means "auto" and is not passed on.
_NUMERIC_OPTIONS = ("length", "angle", "radius", "kernel_size", "sharpen_radius", "amount", "threshold",
                    "shake_regions")
_ZERO_IS_AUTO = ("length", "radius", "kernel_size", "sharpen_radius", "amount", "shake_regions")
_MODES = ("auto", "motion", "focus", "shake", "sharpen", "old-photo")
_MASKS = ("auto", "full", "none", "faces", "subject")
# wire types: numpy dtype and the integer full scale (None = float in [0, 1])
DTYPES = {"f32": ("<f4", None), "u16": ("<u2", 65535.0), "u8": ("u1", 255.0)}


class ProtocolError(Exception):
    pass


def _engine():
    # AI_DEBLUR_ENGINE lets tests substitute a module with the same deblur/analyze API.
    name = os.environ.get("AI_DEBLUR_ENGINE") or "deblur_core"
    eng = importlib.import_module(name)
    missing = [f for f in ("deblur", "analyze") if not callable(getattr(eng, f, None))]
    if missing:
        raise RuntimeError(f"the engine module {name!r} has no {' / '.join(missing)}(); "
                           "the installation is incomplete")
    return eng


def _jsonable(obj):
    """json.dumps default=: numpy scalars and arrays, tuples, paths."""
    try:
        import numpy as np
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, np.generic):
            return obj.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


def _clean_floats(obj):
    """NaN / inf are not JSON: turn them into None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


class Channel:
    """The protocol side of stdout (a private dup of fd 1; fd 1 itself is pointed at stderr)."""

    def __init__(self, out):
        self.out = out
        self.lock = threading.Lock()

    def line(self, obj):
        text = json.dumps(_clean_floats(json.loads(json.dumps(obj, default=_jsonable))),
                          separators=(",", ":"))
        with self.lock:
            self.out.write(text.encode("utf-8") + b"\n")
            self.out.flush()

    def raw(self, data):
        with self.lock:
            mv = memoryview(data).cast("B")
            step = 1 << 24
            for i in range(0, len(mv), step):
                self.out.write(mv[i:i + step])
            self.out.flush()


def _read_exact(stream, nbytes):
    import numpy as np
    buf = np.empty(nbytes, dtype=np.uint8)
    mv = memoryview(buf)
    got = 0
    while got < nbytes:
        n = stream.readinto(mv[got:])
        if not n:
            raise ProtocolError(f"the input ended after {got} of {nbytes} pixel bytes")
        got += n
    return buf


def _parse_header(stream):
    line = stream.readline(1 << 20)
    if not line:
        raise ProtocolError("no request was received on standard input")
    try:
        req = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"the request line is not valid JSON ({exc})") from None
    if not isinstance(req, dict):
        raise ProtocolError("the request line must be a JSON object")
    op = req.get("op")
    if op not in ("deblur", "analyze", "ping"):
        raise ProtocolError(f"unknown op {op!r} (expected 'deblur', 'analyze' or 'ping')")
    if op != "ping":
        try:
            w, h, c = int(req["width"]), int(req["height"]), int(req["channels"])
        except (KeyError, TypeError, ValueError):
            raise ProtocolError("the request needs integer width, height and channels") from None
        if w < 1 or h < 1 or c not in (1, 2, 3, 4):
            raise ProtocolError(f"bad image size {w}x{h} with {c} channels")
        if w * h * c > MAX_PIXELS:
            raise ProtocolError(f"the image ({w}x{h}x{c}) is larger than this worker accepts")
        req["width"], req["height"], req["channels"] = w, h, c
        dtype = req.get("dtype") or "f32"
        if dtype not in DTYPES:
            raise ProtocolError(f"unknown pixel type {dtype!r}; use one of {', '.join(DTYPES)}")
        req["dtype"] = dtype
    opts = req.get("options") or {}
    if not isinstance(opts, dict):
        raise ProtocolError("options must be a JSON object")
    req["options"] = opts
    return req


def _deblur_kwargs(opts):
    mode = str(opts.get("mode") or "auto")
    if mode not in _MODES:
        raise ProtocolError(f"unknown mode {mode!r}; use one of {', '.join(_MODES)}")
    mask = str(opts.get("mask") or "auto")
    if mask not in _MASKS:
        raise ProtocolError(f"unknown mask {mask!r}; use one of {', '.join(_MASKS)}")
    strength = float(opts.get("strength", 50.0))
    if not math.isfinite(strength):
        raise ProtocolError("strength must be a number")
    strength = min(100.0, max(0.0, strength))
    extra = {}
    for key in _NUMERIC_OPTIONS:
        val = opts.get(key)
        if val is None:
            continue
        val = float(val)
        if not math.isfinite(val) or (key in _ZERO_IS_AUTO and val <= 0):
            continue
        if key == "angle" and val == 0 and not opts.get("angle_set"):
            continue  # 0 = auto in the plug-in's controls
        extra[key] = val
    for key in ("kernel_size", "shake_regions"):
        if key in extra:
            extra[key] = int(round(extra[key]))
    if opts.get("use_network") is not None:
        extra["use_network"] = bool(opts["use_network"])
    roi = opts.get("roi")
    if roi:
        extra["roi"] = tuple(int(v) for v in roi)
    kernel = opts.get("kernel")  # optional explicit PSF (list of lists)
    return mode, strength, mask, kernel, extra


def _itemsize(dtype):
    import numpy as np
    return np.dtype(DTYPES[dtype][0]).itemsize


def _clamp_unit(a, nan=0.0):
    """In place: values to [0, 1], +inf to 1, -inf to 0 and NaN to ``nan`` (0 or 1). fmax/fmin
    skip NaN, so two passes do what nan_to_num + clip do in four times the time (0.04 against
    0.17 s for a 12 MP RGB float image)."""
    import numpy as np
    if nan:
        np.fmin(a, 1.0, out=a)
        np.fmax(a, 0.0, out=a)
    else:
        np.fmax(a, 0.0, out=a)
        np.fmin(a, 1.0, out=a)
    return a


def _as_engine_image(flat, h, w, c, dtype="f32"):
    """Wire bytes -> the engine's float32 image in [0, 1] ((H, W) for one channel)."""
    import numpy as np
    wire, scale = DTYPES[dtype]
    raw = flat.view(wire).reshape(h, w, c)
    if scale is None:
        img = _clamp_unit(raw.astype(np.float32, copy=False))  # the buffer is ours to change
    else:
        img = np.multiply(raw, np.float32(1.0 / scale), dtype=np.float32)
    return img[:, :, 0] if c == 1 else img


def _to_wire(arr, dtype):
    """float32 in [0, 1] (already clean) -> contiguous little-endian array of the wire type."""
    import numpy as np
    wire, scale = DTYPES[dtype]
    if scale is None:
        return np.ascontiguousarray(arr, dtype=wire)
    import cv2  # one multi-threaded pass: scale, round half to even, saturate (values are in [0, 1])
    flat = np.ascontiguousarray(arr).reshape(arr.shape[0], -1)  # one channel: a scalar scales it all
    if dtype == "u8":
        out = cv2.convertScaleAbs(flat, alpha=scale)
    else:
        out = cv2.multiply(flat, scale, dtype=cv2.CV_16U)
    return np.ascontiguousarray(out.reshape(arr.shape)).astype(wire, copy=False)


def _mask_dtype(dtype):
    return "f32" if dtype == "f32" else "u16"


def _finish_image(out, src):
    """Engine output -> (H, W, C) float32 with the source alpha carried through."""
    import numpy as np
    h, w = src.shape[:2]
    c = 1 if src.ndim == 2 else src.shape[2]
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 2:
        out = out[:, :, None]
    if out.shape[:2] != (h, w):
        raise RuntimeError(f"the engine returned an image of shape {out.shape}, expected {(h, w, c)}")
    if out.shape[2] != c:
        if c in (2, 4) and out.shape[2] == c - 1:  # engine dropped alpha: put it back
            s3 = src if src.ndim == 3 else src[:, :, None]
            out = np.concatenate([out, s3[:, :, -1:]], axis=2)
        else:
            raise RuntimeError(f"the engine returned {out.shape[2]} channels, expected {c}")
    if np.shares_memory(out, src) or not out.flags.writeable:
        out = out.copy()  # cleaned in place below
    _clamp_unit(out)
    if c in (2, 4):  # alpha is never touched
        out[:, :, -1] = src[:, :, -1]
    return np.ascontiguousarray(out, dtype="<f4")


def _finish_mask(mask, h, w):
    import numpy as np
    if mask is None:
        return np.ones((h, w), dtype="<f4")
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 3:
        m = m[:, :, 0]
    if m.shape != (h, w):
        raise RuntimeError(f"the engine returned a mask of shape {m.shape}, expected {(h, w)}")
    # one contiguous copy (the engine may keep its mask), cleaned in place
    return _clamp_unit(np.array(m, dtype="<f4", order="C"), nan=1.0)


def _error_sentence(exc):
    msg = str(exc).strip().replace("\n", " ")
    if isinstance(exc, (ProtocolError, ValueError, RuntimeError)) and msg:
        return msg
    if isinstance(exc, MemoryError):
        return "the engine ran out of memory; try a smaller selection"
    if isinstance(exc, ModuleNotFoundError):
        return (f"a part of the engine is missing ({msg}); run `python3 install.py --check` "
                "in the AI Deblur folder")
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def _kernel_for_report(eng, image, report):
    """report["kernel"] when analyze() did not include one: the parametric PSF the report describes,
    or (camera shake) the blind estimate a shake deblur computes. None for sharp photos / failures."""
    import numpy as np
    btype = report.get("blur_type") or report.get("type")
    if btype in (None, "sharp", "none"):
        return None
    kernel = None
    try:
        from deblur_core.classifier import kernel_for
        k = np.asarray(kernel_for(report), np.float32)
        if k.ndim == 2 and k.size > 1:
            kernel = k
    except Exception:  # noqa: BLE001 - fall back to a deblur run below
        traceback.print_exc(file=sys.stderr)
    if kernel is None:
        mode = {"motion": "motion", "defocus": "focus", "gaussian": "focus", "shake": "shake"}.get(btype)
        if mode is None:
            return None
        try:
            res = eng.deblur(image, mode=mode, strength=50, mask="full")
            k = getattr(res, "kernel", None)
            if k is None:
                k = (getattr(res, "report", None) or {}).get("kernel")
            kernel = None if k is None else np.asarray(k, np.float32)
        except Exception:  # noqa: BLE001 - the analysis itself succeeded
            traceback.print_exc(file=sys.stderr)
            return None
    if kernel is None or kernel.ndim != 2 or not np.isfinite(kernel).all():
        return None
    return kernel.round(6).tolist()


def _kernel_view(kernel):
    """The kernel as a small picture (H, W) float32: scaled to its peak, enlarged by pixel repetition
    to about 128 px, for the plug-in's kernel layer. None when there is no kernel."""
    import numpy as np
    if kernel is None:
        return None
    k = np.clip(np.asarray(kernel, dtype=np.float32), 0, None)
    if k.ndim != 2 or k.size == 0 or not np.isfinite(k).all():
        return None
    k = k / max(float(k.max()), 1e-12)
    scale = max(1, min(16, 128 // max(k.shape)))
    return np.ascontiguousarray(np.kron(k, np.ones((scale, scale), np.float32)), dtype="<f4")


class _EngineImport:
    """Imports the engine in a thread from the moment the process starts, so the (slow) numpy /
    scipy / OpenCV / onnxruntime imports overlap with GIMP reading the layer and sending it."""

    def __init__(self, warm=False):
        self.box = {}
        self.warm = warm
        self.connected = threading.Event()  # a standby's client has arrived: no warm-up then
        self.thread = threading.Thread(target=self._run, daemon=True, name="engine-import")
        self.thread.start()

    def _run(self):
        try:
            self.box["engine"] = eng = _engine()
        except BaseException as exc:  # noqa: BLE001 - re-raised in get()
            self.box["error"] = exc
            return
        self.box["imported_at"] = time.monotonic() - _STARTED
        warm_up = getattr(eng, "warm_up", None)
        if self.warm and callable(warm_up) and not self.connected.is_set():
            try:
                warm_up(stop=self.connected.is_set)  # a request waits in get(): cut it short
            except BaseException:  # noqa: BLE001 - best effort; the request reports real failures
                traceback.print_exc(file=sys.stderr)
            self.box["warm_at"] = time.monotonic() - _STARTED

    def timing(self):
        """Seconds since the process started: engine imported, warm-up over, heap warmed (and how many
        MB of it; None: not yet)."""
        return {k: round(self.box[k], 3) if k in self.box else None for k in ("imported_at", "warm_at", "heap_at", "heap_mb")}

    def get(self):
        self.thread.join()
        if "error" in self.box:
            raise self.box["error"]
        return self.box["engine"]


def serve(stdin, chan, engine_import=None):
    engine_import = engine_import or _EngineImport()
    req = _parse_header(stdin)
    op = req["op"]
    opts = req["options"]

    if op == "ping":
        eng = engine_import.get()
        import numpy as np
        chan.line({"ok": True, "outputs": [],
                   "report": {"protocol": PROTOCOL_VERSION, "python": sys.version.split()[0],
                              "numpy": np.__version__, "engine": getattr(eng, "__file__", None),
                              "engine_version": getattr(eng, "__version__", None)}})
        return 0

    h, w, c, dtype = req["height"], req["width"], req["channels"], req["dtype"]
    from .memory import policy_for
    policy_for(h * w)  # this process is ours: reuse freed memory up to a size (deblur_core/memory.py)
    timing = {"request_at": round(time.monotonic() - _STARTED, 3)}
    data = _read_exact(stdin, h * w * c * _itemsize(dtype))  # while the engine import runs
    t_get = time.monotonic()
    eng = engine_import.get()
    timing.update(engine_import.timing(), engine_wait_s=round(time.monotonic() - t_get, 3))
    image = _as_engine_image(data, h, w, c, dtype)
    del data

    def progress(fraction, message=""):
        try:
            f = float(fraction)
        except (TypeError, ValueError):
            f = 0.0
        f = min(1.0, max(0.0, f)) if math.isfinite(f) else 0.0
        chan.line({"progress": f, "message": str(message or "")})

    if op == "analyze":
        progress(0.0, "Analyzing blur")
        report = eng.analyze(image)
        if not isinstance(report, dict):
            report = {"result": report}
        if opts.get("want_kernel") and not report.get("kernel"):
            progress(0.5, "Estimating the blur kernel")
            kernel = _kernel_for_report(eng, image, report)
            if kernel is not None:
                report["kernel"] = kernel
        progress(1.0, "Done")
        view = _kernel_view(report.get("kernel")) if opts.get("want_kernel") else None
        if view is None:
            chan.line({"ok": True, "report": report, "outputs": []})
        else:
            chan.line({"ok": True, "report": report,
                       "outputs": [{"name": "kernel", "shape": list(view.shape), "dtype": "f32"}]})
            chan.raw(view)
        return 0

    import numpy as np
    mode, strength, mask, kernel, extra = _deblur_kwargs(opts)
    if kernel is not None:
        kernel = np.asarray(kernel, dtype=np.float32)
        if kernel.ndim != 2 or kernel.size == 0 or not np.isfinite(kernel).all():
            raise ProtocolError("the kernel option must be a non-empty 2-D list of numbers")
    progress(0.0, f"Starting {mode} deblur")
    t0 = time.perf_counter()
    res = eng.deblur(image, mode=mode, strength=strength, kernel=kernel, mask=mask,
                     progress=progress, **extra)
    engine_s = time.perf_counter() - t0
    out = _finish_image(res.image, image)
    m = _finish_mask(getattr(res, "mask", None), h, w)
    blend = opts.get("preview_blend")  # dialog previews: show the result as the layer mask will
    if blend in ("mask", "original"):
        src = image if image.ndim == 3 else image[:, :, None]
        weight = m[:, :, None] if blend == "mask" else np.zeros((h, w, 1), np.float32)
        out = np.clip(src + (out - src) * weight, 0.0, 1.0).astype(np.float32)
    report = dict(getattr(res, "report", None) or {})
    report.setdefault("title", f"AI Deblur: {mode}, {strength:g}%")
    report["engine_s"] = round(engine_s, 3)  # deblur() alone, for the round-trip benchmark
    report["worker_timing"] = timing
    mdtype = _mask_dtype(dtype)
    buffers = [("image", _to_wire(out, dtype), dtype), ("mask", _to_wire(m, mdtype), mdtype)]
    # The layers a retoucher would build (old photo: background + subjects; subject mask: background
    # smoothing + the correction), bottom to top; their names are report["layers"].
    layers = [] if blend in ("mask", "original") else list(getattr(res, "layers", None) or [])
    report["layers"] = [str(layer["name"]) for layer in layers]
    for i, layer in enumerate(layers):
        buffers.append((f"layer{i}", _to_wire(_finish_image(layer["image"], image), dtype), dtype))
        buffers.append((f"layer{i}-mask", _to_wire(_finish_mask(layer["mask"], h, w), mdtype), mdtype))
    chan.line({"ok": True, "report": report,
               "outputs": [{"name": name, "shape": list(buf.shape), "dtype": dt} for name, buf, dt in buffers]})
    for _name, buf, _dt in buffers:
        chan.raw(buf)
    return 0


_WATCHING_PARENT = threading.Event()


def _watch_parent(interval=1.0):
    """Exit when the plug-in that started us is gone (GIMP cancelled or crashed): no orphans. Switched
    off when the worker, its request answered, goes on as a standby worker."""
    if os.name != "posix":
        return
    parent = os.getppid()
    _WATCHING_PARENT.set()

    def loop():
        while _WATCHING_PARENT.is_set():
            time.sleep(interval)
            if _WATCHING_PARENT.is_set() and os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=loop, daemon=True, name="parent-watch").start()


def _engine_token():
    """Modification times of the engine's files (the engine module's folder, deblur_core, models): a
    standby refuses to serve a request when they changed since it started."""
    import importlib.util
    here = os.path.dirname(os.path.abspath(__file__))
    folders = {here, os.path.join(os.path.dirname(here), "models")}
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


MAX_REQUESTS = 100        # a standby worker then makes way for a fresh process
MAX_IDLE_RSS_MB = 1500    # ... and so does one that kept this much memory after a request


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


def _listen(path):
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
    """Listen on ``path`` (or use ``listener``, from :func:`_listen`) until one client connects (returns
    the socket) or it is time to go (None); ``on_listen(stop=...)`` runs once the socket listens (a
    client arriving meanwhile waits in the backlog; ``stop()`` tells it one does)."""
    import select

    listener = listener or _listen(path)
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
    """Give up a socket taken by :func:`_listen`: stop listening, remove it, release the lock."""
    lock, server = listener
    try:
        server.close()
        _remove(path)
    finally:
        lock.close()


def standby(path, idle=600.0, watch_pid=0, engine_import=None, served=0, listener=None):
    """Answer requests on the Unix socket ``path``, one client at a time (see the module docstring),
    until ``idle`` seconds pass without one, the process ``watch_pid`` is gone, the engine's files
    change, a client goes away mid-request (cancel), or :data:`MAX_REQUESTS`; returns the exit code.
    ``listener``: the socket already taken (:func:`_listen`), for the first wait; after each request
    the worker takes it again at once, so it listens by the time the plug-in has read its answer."""
    log = path + ".%d.log" % os.getpid()
    _log_to(log)
    token = _engine_token()
    warm_heap = None
    if engine_import is None:  # started ahead of any request: warm the engine and the heap up
        engine_import = _EngineImport(warm=True)
        # the heap in this (main) thread: memory that a helper thread frees goes straight back
        from .memory import prefault

        def warm_heap(stop):
            touched = prefault(stop=stop)
            engine_import.box["heap_at"] = time.monotonic() - _STARTED
            engine_import.box["heap_mb"] = touched >> 20
    import gc
    rc = 0
    try:
        while served < MAX_REQUESTS:
            if listener is None:
                # Listen at once, before tidying up: the plug-in's next call may come right after our
                # answer, and a call that finds no socket starts a new process (it waits in the
                # backlog meanwhile).
                listener = _listen(path)
                if listener is None:
                    return 0  # another standby worker already waits
            # Drop the last request's Python objects. The C heap stays as it is: handing it back
            # (malloc_trim) made the next 12 MP request 0.8 s slower, every page faulted in again.
            gc.collect()
            if _rss_mb() > MAX_IDLE_RSS_MB:
                from .memory import release_free_memory
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
                if _engine_token() != token:
                    chan.line({"stale": True})
                    return 0
                os.ftruncate(2, 0)  # the log holds this request's messages only
                os.lseek(2, 0, os.SEEK_SET)
                chan.line({"standby": os.getpid(), "protocol": PROTOCOL_VERSION, "log": log})
                rc = _serve_guarded(conn.makefile("rb"), chan, engine_import)
            served += 1
            if rc not in (0, 1):  # the client went away (cancel): start afresh next time
                return rc
        return rc
    finally:
        if listener is not None:  # left before waiting on it: give the socket up
            _release(listener, path)
        _remove(log)


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _serve_guarded(stdin, chan, engine_import):
    """serve() with every failure turned into one protocol line; returns the exit code."""
    try:
        rc = serve(stdin, chan, engine_import)
    except ConnectionError:
        return 2  # the plug-in went away (cancel)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one protocol line
        traceback.print_exc(file=sys.stderr)
        try:
            chan.line({"ok": False, "error": _error_sentence(exc)})
        except ConnectionError:
            return 2
        return 1
    try:
        chan.out.flush()
    except ConnectionError:
        return 2
    return rc


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    import argparse
    ap = argparse.ArgumentParser(prog="python -m deblur_core.worker")
    ap.add_argument("--standby", metavar="SOCKET", help="serve requests on this Unix socket (POSIX)")
    ap.add_argument("--stdin-first", action="store_true",
                    help="with --standby: answer the request on stdin first, then go on as a standby worker")
    ap.add_argument("--idle", type=float, default=600.0, help="seconds a standby worker waits for a request")
    ap.add_argument("--watch-pid", type=int, default=0, help="a standby worker exits when this process is gone")
    a = ap.parse_args(argv)
    if a.standby and not a.stdin_first:
        return standby(a.standby, a.idle, a.watch_pid)
    # Keep stdout for the protocol: the protocol writes to a private dup of fd 1, and fd 1 / sys.stdout
    # become stderr, so stray prints (ours, the engine's, C libraries') cannot corrupt the stream.
    proto = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    chan = Channel(proto)
    engine_import = _EngineImport()
    _watch_parent()
    rc = _serve_guarded(sys.stdin.buffer, chan, engine_import)
    if not a.standby or rc not in (0, 1):
        return rc
    # Answered: take the socket *before* handing the pipes back (the plug-in reads to EOF), so the
    # plug-in's next call, however soon, finds it (it would otherwise start a new process); then wait
    # for that call, warm.
    _WATCHING_PARENT.clear()
    try:
        listener = _listen(a.standby)
    except OSError:
        listener = None
    try:
        proto.close()
    except OSError:
        pass
    if listener is None:
        return rc  # another standby worker already waits (or the socket cannot be made)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return standby(a.standby, a.idle, a.watch_pid, engine_import, served=1, listener=listener)


if __name__ == "__main__":
    sys.exit(main())

"""Answering a request: the engine imported in a thread while the pixels arrive, then ping, analyze,
focus or deblur, and the answer written (:mod:`.protocol` for the wire format); :func:`main` is
``python -m deblur_core.worker``, which goes on as a standby worker (:mod:`.standby`) when asked to.

stdout carries the protocol only: everything else printed in this process (Python or C libraries)
goes to stderr, which the plug-in keeps for its error messages.
"""
from __future__ import annotations

import importlib
import math
import os
import sys
import threading
import time
import traceback

from . import standby as _standby
from .protocol import (PROTOCOL_VERSION, Channel, ProtocolError, as_engine_image, check_kernel,
                       deblur_kwargs, error_sentence, finish_image, finish_mask, focus_kwargs, focus_to_image,
                       itemsize, kernel_view, mask_dtype, parse_header, read_exact, sharpen_layer_kwargs,
                       to_wire)

_STARTED = time.monotonic()  # the process's start, for the timing report of its first request


def _engine():
    # AI_DEBLUR_ENGINE lets tests substitute a module with the same deblur/analyze API.
    name = os.environ.get("AI_DEBLUR_ENGINE") or "deblur_core"
    eng = importlib.import_module(name)
    missing = [f for f in ("deblur", "analyze") if not callable(getattr(eng, f, None))]
    if missing:
        raise RuntimeError(f"the engine module {name!r} has no {' / '.join(missing)}(); "
                           "the installation is incomplete")
    return eng


class EngineImport:
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


def _report_kernel(eng, image, report, progress):
    """The blur kernel of an analysed photo, as a list of lists, from the engine's
    ``kernel_for_report`` (:func:`deblur_core.kernel_report.kernel_for_report`); None for a sharp
    photo, an engine without that function, or a failure (the analysis itself succeeded)."""
    import numpy as np
    get_kernel = getattr(eng, "kernel_for_report", None)
    if not callable(get_kernel):
        return None
    try:
        kernel = np.asarray(get_kernel(image, report, progress=progress), np.float32)
    except Exception:  # noqa: BLE001 - the analysis succeeded: answer it without a kernel
        traceback.print_exc(file=sys.stderr)
        return None
    if kernel.ndim != 2 or kernel.size <= 1 or not np.isfinite(kernel).all():
        return None  # the identity of a sharp photo is no kernel to show
    return kernel.round(6).tolist()


def _focus_point(eng):
    """The engine's focus_point (where a preview opens), or deblur_core's when the engine module (a
    substitute, AI_DEBLUR_ENGINE) has none."""
    fn = getattr(eng, "focus_point", None)
    if callable(fn):
        return fn
    return importlib.import_module("deblur_core.focus_point").focus_point


def serve(stdin, chan, engine_import=None):
    """Answer the one request on ``stdin`` through ``chan``; returns the exit code (0)."""
    engine_import = engine_import or EngineImport()
    req = parse_header(stdin)
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
    from ..memory import policy_for
    policy_for(h * w)  # this process is ours: reuse freed memory up to a size (deblur_core/memory.py)
    timing = {"request_at": round(time.monotonic() - _STARTED, 3)}
    data = read_exact(stdin, h * w * c * itemsize(dtype))  # while the engine import runs
    t_get = time.monotonic()
    eng = engine_import.get()
    timing.update(engine_import.timing(), engine_wait_s=round(time.monotonic() - t_get, 3))
    image = as_engine_image(data, h, w, c, dtype)
    del data

    def progress(fraction, message=""):
        try:
            f = float(fraction)
        except (TypeError, ValueError):
            f = 0.0
        f = min(1.0, max(0.0, f)) if math.isfinite(f) else 0.0
        chan.line({"progress": f, "message": str(message or "")})

    if op == "focus":
        scale, ox, oy, faces = focus_kwargs(opts)
        t0 = time.perf_counter()
        point = _focus_point(eng)(image, faces=faces)
        report = focus_to_image(point, scale, ox, oy)
        report["engine_s"] = round(time.perf_counter() - t0, 3)
        chan.line({"ok": True, "report": report, "outputs": []})
        return 0

    if op == "analyze":
        progress(0.0, "Analyzing blur")
        report = eng.analyze(image)
        if not isinstance(report, dict):
            report = {"result": report}
        if opts.get("want_kernel") and not report.get("kernel"):
            progress(0.5, "Estimating the blur kernel")
            kernel = _report_kernel(eng, image, report,
                                    lambda f, m="": progress(0.5 + 0.5 * float(f), m))
            if kernel is not None:
                report["kernel"] = kernel
        progress(1.0, "Done")
        view = kernel_view(report.get("kernel")) if opts.get("want_kernel") else None
        if view is None:
            chan.line({"ok": True, "report": report, "outputs": []})
        else:
            chan.line({"ok": True, "report": report,
                       "outputs": [{"name": "kernel", "shape": list(view.shape), "dtype": "f32"}]})
            chan.raw(view)
        return 0

    import numpy as np
    mode, strength, mask, kernel, extra = deblur_kwargs(opts)
    kernel = check_kernel(kernel)
    sharpen_layer = sharpen_layer_kwargs(opts)
    progress(0.0, f"Starting {mode} deblur")
    t0 = time.perf_counter()
    res = eng.deblur(image, mode=mode, strength=strength, kernel=kernel, mask=mask,
                     progress=progress, **extra)
    engine_s = time.perf_counter() - t0
    out = finish_image(res.image, image)
    m = finish_mask(getattr(res, "mask", None), h, w)
    blend = opts.get("preview_blend")  # dialog previews: show the result as the layer mask will
    if blend in ("mask", "original"):
        src = image if image.ndim == 3 else image[:, :, None]
        weight = m[:, :, None] if blend == "mask" else np.zeros((h, w, 1), np.float32)
        out = np.clip(src + (out - src) * weight, 0.0, 1.0).astype(np.float32)
    report = dict(getattr(res, "report", None) or {})
    report.setdefault("title", f"AI Deblur: {mode}, {strength:g}%")
    report["engine_s"] = round(engine_s, 3)  # deblur() alone, for the round-trip benchmark
    report["worker_timing"] = timing
    mdtype = mask_dtype(dtype)
    buffers = [("image", to_wire(out, dtype), dtype), ("mask", to_wire(m, mdtype), mdtype)]
    # The layers a retoucher would build (old photo: background + subjects; subject mask: background
    # smoothing + the correction), bottom to top; their names are report["layers"].
    layers = [] if blend in ("mask", "original") else list(getattr(res, "layers", None) or [])
    report["layers"] = [str(layer["name"]) for layer in layers]
    for i, layer in enumerate(layers):
        buffers.append((f"layer{i}", to_wire(finish_image(layer["image"], image), dtype), dtype))
        buffers.append((f"layer{i}-mask", to_wire(finish_mask(layer["mask"], h, w), mdtype), mdtype))
    if sharpen_layer is not None and blend not in ("mask", "original"):
        # The guide's hybrid workflow: the result given an unsharp mask, for a layer the user paints in
        progress(1.0, "Sharpening layer")
        from ..color import merge_alpha, split_alpha
        from ..sharpen import unsharp_mask
        color, alpha = split_alpha(out)
        usm = merge_alpha(unsharp_mask(color, sharpen_layer["radius"], sharpen_layer["amount"] / 100.0,
                                       sharpen_layer["threshold"] / 255.0), alpha, out)
        buffers.append(("sharpen", to_wire(finish_image(usm, image), dtype), dtype))
        report["sharpen_layer"] = sharpen_layer
    chan.line({"ok": True, "report": report,
               "outputs": [{"name": name, "shape": list(buf.shape), "dtype": dt} for name, buf, dt in buffers]})
    for _name, buf, _dt in buffers:
        chan.raw(buf)
    return 0


def serve_guarded(stdin, chan, engine_import):
    """serve() with every failure turned into one protocol line; returns the exit code (0: answered,
    1: answered with an error, 2: the client went away, 130: interrupted)."""
    try:
        rc = serve(stdin, chan, engine_import)
    except ConnectionError:
        return 2  # the plug-in went away (cancel)
    except KeyboardInterrupt:
        return 130
    except BaseException as exc:  # noqa: BLE001 - every failure becomes one protocol line
        traceback.print_exc(file=sys.stderr)
        try:
            chan.line({"ok": False, "error": error_sentence(exc)})
        except ConnectionError:
            return 2
        return 1
    try:
        chan.out.flush()
    except ConnectionError:
        return 2
    return rc


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


def standby(path, idle=600.0, watch_pid=0, engine_import=None, served=0, listener=None):
    """:func:`.standby.standby` answering with this module's :func:`serve_guarded`."""
    return _standby.standby(path, serve_guarded, EngineImport, idle=idle, watch_pid=watch_pid,
                            engine_import=engine_import, served=served, listener=listener,
                            started=_STARTED)


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
    engine_import = EngineImport()
    _watch_parent()
    rc = serve_guarded(sys.stdin.buffer, chan, engine_import)
    if not a.standby or rc not in (0, 1):
        return rc
    # Answered: take the socket *before* handing the pipes back (the plug-in reads to EOF), so the
    # plug-in's next call, however soon, finds it (it would otherwise start a new process); then wait
    # for that call, warm.
    _WATCHING_PARENT.clear()
    try:
        listener = _standby.listen(a.standby)
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

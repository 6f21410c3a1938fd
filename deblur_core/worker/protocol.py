"""The worker's wire format and option checking: request header, pixel bytes in, protocol lines and
buffers out. No engine calls and no sockets here (:mod:`.serve` answers requests, :mod:`.standby`
keeps a worker waiting); numpy and OpenCV are imported on first use, so that a new worker reads its
request while the engine imports.

request, on stdin (or a standby worker's socket):
    one JSON line  {"op": "deblur" | "analyze" | "focus" | "ping", "width": W, "height": H, "channels": C,
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

deblur options: mode (:data:`deblur_core.vocabulary.MODES`), strength (0-100; outside is an error, as
in ``deblur()``), mask (:data:`deblur_core.vocabulary.MASKS`), and the engine's mode options (length,
angle, radius, kernel_size, sharpen_radius, amount, threshold, use_network, roi, shake_regions);
None / 0 / missing = auto (angle 0 counts only with "angle_set": true); kernel (2-D list) = a known
PSF; preview_blend ("mask" / "original", for dialog previews) returns the image already blended with
the mask (or the original), as the new layer with its mask will look; grain (0-100) and
background_soften (0-3 px) for the old-photo mode (0 is a value here, not auto); sharpen_layer
({"amount": percent, "radius": px, "threshold": 0-255 levels}, the guide's hybrid workflow) adds one
output "sharpen": the result given a classic-style unsharp mask (:func:`sharpen_layer_kwargs`).

analyze options: want_kernel (true: the report gets the blur kernel, and the answer one output
"kernel", a small picture of it, :func:`kernel_view`).

focus (where a dialog's preview opens): the report is :func:`deblur_core.focus_point.focus_point`'s
dict {"x", "y", "box": [x, y, w, h], "source": "face" | "detail", ...}, no outputs. The pixels may be a
shrunk copy: options scale (image px per sent px, default 1) and origin ([x, y] of the sent area in the
image, default [0, 0]) put the answer in the image's pixels (:func:`focus_kwargs`).
"""
from __future__ import annotations

import json
import math
import threading

from ..vocabulary import MASKS, MODES

PROTOCOL_VERSION = 2
MAX_PIXELS = 400_000_000  # sanity bound on W*H*C (1.6 GB of float32)
OPS = ("deblur", "analyze", "ping", "focus")

# Mode options the engine knows; 0 / None from the plug-in means "auto" and is not passed on.
NUMERIC_OPTIONS = ("length", "angle", "radius", "kernel_size", "sharpen_radius", "amount", "threshold",
                   "shake_regions", "grain", "background_soften")
ZERO_IS_AUTO = ("length", "radius", "kernel_size", "sharpen_radius", "amount", "shake_regions")
# wire types: numpy dtype and the integer full scale (None = float in [0, 1])
DTYPES = {"f32": ("<f4", None), "u16": ("<u2", 65535.0), "u8": ("u1", 255.0)}


class ProtocolError(Exception):
    """A request this worker cannot answer; its message is the one sentence the plug-in shows."""


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
    """The protocol side of stdout (a private dup of fd 1; fd 1 itself is pointed at stderr) or of a
    standby worker's socket."""

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


def read_exact(stream, nbytes):
    """``nbytes`` bytes from ``stream`` as a uint8 array; ProtocolError when the input ends early."""
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


def parse_header(stream):
    """The request line, checked: a dict with "op", "options" (a dict) and, except for "ping", integer
    "width", "height", "channels" and a known "dtype"."""
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
    if op not in OPS:
        raise ProtocolError(f"unknown op {op!r} (expected 'deblur', 'analyze', 'focus' or 'ping')")
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


def deblur_kwargs(opts):
    """A deblur request's options, checked -> (mode, strength, mask, kernel or None, mode options)."""
    mode = str(opts.get("mode") or "auto")
    if mode not in MODES:
        raise ProtocolError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    mask = str(opts.get("mask") or "auto")
    if mask not in MASKS:
        raise ProtocolError(f"unknown mask {mask!r}; use one of {', '.join(MASKS)}")
    try:
        strength = float(opts.get("strength", 50.0))
    except (TypeError, ValueError):
        raise ProtocolError("strength must be a number") from None
    if not math.isfinite(strength):
        raise ProtocolError("strength must be a number")
    if not 0.0 <= strength <= 100.0:  # as deblur() does: a wrong value is an error, not a silent clamp
        raise ProtocolError(f"strength must be between 0 and 100, got {strength:g}")
    extra = {}
    for key in NUMERIC_OPTIONS:
        val = opts.get(key)
        if val is None:
            continue
        val = float(val)
        if not math.isfinite(val) or (key in ZERO_IS_AUTO and val <= 0):
            continue
        if key == "angle" and val == 0 and not opts.get("angle_set"):
            continue  # 0 = auto in the plug-in's controls
        extra[key] = val
    for key in ("kernel_size", "shake_regions"):
        if key in extra:
            extra[key] = int(round(extra[key]))
    if "grain" in extra and not 0.0 <= extra["grain"] <= 100.0:
        raise ProtocolError(f"grain removal must be between 0 and 100, got {extra['grain']:g}")
    if "background_soften" in extra and not 0.0 <= extra["background_soften"] <= 3.0:
        raise ProtocolError(f"background softening must be between 0 and 3 px, got {extra['background_soften']:g}")
    if opts.get("use_network") is not None:
        extra["use_network"] = bool(opts["use_network"])
    roi = opts.get("roi")
    if roi:
        extra["roi"] = tuple(int(v) for v in roi)
    kernel = opts.get("kernel")  # optional explicit PSF (list of lists)
    return mode, strength, mask, kernel, extra


SHARPEN_LAYER_DEFAULTS = {"amount": 120.0, "radius": 1.5, "threshold": 5.0}  # the guide's 120 %, 1.5 px, 5


def sharpen_layer_kwargs(opts):
    """The "sharpen_layer" option, checked -> None (not asked) or {"amount": 0-500 %, "radius": 0.1-20 px,
    "threshold": 0-255 levels} with the guide's values for missing keys."""
    spec = opts.get("sharpen_layer")
    if spec is None or spec is False:
        return None
    if spec is True:
        spec = {}
    if not isinstance(spec, dict):
        raise ProtocolError("sharpen_layer must be an object with amount, radius and threshold")
    out = dict(SHARPEN_LAYER_DEFAULTS)
    limits = {"amount": (0.0, 500.0), "radius": (0.1, 20.0), "threshold": (0.0, 255.0)}
    for key, (lo, hi) in limits.items():
        if spec.get(key) is None:
            continue
        try:
            val = float(spec[key])
        except (TypeError, ValueError):
            raise ProtocolError(f"sharpen_layer {key} must be a number") from None
        if not (math.isfinite(val) and lo <= val <= hi):
            raise ProtocolError(f"sharpen_layer {key} must be between {lo:g} and {hi:g}, got {val:g}")
        out[key] = val
    return out


def focus_kwargs(opts):
    """A focus request's options, checked -> (scale, origin x, origin y, look for faces)."""
    try:
        scale = float(opts.get("scale") or 1.0)
        origin = opts.get("origin") or (0, 0)
        ox, oy = float(origin[0]), float(origin[1])
    except (TypeError, ValueError, IndexError, KeyError):
        raise ProtocolError("focus options: scale must be a number and origin a pair of numbers") from None
    if not (math.isfinite(scale) and scale > 0 and math.isfinite(ox) and math.isfinite(oy)):
        raise ProtocolError("focus options: scale must be a positive number and origin finite")
    return scale, ox, oy, bool(opts.get("faces", True))


def focus_to_image(point, scale, ox, oy):
    """focus_point's dict on a shrunk copy -> the same in the image's pixels (ints)."""
    out = dict(point)
    out["x"] = int(round(ox + (float(point["x"]) + 0.5) * scale - 0.5))
    out["y"] = int(round(oy + (float(point["y"]) + 0.5) * scale - 0.5))
    box = point.get("box")
    if box is not None and len(box) == 4:
        bx, by, bw, bh = (float(v) for v in box)
        out["box"] = [int(round(ox + bx * scale)), int(round(oy + by * scale)),
                      int(round(bw * scale)), int(round(bh * scale))]
    return out


def check_kernel(kernel):
    """The "kernel" option as a float32 2-D array (None stays None); ProtocolError when malformed."""
    if kernel is None:
        return None
    import numpy as np
    try:
        kernel = np.asarray(kernel, dtype=np.float32)
    except (TypeError, ValueError):
        kernel = None
    if kernel is None or kernel.ndim != 2 or kernel.size == 0 or not np.isfinite(kernel).all():
        raise ProtocolError("the kernel option must be a non-empty 2-D list of numbers")
    return kernel


def itemsize(dtype):
    import numpy as np
    return np.dtype(DTYPES[dtype][0]).itemsize


def clamp_unit(a, nan=0.0):
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


def as_engine_image(flat, h, w, c, dtype="f32"):
    """Wire bytes -> the engine's float32 image in [0, 1] ((H, W) for one channel)."""
    import numpy as np
    wire, scale = DTYPES[dtype]
    raw = flat.view(wire).reshape(h, w, c)
    if scale is None:
        img = clamp_unit(raw.astype(np.float32, copy=False))  # the buffer is ours to change
    else:
        img = np.multiply(raw, np.float32(1.0 / scale), dtype=np.float32)
    return img[:, :, 0] if c == 1 else img


def to_wire(arr, dtype):
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


def mask_dtype(dtype):
    """Masks travel as f32 for float requests and as u16 for integer ones."""
    return "f32" if dtype == "f32" else "u16"


def finish_image(out, src):
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
    clamp_unit(out)
    if c in (2, 4):  # alpha is never touched
        out[:, :, -1] = src[:, :, -1]
    return np.ascontiguousarray(out, dtype="<f4")


def finish_mask(mask, h, w):
    """Engine mask (or None: all white) -> (H, W) float32 in [0, 1], NaN as 1."""
    import numpy as np
    if mask is None:
        return np.ones((h, w), dtype="<f4")
    m = np.asarray(mask, dtype=np.float32)
    if m.ndim == 3:
        m = m[:, :, 0]
    if m.shape != (h, w):
        raise RuntimeError(f"the engine returned a mask of shape {m.shape}, expected {(h, w)}")
    # one contiguous copy (the engine may keep its mask), cleaned in place
    return clamp_unit(np.array(m, dtype="<f4", order="C"), nan=1.0)


def kernel_view(kernel):
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


def error_sentence(exc):
    """The one sentence an exception becomes in ``{"ok": false, "error": ...}``."""
    msg = str(exc).strip().replace("\n", " ")
    if isinstance(exc, (ProtocolError, ValueError, RuntimeError)) and msg:
        return msg
    if isinstance(exc, MemoryError):
        return "the engine ran out of memory; try a smaller selection"
    if isinstance(exc, ModuleNotFoundError):
        return (f"a part of the engine is missing ({msg}); run `python3 install.py --check` "
                "in the AI Deblur folder")
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__

"""Engine test doubles for the worker protocol tests (selected with AI_DEBLUR_ENGINE=engine_doubles).

AI_DEBLUR_DOUBLE picks the behaviour: "ok" (default: a cheap sharpen, drops alpha to check the worker
puts it back; analyze finds motion blur), "noisy" (prints to stdout from Python and C level), "raise", "nan", "slow",
"identity" (returns its input), "crash" (a segmentation fault in the middle of a deblur), "sharp" (analyze finds no
blur).
"""
import os
import sys
import time
import types

import numpy as np

__version__ = "double"


def _behaviour():
    return os.environ.get("AI_DEBLUR_DOUBLE", "ok")


def analyze(image):
    """The shape of deblur_core.classifier.analyze()'s report (no kernel: kernel_for_report gives it);
    numpy scalars and a NaN, which the worker must turn into JSON."""
    b = _behaviour()
    if b == "raise":
        raise ValueError("the photo is too small to analyze")
    h, w = image.shape[:2]
    if b == "sharp":
        kind, params, verdict = "sharp", {}, "sharp"
    else:
        kind, params, verdict = "motion", {"length": np.float32(7.0), "angle": np.float64(0.0)}, "recoverable"
    return {"blur_type": kind, "params": params, "confidence": float("nan"), "recoverable": True,
            "verdict": verdict, "warnings": [], "noise_sigma": np.float32(0.004), "edge_blur": 2.5,
            "size": [int(w), int(h)], "scores": {}}


def kernel_for_report(image, report, *, progress=None):
    """deblur_core.kernel_report.kernel_for_report: the report's motion kernel, identity when sharp."""
    if report["blur_type"] == "sharp":
        return np.ones((1, 1), np.float32)
    if progress:
        progress(0.5, "estimating")
    n = int(report["params"]["length"])
    k = np.zeros((n, n), np.float32)
    k[n // 2, :] = 1 / n
    return k


def deblur(image, mode="auto", strength=50, kernel=None, *, mask="auto", progress=None, **opts):
    b = _behaviour()
    if b == "raise":
        raise RuntimeError("deconvolution diverged")
    if b == "crash":
        print("Fatal Python error: Segmentation fault", file=sys.stderr, flush=True)
        os.kill(os.getpid(), 11)
    if b == "noisy":
        print("stray print from the engine")
        sys.stdout.flush()
        os.write(1, b"stray bytes written to fd 1\n")
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    if progress:
        for i in range(3):
            progress(i / 3, f"step {i}")
            if b == "slow":
                time.sleep(1.0)
    out = img if b == "identity" else np.clip(img * 1.1 - 0.05, 0, 1)
    if img.ndim == 3 and img.shape[2] in (2, 4):
        out = out[:, :, :-1]  # the worker must restore alpha
    if b == "nan":
        out = out.copy()
        out[0, 0] = np.nan
    m = np.linspace(0, 1, h * w, dtype=np.float32).reshape(h, w)
    return types.SimpleNamespace(image=out, mask=m, report={
        **analyze(img), "action": "smart sharpen radius 1.0 px, amount 0.5",
        "title": f"AI Deblur: {mode}, {strength:g}%", "mode": mode, "strength": strength, "mask": mask,
        "opts": {k: v for k, v in opts.items()}, "kernel_given": kernel is not None,
        "np_value": np.float32(1.5)})

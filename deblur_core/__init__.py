"""AI Deblur engine: blur classification, kernel estimation, deconvolution, sharpening and masks.

Images are float32 arrays in [0, 1], (H, W) or (H, W, C), sRGB-encoded; see :mod:`deblur_core.color`.
"""
__all__ = ["analyze", "deblur", "DeblurResult", "MODES", "kernel_for_report", "warm_up"]
__version__ = "0.1.0"

# Imported on first use (PEP 562): the GIMP worker (``python -m deblur_core.worker``) starts listening
# for the plug-in at once and imports numpy / OpenCV / SciPy in a thread meanwhile.
_LAZY = {"analyze": ".classifier", "deblur": ".pipeline", "DeblurResult": ".pipeline", "MODES": ".vocabulary",
         "kernel_for_report": ".kernel_report"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def warm_up(stop=None) -> None:
    """Pay the one-time costs of a first call (lazy imports, OpenCV and FFT set-up, the network's
    session) on a tiny photo, so that a process kept ready for the next request (the GIMP plug-in's
    standby worker) answers it as fast as a warm engine. ``stop()``, asked before each step, ends it
    early (a request has come: it would wait for the rest). Failures are ignored: a real call reports
    them."""
    import numpy as np
    from .classifier import analyze
    from .pipeline import deblur
    rng = np.random.default_rng(0)
    img = (0.5 + 0.1 * rng.standard_normal((96, 128, 3))).clip(0, 1).astype(np.float32)
    for call in (lambda: analyze(img),
                 lambda: deblur(img, mode="sharpen", strength=50, mask="auto"),
                 lambda: deblur(img, mode="motion", strength=50, mask="auto", length=5.0, angle=10.0)):
        if stop is not None and stop():
            return
        try:
            call()
        except Exception:  # noqa: BLE001 - best effort
            pass

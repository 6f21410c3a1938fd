"""Do-no-harm check of a restoration with an estimated kernel (issue 19).

A restoration is trusted only when its kernel explains the photo: the restoration blurred again by the
kernel must match the photo to about the noise (:func:`reblur_residual`). With a wrong kernel no
restoration can fit the photo without inventing structure (ringing stripes, ghosts, blotches) that the
deconvolution's prior refuses, so the difference stays far above the noise. Measured on the train split
(true kernels 0.8-2.7 x the noise variance; wrong kernels mostly 5-370) and on the real photos (the
ringing stripes of Lai's ``family.jpg`` 10.4, a right kernel on ``text10.jpg`` 4.2): see
``docs/experiments/shake.md``. A spectral ringing ratio (energy at the kernel's zeros) was tried first
and left out: patterned photos restored with the true kernel read as ringing.
"""
from __future__ import annotations

import numpy as np

__all__ = ["reblur_residual", "MAX_RESIDUAL", "NOISE_FLOOR"]

MAX_RESIDUAL = 5.0   # x the noise variance; above it the kernel is not trusted (right kernels: 0.6-2.8)
NOISE_FLOOR = 0.004  # sRGB-encoded noise below this counts as this (about 1/255)


def reblur_residual(original: np.ndarray, restored: np.ndarray, psf: np.ndarray, *, max_side: int = 1024) -> float:
    """How well the kernel explains the photo: the restoration blurred again by ``psf`` (in linear light)
    against the photo, mean squared difference over the photo's noise variance (sRGB-encoded, JPEG-robust
    estimate), away from the borders. About 1 for a right kernel; a wrong one leaves edges in the
    difference that no restoration can fit without inventing ghosts the prior refuses."""
    import cv2
    from .color import linear_to_srgb, srgb_to_linear
    from .deconvolution import estimate_noise
    from .fftutils import convolve
    y = np.asarray(original, np.float32)
    x = np.asarray(restored, np.float32)
    if y.ndim == 3:
        y, x = y[..., :3].mean(axis=2) if y.shape[2] >= 3 else y[..., 0], x[..., :3].mean(axis=2) if x.shape[2] >= 3 else x[..., 0]
    k = np.asarray(psf, np.float32)
    k = k / k.sum()
    rb = linear_to_srgb(convolve(srgb_to_linear(x), k))
    m = max(k.shape) + 2
    d = (rb - y)[m:-m, m:-m]
    # The floor: on a very clean photo the restoration's own regularisation bias, not the noise, sets the
    # difference (a right kernel on a crop with noise 0.003 read 8.6 without it).
    sigma = max(float(estimate_noise(y, jpeg_robust=True)), NOISE_FLOOR)
    return float(np.mean(d * d)) / (sigma * sigma)

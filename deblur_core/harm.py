"""Do-no-harm check of a restoration with an estimated kernel (issue 19).

A restoration is trusted only when its kernel explains the photo: the restoration blurred again by the
kernel must match the photo to about the noise (:func:`reblur_residual`). With a wrong kernel no
restoration can fit the photo without inventing structure (ringing stripes, ghosts, blotches) that the
deconvolution's prior refuses, so the difference stays far above the noise. Measured on the train split
(true kernels 0.8-2.7 x the noise variance; wrong kernels mostly 5-370) and on the real photos (the
ringing stripes of Lai's ``family.jpg`` 10.4, a right kernel on ``text10.jpg`` 4.2): see
``docs/experiments/shake.md``. A spectral ringing ratio (energy at the kernel's zeros) was tried first
and left out: patterned photos restored with the true kernel read as ringing.

The residual cannot see a kernel that is wrong in a way the restoration can still fit: a diffuse blob or a
trail running to the edge of its search window, on a scene with little detail (sky, periodic blinds), is
fitted to within the noise by a restoration full of ghosts (2-7 dB worse than the photo on the camera
bench's train split). :func:`implausible_kernel` refuses those by the kernel's shape alone, before any restoration.
"""
from __future__ import annotations

import numpy as np

__all__ = ["reblur_residual", "implausible_kernel", "trail_shape", "path_width", "MAX_RESIDUAL", "NOISE_FLOOR", "MAX_PATH_WIDTH"]

MAX_RESIDUAL = 5.0   # x the noise variance; above it the kernel is not trusted (right kernels: 0.6-2.8)
NOISE_FLOOR = 0.004  # sRGB-encoded noise below this counts as this (about 1/255)
# A camera's path is a trail: its mean width (effective area over length) in px at the estimator's working
# scale. Published kernels of Lai's real photos read 1.4-6.9, large synthetic trails (67-75 px) up to 8.6;
# the diffuse blobs the estimator returns on featureless scenes 13-28 (docs/experiments/shake.md, stop 26).
MAX_PATH_WIDTH = 10.0


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


def trail_shape(psf: np.ndarray) -> tuple[int, float]:
    """(length, mean width) in px of a kernel's trail: the length is the longer side of the box holding the
    values above 5 % of the maximum, the width the effective area (participation ratio, (sum k)^2 / sum k^2)
    over that length. A thin camera path is 1-3 px wide; a filled blob is about as wide as it is long."""
    k = np.clip(np.asarray(psf, np.float64), 0, None)
    total = k.sum()
    if total <= 0 or k.size <= 1:
        return 1, 1.0
    k = k / total
    ys, xs = np.nonzero(k > 0.05 * k.max())
    length = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1
    return length, float(1.0 / (k * k).sum()) / length


def path_width(psf: np.ndarray) -> float:
    """Mean width in px of a kernel's trail (:func:`trail_shape`)."""
    return trail_shape(psf)[1]


def implausible_kernel(psf: np.ndarray, *, window: int | None = None, scale: float = 1.0) -> str | None:
    """Why a blind camera-shake kernel cannot be the camera's path, in plain words, or None.

    Parameters
    ----------
    psf : ndarray (kh, kw), the estimated kernel at full resolution (trimmed to its support).
    window : int or None
        Side in px (full resolution) of the window the estimator searched with its size found itself;
        None when the size was given (a kernel may then fill the window it was told).
    scale : float in (0, 1]
        The estimator's working scale (photos above ~1.3 MP are estimated downscaled).

    Returns
    -------
    str or None
        A reason when the kernel is a diffuse blob (mean trail width above :data:`MAX_PATH_WIDTH` px at the
        working scale) or reaches the edge of its search window (the estimate was not contained: on
        periodic blinds or a featureless sky the trail grows to whatever window it is given).
    """
    k = np.asarray(psf, np.float64)
    if k.size <= 1:
        return None
    width = path_width(k) * scale
    if width > MAX_PATH_WIDTH:
        return f"the kernel is a diffuse blob ({width:.0f} px wide), not a camera's path"
    if window is not None and (window - max(k.shape)) / 2 * scale <= 1.0:
        return (f"the kernel ({k.shape[1]}x{k.shape[0]} px) runs to the edge of the {window} px window it was "
                "searched in, so its extent was not found")
    return None

"""Synthetic degradations, in linear light: blur kernels, noise, JPEG, clipped highlights.

Shared by the training pipeline and the benchmarks (``bench/``): the kernel generators are the engine's
(:mod:`deblur_core.kernels`: ``motion_kernel``, ``defocus_kernel``, ``gaussian_kernel``, ``shake_kernel``
— Boracchi & Foi 2012 random camera-shake trajectories), so what we train and benchmark on is what the
engine builds. Everything here is numpy (+ OpenCV for JPEG); no torch.

Images are float32 (H, W) or (H, W, 3) in [0, 1], sRGB-encoded, unless a name says ``linear``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from deblur_core.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from deblur_core.fftutils import convolve  # noqa: E402
from deblur_core.kernels import (defocus_kernel, gaussian_kernel, load_kernel, motion_kernel,  # noqa: E402,F401
                                 normalize, shake_kernel)

KINDS = ("motion", "defocus", "gaussian", "shake")


def random_kernel(rng: np.random.Generator, kind: str | None = None, *, max_size: int = 31) -> tuple[np.ndarray, str]:
    """A random blur kernel of ``kind`` (random kind when None) no wider than ``max_size`` px."""
    kind = kind or rng.choice(KINDS)
    if kind == "motion":
        k = motion_kernel(rng.uniform(5, max_size - 2), rng.uniform(0, 180))
    elif kind == "defocus":
        k = defocus_kernel(rng.uniform(1.5, (max_size - 1) / 2 * 0.6))
    elif kind == "gaussian":
        k = gaussian_kernel(rng.uniform(0.8, max_size / 7))
    elif kind == "shake":
        k = shake_kernel(int(rng.integers(11, max_size + 1)) | 1, rng)
    else:
        raise ValueError(f"unknown kernel kind {kind!r}")
    return k, str(kind)


def blur(image: np.ndarray, psf: np.ndarray, *, boundary: str = "reflect") -> np.ndarray:
    """Blur an sRGB-encoded image the way a camera does: convolve in linear light, re-encode."""
    lin = srgb_to_linear(image)
    return linear_to_srgb(convolve(lin, psf, boundary=boundary))


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator, *, linear: bool = False,
              shot: float = 0.0) -> np.ndarray:
    """Gaussian noise of std ``sigma`` ([0, 1] units); with ``linear`` it is added in linear light
    (plus shot noise of variance ``shot * signal``), as a sensor does, then re-encoded. Not clipped."""
    image = np.asarray(image, np.float32)
    if not linear:
        return (image + rng.standard_normal(image.shape).astype(np.float32) * sigma).astype(np.float32)
    lin = srgb_to_linear(image)
    std = np.sqrt(sigma ** 2 + shot * np.clip(lin, 0, None))
    lin = lin + rng.standard_normal(image.shape).astype(np.float32) * std
    return linear_to_srgb(np.clip(lin, 0, 1)).astype(np.float32)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through 8-bit JPEG at ``quality`` (OpenCV)."""
    import cv2

    u8 = np.clip(np.round(np.asarray(image) * 255), 0, 255).astype(np.uint8)
    bgr = u8[..., ::-1] if u8.ndim == 3 else u8
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    dec = dec[..., ::-1] if dec.ndim == 3 else dec
    return (dec.astype(np.float32) / 255).copy()


def clip_highlights(image: np.ndarray, gain: float) -> np.ndarray:
    """Brighten by ``gain`` in linear light and clip at 1, as an over-exposed sensor does."""
    return linear_to_srgb(np.clip(srgb_to_linear(image) * gain, 0, 1))


def degrade(image: np.ndarray, psf: np.ndarray, *, noise_sigma: float = 0.01, rng=None, jpeg_quality=None,
            highlight_gain: float = 1.0, linear_noise: bool = True) -> np.ndarray:
    """The benchmark/training degradation: (optional highlight gain) -> blur in linear light -> noise
    (sensor-like, in linear light, std ``noise_sigma``) -> clip -> optional JPEG. Returns sRGB float32."""
    rng = np.random.default_rng(rng)
    x = np.asarray(image, np.float32)
    if highlight_gain != 1.0:
        x = clip_highlights(x, highlight_gain)
    y = blur(x, psf)
    if noise_sigma > 0:
        if linear_noise:
            y = add_noise(y, noise_sigma, rng, linear=True)
        else:
            y = add_noise(y, noise_sigma, rng)
    y = np.clip(y, 0, 1).astype(np.float32)
    if jpeg_quality:
        y = jpeg(y, jpeg_quality)
    return y


# ---------------------------------------------------------------------------------------------------
# Denoiser training pairs
# ---------------------------------------------------------------------------------------------------

def srgb_slope(image: np.ndarray) -> np.ndarray:
    """d(sRGB)/d(linear) at each pixel of an sRGB-encoded image (how linear-light noise is scaled by
    the encoding), capped at 12.92 (the slope of the linear toe)."""
    x = np.clip(np.asarray(image, np.float32), 0, 1)
    lin = srgb_to_linear(x)
    slope = np.where(lin <= 0.0031308, 12.92, (1.055 / 2.4) * np.power(np.maximum(lin, 1e-8), 1 / 2.4 - 1))
    return np.minimum(slope, 12.92).astype(np.float32)


def noisy_pair(clean: np.ndarray, rng: np.random.Generator, *, max_sigma: float = 0.2):
    """One denoiser training sample from a clean (H, W, 3) sRGB crop.

    Returns ``(clean, noisy, sigma_map)``: the target (the crop, or its gray version), noisy (H, W, 3) and
    the per-pixel noise std (H, W) that the network is told. Three noise models, so the prior serves plug-and-play deconvolution (uniform levels) and real
    grain (signal dependent), for colour and gray photos:

    * 55%: white gaussian noise of uniform std in sRGB (the plug-and-play case);
    * 30%: noise added in linear light, so its sRGB std follows the encoding slope (dark areas noisier);
      the map is the exact per-pixel std (channel mean);
    * 15%: gray image with the same noise in all three channels (gray photos run as R = G = B).
    """
    h, w, _ = clean.shape
    u = rng.uniform()
    sigma = float(rng.uniform(0, max_sigma)) if rng.uniform() < 0.8 else float(rng.uniform(0, max_sigma / 4))
    if u < 0.55:
        noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * sigma
        smap = np.full((h, w), sigma, np.float32)
    elif u < 0.85:
        slope = srgb_slope(clean)
        sig_lin = sigma / 6.0        # so the darkest tones get about sigma, mid grey about sigma / 6
        std = np.minimum(slope * sig_lin, max_sigma * 1.25)
        noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * std
        smap = std.mean(axis=2)
    else:
        g = clean @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        clean = np.repeat(g[..., None], 3, axis=2)
        noisy = clean + (rng.standard_normal((h, w)).astype(np.float32) * sigma)[..., None]
        smap = np.full((h, w), sigma, np.float32)
    return clean.astype(np.float32), noisy.astype(np.float32), smap.astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Blur-classification cases (the classifier's training data and the engine benchmark's test cases)
# ---------------------------------------------------------------------------------------------------

CLASSES = ("sharp", "motion", "defocus", "gaussian", "shake")


def camera_case(image: np.ndarray, kind: str, rng: np.random.Generator):
    """One classification case of the camera recipe (blurtype-v2): the blur of ``kind`` as in
    :func:`blur_case`, except that camera shake is a hand's open stroke (``hand_shake_kernel``, 7-45 px)
    or Boracchi & Foi's looping trajectory (11-45 px), half each; then, as a camera records it, blur in
    linear light, an exposure gain of 1-1.6 on 40 % of the cases clipping the highlights after the blur,
    Poisson-Gaussian noise (read sigma 0-0.01, shot gain 0-0.002, linear light), clipping, JPEG 75-95.
    Returns (degraded, params)."""
    from deblur_core.kernels import hand_shake_kernel
    p: dict = {}
    if kind == "shake":
        if rng.random() < 0.5:
            psf = hand_shake_kernel(int(rng.integers(7, 46)) | 1, rng)
            p = {"trajectory": "hand"}
        else:
            psf = shake_kernel(int(rng.integers(11, 46)) | 1, rng)
            p = {"trajectory": "loops"}
        y = blur(image, psf)
    else:
        y, p = blur_case(image, kind, rng, noise=False)
    gain = float(rng.uniform(1.0, 1.6)) if rng.random() < 0.4 else 1.0
    if gain != 1.0:
        y = clip_highlights(y, gain)
    y = add_noise(y, float(rng.uniform(0, 0.01)), rng, linear=True, shot=float(rng.uniform(0, 0.002)))
    return jpeg(np.clip(y, 0, 1).astype(np.float32), int(rng.integers(75, 96))), p


def blur_case(image: np.ndarray, kind: str, rng: np.random.Generator, *, noise: bool = True):
    """One classification case: ``image`` degraded with a random blur of ``kind`` (sharp, linear motion
    5-40 px at any angle, defocus radius 2-12 px, gaussian sigma 1-4 px, shake 11-45 px), noise sigma
    0-0.01 in linear light and JPEG quality 75-95. Returns (degraded, params)."""
    p: dict = {}
    if kind == "sharp":
        psf = np.ones((1, 1), np.float32)
    elif kind == "motion":
        p = {"length": float(rng.uniform(5, 40)), "angle": float(rng.uniform(0, 180))}
        psf = motion_kernel(p["length"], p["angle"])
    elif kind == "defocus":
        p = {"radius": float(rng.uniform(2, 12))}
        psf = defocus_kernel(p["radius"])
    elif kind == "gaussian":
        p = {"sigma": float(rng.uniform(1.0, 4.0))}
        psf = gaussian_kernel(p["sigma"])
    elif kind == "shake":
        psf = shake_kernel(int(rng.integers(11, 46)) | 1, rng)
    else:
        raise ValueError(kind)
    if not noise:  # the blur alone (camera_case adds exposure, noise and JPEG)
        return blur(image, psf), p
    y = degrade(image, psf, noise_sigma=float(rng.uniform(0, 0.01)), rng=rng, jpeg_quality=int(rng.integers(75, 96)))
    return y, p

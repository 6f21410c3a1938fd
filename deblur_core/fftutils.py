"""FFT helpers shared by every deconvolution: kernel transfer functions, border handling, convolution.

Circular FFT deconvolution assumes the image wraps around; real photos do not, and the jump at the
border is what makes simple tools ring from the edges. :func:`pad_for_deconvolution` extends the image by
mirroring and tapers the extension into a smooth periodic version of itself ("edge taper"), so the
wrap-around is smooth and the solver sees no false edge.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from .threads import thread_budget

__all__ = ["psf2otf", "pad_for_deconvolution", "convolve", "fast_shape", "WORKERS", "rfft2", "irfft2"]

WORKERS = min(thread_budget(), 8)   # read once, at import (a batch worker's budget is set before)


def rfft2(x: np.ndarray, *, workers: int = WORKERS) -> np.ndarray:
    """2-D real FFT over the last two axes, on ``workers`` threads (the result does not depend on them)."""
    return sfft.rfft2(x, workers=workers)


def irfft2(x: np.ndarray, shape, *, workers: int = WORKERS) -> np.ndarray:
    """Inverse of :func:`rfft2` for a real array of ``shape``."""
    return sfft.irfft2(x, s=shape, workers=workers)


def fast_shape(shape) -> tuple:
    return tuple(sfft.next_fast_len(int(n), real=True) for n in shape)


def psf2otf(psf: np.ndarray, shape) -> np.ndarray:
    """Real-FFT transfer function (H, W//2+1) of a centred convolution kernel for an image of ``shape``."""
    kh, kw = psf.shape
    if kh > shape[0] or kw > shape[1]:
        raise ValueError(f"kernel {psf.shape} is larger than the image {tuple(shape)}")
    big = np.zeros(shape, np.float32)
    big[:kh, :kw] = psf
    big = np.roll(big, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return rfft2(big).astype(np.complex64)


def _smooth_periodic(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with wrap-around (in the Fourier domain): periodic by construction."""
    h, w = x.shape
    fy = sfft.fftfreq(h)[:, None]
    fx = sfft.rfftfreq(w)[None, :]
    g = np.exp(-2 * (np.pi * sigma) ** 2 * (fx * fx + fy * fy)).astype(np.float32)
    return irfft2(rfft2(x) * g, (h, w)).astype(np.float32)


def pad_for_deconvolution(image: np.ndarray, psf_shape, *, margin: int | None = None):
    """Extend a (H, W) or (C, H, W) float image for FFT deconvolution with a kernel of ``psf_shape``.

    Returns ``(padded, crop)`` where ``padded[..., crop[0], crop[1]]`` is the original area. The padded
    size is FFT-friendly and the extension blends from a mirror of the image into a wrap-around-smooth
    blur of it, so no ringing starts at the image border.
    """
    kh, kw = psf_shape
    m = margin if margin is not None else int(max(kh, kw) * 1.5) + 8
    h, w = image.shape[-2:]
    H, W = fast_shape((h + 2 * m, w + 2 * m))
    top, left = (H - h) // 2, (W - w) // 2
    pads = ((top, H - h - top), (left, W - w - left))
    mode = "symmetric" if min(h, w) > max(pads[0] + pads[1]) else "wrap"
    planes = image[None] if image.ndim == 2 else image
    out = np.empty((planes.shape[0], H, W), np.float32)
    # Weight 1 inside the image, falling smoothly to 0 across the extension.
    ramp_y = _taper(H, top, h)
    ramp_x = _taper(W, left, w)
    wgt = np.outer(ramp_y, ramp_x).astype(np.float32)
    for i, p in enumerate(planes):
        ext = np.pad(p, pads, mode=mode if mode == "wrap" else "symmetric")
        smooth = _smooth_periodic(ext, sigma=max(kh, kw, 8) / 2)
        out[i] = wgt * ext + (1 - wgt) * smooth
    crop = (slice(top, top + h), slice(left, left + w))
    return (out[0] if image.ndim == 2 else out), crop


def _taper(n: int, start: int, length: int) -> np.ndarray:
    r = np.ones(n, np.float32)
    before = np.arange(start, dtype=np.float32)
    if start:
        r[:start] = 0.5 - 0.5 * np.cos(np.pi * (before + 1) / (start + 1))
    after = n - start - length
    if after:
        r[start + length:] = (0.5 - 0.5 * np.cos(np.pi * (np.arange(after, 0, -1, dtype=np.float32)) / (after + 1)))
    return r


def convolve(image: np.ndarray, psf: np.ndarray, *, boundary: str = "reflect") -> np.ndarray:
    """Convolve a (H, W) or (H, W, C) image with a centred kernel, same size output.

    ``boundary="reflect"`` mirrors the image (how a real camera sees beyond the frame, roughly);
    ``"wrap"`` is circular convolution.
    """
    psf = np.asarray(psf, np.float32)
    kh, kw = psf.shape
    img = np.asarray(image, np.float32)
    chw = img[None] if img.ndim == 2 else np.moveaxis(img, 2, 0)
    h, w = chw.shape[1:]
    py, px = kh // 2 + 1, kw // 2 + 1
    if boundary == "wrap":
        padded, crop = chw, (slice(0, h), slice(0, w))
    else:
        padded = np.pad(chw, ((0, 0), (py, py), (px, px)), mode="symmetric" if min(h, w) > max(py, px) else "wrap")
        crop = (slice(py, py + h), slice(px, px + w))
    shape = padded.shape[1:]
    otf = psf2otf(psf, shape)
    out = np.empty(chw.shape, np.float32)
    for i, p in enumerate(padded):
        out[i] = irfft2(rfft2(p) * otf, shape)[crop]
    return out[0] if img.ndim == 2 else np.moveaxis(out, 0, 2)

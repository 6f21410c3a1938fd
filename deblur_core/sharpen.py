"""Sharpening without halos.

:func:`unsharp_mask` is the classic radius / amount / threshold filter (as in GIMP and Photoshop) applied
to luminance only (no colour fringes), with the overshoot limited to the local range of the input: an
edge gets steeper but never brighter than its bright side nor darker than its dark side, which is what
a halo is. :func:`smart_sharpen` treats slight softness as a small gaussian blur and deconvolves it.
"""
from __future__ import annotations

import cv2
import numpy as np

from .color import luminance, validate_image

__all__ = ["unsharp_mask", "smart_sharpen", "limit_overshoot", "apply_luma"]


def limit_overshoot(result: np.ndarray, reference: np.ndarray, radius: int, *, tolerance: float = 0.01) -> np.ndarray:
    """Clamp ``result`` to the local [min, max] of ``reference`` over a (2r+1)^2 window, plus tolerance."""
    k = np.ones((2 * int(radius) + 1, 2 * int(radius) + 1), np.uint8)
    lo = cv2.erode(reference, k) - tolerance
    hi = cv2.dilate(reference, k) + tolerance
    return np.clip(result, lo, hi)


def apply_luma(color: np.ndarray, new_luma: np.ndarray, old_luma: np.ndarray) -> np.ndarray:
    """Add a luminance change to every channel (keeps hue and saturation, no colour fringes)."""
    delta = new_luma - old_luma
    out = color + (delta[..., None] if color.ndim == 3 else delta)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def unsharp_mask(image: np.ndarray, radius: float = 1.0, amount: float = 0.8, threshold: float = 0.0, *,
                 halo_free: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
    """Halo-free unsharp mask.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, 3), float32 in [0, 1], sRGB-encoded.
    radius : float
        Gaussian radius (sigma) in px of the blur the detail is measured against, > 0.
    amount : float
        Strength, 1.0 = add the detail once (GIMP's "amount").
    threshold : float in [0, 1]
        Detail smaller than this (in [0, 1] units) is left alone: protects noise and skin texture.
    halo_free : bool
        Limit the result to the local range of the input (no bright or dark rims).
    mask : ndarray (H, W) in [0, 1], optional
        Where to sharpen (1) and where not (0).

    Returns
    -------
    ndarray, float32, same shape, in [0, 1].
    """
    image = validate_image(image)
    if radius <= 0:
        raise ValueError("radius must be > 0")
    y = luminance(image)
    base = cv2.GaussianBlur(y, (0, 0), float(radius))
    detail = y - base
    if threshold > 0:
        # Soft threshold: fade detail in over [threshold, 2 threshold] instead of a hard step.
        detail = detail * np.clip((np.abs(detail) - threshold) / threshold, 0.0, 1.0)
    sharp = y + float(amount) * detail
    if halo_free:
        sharp = limit_overshoot(sharp, y, max(1, int(round(radius))), tolerance=0.004)
    if mask is not None:
        sharp = y + np.asarray(mask, np.float32) * (sharp - y)
    return apply_luma(image, sharp, y)


def smart_sharpen(image: np.ndarray, sigma: float | None = None, amount: float = 1.0, *,
                  mask: np.ndarray | None = None) -> np.ndarray:
    """Deconvolution sharpening for slight softness: a gaussian of ``sigma`` px (estimated when None)
    is deconvolved in linear light, then overshoot is limited to the local range (no halos).
    ``amount`` in [0, 1.5] blends the correction. Returns float32 in [0, 1], same shape."""
    from .deconvolution import deconvolve
    from .estimate import edge_blur_sigma, working_luma
    from .kernels import gaussian_kernel
    image = validate_image(image)
    if sigma is None:
        sigma = float(np.clip(edge_blur_sigma(working_luma(image, max_side=2048)), 0.6, 3.0))
    psf = gaussian_kernel(sigma)
    if psf.shape[0] > min(image.shape[:2]):
        return image.copy()
    restored = deconvolve(image, psf, method="hyper-laplacian")
    y0, y1 = luminance(image), luminance(restored)
    y1 = limit_overshoot(y1, y0, max(1, int(round(2 * sigma))), tolerance=0.01)
    y = y0 + float(amount) * (y1 - y0)
    if mask is not None:
        y = y0 + np.asarray(mask, np.float32) * (y - y0)
    return apply_luma(image, y, y0)

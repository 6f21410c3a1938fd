"""What the classic estimator looks at: the working luminance, clipped lights, the region with the most
edges, its standard contrast, the too-few-edges rule and the denoised region for the finest level.

Blur happens in linear light, so the estimator works on the luminance there; clipped highlights and
their blurred surroundings break the blur model and are left out (the rule is the shake package's:
:func:`deblur_core.shake.regions.usable_mask`).
"""
from __future__ import annotations

import numpy as np

from ..color import luminance, srgb_to_linear, validate_image
from ..shake.kernel_step import odd
from ..shake.regions import pick_region
from .settings import MIN_KERNEL

__all__ = ["working_luma", "saturation_mask", "auto_window", "default_region", "contrast_range",
           "region_luma", "usable_region_mask", "denoised_region"]

CLIP_LEVEL = 0.97   # linear channel maximum from which a pixel counts as clipped


def working_luma(img, linear):
    """(luminance, per-pixel channel maximum), in linear light when ``linear`` (blur happens there)."""
    if img.ndim == 3:
        rgb = img[..., :3] if img.shape[2] >= 3 else img[..., :1]
    else:
        rgb = img[..., None]
    lin = srgb_to_linear(rgb) if linear else np.clip(rgb, 0, 1).astype(np.float32)
    luma = luminance(lin) if lin.shape[2] == 3 else lin[..., 0]
    return luma, lin.max(axis=2)


def saturation_mask(lin_max: np.ndarray, kernel_size: int) -> np.ndarray:
    """True where the blur model holds: away from clipped lights (dilated by the kernel); large flat
    clipped areas (white paper, sky) leave out only their own pixels (issue 24; the rule lives in
    :func:`deblur_core.shake.regions.usable_mask`)."""
    from ..shake.regions import usable_mask
    return usable_mask(lin_max, kernel_size, CLIP_LEVEL)[0]


def auto_window(ref_side: int) -> int:
    """The generous kernel window for an image or region whose shorter side is ``ref_side`` px."""
    ks = min(75, odd(ref_side / 5))
    if ks < MIN_KERNEL:
        raise ValueError(f"the image/region ({ref_side} px) is too small for blind kernel estimation")
    return max(ks, 9) if ref_side >= 45 else ks


def default_region(prep, max_region, kernel_size=None):
    """The region (x, y, w, h) an estimate in a ``kernel_size`` window (None: the generous one) picks when
    none is given: at least ``max_region`` and 6 kernel sides on a side, the most strong edges
    (:func:`deblur_core.shake.regions.pick_region`). ``prep``: :func:`working_luma`."""
    luma, lin_max = prep
    ks = auto_window(min(luma.shape)) if kernel_size is None else int(kernel_size) | 1
    side = max(max_region, 6 * ks)
    return pick_region(luma, saturation_mask(lin_max, ks), side)


def contrast_range(yb):
    """(offset, scale) that bring the region to a standard contrast (1st-99th percentile to 0-1). Blur is
    linear: so the L0 weight means the same for dark and bright photos."""
    lo, hi = np.percentile(yb, [1, 99])
    return lo, max(hi - lo, 1e-3)


def region_luma(luma, roi):
    """The region ``roi`` (x, y, w, h) of a working luminance (:func:`working_luma`) at the standard
    contrast (:func:`contrast_range`)."""
    x0, y0, w, h = roi
    yb = luma[y0:y0 + h, x0:x0 + w].astype(np.float32)
    lo, scale = contrast_range(yb)
    return (yb - lo) / scale


def usable_region_mask(region_luma, valid, region_lin_max, kernel_side):
    """The region's usable mask: refused (:class:`~deblur_core.shake.TooFewEdges`) only when too few useful
    gradients remain for the kernel step (plain sky or wall), whatever share of it is clipped (issue 24);
    the lights' margins given back when they would leave too few
    (:func:`deblur_core.shake.regions.usable_with_edges`, on the region sRGB-encoded)."""
    from ..color import linear_to_srgb
    from ..deconvolution import estimate_noise
    from ..shake.regions import usable_with_edges
    g = linear_to_srgb(region_luma)
    return usable_with_edges(g, valid, region_lin_max, kernel_side, float(estimate_noise(g, jpeg_robust=True)),
                             CLIP_LEVEL)[0]


def denoised_region(image, region, linear):
    """The working luminance of ``region`` (x, y, w, h, inside the image: :func:`~deblur_core.shake.clip_region`)
    after the denoiser network, for the finest level:
    ``{"luma": (h, w) float32 or None, "sigma": the per-channel noise level it was told, "warning"}``.
    The network missing or broken is no failure: the finest level then runs on the region as it is, and
    the warning says so (the report shows it)."""
    x0, y0, w, h = region
    # Only the region is converted and checked (the grid calls this for each of its cells).
    sub = validate_image(np.asarray(image)[y0:y0 + h, x0:x0 + w])
    planes = sub[..., :3] if sub.ndim == 3 and sub.shape[2] >= 3 else (sub[..., 0] if sub.ndim == 3 else sub)
    from ..deconvolution import estimate_noise
    chans = [planes] if planes.ndim == 2 else [planes[..., c] for c in range(planes.shape[2])]
    # Per channel (the network's units); JPEG-robust; a floor: a little denoising costs nothing here.
    sigma = max(float(np.median([estimate_noise(c, jpeg_robust=True) for c in chans])), 0.002)
    try:
        from ..network import denoise
        clean = denoise(planes, min(sigma, 0.2))
    except Exception as exc:  # noqa: BLE001 - a missing or corrupt model: estimate without it, say so
        return {"luma": None, "sigma": None,
                "warning": f"denoiser unavailable ({exc}); the kernel's finest level used the noisy photo"}
    luma, _ = working_luma(clean, linear)
    return {"luma": luma.astype(np.float32), "sigma": sigma, "warning": None}

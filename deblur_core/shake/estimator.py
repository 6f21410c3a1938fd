"""Public entry points: :func:`estimate_kernel` and :func:`refine_kernel`."""
from __future__ import annotations

import time

import cv2
import numpy as np

from ..color import srgb_to_linear, validate_image
from .kernel_step import center_kernel, main_trajectory, odd, resize_kernel, trim_kernel
from .pyramid import coarse_to_fine, level_sizes, refine_level
from .regions import check_gradients, pick_region, usable_mask, usable_with_edges, working_gray
from .settings import DEFAULT

__all__ = ["estimate_kernel", "refine_kernel", "MIN_KERNEL", "MAX_KERNEL", "clip_region"]

MIN_KERNEL = 3
MAX_KERNEL = 301     # a full-resolution kernel; the estimate itself runs on a downscaled photo for large ones


def clip_region(roi, width: int, height: int):
    """``roi`` (x, y, w, h) clipped to the image, integers; ValueError when nothing is left."""
    x, y, w, h = (int(round(v)) for v in roi)
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise ValueError(f"the region {tuple(roi)} is outside the {width}x{height} image")
    return x0, y0, x1 - x0, y1 - y0


def _noise_sigma(gray: np.ndarray) -> float:
    from ..deconvolution import estimate_noise
    return float(estimate_noise(gray, jpeg_robust=True))


class _Ticker:
    def __init__(self, progress, total, message):
        self.progress, self.total, self.done, self.message = progress, total, 0, message

    def __call__(self):
        self.done += 1
        if self.progress is not None:
            self.progress(min(self.done / max(self.total, 1), 1.0) * 0.97, self.message)


def _plan(region_w, region_h, kernel_size, settings):
    """(working scale, kernel side at that scale, full-resolution window) for a region."""
    scale = min(1.0, (settings.work_pixels / float(region_w * region_h)) ** 0.5)
    if kernel_size is not None:
        ks_full = int(kernel_size) | 1
        if ks_full < MIN_KERNEL or ks_full > MAX_KERNEL:
            raise ValueError(f"kernel size must be between {MIN_KERNEL} and {MAX_KERNEL} px, got {kernel_size}")
        if (ks_full - 1) * scale + 1 > settings.max_window:
            scale = (settings.max_window - 1) / (ks_full - 1)
        ks = odd((ks_full - 1) * scale + 1) if scale < 1 else ks_full
    else:
        ks = odd(settings.window_fraction * max(region_w, region_h) * scale)
        ks = int(np.clip(ks, settings.min_window, settings.max_window)) | 1
        ks_full = None
    short = min(region_w, region_h) * scale
    if 2 * ks > short:
        ks = odd(short / 2) - 2 if kernel_size is None else ks
        if ks < MIN_KERNEL or 2 * ks > short:
            need = int(np.ceil(2 * (kernel_size or MIN_KERNEL) + 2))
            raise ValueError(f"the image/region ({int(region_w)}x{int(region_h)} px) is too small for a kernel of "
                             f"{kernel_size or ks} px: select an area at least {need} px wide and high")
    return scale, ks, ks_full


def estimate_kernel(image: np.ndarray, kernel_size: int | None = None, *, roi=None, progress=None,
                    settings=DEFAULT):
    """Estimate a camera-shake kernel from a blurred photo (uniform blur).

    Dark channel and L0 gradient priors, coarse to fine (Pan, Sun, Pfister & Yang, "Blind Image
    Deblurring Using Dark Channel Prior", CVPR 2016; Pan, Hu, Su & Yang, CVPR 2014), with clipped
    lights left out of the kernel step.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, C), float in [0, 1], sRGB-encoded (engine convention).
    kernel_size : int or None
        Side of the kernel window in px at full resolution (odd, 3..:data:`MAX_KERNEL`). None: a
        generous window (``settings.window_fraction`` of the photo's longer side), the kernel trimmed
        to its support.
    roi : (x, y, w, h) or None
        Region to estimate on (e.g. the user's selection). None: the whole photo, or its
        ``settings.max_side`` square with the most strong edges.
    progress : callable(fraction, message) or None
        Called after every alternation; raising from it cancels.
    settings : :class:`~deblur_core.shake.ShakeSettings`

    Returns
    -------
    (psf, info): psf is a float32 centred convolution kernel (odd side, sum 1) at full resolution;
    info a JSON-serialisable dict (size, window, scale, levels, roi, runtime_s, confidence, ...).

    Raises
    ------
    ValueError
        A kernel size out of range or too large for the region; :class:`~.regions.TooFewEdges` when the
        region holds too few useful gradients (plain sky or wall).
    """
    t0 = time.perf_counter()
    img = validate_image(image)
    H, W = img.shape[:2]
    x0, y0, rw, rh = clip_region(roi, W, H) if roi is not None else (0, 0, W, H)
    scale, ks, ks_full = _plan(rw, rh, kernel_size, settings)
    full = working_gray(img[y0:y0 + rh, x0:x0 + rw], False)
    gray, top = _at_scale(full, scale)
    tick = _Ticker(progress, 0, "Estimating the camera shake")
    k, est = _estimate_at(gray, top, ks, settings, tick)
    window = int(ks_full or odd((ks - 1) / scale + 1))
    grown = _grown_plan(rw, rh, window, settings) if kernel_size is None and _touches(k, settings) else None
    if grown is not None:
        # Size found: a kernel that runs to the edge of its window was cut off by it (or is no trail at
        # all); a window half as large again tells which (harm.implausible_kernel refuses the second kind).
        # Past the largest window the photo is estimated downscaled, as for a large size given.
        scale, ks, window = grown
        gray, top = _at_scale(full, scale)
        k, est = _estimate_at(gray, top, ks, settings, tick)
    wx, wy, ww, wh, u, lights, n_useful, sigma, warnings, sizes, notes = est
    psf = _finish(k, scale, settings)
    if progress is not None:
        progress(1.0, "Kernel estimated")
    inv = 1.0 / scale
    info = {
        "method": f"{settings.pixel_prior} channel + L0 gradients (Pan et al.)" if settings.pixel_prior == "dark"
        else f"L0 {settings.pixel_prior} + gradients (Pan et al.)",
        "size": int(psf.shape[0]),
        "window": window,
        "requested_size": None if kernel_size is None else int(kernel_size),
        "auto_size": kernel_size is None,
        "scale": round(float(scale), 4),
        "scales": len(sizes),
        "levels": notes,
        "iterations": int(tick.done),
        "roi": [int(x0 + wx * inv), int(y0 + wy * inv), int(round(ww * inv)), int(round(wh * inv))],
        "runtime_s": round(time.perf_counter() - t0, 3),
        "window_grown": grown is not None,
        "excluded_fraction": round(float(1 - u.mean()), 4),
        "clipped_lights": int(lights),
        "useful_gradients": int(n_useful),
        "noise_sigma": round(sigma, 5),
        "denoised": bool(settings.denoise and not warnings),
    }
    if warnings:
        info["warnings"] = warnings
    return psf, info


def _estimate_at(gray, top, ks, settings, tick):
    """One coarse-to-fine estimate with a ``ks`` px window on the working-scale gray photo and its
    clip-detection image ``top``: (kernel at the working scale, (window x, y, w, h, usable mask, clipped
    lights, useful gradients, noise sigma, warnings, level sizes, level notes))."""
    usable, lights = usable_mask(top, ks, settings.clip_level)
    # The estimation window at the working scale (the whole region when it fits).
    wx, wy, ww, wh = pick_region(gray, usable, settings.max_side)
    g = np.ascontiguousarray(gray[wy:wy + wh, wx:wx + ww])
    u = np.ascontiguousarray(usable[wy:wy + wh, wx:wx + ww])
    sigma = _noise_sigma(g)
    u, n_useful, note = usable_with_edges(g, u, top[wy:wy + wh, wx:wx + ww], ks, sigma, settings.clip_level)
    g, warnings = _prepare(g, sigma, settings)
    if note:
        warnings.append(note)
    sizes, _ = level_sizes(ks, settings.coarsest, min(g.shape), settings.min_image)
    tick.total += len(sizes) * settings.iterations
    k, _, notes = coarse_to_fine(g, None if u.all() else u, ks, settings, tick)
    return k, (wx, wy, ww, wh, u, lights, n_useful, sigma, warnings, sizes, notes)


def _touches(k: np.ndarray, settings) -> bool:
    """Whether the kernel's support (values above ``settings.final_cut`` of its maximum) reaches within
    one pixel of its window's edge."""
    ys, xs = np.nonzero(k >= settings.final_cut * k.max())
    n = k.shape[0]
    return bool(ys.size) and min(ys.min(), xs.min(), n - 1 - ys.max(), n - 1 - xs.max()) <= 1


def _grown_plan(region_w: int, region_h: int, window: int, settings):
    """(scale, kernel side at that scale, full-resolution window) for a window half as large again as
    ``window`` (full resolution), or None when the region is too small for it."""
    try:
        scale, ks, ks_full = _plan(region_w, region_h, min(odd(1.5 * window), MAX_KERNEL), settings)
    except ValueError:
        return None
    return (scale, ks, ks_full) if ks_full > window else None


def _at_scale(full, scale: float):
    """The working gray photo and its clip-detection image (:func:`~.regions.working_gray`) at ``scale``."""
    gray, top = full
    if scale >= 1:
        return gray, top
    h, w = gray.shape
    size = (max(8, int(round(w * scale))), max(8, int(round(h * scale))))
    return (cv2.resize(gray, size, interpolation=cv2.INTER_AREA),
            cv2.resize(top, size, interpolation=cv2.INTER_NEAREST))   # no averaging clipped lights away


def _prepare(gray: np.ndarray, sigma: float, settings):
    """The sRGB-encoded gray region as the estimator sees it: denoised by the network (told the noise
    level measured; the L0 steps otherwise read noise as edges) and in linear light when asked.
    Returns (gray, warnings); a missing or broken denoiser is no failure: the noisy region serves."""
    warnings = []
    if settings.denoise:
        try:
            from ..network import denoise
            gray = denoise(gray, min(max(sigma, 0.002), 0.2))
        except Exception as exc:  # noqa: BLE001 - a missing or corrupt model: estimate without it, say so
            warnings.append(f"denoiser unavailable ({exc}); the shake kernel was estimated on the noisy photo")
    if settings.linear:
        gray = srgb_to_linear(gray)
    return np.ascontiguousarray(gray, dtype=np.float32), warnings


def _finish(k: np.ndarray, scale: float, settings) -> np.ndarray:
    """The working-scale kernel to full resolution, weak values cut, trimmed to its support."""
    k = np.where(k >= settings.final_cut * k.max(), k, 0.0)
    k = center_kernel(main_trajectory(k / k.sum()))
    if scale < 1:
        n = k.shape[0]
        big = odd((n - 1) / scale + 1)
        k = resize_kernel(k, big, factor=1 / scale)
        k = np.where(k >= 0.5 * settings.final_cut * k.max(), k, 0.0)
    k = trim_kernel(k / k.sum())
    return k.astype(np.float32)


def refine_kernel(image: np.ndarray, psf: np.ndarray, kernel_size: int, *, roi, progress=None, settings=DEFAULT):
    """Refine a kernel on another region of the same photo: the finest level only, started from
    ``psf`` centred in a ``kernel_size`` window (:mod:`deblur_core.spatial`: kernels that vary slowly
    across the photo). Same returns as :func:`estimate_kernel`; the region is used at full
    resolution."""
    t0 = time.perf_counter()
    img = validate_image(image)
    H, W = img.shape[:2]
    x0, y0, rw, rh = clip_region(roi, W, H)
    ks = int(kernel_size) | 1
    if 2 * ks > min(rw, rh):
        raise ValueError(f"the region ({rw}x{rh} px) is too small for a kernel of {ks} px")
    gray, top = working_gray(img[y0:y0 + rh, x0:x0 + rw], False)
    usable, _ = usable_mask(top, ks, settings.clip_level)
    sigma = _noise_sigma(gray)
    usable, _, _ = usable_with_edges(gray, usable, top, ks, sigma, settings.clip_level)
    gray, _ = _prepare(gray, sigma, settings)
    tick = _Ticker(progress, settings.iterations, "Refining the kernel")
    k, _ = refine_level(gray, None if usable.all() else usable, np.asarray(psf, np.float64), ks, settings, tick)
    out = _finish(k, 1.0, settings)
    return out, {"size": int(out.shape[0]), "window": ks, "roi": [x0, y0, rw, rh],
                 "runtime_s": round(time.perf_counter() - t0, 3)}

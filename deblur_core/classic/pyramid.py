"""The classic estimator's coarse-to-fine alternation on one region.

An image pyramid (factor sqrt(1/2) per level) from a kernel of about 5 px up to the full size; at every
level the latent and kernel steps (:mod:`.steps`) alternate, the kernel cleaned up after each
(:mod:`.cleanup`). Multi-start on the cheap coarse levels: a small cross and lines along and across the
cepstrum's motion direction; the kernel whose Wiener-deconvolved image has the sparsest gradients
(normalized sparsity, Krishnan et al. 2011) goes on to the fine levels. When the size is found, a
generous window at the coarse levels is shrunk to the measured support (plus a margin) before the
expensive fine levels. The finest level may run on the denoised region with the consistent kernel step
(see :class:`~.settings.ClassicSettings` ``fine_denoise``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..fftutils import pad_for_deconvolution, psf2otf
from ..shake.kernel_step import odd, resize_kernel, support_side
from ..shake.latent import forward_gradients, gradient_energy
from .cleanup import center_support, clean_kernel, embed, initial_kernel
from .fft import rfft2
from .scores import sparsity
from .settings import COARSEST_KERNEL, PYRAMID_RATIO, ClassicSettings
from .steps import kernel_least_squares, l0_latent, select_edges

__all__ = ["Problem", "level_sizes", "coarse_to_fine", "motion_starts"]


@dataclass(frozen=True)
class Problem:
    """One estimate's inputs, the same at every level (built by :func:`deblur_core.classic.estimator`)."""

    luma: np.ndarray            # the photo's working luminance (the multi-start's cepstrum looks at it)
    region: np.ndarray          # the region's luminance at the standard contrast
    fine_region: np.ndarray | None  # the same denoised, for the finest level (None: ``region``)
    valid: np.ndarray           # the region's usable pixels (bool)
    kernel_size: int            # the window asked for (the generous one when ``auto``)
    auto: bool                  # the size is found: the window shrinks to the support on the way
    lam: float                  # L0 weight at the coarsest level
    gamma_rel: float            # Tikhonov weight of the kernel step
    iterations: int             # alternations per level
    settings: ClassicSettings


@dataclass(frozen=True)
class _LevelState:
    """What the last level leaves for the scores: the padded region and its crop, the gradient energy,
    the last latent, the usable-pixel weights and the blurred gradients' transforms."""

    ypad: np.ndarray
    crop: tuple
    DtD: np.ndarray
    latent: np.ndarray
    weights: np.ndarray
    blurred_grads: tuple


class Ticker:
    """Counts alternations and reports them as a fraction of the ``planned`` ones (up to 0.95)."""

    def __init__(self, progress, planned):
        self.progress, self.planned, self.done = progress, planned, 0

    def __call__(self, level, n_levels):
        self.done += 1
        self.progress(min(self.done / self.planned, 1.0) * 0.95,
                      f"Estimating the shake kernel: level {level + 1}/{n_levels}")


def level_sizes(kernel_size: int) -> list:
    """Kernel side per pyramid level, coarsest first, from about :data:`COARSEST_KERNEL` px up to ``kernel_size``."""
    if kernel_size <= COARSEST_KERNEL:
        return [kernel_size]
    n = max(1, int(math.floor(math.log(COARSEST_KERNEL / kernel_size) / math.log(PYRAMID_RATIO))) + 1)
    return [max(3, odd(kernel_size * PYRAMID_RATIO ** (n - 1 - i)) if i < n - 1 else kernel_size) for i in range(n)]


def _resize(img: np.ndarray, shape) -> np.ndarray:
    h, w = shape
    if (h, w) == img.shape:
        return img.astype(np.float32, copy=True)
    interp = cv2.INTER_AREA if h < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32), (w, h), interpolation=interp)


def motion_starts(luma: np.ndarray, n: int):
    """First kernels of the multi-start: the cross (None), then lines along the cepstrum's motion
    direction and across it (degrees)."""
    out = [None]
    if n <= 1:
        return out
    try:
        from ..estimate import estimate_motion
        f = min(1.0, 1024 / max(luma.shape))
        g = _resize(luma, (int(luma.shape[0] * f), int(luma.shape[1] * f)))
        _, angle, _ = estimate_motion(g, normalise="global")
    except Exception:  # noqa: BLE001 - a start less is no failure
        angle = 0.0
    out.append(float(angle))
    if n > 2:
        out.append(float(angle) + 90.0)
    return out[:n]


def _level(p: Problem, sizes, li, k, size_limit, tick):
    """One pyramid level: the region at the level's scale, the kernel carried over (or started), then
    ``p.iterations`` latent / kernel alternations. Returns (kernel, size limit, level report, state)."""
    opt, n_levels = p.settings, len(sizes)
    scale = sizes[li] / p.kernel_size if li < n_levels - 1 else 1.0
    ks = max(min(sizes[li], odd(size_limit * scale)) if p.auto else sizes[li], 3)
    # L0 weight: from ``lam`` at the coarsest level down to lam_end at the finest (a strong prior first,
    # to avoid the trivial delta solution; finer edges when the kernel is close).
    lam = p.lam * (opt.lam_end / p.lam) ** (li / max(n_levels - 1, 1))
    h, w = p.region.shape
    sh, sw = max(8, int(round(h * scale))), max(8, int(round(w * scale)))
    finest = li == n_levels - 1 and p.fine_region is not None
    ys = _resize(p.fine_region if finest else p.region, (sh, sw))
    vs = _resize(p.valid.astype(np.float32), (sh, sw)) > 0.99
    if not isinstance(k, np.ndarray):
        k = initial_kernel(ks, k)
    else:
        k = resize_kernel(k, ks)
        k = center_support(np.where(k > 1e-3 * k.max(), k, 0))
    # Pad the blurred level (edge taper) so the circular model has no false border edges.
    ypad, crop = pad_for_deconvolution(ys, (ks, ks), margin=ks + 4)
    shape = ypad.shape
    wpad = np.zeros(shape, np.float32)
    wpad[crop] = vs             # only the region, away from clipped highlights
    if finest:
        # Consistent kernel step: only blurred pixels whose whole kernel footprint is in the region,
        # with all the latent's gradients there (the region is denoised: no edge selection needed).
        wpad = cv2.erode(wpad, np.ones((ks, ks), np.uint8))
    Y = rfft2(ypad)
    DtD = gradient_energy(shape)
    Ysg = tuple(rfft2(g * wpad) for g in forward_gradients(ypad))
    n_keep = max(8 * ks, int(opt.keep_frac * vs.sum()))
    xl = ypad
    for _ in range(p.iterations):
        xl = l0_latent(ypad, Y, psf2otf(k.astype(np.float32), shape), DtD, lam, kappa=opt.kappa)
        gx, gy = forward_gradients(xl)
        gx, gy = (gx * wpad, gy * wpad) if finest else select_edges(gx, gy, wpad, n_keep)
        k_new = kernel_least_squares((rfft2(gx), rfft2(gy)), Ysg, ks, k, p.gamma_rel, shape=shape,
                                     smooth=opt.smooth, nonneg_iters=opt.nonneg_iters)
        k = clean_kernel(k_new, opt.thr, opt.min_mass)
        lam = max(lam / 1.1, opt.lam_end * 0.5)
        tick(li, n_levels)
    ext = support_side(k, 0.05)
    if p.auto and li < n_levels - 1:
        # Shrink a generous window to the support found (plus a margin) before finer levels.
        size_limit = min(size_limit, max(9, odd((ext + 4) / max(scale, 1e-6) * 1.25)))
    report = {"kernel": int(ks), "image": [int(sw), int(sh)], "extent": int(ext)}
    return k, size_limit, report, _LevelState(ypad, crop, DtD, xl, wpad, Ysg)


def coarse_levels(sizes, settings: ClassicSettings) -> int:
    """How many levels the multi-start runs: those before the first with a kernel of ``switch_ks`` px."""
    n = 0
    while n < len(sizes) - 1 and sizes[n] < settings.switch_ks:
        n += 1
    return n


def coarse_to_fine(p: Problem, starts, n_coarse: int, tick, init=None):
    """Every level of ``p``'s pyramid: each of ``starts`` through the first ``n_coarse`` levels, the one
    with the sparsest deconvolution on to the others; with ``init`` (a kernel), only the finest level,
    started from it. Returns (kernel, level reports, the last level's state)."""
    sizes = level_sizes(p.kernel_size)
    best = None if init is None else (0.0, embed(init, sizes[-1]), p.kernel_size, [])
    for start in starts:
        k, size_limit, reports = start, p.kernel_size, []
        for li in range(n_coarse):
            k, size_limit, report, state = _level(p, sizes, li, k, size_limit, tick)
            reports.append(report)
        if len(starts) > 1:
            score = sparsity(state.ypad, state.crop, k, state.DtD, p.settings.ns_w)
            if best is None or score < best[0]:
                best = (score, k, size_limit, reports)
        else:
            best = (0.0, k, size_limit, reports)
    _, k, size_limit, reports = best
    for li in range(n_coarse, len(sizes)):
        k, size_limit, report, state = _level(p, sizes, li, k, size_limit, tick)
        reports.append(report)
    return k, reports, state

"""Public entry points of the classic estimator: :func:`estimate_kernel` and :func:`refine_kernel`, the
pair of candidate windows that compete (two threads), and :class:`PartsProgress` for jobs run at once."""
from __future__ import annotations

import threading
import time

import numpy as np

from ..color import validate_image
from ..shake.estimator import clip_region
from ..shake.kernel_step import odd
from .cleanup import final_trim
from .fft import fft_policy, set_fft_sharing
from .pyramid import Problem, Ticker, coarse_levels, coarse_to_fine, level_sizes, motion_starts
from .regions import (auto_window, contrast_range, default_region, denoised_region, region_luma, saturation_mask,
                      usable_region_mask, working_luma)
from .scores import confidence, region_sparsity
from .settings import DEFAULT_SETTINGS, MAX_KERNEL, MIN_KERNEL, ClassicSettings

__all__ = ["estimate_kernel", "refine_kernel", "PartsProgress"]


def estimate_kernel(image: np.ndarray, kernel_size: int | None = None, *, roi=None, progress=None,
                    max_region: int = 640, iterations: int = 5, lam: float = 0.06,
                    gamma_rel: float = 2e-3, linear: bool = True, settings: ClassicSettings = DEFAULT_SETTINGS,
                    _prep=None):
    """Estimate a camera-shake kernel from a blurred photo.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, C), float in [0, 1], sRGB-encoded (engine convention).
    kernel_size : int or None
        Side of the kernel window in px (odd, 3..101). None: found automatically (a generous window
        shrunk to the measured support at the coarse levels).
    roi : (x, y, w, h) or None
        Region to estimate on (e.g. the user's selection). None: the window of at most
        ``max_region`` x ``max_region`` px with the most strong edges.
    progress : callable(fraction, message) or None
        Called along the way; raising from it cancels.
    iterations : int
        Latent/kernel alternations per pyramid level.
    lam : float
        L0 weight of the latent step at the coarsest level.
    gamma_rel : float
        Tikhonov weight of the kernel step, relative to the latent gradients' energy.
    linear : bool
        Convert to linear light first (True for photos).
    settings : :class:`~deblur_core.classic.settings.ClassicSettings`
    _prep : private: the photo's working luminance (:func:`~deblur_core.classic.regions.working_luma`)
        when the caller has it.

    Returns
    -------
    (psf, info): psf is a float32 centred convolution kernel (odd side, sum 1); info is a
    JSON-serialisable dict (size, scales, iterations, roi, runtime_s, confidence, ...).

    Raises ValueError for a kernel size outside 3..101 or one too large for the image/region.
    """
    kw = dict(roi=roi, progress=progress, max_region=max_region, iterations=iterations, lam=lam,
              gamma_rel=gamma_rel, linear=linear, settings=settings, _prep=_prep)
    if kernel_size is None and settings.pair_ks:
        return _estimate_pair(image, None, int(settings.pair_ks) | 1, **kw)
    if kernel_size is not None and settings.grow and MIN_KERNEL <= int(kernel_size) <= MAX_KERNEL:
        given = int(kernel_size) | 1
        grown = min(odd(given * settings.grow[0] + settings.grow[1]), MAX_KERNEL)
        if grown > given:
            return _estimate_pair(image, given, grown, **kw)
    return _estimate(image, kernel_size, **kw)


def refine_kernel(image: np.ndarray, psf: np.ndarray, kernel_size: int, *, roi=None, progress=None,
                  max_region: int = 640, iterations: int = 5, lam: float = 0.06, gamma_rel: float = 2e-3,
                  linear: bool = True, settings: ClassicSettings = DEFAULT_SETTINGS, _prep=None):
    """Refine a kernel on another region: the finest level of :func:`estimate_kernel` only, started
    from ``psf`` (centred in a ``kernel_size`` window). Same arguments and returns as
    :func:`estimate_kernel`; cheaper (no coarse levels) and anchored to ``psf``, for kernels that vary
    slowly across a photo (:mod:`deblur_core.spatial`, which passes the photo's working luminance,
    ``_prep``, once for all its cells)."""
    if kernel_size is None:
        raise ValueError("refine_kernel needs the kernel window size")
    return _estimate(image, kernel_size, roi=roi, progress=progress, max_region=max_region, iterations=iterations,
                     lam=lam, gamma_rel=gamma_rel, linear=linear, settings=settings, _prep=_prep,
                     _init=np.asarray(psf, np.float64))


def _estimate_pair(image, size_a, size_b, *, progress, roi, _prep=None, **kw):
    """Two estimates in two kernel windows compete; the kernel whose deconvolution of the region has the
    sparsest gradients wins.

    * Size not given (``size_a`` None): a generous window (shrunk to the support found) against a
      moderate fixed one (``pair_ks``). The generous window alone sometimes never shrinks: the kernel
      fills it with streaks that copy the photo's own repeated structure (error ratios of 40-135 on 4
      of 24 train cases).
    * Size given: that window against a larger one (``grow``), which holds a trajectory that the
      coarse levels placed off centre or a size the user guessed too small.

    The two estimates run side by side in two threads on the same region and working luminance (the
    FFTs and most array maths release the GIL): 1.35-1.5x faster on 2 cores, the same kernels."""
    t0 = time.perf_counter()
    linear = kw.get("linear", True)
    prep = working_luma(validate_image(image), linear) if _prep is None else _prep
    H, W = prep[0].shape
    roi = default_region(prep, kw["max_region"], size_a) if roi is None else clip_region(roi, W, H)
    fine = denoised_region(image, roi, linear) if kw["settings"].fine_denoise else None
    shared = PartsProgress(progress, 2, lambda done, n: "Kernel estimated" if done == n
                           else "Estimating the shake kernel (two window sizes)")
    finished = [threading.Event(), threading.Event()]

    def run(i, size):
        set_fft_sharing(finished[1 - i].is_set)     # all the FFT threads once the other is done
        try:
            return _estimate(image, size, roi=roi, progress=shared.part(i), _prep=prep, _fine=fine, **kw)
        finally:
            finished[i].set()
            set_fft_sharing(None)

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        job_a = pool.submit(run, 0, size_a)
        job_b = pool.submit(run, 1, size_b)
        try:
            psf_a, info_a = shared.result(job_a)
            try:
                psf_b, info_b = shared.result(job_b)
            except ValueError:  # the region is too small for it: the first one stands
                psf_b = None
        except BaseException:
            shared.cancel()     # the other estimate stops at its next progress report
            raise
    if psf_b is None or (size_a is None and info_a["window"] <= size_b):
        return psf_a, info_a
    region = region_luma(prep[0], info_a["roi"])
    scores = [region_sparsity(region, k) for k in (psf_a, psf_b)]
    psf, info = (psf_a, info_a) if scores[0] <= scores[1] else (psf_b, info_b)
    info = dict(info, requested_size=info_a["requested_size"], auto_size=size_a is None,
                runtime_s=round(time.perf_counter() - t0, 3),
                candidates=[{"window": int(i["window"]), "size": int(i["size"]), "sparsity": round(sc, 5)}
                            for i, sc in zip((info_a, info_b), scores)])
    return psf, info


def _kernel_window(kernel_size, ref_side):
    """(window side, found automatically) for a size asked (None: the generous window) on a region whose
    shorter side is ``ref_side``; ValueError, in words, outside 3..101 or for a region too small."""
    auto = kernel_size is None
    if auto:
        ks = auto_window(ref_side)
    else:
        ks = int(kernel_size)
        if ks < MIN_KERNEL or ks > MAX_KERNEL:
            raise ValueError(f"kernel size must be between {MIN_KERNEL} and {MAX_KERNEL} px, got {kernel_size}")
        ks |= 1
    if 2 * ks > ref_side:
        raise ValueError(f"a {ks} px kernel is too large for a {ref_side} px image/region: "
                         f"select a region at least {2 * ks} px wide and high, or a smaller kernel")
    return ks, auto


def _problem(image, kernel_size, *, roi, max_region, iterations, lam, gamma_rel, linear, settings, prep, fine):
    """The estimate's :class:`~.pyramid.Problem` (region chosen when ``roi`` is None, at the standard
    contrast, its usable pixels) and the denoised region's record (None when the finest level does not
    use it)."""
    luma, lin_max = prep
    H, W = luma.shape
    region = clip_region(roi, W, H) if roi is not None else None
    ks, auto = _kernel_window(kernel_size, min(region[2], region[3]) if region else min(H, W))
    valid_full = saturation_mask(lin_max, ks)
    if region is None:
        from ..shake.regions import pick_region
        side = max(max_region, 6 * ks)
        region = pick_region(luma, valid_full, side)
    x0, y0, w, h = region
    window = (slice(y0, y0 + h), slice(x0, x0 + w))
    yb = luma[window].astype(np.float32)
    if settings.fine_denoise and not auto:
        fine = fine if fine is not None else denoised_region(image, region, linear)
    else:
        fine = None
    lo, scale = contrast_range(yb)     # a standard contrast: the L0 weight means the same on every photo
    fine_region = fine["luma"] if fine is not None else None
    valid = usable_region_mask(luma[window], valid_full[window], lin_max[window], ks)
    problem = Problem(luma=luma, region=(yb - lo) / scale,
                      fine_region=None if fine_region is None else (fine_region - lo) / scale,
                      valid=valid, kernel_size=ks, auto=auto, lam=lam, gamma_rel=gamma_rel,
                      iterations=iterations, settings=settings)
    return problem, (x0, y0, w, h), fine


def _estimate(image, kernel_size, *, roi, progress, max_region, iterations, lam, gamma_rel, linear, settings,
              _prep=None, _init=None, _fine=None):
    """One estimate in one window (the pair runs two): ``_prep`` the working luminance, ``_init`` a kernel
    to refine (finest level only), ``_fine`` the denoised region when the caller has it."""
    t0 = time.perf_counter()
    report = progress if progress is not None else (lambda f, m: None)
    # A caller passing _prep has validated the photo (the pair, the grid's n^2 cells): no second pass.
    prep = working_luma(validate_image(image), linear) if _prep is None else _prep
    with fft_policy(settings):
        p, (x0, y0, w, h), fine = _problem(image, kernel_size, roi=roi, max_region=max_region,
                                           iterations=iterations, lam=lam, gamma_rel=gamma_rel, linear=linear,
                                           settings=settings, prep=prep, fine=_fine)
        n_levels = len(level_sizes(p.kernel_size))
        if _init is not None:   # refine a given kernel: the finest level only (see refine_kernel)
            starts, n_coarse = [], n_levels - 1
            planned = iterations
        else:
            # Multi-start on the cheap coarse levels (up to the first level with a kernel of switch_ks px).
            n_coarse = coarse_levels(level_sizes(p.kernel_size), settings)
            starts = motion_starts(p.luma, settings.starts) if n_coarse > 0 else [None]
            planned = (len(starts) * n_coarse + n_levels - n_coarse) * iterations
        tick = Ticker(report, planned)
        k, level_info, last = coarse_to_fine(p, starts, n_coarse, tick, _init)
        psf = final_trim(k, settings.trim_mass)
        conf = confidence(last.latent, k, last.weights, last.blurred_grads)
    report(1.0, "Kernel estimated")
    info = {
        "size": int(psf.shape[0]),
        "window": int(k.shape[0]),
        "requested_size": None if p.auto else int(p.kernel_size),
        "auto_size": bool(p.auto),
        "scales": int(n_levels),
        "levels": level_info,
        "iterations": int(tick.done),
        "roi": [int(x0), int(y0), int(w), int(h)],
        "runtime_s": round(time.perf_counter() - t0, 3),
        "confidence": round(float(conf), 3),
        "excluded_fraction": round(float(1 - p.valid.mean()), 4),
        "finest_level_denoised": p.fine_region is not None,
    }
    if fine is not None:
        if fine["sigma"] is not None:
            info["noise_sigma"] = round(float(fine["sigma"]), 5)
        if fine["warning"]:
            info["warnings"] = [fine["warning"]]
    return psf.astype(np.float32), info


class _Cancelled(Exception):
    """Another job of a :class:`PartsProgress` failed or was cancelled: this one stops too."""


class PartsProgress:
    """Progress for ``n`` jobs running at once (the two estimates of a pair, the cells of a grid): each
    part reports its fraction, ``progress`` gets their mean and one message, ``message(done, n)``, under
    a lock (it need not be thread-safe); the jobs' own messages ("level 2/4", "level 3/3") would
    alternate. Once ``progress`` raised (the user cancelled) or :meth:`cancel` was called, every part
    raises at its next report, and :meth:`result` hands the caller the user's exception rather than
    another thread's echo of it."""

    def __init__(self, progress, n, message):
        self._progress = progress
        self._message = message
        self._lock = threading.Lock()
        self._fractions = [0.0] * n
        self._failure = None
        self._cancelled = False

    def part(self, i):
        def report(f, _message):
            with self._lock:
                if self._failure is not None or self._cancelled:
                    raise _Cancelled()
                self._fractions[i] = f
                if self._progress is None:
                    return
                done = sum(x >= 1.0 for x in self._fractions)
                try:
                    self._progress(sum(self._fractions) / len(self._fractions),
                                   self._message(done, len(self._fractions)))
                except BaseException as exc:
                    self._failure = exc
                    raise
        return report

    def cancel(self):
        with self._lock:
            self._cancelled = True

    def result(self, job):
        try:
            return job.result()
        except _Cancelled:
            if self._failure is not None:
                raise self._failure from None
            raise

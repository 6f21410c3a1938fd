"""Non-blind deconvolution: recover a sharp image from a blurred one and its kernel.

Two solvers, both in the Fourier domain on an edge-tapered extension of the image
(:func:`deblur_core.fftutils.pad_for_deconvolution`):

- :func:`wiener`: gradient-regularised Wiener filter, one FFT pass (fast path, previews);
- :func:`hyper_laplacian`: edge-preserving, a hyper-Laplacian gradient prior solved by half-quadratic
  splitting (Krishnan & Fergus, "Fast Image Deconvolution using Hyper-Laplacian Priors", NIPS 2009).

Both take the image as given (any encoding); :func:`deconvolve` is the photo-level entry point that
converts to linear light (where blur happens), deconvolves luminance with the edge-preserving solver and
chroma with a strongly regularised Wiener filter (no colour fringes or colour noise), and guards clipped
highlights against black halos.
"""
from __future__ import annotations

import numpy as np

from .color import linear_luminance, linear_to_srgb, opponent_to_rgb, rgb_to_opponent, srgb_to_linear
from .fftutils import irfft2, pad_for_deconvolution, psf2otf, rfft2
from .kernels import normalize
from .tiling import grid_plan, needs_tiling, process_tiled, tile_reach

# Photos of more than TILED_ABOVE pixels are deconvolved in overlapping tiles of at most TILE_PIXELS
# pixels (context included), in the grid that computes the least context (tiling.grid_plan): the
# solvers hold ~8 photo-sized float32 arrays, which for 24 MP colour was 3.3 GB. Up to 16 MP one
# piece stays under 2 GB (12 MP: 1.7 GB) and is faster: tiles compute their context twice.
TILE_PIXELS = 9_500_000
TILED_ABOVE = 16_000_000
_PLAN_REACH = 128          # px beyond each cut the plan reckons with when it is given no kernel

__all__ = ["wiener", "hyper_laplacian", "deconvolve", "estimate_noise", "gradient_otfs",
           "tile_context", "tile_plan", "TILE_PIXELS", "TILED_ABOVE"]


def gradient_otfs(shape):
    """Transfer functions of the forward-difference operators along x and y (circular)."""
    dx = np.zeros((1, 3), np.float32)
    dx[0, 0], dx[0, 1] = 1, -1          # convolution flips: this computes x[j+1] - x[j]
    dy = dx.T.copy()
    return psf2otf(dx, shape), psf2otf(dy, shape)


def _as_planes(image):
    img = np.asarray(image, np.float32)
    if img.ndim == 2:
        return img[None], lambda p: p[0]
    return np.moveaxis(img, 2, 0), lambda p: np.moveaxis(p, 0, 2)


def _check(image, psf):
    psf = normalize(psf)
    if psf.shape[0] > image.shape[0] or psf.shape[1] > image.shape[1]:
        raise ValueError(f"kernel {psf.shape[0]}x{psf.shape[1]} is larger than the image "
                         f"{image.shape[1]}x{image.shape[0]}")
    return psf


def _fourier_setup(image, psf):
    """What both solvers start from: the image as (C, H, W) planes and the function that restores its
    layout, the edge-tapered extension and its crop, and the transfer functions of the kernel and of
    the x / y derivatives at the extension's size."""
    psf = _check(image, psf)
    planes, back = _as_planes(image)
    padded, crop = pad_for_deconvolution(planes, psf.shape)
    shape = padded.shape[1:]
    Dx, Dy = gradient_otfs(shape)
    return planes, back, padded, crop, psf2otf(psf, shape), Dx, Dy


def wiener(image: np.ndarray, psf: np.ndarray, balance: float = 1e-3) -> np.ndarray:
    """Gradient-regularised Wiener deconvolution.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, C), float
        Blurred image.
    psf : ndarray, (kh, kw)
        Centred convolution kernel (normalised here).
    balance : float
        Weight of the gradient energy against the data fit; about ``(noise sigma / 0.1) ** 2 * 4``
        works for natural images. Larger is smoother.

    Returns
    -------
    ndarray, float32, same shape as ``image``.
    """
    planes, back, padded, crop, K, Dx, Dy = _fourier_setup(image, psf)
    shape = padded.shape[1:]
    denom = (np.abs(K) ** 2 + balance * (np.abs(Dx) ** 2 + np.abs(Dy) ** 2)).astype(np.float32)
    filt = (np.conj(K) / denom).astype(np.complex64)
    out = np.empty(planes.shape, np.float32)
    for i, p in enumerate(padded):
        out[i] = irfft2(rfft2(p) * filt, shape)[crop]
    return back(out)


def _shrink(v: np.ndarray, lam: float, alpha: float) -> np.ndarray:
    """argmin_w lam*|w|^alpha + 0.5*(w - v)^2, elementwise (generalised soft-thresholding,
    Zuo et al., ICCV 2013). alpha = 1 is soft-thresholding."""
    if alpha >= 1.0:
        return np.sign(v) * np.maximum(np.abs(v) - lam, 0)
    tau = (2 * lam * (1 - alpha)) ** (1 / (2 - alpha)) + lam * alpha * (2 * lam * (1 - alpha)) ** ((alpha - 1) / (2 - alpha))
    a = np.abs(v)
    w = a.copy()
    big = a > tau
    wb = w[big]
    ab = a[big]
    for _ in range(3):
        wb = ab - lam * alpha * np.power(wb, alpha - 1)
    w[:] = 0
    w[big] = wb
    return np.copysign(w, v)


def hyper_laplacian(image: np.ndarray, psf: np.ndarray, weight: float = 1e-3, *, alpha: float = 2 / 3,
                    beta_start: float | None = None, beta_rate: float = 2 * np.sqrt(2),
                    iterations: int = 8) -> np.ndarray:
    """Edge-preserving deconvolution with a hyper-Laplacian gradient prior (half-quadratic splitting).

    Minimises ``0.5 * ||k * x - y||^2 + weight * sum |grad x|^alpha`` (Krishnan & Fergus 2009): the
    x-step is exact in the Fourier domain, the gradient step is a pointwise shrinkage; the coupling
    weight ``beta`` grows by ``beta_rate`` each of ``iterations`` steps.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, C), float
        Blurred image.
    psf : ndarray, (kh, kw)
        Centred convolution kernel (normalised here).
    weight : float
        Prior weight; about ``noise sigma / 10`` in [0, 1] units.
    alpha : float
        Exponent of the prior, 2/3 for natural images (1 = total variation).

    Returns
    -------
    ndarray, float32, same shape as ``image``.
    """
    planes, back, padded, crop, K, Dx, Dy = _fourier_setup(image, psf)
    shape = padded.shape[1:]
    KtK = (np.abs(K) ** 2).astype(np.float32)
    DtD = (np.abs(Dx) ** 2 + np.abs(Dy) ** 2).astype(np.float32)
    cDx, cDy, cK = np.conj(Dx), np.conj(Dy), np.conj(K)
    beta = beta_start if beta_start is not None else 2.0 * weight
    out = np.empty(planes.shape, np.float32)
    for i, p in enumerate(padded):
        KtY = cK * rfft2(p)
        # Start from a lightly regularised Wiener estimate.
        X = KtY / (KtK + 10 * weight * DtD + 1e-8)
        x = irfft2(X, shape).astype(np.float32)
        b = beta
        for _ in range(iterations):
            gx = np.roll(x, -1, axis=1) - x
            gy = np.roll(x, -1, axis=0) - x
            wx = _shrink(gx, weight / b, alpha)
            wy = _shrink(gy, weight / b, alpha)
            num = KtY + b * (cDx * rfft2(wx) + cDy * rfft2(wy))
            x = irfft2(num / (KtK + b * DtD), shape).astype(np.float32)
            b *= beta_rate
        out[i] = x[crop]
    return back(out)


def tile_context(psf_shape) -> int:
    """Pixels of context a deconvolution tile needs beyond its blend band: where a tile's own border
    (edge-tapered like a photo border) still shows in the result. Four kernel sizes, measured
    (tests/test_deconvolution.py): away from the seams the median difference to the untiled result
    is ~0.001/255, the 99th percentile 0.6-1.9/255, PSNR equal. Kernels with zeros in their spectrum
    (a straight motion streak) make the solution non-local: crops of a photo then differ by a few
    /255 even hundreds of px from their edge, tiled or not, at the same PSNR."""
    return 4 * int(max(psf_shape)) + 32


def tile_plan(shape, tile: int | None, psf_shape=None):
    """The tile side :func:`deconvolve` and :func:`deblur_core.pnp.pnp_deconvolve` use for a photo of
    ``shape``, or 0 for one piece. ``tile``: None = automatic (for photos of more than ``TILED_ABOVE``
    pixels, (rows, columns) of the parts between cuts in the grid of :func:`tiling.grid_plan`, each
    tile at most ``TILE_PIXELS`` with the context ``psf_shape`` needs), 0 = never, a number = tiles of
    that side whenever the photo is bigger (tests, memory-tight callers), a (rows, columns) pair = that
    plan as it is."""
    if isinstance(tile, tuple):
        return tile
    if tile is None:
        if shape[0] * shape[1] <= TILED_ABOVE:
            return 0
        reach = tile_reach(tile_context(psf_shape)) if psf_shape is not None else _PLAN_REACH
        return grid_plan(shape, TILE_PIXELS, reach)
    tile = int(tile)
    return tile if tile and needs_tiling(shape, tile) else 0


def estimate_noise(image: np.ndarray, *, jpeg_robust: bool = False, window: int | None = None,
                   signal_dependent: bool = False) -> float:
    """Standard deviation of white noise in a (H, W) or (H, W, C) image, robust to edges.

    Median absolute deviation of Immerkaer's high-pass ("Fast Noise Variance Estimation", CVIU 1996).
    ``jpeg_robust`` also measures at half resolution and keeps the larger value: JPEG hides noise at
    the finest scale only. ``window``: measure on the central ``window`` x ``window`` px only; noise
    is a local statistic, so that measures it as well as a 12-24 MP photo would, far faster.
    ``signal_dependent``: the root mean square of the noise over the photo's brightness (the deviation
    measured in 8 brightness bins, weighted by their pixels) instead of the typical pixel's. A camera's
    shot noise grows with the light (Poisson-Gaussian), and the plain median reads the darker majority:
    on a linear-light photo this is the level a deconvolution must not amplify anywhere.
    """
    if window is not None:
        h, w = image.shape[:2]
        y0, x0 = max(0, (h - window) // 2), max(0, (w - window) // 2)
        image = image[y0:y0 + window, x0:x0 + window]
    g = image if image.ndim == 2 else image[..., :3].mean(axis=2)
    g = np.asarray(g, np.float32)      # float32: a 24 MP photo's float64 temporaries took ~1 GB
    if min(g.shape) < 3:
        return 0.0
    # Immerkaer's mask: the difference of two Laplacians, blind to planes and ramps; its norm is 6.
    n = (g[:-2, :-2] + g[:-2, 2:] + g[2:, :-2] + g[2:, 2:]
         - 2 * (g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]) + 4 * g[1:-1, 1:-1])
    np.abs(n, out=n)
    sigma = float(1.4826 * np.median(n) / 6.0)
    if signal_dependent and n.size >= 8 * 256:
        sigma = _rms_over_brightness(g, n, sigma)
    if jpeg_robust and min(g.shape) >= 16:
        # JPEG removes the finest-scale noise but not the coarser one, which deconvolution amplifies
        # all the same: also measure at half resolution (2x2 means halve white noise).
        import cv2
        half = cv2.resize(g.astype(np.float32), (g.shape[1] // 2, g.shape[0] // 2), interpolation=cv2.INTER_AREA)
        sigma = max(sigma, 2.0 * estimate_noise(half, signal_dependent=signal_dependent))
    return sigma


def _rms_over_brightness(g: np.ndarray, absn: np.ndarray, fallback: float, bins: int = 8) -> float:
    """:func:`estimate_noise`'s signal-dependent level: ``absn`` (|high-pass| of ``g``, 2 px smaller)
    grouped by the local 5x5 brightness into ``bins`` equal-count bins, each bin's robust deviation,
    the root of their pixel-weighted mean variance."""
    import cv2
    level = cv2.blur(g, (5, 5))[1:-1, 1:-1]
    step = max(1, int(np.ceil(np.sqrt(absn.size / 1e6))))   # ~1 M samples say as much as 12 M, 4x faster
    level, absn = level[::step, ::step], absn[::step, ::step]
    edges = np.quantile(level[::4, ::4], np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges[1:-1], level, side="right"), 0, bins - 1)
    var, count = 0.0, 0
    for b in range(bins):
        vals = absn[which == b]
        if vals.size < 64:
            continue
        s = 1.4826 * float(np.median(vals)) / 6.0
        var += vals.size * s * s
        count += vals.size
    return float(np.sqrt(var / count)) if count else fallback


def _clip_guard(result: np.ndarray, blurred: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Near clipped highlights the linear blur model is wrong and deconvolution rings (dark halos).
    There, keep the result inside the local range of the blurred input over the kernel's footprint."""
    import cv2
    sat = blurred.max(axis=2) if blurred.ndim == 3 else blurred
    sat = sat >= 0.98
    if not sat.any():
        return result
    ks = max(psf.shape) | 1
    se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ks + 1, 2 * ks + 1))
    zone = cv2.dilate(sat.astype(np.uint8), se) > 0
    kern = np.ones((ks, ks), np.uint8)
    lo = cv2.erode(blurred, kern)
    hi = cv2.dilate(blurred, kern)
    guarded = np.clip(result, lo, hi)
    zone = zone[..., None] if result.ndim == 3 else zone
    return np.where(zone, guarded, result)


def deconvolve(image: np.ndarray, psf: np.ndarray, *, method: str = "hyper-laplacian",
               noise_sigma: float | None = None, regularization: float = 1.0,
               linear: bool = True, tile: int | None = None) -> np.ndarray:
    """Deconvolve an sRGB-encoded photo (H, W) or (H, W, 3), float32 in [0, 1], with a known kernel.

    Works in linear light (``linear=True``); colour is split into luminance, deconvolved with
    ``method`` ("hyper-laplacian" or "wiener"), and chroma, deconvolved with a stronger-regularised
    Wiener filter. ``noise_sigma`` is the noise in linear luminance (estimated when None);
    ``regularization`` scales the noise-adapted prior weight (< 1: sharper and noisier).
    Big photos run in overlapping tiles (:mod:`deblur_core.tiling`; ``tile`` as in :func:`tile_plan`:
    None = automatic, 0 = never), which bounds memory (24 MP colour: 1.4 GB peak instead of 3.3 GB)
    and matches the untiled result away from the seams (see :func:`tile_context`).
    Returns float32 in [0, 1], same shape.
    """
    psf = _check(image, psf)
    if psf.shape == (1, 1):  # identity kernel: nothing to undo (the prior would only denoise)
        return np.clip(np.asarray(image, np.float32), 0.0, 1.0)
    tile = tile_plan(np.shape(image), tile, psf.shape)
    if tile:
        if noise_sigma is None:     # one noise level for the whole photo, so the tiles match
            noise_sigma = estimate_noise(linear_luminance(image, linear=linear), jpeg_robust=True)

        def one(part, index, count):
            return deconvolve(part, psf, method=method, noise_sigma=noise_sigma,
                              regularization=regularization, linear=linear, tile=0)
        return process_tiled(one, image, tile=tile, context=tile_context(psf.shape))
    lin = srgb_to_linear(image) if linear else np.asarray(image, np.float32)
    if lin.ndim == 3:
        planes = rgb_to_opponent(lin)
        luma, chroma = planes[0], np.moveaxis(planes[1:], 0, 2)
    else:
        luma, chroma = lin, None
    # Regularisation follows the noise where the solver works (linear luminance), with a floor:
    # under-regularised deconvolution fails far worse than over-regularised.
    s_lin = max(estimate_noise(luma, jpeg_robust=True) if noise_sigma is None else float(noise_sigma), 0.001) * regularization
    if method == "wiener":
        luma_out = wiener(luma, psf, balance=_wiener_balance(s_lin))
    elif method == "hyper-laplacian":
        luma_out = hyper_laplacian(luma, psf, weight=_hl_weight(s_lin))
    else:
        raise ValueError(f"unknown deconvolution method {method!r}")
    if chroma is not None:
        # Chroma carries little detail and much of the noise: regularise it far more (tuned on the
        # training split with bench-style degradations: 32x beats 4x by ~0.7 dB).
        chroma_out = wiener(chroma, psf, balance=32 * _wiener_balance(s_lin))
        out = opponent_to_rgb(np.concatenate([luma_out[None], np.moveaxis(chroma_out, 2, 0)]))
    else:
        out = luma_out
    out = _clip_guard(out, lin, psf)
    out = np.clip(out, 0.0, 1.0)
    return linear_to_srgb(out) if linear else out


def _wiener_balance(sigma: float) -> float:
    return float(np.clip(250.0 * sigma * sigma, 1e-5, 0.5))


def _hl_weight(sigma: float) -> float:
    return float(np.clip(0.04 * sigma, 5e-5, 0.01))

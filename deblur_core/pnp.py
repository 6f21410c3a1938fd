"""Plug-and-play deconvolution with the learned denoiser as the prior.

Half-quadratic splitting (Zhang et al., "Learning Deep CNN Denoiser Prior for Image Restoration",
CVPR 2017 (IRCNN); "Plug-and-Play Image Restoration with Deep Denoiser Prior", TPAMI 2021 (DPIR)):

    min_x  1 / (2 sigma_n^2) ||k * x - y||^2 + lambda Phi(x)

alternates

* x-step: ``x = argmin ||k * x - y||^2 + alpha_i ||x - z||^2``, exact in the Fourier domain, in linear
  light (where blur happens), on an edge-tapered extension of the image (no ringing from the borders);
* z-step: ``z = denoiser(x, sigma_i)``, the network of :mod:`deblur_core.network`, run on the
  sRGB-encoded estimate with a per-pixel noise map: noise that is uniform in linear light is scaled by
  the slope of the sRGB curve, so the map is ``sigma_i * slope(x)``. The network (``pnp-prior-v1``) is
  a white-noise denoiser fine-tuned inside this very loop, unfolded with its schedule (deep unfolding,
  as in Zhang, Van Gool & Timofte's USRNet, CVPR 2020; ``training/train_unrolled.py``): what it removes
  here is the x-step's ringing along the kernel, not white noise;

with ``sigma_i`` falling geometrically from ``sigma_start`` to the noise level and
``alpha_i = lam * sigma_n^2 / sigma_i^2``. The kernel only enters the x-step, so one network serves
motion, camera shake, defocus and gaussian blur.

Photos of more than ``deconvolution.TILED_ABOVE`` pixels run in overlapping tiles (:mod:`deblur_core.tiling`)
aligned to the network's 8 px grid, so a 24 MP photo stays well under 2 GB.
"""
from __future__ import annotations

import math

import numpy as np

from .color import linear_to_srgb, srgb_to_linear
from .fftutils import irfft2, pad_for_deconvolution, psf2otf, rfft2
from .kernels import normalize

__all__ = ["pnp_deconvolve", "srgb_slope", "schedule", "auto_iterations"]


def srgb_slope(lin: np.ndarray) -> np.ndarray:
    """d(sRGB)/d(linear) at linear-light values ``lin`` (12.92 on the linear toe)."""
    lin = np.clip(np.asarray(lin, np.float32), 0, 1)
    s = (1.055 / 2.4) * np.power(np.maximum(lin, 0.0031308), 1 / 2.4 - 1)
    return np.minimum(s, 12.92).astype(np.float32)


def schedule(sigma: float) -> tuple:
    """Default ``(lam, sigma_start)`` for the noise level ``sigma`` the solver assumes (linear light).

    Tuned on the train split (6 kernels x 4 photos, 5 iterations): clean photos want a gentle start
    (0.5, 0.1), noisy ones a stronger prior from higher up (0.4, 0.15); in between, linear in
    log(sigma). Against the former fixed (0.5, 0.1) with 6 iterations: -0.02 dB at noise 0.003,
    -0.09 dB at 0.0055, +0.06 dB at 0.01, +0.4 dB at 0.025, for 5/6 of the network time."""
    t = float(np.clip(np.log(max(sigma, 1e-6) / 0.003) / np.log(0.01 / 0.003), 0.0, 1.0))
    return 0.5 - 0.1 * t, 0.1 + 0.05 * t


def auto_iterations(sigma: float, sigma_start: float) -> int:
    """HQS iterations for a schedule from ``sigma_start`` down to the noise level ``sigma``: one
    network pass per factor of 3 of the denoising strength, plus the last one, at least 4. A clean
    photo (0.1 -> 0.002) gets 5, a noisy one (~0.12 -> 0.005) 4: the shorter the way down, the fewer
    steps it needs (measured on the train split: 4 instead of 5 steps cost 0.1 dB at noise 0.01, but
    0.4 dB on clean photos)."""
    span = max(float(sigma_start) / max(float(sigma), 1e-6), 1.0)
    return int(min(8, max(4, 1 + math.ceil(math.log(span) / math.log(3.0) - 1e-9))))


def _clipped_planes(planes: np.ndarray, level: float = 0.98):
    """Per plane of the padded linear-light observation (nc, H, W): the pixels at or above ``level``
    (sRGB-encoded) grown by 1 px (demosaicing and JPEG smear a clip's edge), or None for a plane without
    any; None when no plane has any."""
    import cv2
    thr = float(srgb_to_linear(np.float32(level)))
    out = []
    for p in planes:
        m = p >= thr
        out.append(cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) if m.any() else None)
    return out if any(m is not None for m in out) else None


def _network_window(crop, shape, margin: int, multiple: int) -> tuple:
    """Slices of the padded domain ``shape`` that the network denoises: the photo's ``crop`` grown by
    ``margin`` px rounded up to ``multiple`` on each side, inside the domain."""
    m = -(-int(margin) // multiple) * multiple
    return tuple(slice(max(0, c.start - m), min(n, c.stop + m)) for c, n in zip(crop, shape))


def measured_noise(image: np.ndarray) -> float:
    """The noise level :func:`pnp_deconvolve` assumes for an sRGB-encoded (H, W) or (H, W, 3) photo when it is
    not given (linear light, before ``strength_scale``)."""
    from .deconvolution import estimate_noise
    img = np.asarray(image, np.float32)
    # Per channel: the denoiser sees each channel's noise (a mean of 3 channels would show 1/sqrt(3)).
    # One channel at a time, so a big photo never has a whole linear copy on top of its tiles.
    chans = [img] if img.ndim == 2 else [img[..., c] for c in range(min(3, img.shape[2]))]
    # Signal-dependent: a camera's shot noise is strongest in the light areas, where an under-regularised
    # solve blotches first (camera-pipeline screen: docs/experiments/shake.md, stop 21).
    return float(np.mean([estimate_noise(srgb_to_linear(c), jpeg_robust=True, signal_dependent=True)
                          for c in chans]))


def pnp_deconvolve(image: np.ndarray, psf: np.ndarray, *, noise_sigma: float | None = None,
                   iterations: int | None = None, lam: float | None = None, sigma_start: float | None = None,
                   strength_scale: float = 1.0, noise_floor: float = 0.0, model=None, map_mode: str = "slope",
                   net_margin: int | None = None, tile: int | None = None, clipped: str = "unknown",
                   progress=None) -> np.ndarray:
    """Non-blind deconvolution of an sRGB-encoded photo with the denoiser prior.

    Parameters
    ----------
    image : float32 (H, W) or (H, W, 3) in [0, 1], sRGB-encoded (extra channels beyond 3 are not
        accepted: split alpha off first).
    psf : centred convolution kernel (normalised here), acting in linear light.
    noise_sigma : noise std in linear light ([0, 1] units); estimated from the image when None.
    iterations : HQS iterations (each = 1 FFT solve + 1 network pass); None: :func:`auto_iterations`
        for the schedule (4 or 5 for photos).
    lam : prior weight (DPIR's lambda); None: :func:`schedule` for the noise level.
    sigma_start : first denoising strength (linear light); None: :func:`schedule`.
    strength_scale : multiplies the noise level the solver assumes (> 1: smoother, < 1: sharper and
        noisier); the pipeline's strength slider maps onto it.
    noise_floor : the noise level the solver assumes (after ``strength_scale``, linear light) is at least
        this. For an estimated kernel, whose errors a clean photo's low noise does not cover
        (:data:`deblur_core.pipeline.BLIND_NOISE_FLOOR`); 0: the measured noise alone.
    map_mode : "slope" (noise map = sigma_i * sRGB slope, default) or "uniform" (sigma_i * 1).
    net_margin : how far beyond the photo (px) the network denoises the padded extension, rounded up
        to the network's multiple (8) so that the photo's pixels meet the network's grid at the same
        phase in a tile as in the whole photo; None: 8. Farther out the x-step estimate stands in for
        the denoised one (measured on the train split: as good as denoising all of it).
    tile : big photos run in overlapping tiles (:func:`deblur_core.tiling.process_tiled`, context
        :func:`deconvolution.tile_context`), which bounds memory (24 MP colour: 2.8 GB untiled);
        as in :func:`deconvolution.tile_plan`: None = automatic, 0 = never, a number = that side.
    clipped : "unknown" (default): pixels at the clip level (0.98 sRGB-encoded, grown by 1 px) are left out
        of the data term, filled each step with the estimate blurred again (Cho, Wang & Lee, ICCV 2011);
        "fit": fitted like any other pixel.
    progress : callable(fraction, message); raising from it cancels.

    Returns float32 of the input's shape, sRGB-encoded, clipped to [0, 1].
    """
    from .network import DEFAULT_PNP_PRIOR, load_model

    img = np.asarray(image, np.float32)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
        raise ValueError(f"image must be (H, W) or (H, W, 1|3), got {img.shape}")
    squeeze = img.ndim == 3 and img.shape[2] == 1
    if squeeze:
        img = img[..., 0]
    psf = normalize(psf)
    if psf.shape[0] > img.shape[0] or psf.shape[1] > img.shape[1]:
        raise ValueError(f"kernel {psf.shape[0]}x{psf.shape[1]} is larger than the image {img.shape[1]}x{img.shape[0]}")
    model = model or load_model(DEFAULT_PNP_PRIOR)
    if map_mode not in ("slope", "uniform"):
        raise ValueError(f"unknown map_mode {map_mode!r}")
    gray = img.ndim == 2
    if noise_sigma is None:
        noise_sigma = measured_noise(img)
    if clipped not in ("unknown", "fit"):
        raise ValueError(f"clipped must be 'unknown' or 'fit', got {clipped!r}")
    opts = dict(noise_sigma=noise_sigma, iterations=iterations, lam=lam, sigma_start=sigma_start,
                strength_scale=strength_scale, noise_floor=noise_floor, model=model, map_mode=map_mode,
                net_margin=net_margin, clipped=clipped)
    from .deconvolution import tile_context, tile_plan
    from .tiling import process_tiled
    tile = tile_plan(img.shape, tile, psf.shape)
    if tile:
        def one(part, index, count):
            sub = None if progress is None else (lambda f, msg: progress((index + f) / count, msg))
            return _pnp_tile(part, psf, progress=sub, **opts)
        res = process_tiled(one, img, tile=tile, context=tile_context(psf.shape), align=model.spec.pad_multiple)
    else:
        res = _pnp_tile(img, psf, progress=progress, **opts)
    return res[..., None] if squeeze else res


def _pnp_tile(img, psf, *, noise_sigma, iterations, lam, sigma_start, strength_scale, noise_floor, model, map_mode,
              net_margin, clipped, progress):
    """:func:`pnp_deconvolve` on one validated (H, W) or (H, W, 3) float32 image, untiled."""
    from .network import run_tiled

    gray = img.ndim == 2
    lin = srgb_to_linear(img)
    planes = lin[None] if gray else np.moveaxis(lin, 2, 0)
    sn = max(max(float(noise_sigma), 0.002) * max(float(strength_scale), 1e-3), float(noise_floor))
    auto_lam, auto_start = schedule(sn)
    lam = auto_lam if lam is None else float(lam)
    sigma_start = auto_start if sigma_start is None else sigma_start
    z, crop = pad_for_deconvolution(planes, psf.shape)      # z starts as the (padded) observation
    del lin, planes
    if z.ndim == 2:
        z = z[None]
    nc = z.shape[0]
    shape = z.shape[1:]
    K = psf2otf(psf, shape)
    KtK = (np.abs(K) ** 2).astype(np.float32)
    KtY = np.empty((nc,) + K.shape, np.complex64)
    for c in range(nc):
        KtY[c] = np.conj(K) * rfft2(z[c])
    # Clipped pixels say only "at least white": the linear model cannot explain them, and fitting them
    # rings around every highlight. They are left out of the data term by filling them, each step, with
    # the current estimate blurred again (EM, as Cho, Wang & Lee, "Handling Outliers in Non-blind Image
    # Deconvolution", ICCV 2011). Only where a channel is clipped; the rest of the solve is unchanged.
    clipped = _clipped_planes(z) if clipped == "unknown" else None
    observed = z.copy() if clipped is not None else None
    if clipped is None:
        del K
    sigma_start = max(float(sigma_start), sn)
    if iterations is None:
        iterations = auto_iterations(sn, sigma_start)
    sigmas = np.geomspace(sigma_start, sn, iterations) if iterations > 1 else np.array([sn])

    def report(frac, msg):
        if progress is not None:
            progress(float(frac), msg)

    # The network runs on the photo and a rim of the extension only: the rest of the extension is a
    # smooth taper that only keeps the FFT's wrap-around quiet, where the x-step estimate will do (on a
    # 1 MP photo the whole extension is ~20 % of the pixels).
    win = _network_window(crop, shape, 8 if net_margin is None else net_margin, model.spec.pad_multiple)
    wshape = (win[0].stop - win[0].start, win[1].stop - win[1].start)
    # Memory: one network input (4 planes of the window), the estimate z (nc planes), KtY; else per plane.
    inp = np.empty((4,) + wshape, np.float32)
    for i, s in enumerate(sigmas):
        report(i / len(sigmas), f"deconvolution step {i + 1} of {len(sigmas)}")
        alpha = np.float32(lam * sn * sn / (s * s))
        inp[3] = 0
        denom = KtK + alpha
        for c in range(nc):
            Z = rfft2(z[c])
            if clipped is not None and clipped[c] is not None and i > 0:
                filled = np.where(clipped[c], irfft2(K * Z, shape), observed[c])
                KtY[c] = np.conj(K) * rfft2(filled)
            xc = irfft2((KtY[c] + alpha * Z) / denom, shape).astype(np.float32, copy=False)
            np.clip(xc, 0, 1, out=xc)
            z[c] = xc
            inp[3] += xc[win] / nc
            inp[c] = linear_to_srgb(xc[win])
        del xc, denom
        if gray:
            inp[1] = inp[0]
            inp[2] = inp[0]
        if map_mode == "slope":
            inp[3] = np.minimum(s * srgb_slope(inp[3]), 0.25)
        else:
            inp[3] = s
        out = run_tiled(model, inp)
        np.clip(out, 0, 1, out=out)
        if gray:
            z[0][win] = srgb_to_linear(out.mean(axis=0))
        else:
            for c in range(nc):
                z[c][win] = srgb_to_linear(out[c])
        del out
    report(1.0, "deconvolution done")
    res = linear_to_srgb(z[:, crop[0], crop[1]])
    res = res[0] if gray else np.moveaxis(res, 0, 2)
    return np.ascontiguousarray(res, dtype=np.float32)

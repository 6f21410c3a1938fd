"""Plug-and-play deconvolution with the learned denoiser as the prior.

Half-quadratic splitting (Zhang et al., "Learning Deep CNN Denoiser Prior for Image Restoration",
CVPR 2017 (IRCNN); "Plug-and-Play Image Restoration with Deep Denoiser Prior", TPAMI 2021 (DPIR)):

    min_x  1 / (2 sigma_n^2) ||k * x - y||^2 + lambda Phi(x)

alternates

* x-step: ``x = argmin ||k * x - y||^2 + alpha_i ||x - z||^2``, exact in the Fourier domain, in linear
  light (where blur happens), on an edge-tapered extension of the image (no ringing from the borders);
* z-step: ``z = denoiser(x, sigma_i)``, the network of :mod:`deblur_core.network`, run on the
  sRGB-encoded estimate with a per-pixel noise map: noise that is uniform in linear light is scaled by
  the slope of the sRGB curve, so the map is ``sigma_i * slope(x)``;

with ``sigma_i`` falling geometrically from ``sigma_start`` to the noise level and
``alpha_i = lam * sigma_n^2 / sigma_i^2``. The kernel only enters the x-step, so one network serves
motion, camera shake, defocus and gaussian blur.
"""
from __future__ import annotations

import numpy as np

from .color import linear_to_srgb, srgb_to_linear
from .fftutils import irfft2, pad_for_deconvolution, psf2otf, rfft2
from .kernels import normalize

__all__ = ["pnp_deconvolve", "srgb_slope"]


def srgb_slope(lin: np.ndarray) -> np.ndarray:
    """d(sRGB)/d(linear) at linear-light values ``lin`` (12.92 on the linear toe)."""
    lin = np.clip(np.asarray(lin, np.float32), 0, 1)
    s = (1.055 / 2.4) * np.power(np.maximum(lin, 0.0031308), 1 / 2.4 - 1)
    return np.minimum(s, 12.92).astype(np.float32)


def pnp_deconvolve(image: np.ndarray, psf: np.ndarray, *, noise_sigma: float | None = None,
                   iterations: int = 6, lam: float = 0.5, sigma_start: float = 0.1,
                   strength_scale: float = 1.0, model=None, map_mode: str = "slope",
                   progress=None) -> np.ndarray:
    """Non-blind deconvolution of an sRGB-encoded photo with the denoiser prior.

    Parameters
    ----------
    image : float32 (H, W) or (H, W, 3) in [0, 1], sRGB-encoded (extra channels beyond 3 are not
        accepted: split alpha off first).
    psf : centred convolution kernel (normalised here), acting in linear light.
    noise_sigma : noise std in linear light ([0, 1] units); estimated from the image when None.
    iterations : HQS iterations (each = 1 FFT solve + 1 network pass).
    lam : prior weight (DPIR's lambda).
    sigma_start : first denoising strength (linear light).
    strength_scale : multiplies the noise level the solver assumes (> 1: smoother, < 1: sharper and
        noisier); the pipeline's strength slider maps onto it.
    map_mode : "slope" (noise map = sigma_i * sRGB slope, default) or "uniform" (sigma_i * 1).
    progress : callable(fraction, message); raising from it cancels.

    Returns float32 of the input's shape, sRGB-encoded, clipped to [0, 1].
    """
    from .network import DEFAULT_DENOISER, load_model, run_tiled

    img = np.asarray(image, np.float32)
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3)):
        raise ValueError(f"image must be (H, W) or (H, W, 1|3), got {img.shape}")
    squeeze = img.ndim == 3 and img.shape[2] == 1
    if squeeze:
        img = img[..., 0]
    psf = normalize(psf)
    if psf.shape[0] > img.shape[0] or psf.shape[1] > img.shape[1]:
        raise ValueError(f"kernel {psf.shape[0]}x{psf.shape[1]} is larger than the image {img.shape[1]}x{img.shape[0]}")
    model = model or load_model(DEFAULT_DENOISER)
    if map_mode not in ("slope", "uniform"):
        raise ValueError(f"unknown map_mode {map_mode!r}")
    gray = img.ndim == 2
    lin = srgb_to_linear(img)
    planes = lin[None] if gray else np.moveaxis(lin, 2, 0)
    if noise_sigma is None:
        from .deconvolution import estimate_noise
        # Per channel: the denoiser sees each channel's noise (a mean of 3 channels would show 1/sqrt(3)).
        noise_sigma = float(np.mean([estimate_noise(p, jpeg_robust=True) for p in planes]))
    sn = max(float(noise_sigma), 0.002) * max(float(strength_scale), 1e-3)
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
    del K
    sigma_start = max(float(sigma_start), sn)
    sigmas = np.geomspace(sigma_start, sn, iterations) if iterations > 1 else np.array([sn])

    def report(frac, msg):
        if progress is not None:
            progress(float(frac), msg)

    # Memory: one network input (4 planes), the estimate z (nc planes), KtY; all else per plane.
    inp = np.empty((4,) + shape, np.float32)
    for i, s in enumerate(sigmas):
        report(i / len(sigmas), f"deconvolution step {i + 1} of {len(sigmas)}")
        alpha = np.float32(lam * sn * sn / (s * s))
        inp[3] = 0
        denom = KtK + alpha
        for c in range(nc):
            xc = irfft2((KtY[c] + alpha * rfft2(z[c])) / denom, shape).astype(np.float32, copy=False)
            np.clip(xc, 0, 1, out=xc)
            inp[3] += xc / nc
            inp[c] = linear_to_srgb(xc)
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
            z[0] = srgb_to_linear(out.mean(axis=0))
        else:
            for c in range(nc):
                z[c] = srgb_to_linear(out[c])
        del out, denom
    report(1.0, "deconvolution done")
    res = linear_to_srgb(z[:, crop[0], crop[1]])
    res = res[0] if gray else np.moveaxis(res, 0, 2)
    res = np.ascontiguousarray(res, dtype=np.float32)
    return res[..., None] if squeeze else res

"""The latent (sharp image) step: L0 gradients with an L0 pixel prior, by half-quadratic splitting.

argmin_x ||k * x - y||^2 + lam_pixel ||P(x)||_0 + lam_grad ||grad x||_0, where P(x) is the image itself
(Pan, Hu, Su & Yang, "Deblurring Text Images via L0-Regularized Intensity and Gradient Prior", CVPR 2014)
or its dark channel, the minimum over a patch (Pan, Sun, Pfister & Yang, "Blind Image Deblurring Using
Dark Channel Prior", CVPR 2016). Blur raises the dark channel (a blurred dark pixel mixes with bright
ones), so a sparse dark channel favours the sharp image over the blurred one; the gradient term keeps
only strong, sharp edges. Every sub-step is closed form: thresholds, then one FFT solve.

The reference code nests the gradient splitting (beta 2 lam_grad -> 1e5) inside the pixel splitting
(beta_p -> 8): ~200 FFT solves per latent. Here both weights grow together in one loop (~23 solves);
the pixel weight stops at ``max_pixel_beta`` as in the reference.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..fftutils import irfft2, rfft2

__all__ = ["dark_channel", "l0_latent", "forward_gradients", "gradients_adjoint", "gradient_energy"]


def forward_gradients(x: np.ndarray):
    """Circular forward differences (x[:, j+1] - x[:, j], x[i+1] - x[i]), matching the FFT solver."""
    h = np.empty_like(x)
    v = np.empty_like(x)
    np.subtract(x[:, 1:], x[:, :-1], out=h[:, :-1])
    np.subtract(x[:, :1], x[:, -1:], out=h[:, -1:])
    np.subtract(x[1:], x[:-1], out=v[:-1])
    np.subtract(x[:1], x[-1:], out=v[-1:])
    return h, v


def gradients_adjoint(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """D^T (h, v): negated backward differences, circular."""
    out = np.empty_like(h)
    np.subtract(h[:, -1:], h[:, :1], out=out[:, :1])
    np.subtract(h[:, :-1], h[:, 1:], out=out[:, 1:])
    out[:1] += v[-1:] - v[:1]
    out[1:] += v[:-1] - v[1:]
    return out


def dark_channel(x: np.ndarray, patch: int) -> np.ndarray:
    """Minimum of ``x`` (H, W) over the ``patch`` x ``patch`` square around each pixel (edges replicated)."""
    return cv2.erode(x, np.ones((patch, patch), np.uint8), borderType=cv2.BORDER_REPLICATE)


def _dark_prior_target(x: np.ndarray, thresh: float, patch: int) -> np.ndarray:
    """The pixel sub-problem of the dark channel prior: ``x`` with the pixels that are the minimum of
    some patch whose minimum is below ``thresh`` set to 0 (the L0 shrinkage of the dark channel,
    written back to the pixels it came from).

    Pixel p is such a minimum iff x(p) <= max{D(c) : c within patch of p, D(c) < thresh} with D the
    dark channel: a dilation of the small dark-channel values, so no per-pixel index map is needed."""
    d = dark_channel(x, patch)
    small = np.where(d < thresh, d, np.float32(-1.0))
    reach = cv2.dilate(small, np.ones((patch, patch), np.uint8), borderType=cv2.BORDER_REPLICATE)
    u = x.copy()
    u[x <= reach] = 0.0
    return u


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of values in [0, 1] (MATLAB's graythresh), at least 1e-3."""
    v = np.clip(values, 0, 1)
    hist, edges = np.histogram(v, bins=256, range=(0, 1))
    p = hist.astype(np.float64) / max(hist.sum(), 1)
    w = np.cumsum(p)
    mu = np.cumsum(p * (edges[:-1] + edges[1:]) / 2)
    mt = mu[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        sb = (mt * w - mu) ** 2 / (w * (1 - w))
    sb = np.nan_to_num(sb)
    return max(float(edges[int(np.argmax(sb)) + 1]), 1e-3)


def l0_latent(y: np.ndarray, K: np.ndarray, settings, lam_pixel: float, lam_grad: float,
              *, DtD: np.ndarray | None = None, beta_max: float = 1e5) -> np.ndarray:
    """Sharp-edge latent image of the blurred (H, W) float32 ``y`` for the kernel transfer function
    ``K`` (rFFT shape, circular model: ``y`` is padded periodic-smooth by the caller).

    ``settings.pixel_prior`` picks the pixel prior ("dark", "intensity", "none")."""
    shape = y.shape
    if DtD is None:
        DtD = gradient_energy(shape)
    KtY = np.conj(K) * rfft2(y)
    KtK = (K.real ** 2 + K.imag ** 2).astype(np.float32)
    prior = settings.pixel_prior if lam_pixel > 0 else "none"
    x = y.astype(np.float32, copy=True)
    beta_g = 2.0 * lam_grad
    beta_p = lam_pixel / _otsu(x * x) if prior != "none" else 0.0
    kappa = settings.kappa
    while beta_g < beta_max:
        h, v = forward_gradients(x)
        small = (h * h + v * v) < lam_grad / beta_g
        h[small] = 0
        v[small] = 0
        rhs = gradients_adjoint(h, v)
        rhs *= np.float32(beta_g)
        den = KtK + beta_g * DtD
        if prior != "none":
            if prior == "dark":
                u = _dark_prior_target(x, np.float32(np.sqrt(lam_pixel / beta_p)), settings.dark_patch)
            else:
                u = np.where(x * x < lam_pixel / beta_p, np.float32(0), x)
            rhs += np.float32(beta_p) * u          # one transform for both targets (linear)
            den += np.float32(beta_p)
            beta_p = min(beta_p * kappa, settings.max_pixel_beta)
        x = irfft2((KtY + rfft2(rhs)) / den, shape).astype(np.float32, copy=False)
        beta_g *= kappa
    return x


def gradient_energy(shape) -> np.ndarray:
    """|Dx|^2 + |Dy|^2 of the forward differences, rFFT-shaped float32."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    return ((2 - 2 * np.cos(2 * np.pi * fx)) + (2 - 2 * np.cos(2 * np.pi * fy))).astype(np.float32)

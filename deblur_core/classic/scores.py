"""How good a kernel looks: the sparsity of the gradients it deconvolves a region to (which picks among
candidate kernels) and the re-blur consistency reported as the estimate's confidence."""
from __future__ import annotations

import math

import numpy as np

from ..fftutils import pad_for_deconvolution, psf2otf
from ..shake.latent import forward_gradients, gradient_energy
from .fft import irfft2, rfft2
from .settings import DEFAULT_SETTINGS

__all__ = ["sparsity", "region_sparsity", "confidence"]


def sparsity(ypad, crop, k, DtD, w) -> float:
    """Normalized sparsity (L1/L2, Krishnan et al. 2011) of the gradients of the padded image ``ypad``
    deconvolved with ``k`` (Wiener with a gradient prior of weight ``w``; ``DtD``: the gradient energy),
    inside ``crop`` less a 4 px border: lower = sharper, fewer ghosts."""
    shape = ypad.shape
    K = psf2otf(k.astype(np.float32), shape)
    x = irfft2(np.conj(K) * rfft2(ypad) / ((K.real ** 2 + K.imag ** 2) + w * DtD), shape)
    gx, gy = forward_gradients(x)
    m = 4
    sl = (slice(crop[0].start + m, crop[0].stop - m), slice(crop[1].start + m, crop[1].stop - m))
    g = np.hypot(gx[sl], gy[sl]).astype(np.float64)
    return float(g.sum() / max(math.sqrt(float((g * g).sum()) * g.size), 1e-30))


def region_sparsity(region, k, ns_w: float = DEFAULT_SETTINGS.ns_w) -> float:
    """:func:`sparsity` of a region (:func:`~deblur_core.classic.regions.region_luma`) deconvolved with ``k``."""
    ypad, crop = pad_for_deconvolution(region, k.shape, margin=max(k.shape) + 4)
    return sparsity(ypad, crop, k, gradient_energy(ypad.shape), ns_w)


def confidence(xl, k, wpad, Ysg) -> float:
    """Re-blur consistency of the blurred gradients: the share of their energy the estimated
    kernel explains with the last sparse-edge latent image ``xl`` (1 = fully, 0 = not at all). That
    latent comes from the kernel before the last update: a fresh one would cost another L0 solve
    over the region (0.5-0.7 s on a 1 MP region) for a figure that is only reported."""
    shape = xl.shape
    K = psf2otf(k.astype(np.float32), shape)
    gx, gy = forward_gradients(xl)
    tot = 0.0
    err = 0.0
    for g, Yg in zip((gx, gy), Ysg):
        pred = irfft2(rfft2(g) * K, shape) * wpad
        obs = irfft2(Yg, shape)
        err += float(((pred - obs) ** 2).sum())
        tot += float((obs ** 2).sum())
    return max(0.0, 1.0 - err / max(tot, 1e-12))

"""Helpers shared by the engine tests (a uniquely named module: tests/gimp has its own conftest)."""
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def psnr(a, b, border=16):
    a = np.asarray(a, np.float64)[border:-border, border:-border]
    b = np.asarray(b, np.float64)[border:-border, border:-border]
    return 10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12))


def blur_linear(image, psf, noise=0.0, seed=0):
    """Blur an sRGB-encoded image in linear light, add noise in the encoded image (like a camera file)."""
    from deblur_core import color, fftutils
    out = color.linear_to_srgb(fftutils.convolve(color.srgb_to_linear(image), psf))
    if noise:
        out = out + np.random.default_rng(seed).normal(0, noise, out.shape).astype(np.float32)
    return np.clip(out, 0, 1).astype(np.float32)

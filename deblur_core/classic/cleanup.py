"""The classic estimator's kernel housekeeping: first kernels, clean-up between steps, the final trim.

Clean-up (:func:`clean_kernel`): small values thresholded, only the significant connected components
kept, normalised, the bounding box of the support re-centred in the window (centring the centre of mass
instead cut off the ends of unevenly exposed trajectories in a tight window).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..kernels import center, normalize
from ..shake.kernel_step import delta, shift_kernel, support_side
from .settings import DEFAULT_SETTINGS

__all__ = ["initial_kernel", "embed", "center_support", "clean_kernel", "mass_extent",
           "final_trim"]


def initial_kernel(ks: int, start) -> np.ndarray:
    """The coarsest level's first kernel: a small cross (None) or a short line at ``start`` degrees."""
    k = delta(ks)
    c = ks // 2
    if start is None or ks < 5:
        k[c, c - 1:c + 2] = [0.25, 0.5, 0.25]
        k[c - 1:c + 2, c] += [0.25, 0.0, 0.25]
    else:
        a = math.radians(start)
        for t in np.linspace(-c, c, 4 * ks):
            y, x = int(round(c - t * math.sin(a))), int(round(c + t * math.cos(a)))
            k[y, x] += 1.0
    return k / k.sum()


def embed(k: np.ndarray, size: int) -> np.ndarray:
    """``k`` centred in a ``size`` x ``size`` window (cropped or zero-padded about its centre), sum 1."""
    k = np.asarray(k, np.float64)
    out = np.zeros((size, size))
    kh, kw = k.shape
    oy, ox = size // 2 - kh // 2, size // 2 - kw // 2
    y0, x0 = max(0, oy), max(0, ox)
    y1, x1 = min(size, oy + kh), min(size, ox + kw)
    out[y0:y1, x0:x1] = k[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    t = out.sum()
    return out / t if t > 0 else delta(size)


def center_support(k: np.ndarray) -> np.ndarray:
    """Integer shift (zero fill, same size) that centres the bounding box of the kernel's support.

    Unlike centring the centre of mass, this never pushes part of the support out of the window
    (an unevenly exposed trajectory, e.g. one ending in a bright dot, has its centre of mass far
    from the middle of its extent; centring that in a tight window cuts off the other end)."""
    ys, xs = np.nonzero(k > 0)
    if ys.size == 0:
        return k
    dy = int(math.floor((k.shape[0] - 1) / 2 - (ys.min() + ys.max()) / 2 + 0.5))
    dx = int(math.floor((k.shape[1] - 1) / 2 - (xs.min() + xs.max()) / 2 + 0.5))
    return shift_kernel(k, dy, dx)


def clean_kernel(k: np.ndarray, rel: float = 0.05, min_mass: float = 0.1) -> np.ndarray:
    """Threshold values below ``rel`` x the maximum, keep the 8-connected components with at least
    ``min_mass`` of the mass, normalise, centre the support."""
    k = np.clip(k, 0, None)
    mx = k.max()
    if mx <= 0:
        return delta(k.shape[0])
    k = np.where(k >= rel * mx, k, 0.0)
    n, lab = cv2.connectedComponents((k > 0).astype(np.uint8), connectivity=8)
    if n > 2:
        total = k.sum()
        mass = np.bincount(lab.ravel(), weights=k.ravel(), minlength=n)
        keep = mass >= min_mass * total
        keep[0] = False
        if not keep.any():
            keep[int(np.argmax(mass[1:])) + 1] = True
        k = np.where(keep[lab], k, 0.0)
    k = k / k.sum()
    return center_support(k)


def mass_extent(k: np.ndarray, frac: float = 0.97) -> int:
    """Side of the smallest centred square holding ``frac`` of the kernel's mass."""
    c = k.shape[0] // 2
    ys, xs = np.indices(k.shape)
    ring = np.maximum(np.abs(ys - c), np.abs(xs - c)).ravel()
    mass = np.bincount(ring, weights=np.clip(k, 0, None).ravel(), minlength=c + 1)
    cum = np.cumsum(mass) / max(mass.sum(), 1e-30)
    r = int(np.searchsorted(cum, frac - 1e-9))
    return 2 * min(r, c) + 1


def final_trim(k: np.ndarray, trim_mass: float = DEFAULT_SETTINGS.trim_mass) -> np.ndarray:
    """The returned kernel: the outer rings that hold only stray specks (``1 - trim_mass`` of the mass
    at most) dropped, centred (:func:`deblur_core.kernels.center`), at least 3 x 3, sum 1."""
    k = normalize(k)
    r = min(support_side(k), mass_extent(k, trim_mass) + 2) // 2
    c = k.shape[0] // 2
    k = k[c - r:c + r + 1, c - r:c + r + 1]
    k = center(k)
    if k.shape[0] < 3:
        k = np.pad(k, 1)
    return normalize(k)

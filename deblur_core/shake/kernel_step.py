"""The kernel step and the kernel's housekeeping: least squares on gradients, clean-up, centring,
resampling between pyramid levels.

The step follows Cho & Lee ("Fast Motion Deblurring", SIGGRAPH Asia 2009) as Pan et al. use it:
argmin_k sum_d ||M (k * L_d - B_d)||^2 + w ||k||^2 over the kernel window, with L_d the latent's
gradients thresholded to the strong edges (orientation-balanced, Cho & Lee's rule) and B_d the blurred
photo's; M leaves out the pixels around clipped lights. Solved by conjugate gradients, every product
a small convolution (the normal matrix is the latent gradients' autocorrelation).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..fftutils import irfft2, rfft2

__all__ = ["initial_edge_threshold", "strong_edges", "kernel_from_gradients", "clean_kernel", "center_kernel",
           "shift_kernel", "main_trajectory", "resize_kernel", "delta", "odd"]


def odd(n: float) -> int:
    """The smallest odd integer >= ``n``."""
    n = int(math.ceil(n))
    return n if n % 2 else n + 1


def delta(size: int) -> np.ndarray:
    k = np.zeros((size, size), np.float64)
    k[size // 2, size // 2] = 1.0
    return k


def valid_gradients(x: np.ndarray):
    """Forward differences inside the image: (H-1, W-1) each (MATLAB's conv2(x, [-1 1; 0 0], 'valid'))."""
    return x[:-1, 1:] - x[:-1, :-1], x[1:, :-1] - x[:-1, :-1]


def _orientation_bins(gx, gy):
    a = np.arctan(np.divide(gy, gx, out=np.zeros_like(gy), where=gx != 0))   # (-pi/2, pi/2)
    return np.clip(((a + np.pi / 2) / (np.pi / 4)).astype(np.int32), 0, 3)


def initial_edge_threshold(y: np.ndarray, kernel_side: int, edge_count: int) -> float:
    """Cho & Lee's first threshold on squared gradient magnitude: the largest value that leaves at
    least ``edge_count * kernel_side`` gradients in each of four orientation bins."""
    gx, gy = valid_gradients(y)
    pm = gx * gx + gy * gy
    bins = _orientation_bins(gx, gy)
    need = max(edge_count * kernel_side, 10)
    thr = np.inf
    for b in range(4):
        m = pm[bins == b]
        if m.size == 0:
            continue
        kk = min(need, m.size)
        thr = min(thr, float(np.partition(m, m.size - kk)[m.size - kk]))
    return float(thr) if np.isfinite(thr) else 0.0


def strong_edges(x: np.ndarray, threshold: float):
    """The latent's (valid) gradients with those below ``threshold`` (squared magnitude) zeroed; the
    threshold is lowered until something survives. Returns (gx, gy, threshold used)."""
    gx, gy = valid_gradients(x)
    pm = gx * gx + gy * gy
    t = threshold
    keep = pm >= t
    while not keep.any() and t > 1e-12:
        t *= 0.81
        keep = pm >= t
    return np.where(keep, gx, 0).astype(np.float32), np.where(keep, gy, 0).astype(np.float32), t


def _window(c: np.ndarray, size: int) -> np.ndarray:
    """Lags -r..r (r = size // 2) of a circular correlation ``c`` (origin at [0, 0])."""
    r = size // 2
    iy = np.arange(-r, r + 1) % c.shape[0]
    ix = np.arange(-r, r + 1) % c.shape[1]
    return c[np.ix_(iy, ix)]


def kernel_from_gradients(latent_grads, blurred_grads, size: int, weight: float, *, mask=None,
                          iterations: int = 20, cut: float = 0.05) -> np.ndarray:
    """Least-squares kernel (``size`` x ``size``, centred, sum 1) from latent and blurred gradients
    (lists of equally shaped (h, w) arrays); ``mask`` (h, w) in [0, 1] leaves pixels out (0: e.g.
    around clipped lights; applied to both gradients, which keeps the normal matrix a convolution).
    Values below ``cut`` x the maximum are zeroed.

    The normal matrix is the latent gradients' autocorrelation R: (A k)(q) = sum_q' R(q - q') k(q') +
    weight k(q). Its lags within +-(size - 1) are read once from one FFT; every conjugate-gradient
    product is then a small convolution, whatever the image size."""
    shape = latent_grads[0].shape
    if mask is not None:
        m = mask.astype(np.float32)
        latent_grads = [g * m for g in latent_grads]
        blurred_grads = [g * m for g in blurred_grads]
    Lf = [rfft2(g.astype(np.float32)) for g in latent_grads]
    Bf = [rfft2(g.astype(np.float32)) for g in blurred_grads]
    b = _window(irfft2(sum(np.conj(l) * bb for l, bb in zip(Lf, Bf)), shape), size).astype(np.float64)
    R = _window(irfft2(sum((l.real ** 2 + l.imag ** 2) for l in Lf), shape), 2 * size - 1).astype(np.float64)
    from scipy.signal import fftconvolve

    def apply(k):
        return fftconvolve(R, k, mode="valid") + weight * k

    # Conjugate gradients from the flat kernel (as the reference code).
    k = np.full((size, size), 1.0 / (size * size))
    r = b - apply(k)
    p = r.copy()
    rr = float((r * r).sum())
    for _ in range(iterations):
        if rr < 1e-30:
            break
        Ap = apply(p)
        alpha = rr / max(float((p * Ap).sum()), 1e-30)
        k = k + alpha * p
        r = r - alpha * Ap
        rr_new = float((r * r).sum())
        p = r + (rr_new / rr) * p
        rr = rr_new
    mx = k.max()
    if not np.isfinite(mx) or mx <= 0:
        return delta(size)
    k = np.where(k >= cut * mx, k, 0.0)
    return k / k.sum()


def clean_kernel(k: np.ndarray, min_component: float) -> np.ndarray:
    """Negatives zeroed, 8-connected components holding less than ``min_component`` of the mass
    pruned (specks the step picked up from noise), sum 1."""
    k = np.clip(np.asarray(k, np.float64), 0, None)
    total = k.sum()
    if total <= 0:
        return delta(k.shape[0])
    k = k / total
    n, lab = cv2.connectedComponents((k > 0).astype(np.uint8), connectivity=8)
    if n > 2:
        mass = np.bincount(lab.ravel(), weights=k.ravel(), minlength=n)
        keep = mass >= min_component
        keep[0] = False
        if not keep.any():
            keep[int(np.argmax(mass[1:])) + 1] = True
        k = np.where(keep[lab], k, 0.0)
    return k / k.sum()


def main_trajectory(k: np.ndarray, gap: int = 2) -> np.ndarray:
    """The kernel's heaviest 8-connected piece and the pieces within ``gap`` px of it; pieces farther
    away are dropped (a camera's path is one continuous trail; a detached blob ghosts the restoration)."""
    k = np.clip(np.asarray(k, np.float64), 0, None)
    n, lab = cv2.connectedComponents((k > 0).astype(np.uint8), connectivity=8)
    if n <= 2:
        return k / max(k.sum(), 1e-30)
    mass = np.bincount(lab.ravel(), weights=k.ravel(), minlength=n)
    mass[0] = 0
    main = lab == int(np.argmax(mass))
    near = cv2.dilate(main.astype(np.uint8), np.ones((2 * gap + 1, 2 * gap + 1), np.uint8)).astype(bool)
    keep = np.zeros(n, bool)
    keep[np.unique(lab[near & (k > 0)])] = True
    keep[0] = False
    k = np.where(keep[lab], k, 0.0)
    return k / k.sum()


def shift_kernel(k: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``k`` moved by (dy, dx) whole pixels inside its window, zero fill (what leaves the window is lost)."""
    if dy == 0 and dx == 0:
        return k
    out = np.zeros_like(k)
    h, w = k.shape
    out[max(0, dy):min(h, h + dy), max(0, dx):min(w, w + dx)] = \
        k[max(0, -dy):min(h, h - dy), max(0, -dx):min(w, w - dx)]
    return out


def center_kernel(k: np.ndarray) -> np.ndarray:
    """Integer shift (zero fill, same size) that puts the centre of mass on the centre pixel."""
    ys, xs = np.indices(k.shape)
    t = k.sum()
    if t <= 0:
        return k
    dy = int(round((k.shape[0] - 1) / 2 - float((ys * k).sum()) / t))
    dx = int(round((k.shape[1] - 1) / 2 - float((xs * k).sum()) / t))
    if dy == 0 and dx == 0:
        return k
    out = shift_kernel(k, dy, dx)
    s = out.sum()
    return out / s if s > 0 else k


def resize_kernel(k: np.ndarray, size: int, factor: float | None = None) -> np.ndarray:
    """``k`` scaled about its centre by ``factor`` (default: to fill ``size`` as it filled its own
    window) into a ``size`` x ``size`` window, non-negative, sum 1."""
    n = k.shape[0]
    if n == size and factor in (None, 1.0):
        return k.copy()
    s = factor if factor is not None else (size - 1) / max(n - 1, 1)
    c_in, c_out = (n - 1) / 2, (size - 1) / 2
    m = np.array([[s, 0, c_out - s * c_in], [0, s, c_out - s * c_in]], np.float64)
    out = cv2.warpAffine(k.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0).astype(np.float64)
    out = np.clip(out, 0, None)
    t = out.sum()
    return out / t if t > 0 else delta(size)


def support_side(k: np.ndarray, rel: float = 0.0) -> int:
    """Side of the smallest centred square holding the values above ``rel`` x the maximum."""
    ys, xs = np.nonzero(k > rel * k.max())
    if ys.size == 0:
        return 1
    c = k.shape[0] // 2
    return 2 * int(max(np.abs(ys - c).max(), np.abs(xs - c).max())) + 1


def trim_kernel(k: np.ndarray) -> np.ndarray:
    """The smallest centred odd square holding the whole support (at least 3 x 3), sum 1."""
    side = max(support_side(k), 3)
    c, r = k.shape[0] // 2, side // 2
    out = k[c - r:c + r + 1, c - r:c + r + 1]
    return out / out.sum()

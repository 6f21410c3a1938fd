"""The classic estimator's two alternating steps, pure functions of arrays.

* The *latent step* (:func:`l0_latent`): a sharp-edge image from the blurred one and the current kernel
  by L0 gradient minimisation (Xu, Zheng & Jia, CVPR 2013) with half-quadratic splitting, every
  sub-step one FFT; only strong, sharp edges survive, which makes the kernel step well posed (the role
  of the shock and bilateral filters in Cho & Lee 2009). :func:`select_edges` then keeps Cho & Lee's
  strongest gradients per orientation.
* The *kernel step* (:func:`kernel_least_squares`): least squares on gradients with Tikhonov and
  smoothness regularisation, restricted to the kernel window, by conjugate gradients, then refined with
  k >= 0 by FISTA. The normal matrix is a windowed autocorrelation, so every product is a small
  convolution (or, for small windows, one product with the matrix itself) whatever the image size.

Both use the circular forward differences of :mod:`deblur_core.shake.latent`.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.fft as sfft

# The adjoint sums its terms in the order this estimator was tuned with: it is sensitive enough that
# another rounding changes its kernels.
from ..shake.latent import gradients_adjoint, forward_gradients
from .fft import irfft2, rfft2

__all__ = ["l0_latent", "select_edges", "kernel_least_squares", "dense_normal_matrix", "correlation_window"]

DENSE_MAX = 25      # kernel windows up to this side use the normal matrix itself (at most 625 x 625)


def l0_latent(y: np.ndarray, Y: np.ndarray, K: np.ndarray, DtD: np.ndarray, lam: float,
              kappa: float = 2.0, beta_max: float = 1e5) -> np.ndarray:
    """argmin_x ||k * x - y||^2 + lam * #{p : grad x(p) != 0}  (Xu et al. 2013), circular.

    ``y`` is the (padded) blurred image, ``Y`` its rFFT, ``K`` the kernel's transfer function and ``DtD``
    the gradient energy (:func:`deblur_core.shake.latent.gradient_energy`) at its shape."""
    shape = y.shape
    KtY = np.conj(K) * Y
    KtK = (K.real ** 2 + K.imag ** 2).astype(np.float32)
    x = y
    beta = 2 * lam
    den = np.empty_like(KtK)
    while beta < beta_max:
        h, v = forward_gradients(x)
        small = (h * h + v * v) < lam / beta
        h[small] = 0
        v[small] = 0
        f = rfft2(gradients_adjoint(h, v))
        f *= beta
        f += KtY
        np.multiply(DtD, beta, out=den)
        den += KtK
        f /= den
        x = irfft2(f, shape).astype(np.float32, copy=False)
        beta *= kappa
    return x


def select_edges(gx: np.ndarray, gy: np.ndarray, weight: np.ndarray, n_keep: int):
    """Cho & Lee's edge selection: keep at least ``n_keep`` of the strongest gradients in each of
    four orientation bins, zero the others."""
    mag = np.hypot(gx, gy) * weight
    ang = np.mod(np.arctan2(gy, gx), np.pi)
    bins = np.minimum((ang / (np.pi / 4)).astype(np.int32), 3)
    thr = np.full(4, np.inf)
    for b in range(4):
        m = mag[bins == b]
        m = m[m > 0]
        if m.size == 0:
            continue
        kk = min(n_keep, m.size)
        thr[b] = np.partition(m, m.size - kk)[m.size - kk]
    keep = (mag > 0) & (mag >= thr[bins])
    return np.where(keep, gx, 0).astype(np.float32), np.where(keep, gy, 0).astype(np.float32)


def correlation_window(c: np.ndarray, r: int) -> np.ndarray:
    """Lags -r..r of a circular correlation ``c`` (origin at [0, 0]) as a (2r+1)^2 array."""
    idx_y = np.arange(-r, r + 1) % c.shape[0]
    idx_x = np.arange(-r, r + 1) % c.shape[1]
    return c[np.ix_(idx_y, idx_x)]


def kernel_least_squares(Xs, Ys, size: int, k0: np.ndarray, gamma_rel: float, iters: int = 30,
                         shape=None, smooth: float = 0.002, nonneg_iters: int = 100) -> np.ndarray:
    """argmin_k sum_d ||x_d * k - y_d||^2 + gamma ||k||^2 + gsm ||grad k||^2 over kernels of ``size``
    (centred), from ``k0``; gamma and gsm are ``gamma_rel`` and ``smooth`` times the gradients' energy.

    ``Xs``/``Ys`` are rFFTs of the (selected) latent and the blurred gradients. The normal matrix is
    Toeplitz: (A k)(q) = sum_q' R(q - q') k(q') with R the autocorrelation of the latent gradients;
    its window of lags +-(size-1) makes each CG product a small convolution.
    """
    r = size // 2
    num = sum(np.conj(X) * Y for X, Y in zip(Xs, Ys))
    den = sum((X.real ** 2 + X.imag ** 2) for X in Xs)
    b = correlation_window(irfft2(num, shape).astype(np.float64), r)
    R = correlation_window(irfft2(den.astype(np.complex64), shape).astype(np.float64), 2 * r)
    gamma = gamma_rel * R[2 * r, 2 * r] + 1e-12
    gsm = smooth * R[2 * r, 2 * r]
    A = _normal_operator(R, size, gamma, gsm)
    k = _conjugate_gradients(A, b, k0.astype(np.float64).copy(), iters)
    if nonneg_iters > 0:
        k = _nonneg_refine(A, b, np.clip(k, 0, None), float(den.max()) + gamma + 8 * gsm, 0.0, nonneg_iters)
    return k


def _normal_operator(R: np.ndarray, size: int, gamma: float, gsm: float):
    """k -> A k, the kernel step's normal matrix applied to a ``size`` x ``size`` kernel."""
    if size <= DENSE_MAX:
        # Small windows: the matrix itself, one product per CG/FISTA step instead of two small FFTs,
        # whose call overhead dominated (and held the GIL).
        M = dense_normal_matrix(R, size, gamma, gsm)

        def apply(k):
            return (M @ k.ravel()).reshape(size, size)
        return apply
    r = size // 2
    # (A k) = R (*) k, 'same' window: one small real FFT pair per product.
    n = sfft.next_fast_len(6 * r + 1, real=True)
    Rf = sfft.rfft2(R, s=(n, n))

    def apply(k):
        full = sfft.irfft2(sfft.rfft2(k, s=(n, n)) * Rf, s=(n, n))
        out = full[2 * r:4 * r + 1, 2 * r:4 * r + 1] + gamma * k
        if gsm > 0:
            # Smoothness along the trajectory: gsm * |grad k|^2 (negative Laplacian, zero outside).
            lap = 4 * k
            lap[1:] -= k[:-1]
            lap[:-1] -= k[1:]
            lap[:, 1:] -= k[:, :-1]
            lap[:, :-1] -= k[:, 1:]
            out += gsm * lap
        return out
    return apply


def dense_normal_matrix(R: np.ndarray, size: int, gamma: float, gsm: float) -> np.ndarray:
    """The kernel step's normal matrix for a ``size`` x ``size`` window (row-major unknowns): the
    Toeplitz autocorrelation ``R`` (lags +-(size-1)), plus ``gamma`` I, plus ``gsm`` times the
    5-point negative Laplacian with zeros outside the window (the |grad k|^2 smoothness term)."""
    r = size // 2
    iy, ix = np.divmod(np.arange(size * size), size)
    dy = iy[:, None] - iy[None, :]
    dx = ix[:, None] - ix[None, :]
    M = R[dy + 2 * r, dx + 2 * r].astype(np.float64)
    M[np.diag_indices_from(M)] += gamma + 4 * gsm
    if gsm > 0:
        M[(np.abs(dy) + np.abs(dx)) == 1] -= gsm
    return M


def _conjugate_gradients(A, b, k, iters):
    """At most ``iters`` CG steps on A k = b from ``k`` (updated in place), stopping at a residual of 1e-5 |b|."""
    res = b - A(k)
    p = res.copy()
    rs = float((res * res).sum())
    b2 = float((b * b).sum()) + 1e-30
    for _ in range(iters):
        Ap = A(p)
        alpha = rs / max(float((p * Ap).sum()), 1e-30)
        k += alpha * p
        res -= alpha * Ap
        rs_new = float((res * res).sum())
        if rs_new < 1e-10 * b2:
            break
        p = res + (rs_new / rs) * p
        rs = rs_new
    return k


def _nonneg_refine(A, b, k, L, mu, iters):
    """FISTA on 0.5 k'Ak - b'k + mu * sum(k) subject to k >= 0 (sparse, non-negative kernel)."""
    step = 1.0 / L
    z = k.copy()
    t = 1.0
    for _ in range(iters):
        k_new = np.maximum(z - step * (A(z) - b + mu), 0.0)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        z = k_new + ((t - 1) / t_new) * (k_new - k)
        k, t = k_new, t_new
    return k

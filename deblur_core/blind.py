"""Blind estimation of arbitrary camera-shake kernels (uniform blur), coarse to fine.

The method belongs to the fast, CPU-friendly family of Cho & Lee ("Fast Motion Deblurring",
SIGGRAPH Asia 2009) and Xu & Jia ("Two-Phase Kernel Estimation for Robust Motion Deblurring",
ECCV 2010), with the sharp-edge prediction done by an L0 gradient prior (Xu, Zheng & Jia, "Unnatural
L0 Sparse Representation for Natural Image Deblurring", CVPR 2013; Pan et al., "Deblurring Text
Images via L0-Regularized Intensity and Gradient Prior", CVPR 2014):

* work on the luminance in linear light (where blur happens), on an edge-rich region of the photo
  (the user's selection, or the window with the most strong edges), with clipped highlights and
  their blurred surroundings left out;
* an image pyramid (factor sqrt(1/2) per level) from a kernel of about 5 px up to the full size;
  at every level alternate
  - *latent step*: a sharp-edge image from the blurred one and the current kernel, by L0 gradient
    minimisation with half-quadratic splitting (every sub-step is one FFT); only strong, sharp
    edges survive, which is what makes the kernel step well posed (the role of the shock and
    bilateral filters in Cho & Lee);
  - *edge selection*: the strongest latent gradients per orientation bin are kept (Cho & Lee's
    rule, at least ``r * sqrt(kernel pixels)`` per bin);
  - *kernel step*: least squares on gradients with Tikhonov and smoothness regularisation,
    restricted to the kernel window, solved by conjugate gradients then refined with k >= 0 by
    FISTA; the normal matrix is a windowed autocorrelation, so every product is a small
    convolution whatever the image size;
  - clean-up: small values thresholded, only the significant connected components kept,
    normalised, the bounding box of the support re-centred in the window (centring the centre
    of mass instead cut off the ends of unevenly exposed trajectories in a tight window);
* the finest level works on the region after the denoiser network (``models/denoiser-v2.onnx``, told
  the noise level it measures), with all latent gradients and only blurred pixels whose whole kernel
  footprint is in the region: on the noisy region that level's alternations drift away even from the
  true kernel (the generous window of the size-found path keeps the noisy region and edge selection);
* multi-start on the cheap coarse levels: a small cross and lines along and across the cepstrum's
  motion direction; the kernel whose Wiener-deconvolved image has the sparsest gradients
  (normalized sparsity, Krishnan et al. 2011) goes on to the fine levels;
* the kernel size is the user's, or found on the way: a generous window at the coarse levels is
  shrunk to the measured support (plus a margin) before the expensive fine levels;
* two estimates compete, side by side on two cores (the sparsest deconvolved gradients win): the
  generous window against a moderate one when the size is found, the size given against a window a
  quarter larger (a guess too small, a trajectory placed off centre).

Entry point: :func:`estimate_kernel`.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace

import numpy as np
import scipy.fft as sfft

from .color import luminance, srgb_to_linear, validate_image
from .fftutils import pad_for_deconvolution, psf2otf
from .shake.estimator import clip_region
from .shake.kernel_step import odd, shift_kernel

__all__ = ["estimate_kernel", "refine_kernel", "ClassicSettings", "DEFAULT_SETTINGS", "MIN_KERNEL", "MAX_KERNEL"]


# FFT threads: region-sized arrays of up to ~0.4 M elements (the default 640 px region) gain nothing
# from 2 workers (600^2: 2.43 against 2.35 ms a transform pair), larger ones do (1100^2, a 1 MP region:
# 9.0 against 4.8 ms). An estimate running beside another (a pair, _estimate_pair) keeps to one worker
# until the other one is done.
_PARALLEL_FFT_MIN = 400_000
_FFT_WORKERS = 2
_fft_thread = threading.local()


def _workers(x: np.ndarray) -> int:
    if x.size < _PARALLEL_FFT_MIN:
        return 1
    alone = getattr(_fft_thread, "alone", None)     # set by _estimate_pair in its threads
    return _FFT_WORKERS if alone is None or alone() else 1


def set_fft_sharing(alone) -> None:
    """In the calling thread: large FFTs use both workers only while ``alone()`` is true (no other estimate
    runs beside this one); None: always (the default)."""
    _fft_thread.alone = alone


def rfft2(x: np.ndarray) -> np.ndarray:
    return sfft.rfft2(x, workers=_workers(x))


def irfft2(x: np.ndarray, shape) -> np.ndarray:
    return sfft.irfft2(x, s=shape, workers=_workers(x))


MIN_KERNEL = 3
MAX_KERNEL = 101
_RATIO = math.sqrt(0.5)
_COARSEST = 5
# Settings (measured with bench/bench_shake.py; what each does and every variant tried, with its
# figures: docs/experiments/shake.md, "classic estimator").
@dataclass(frozen=True)
class ClassicSettings:
    """Knobs of the classic estimator, passed in (``estimate_kernel(..., settings=...)``), never module
    state; one line of rationale each, figures in docs/experiments/shake.md."""

    keep_frac: float = 0.005            # Cho & Lee edge selection: at least this share of the region per bin
    lam_end: float = 1e-3               # L0 weight at the finest level (the ``lam`` argument is the coarsest)
    nonneg_iters: int = 100             # FISTA refinement of the kernel with k >= 0
    thr: float = 0.08                   # clean-up: values below thr x the maximum are cut
    min_mass: float = 0.02              # clean-up: components with less of the mass are pruned
    smooth: float = 0.002               # weight of |grad k|^2: keeps thin trajectories continuous
    kappa: float = 2.0                  # HQS rate of the L0 step
    trim_mass: float = 0.99             # the returned kernel keeps the centred square with this share of the mass
    starts: int = 3                     # multi-start on the coarse levels: a cross, lines along / across the cepstrum
    switch_ks: int = 13                 # ... up to the first level with a kernel of this size
    ns_w: float = 0.03                  # Wiener weight of the sparsity score that picks among candidates
    pair_ks: int | None = 23            # size found: a window of this size competes with the generous one
    grow: tuple | None = (1.25, 4)      # size given: a grow[0] x size + grow[1] window competes with it
    fine_denoise: bool = True           # the finest level on the denoised region, consistent kernel step

    def but(self, **changes) -> "ClassicSettings":
        """A copy with ``changes`` (for benches and tests)."""
        return replace(self, **changes)


DEFAULT_SETTINGS = ClassicSettings()


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _resize(img: np.ndarray, shape) -> np.ndarray:
    import cv2
    h, w = shape
    if (h, w) == img.shape:
        return img.astype(np.float32, copy=True)
    interp = cv2.INTER_AREA if h < img.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(img.astype(np.float32), (w, h), interpolation=interp)


def _resize_kernel(k: np.ndarray, size: int) -> np.ndarray:
    import cv2
    if k.shape[0] == size:
        return k.copy()
    # Resample the kernel around its centre: scale about the centre pixel.
    s = (size - 1) / max(k.shape[0] - 1, 1)
    c_in = (k.shape[0] - 1) / 2
    c_out = (size - 1) / 2
    m = np.array([[s, 0, c_out - s * c_in], [0, s, c_out - s * c_in]], np.float64)
    out = cv2.warpAffine(k.astype(np.float32), m, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = np.clip(out, 0, None)
    t = out.sum()
    return out / t if t > 0 else _delta(size)


def _delta(size: int) -> np.ndarray:
    k = np.zeros((size, size), np.float64)
    k[size // 2, size // 2] = 1.0
    return k


def _center_support(k: np.ndarray) -> np.ndarray:
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


def _clean_kernel(k: np.ndarray, rel: float = 0.05, min_mass: float = 0.1) -> np.ndarray:
    """Threshold small values, keep significant 8-connected components, normalise, centre."""
    import cv2
    k = np.clip(k, 0, None)
    mx = k.max()
    if mx <= 0:
        return _delta(k.shape[0])
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
    return _center_support(k)


def _support_extent(k: np.ndarray, rel: float = 0.05) -> int:
    """Side of the smallest centred square holding the kernel's significant values."""
    m = k > rel * k.max()
    ys, xs = np.nonzero(m)
    c = k.shape[0] // 2
    r = max(np.abs(ys - c).max(), np.abs(xs - c).max())
    return 2 * int(r) + 1


def _mass_extent(k: np.ndarray, frac: float = 0.97) -> int:
    """Side of the smallest centred square holding ``frac`` of the kernel's mass."""
    c = k.shape[0] // 2
    ys, xs = np.indices(k.shape)
    ring = np.maximum(np.abs(ys - c), np.abs(xs - c)).ravel()
    mass = np.bincount(ring, weights=np.clip(k, 0, None).ravel(), minlength=c + 1)
    cum = np.cumsum(mass) / max(mass.sum(), 1e-30)
    r = int(np.searchsorted(cum, frac - 1e-9))
    return 2 * min(r, c) + 1


def _grad(x: np.ndarray, h: np.ndarray | None = None, v: np.ndarray | None = None):
    """Forward differences, circular (matches the FFT solvers): x[., j+1] - x[., j] and
    x[i+1, .] - x[i, .], the last column/row against the first (slices: no np.roll copies); into
    ``h`` and ``v`` when given."""
    h = np.empty_like(x) if h is None else h
    v = np.empty_like(x) if v is None else v
    np.subtract(x[:, 1:], x[:, :-1], out=h[:, :-1])
    np.subtract(x[:, :1], x[:, -1:], out=h[:, -1:])
    np.subtract(x[1:], x[:-1], out=v[:-1])
    np.subtract(x[:1], x[-1:], out=v[-1:])
    return h, v


def _grad_adjoint(h: np.ndarray, v: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """D^T applied to (h, v): backward differences, negated, circular, into ``out`` (``tmp``: scratch
    of the same shape). Summed as (h[j-1] - h[j]) + (v[i-1] - v[i]), the order the estimator was
    tuned with: it is sensitive enough that a different rounding changes its kernels."""
    np.subtract(h[:, -1:], h[:, :1], out=out[:, :1])
    np.subtract(h[:, :-1], h[:, 1:], out=out[:, 1:])
    np.subtract(v[-1:], v[:1], out=tmp[:1])
    np.subtract(v[:-1], v[1:], out=tmp[1:])
    out += tmp
    return out


def _grad_energy_otf(shape) -> np.ndarray:
    """|Dx|^2 + |Dy|^2 of the forward differences (:func:`_grad`) as an rFFT-shaped float32 array."""
    dx = np.zeros((1, 3), np.float32)
    dx[0, 0], dx[0, 1] = 1, -1
    Dx, Dy = psf2otf(dx, shape), psf2otf(dx.T.copy(), shape)
    return (np.abs(Dx) ** 2 + np.abs(Dy) ** 2).astype(np.float32)


# --------------------------------------------------------------------------------------------
# latent (sharp-edge) step: L0 gradient minimisation, half-quadratic splitting
# --------------------------------------------------------------------------------------------
def _l0_latent(y: np.ndarray, Y: np.ndarray, K: np.ndarray, DtD: np.ndarray, lam: float,
               kappa: float = 2.0, beta_max: float = 1e5) -> np.ndarray:
    """argmin_x ||k * x - y||^2 + lam * #{p : grad x(p) != 0}  (Xu et al. 2013), circular."""
    shape = y.shape
    KtY = np.conj(K) * Y
    KtK = (K.real ** 2 + K.imag ** 2).astype(np.float32)
    x = y
    beta = 2 * lam
    # Buffers reused by every step (the loop runs ~20-26 times per call on region-sized arrays).
    h = np.empty_like(y)
    v = np.empty_like(y)
    mag = np.empty_like(y)
    tmp = np.empty_like(y)
    n2 = np.empty_like(y)
    small = np.empty(shape, bool)
    den = np.empty_like(KtK)
    while beta < beta_max:
        _grad(x, h, v)
        np.multiply(h, h, out=mag)
        np.multiply(v, v, out=tmp)
        mag += tmp
        np.less(mag, lam / beta, out=small)
        np.copyto(h, 0, where=small)
        np.copyto(v, 0, where=small)
        _grad_adjoint(h, v, n2, tmp)
        f = rfft2(n2)
        f *= beta
        f += KtY
        np.multiply(DtD, beta, out=den)
        den += KtK
        f /= den
        x = irfft2(f, shape).astype(np.float32, copy=False)
        beta *= kappa
    return x


def _select_edges(gx: np.ndarray, gy: np.ndarray, weight: np.ndarray, n_keep: int):
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


# --------------------------------------------------------------------------------------------
# kernel step: Tikhonov least squares on gradients, restricted to the window, by CG
# --------------------------------------------------------------------------------------------
def _window(c: np.ndarray, r: int) -> np.ndarray:
    """Lags -r..r of a circular correlation ``c`` (origin at [0, 0]) as a (2r+1)^2 array."""
    idx_y = np.arange(-r, r + 1) % c.shape[0]
    idx_x = np.arange(-r, r + 1) % c.shape[1]
    return c[np.ix_(idx_y, idx_x)]


def _kernel_ls(Xs, Ys, size: int, k0: np.ndarray, gamma_rel: float, iters: int = 30,
               shape=None, smooth: float = 0.002, nonneg_iters: int = 100) -> np.ndarray:
    """argmin_k sum_d ||x_d * k - y_d||^2 + gamma ||k||^2 over kernels of ``size`` (centred).

    ``Xs``/``Ys`` are rFFTs of the (selected) latent and the blurred gradients. The normal matrix is
    Toeplitz: (A k)(q) = sum_q' R(q - q') k(q') with R the autocorrelation of the latent gradients;
    its window of lags +-(size-1) makes each CG product a small convolution.
    """
    import scipy.fft as sfft
    r = size // 2
    num = sum(np.conj(X) * Y for X, Y in zip(Xs, Ys))
    den = sum((X.real ** 2 + X.imag ** 2) for X in Xs)
    b = _window(irfft2(num, shape).astype(np.float64), r)
    R = _window(irfft2(den.astype(np.complex64), shape).astype(np.float64), 2 * r)
    gamma = gamma_rel * R[2 * r, 2 * r] + 1e-12
    # (A k) = R (*) k, 'same' window: one small real FFT pair per product.
    n = sfft.next_fast_len(6 * r + 1, real=True)
    Rf = sfft.rfft2(R, s=(n, n))

    gsm = smooth * R[2 * r, 2 * r]

    if size <= _DENSE_MAX:
        # Small windows: the normal matrix itself (at most 625 x 625); one matrix product per CG/FISTA
        # step instead of two small FFTs, whose call overhead dominated (and held the GIL).
        M = _dense_normal_matrix(R, size, gamma, gsm)

        def A(k):
            return (M @ k.ravel()).reshape(size, size)
    else:
        def A(k):
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

    k = k0.astype(np.float64).copy()
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
    if nonneg_iters > 0:
        k = _nonneg_refine(A, b, np.clip(k, 0, None), float(den.max()) + gamma + 8 * gsm, 0.0, nonneg_iters)
    return k


_DENSE_MAX = 25


def _dense_normal_matrix(R: np.ndarray, size: int, gamma: float, gsm: float) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# region choice and masks
# --------------------------------------------------------------------------------------------
def saturation_mask(lin_max: np.ndarray, kernel_size: int) -> np.ndarray:
    """True where the blur model holds: away from clipped lights (dilated by the kernel); large flat
    clipped areas (white paper, sky) leave out only their own pixels (issue 24; the rule lives in
    :func:`deblur_core.shake.regions.usable_mask`)."""
    from .shake.regions import usable_mask
    return usable_mask(lin_max, kernel_size, 0.97)[0]


def pick_region(luma: np.ndarray, valid: np.ndarray, side_h: int, side_w: int):
    """(x, y, w, h) of the window with the most strong edges (saturated zones not counted)."""
    import cv2
    H, W = luma.shape
    if side_h >= H and side_w >= W:
        return 0, 0, W, H
    side_h, side_w = min(side_h, H), min(side_w, W)
    f = max(1, int(max(H, W) // 512))
    small = cv2.resize(luma, (W // f, H // f), interpolation=cv2.INTER_AREA) if f > 1 else luma
    vs = cv2.resize(valid.astype(np.float32), (small.shape[1], small.shape[0]),
                    interpolation=cv2.INTER_AREA) > 0.99 if f > 1 else valid
    # Perceptual-ish scale so dark and bright edges count alike.
    s = np.sqrt(np.clip(small, 0, None))
    gx = cv2.Sobel(s, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(s, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy) * vs
    thr = np.percentile(mag[vs], 90) if vs.any() else 0
    score = np.minimum(mag, 4 * thr + 1e-6) * (mag > thr)
    ii = cv2.integral(score.astype(np.float64))
    wh, ww = max(1, side_h // f), max(1, side_w // f)
    sh, sw = small.shape
    ys = np.unique(np.linspace(0, sh - wh, max(2, 2 * sh // wh + 2)).astype(int))
    xs = np.unique(np.linspace(0, sw - ww, max(2, 2 * sw // ww + 2)).astype(int))
    best, by, bx = -1.0, 0, 0
    for y0 in ys:
        for x0 in xs:
            v = ii[y0 + wh, x0 + ww] - ii[y0, x0 + ww] - ii[y0 + wh, x0] + ii[y0, x0]
            if v > best:
                best, by, bx = v, y0, x0
    y0 = min(by * f, H - side_h)
    x0 = min(bx * f, W - side_w)
    return int(x0), int(y0), int(side_w), int(side_h)


# --------------------------------------------------------------------------------------------
# main entry
# --------------------------------------------------------------------------------------------
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
    linear : bool
        Convert to linear light first (True for photos).
    settings : :class:`ClassicSettings`
    _prep : private: the photo's working luminance (:func:`working_luma`) when the caller has it.

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
    prep = working_luma(validate_image(image), kw.get("linear", True)) if _prep is None else _prep
    H, W = prep[0].shape
    roi = _default_region(prep, kw["max_region"], size_a) if roi is None else clip_region(roi, W, H)
    fine = _denoised_region(image, roi, kw.get("linear", True)) if kw["settings"].fine_denoise else None
    shared = PartsProgress(progress, 2, lambda done, n: "Kernel estimated" if done == n
                            else "Estimating the shake kernel (two window sizes)")
    finished = [threading.Event(), threading.Event()]

    def run(i, size):
        _fft_thread.alone = finished[1 - i].is_set   # both cores for the FFTs once the other is done
        try:
            return _estimate(image, size, roi=roi, progress=shared.part(i), _prep=prep, _fine=fine, **kw)
        finally:
            finished[i].set()
            _fft_thread.alone = None

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


class _Cancelled(Exception):
    """The other estimate of a pair failed or was cancelled: this one stops too."""


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


def _auto_window(ref_side: int) -> int:
    """The generous kernel window for an image or region whose shorter side is ``ref_side`` px."""
    ks = min(75, odd(ref_side / 5))
    if ks < MIN_KERNEL:
        raise ValueError(f"the image/region ({ref_side} px) is too small for blind kernel estimation")
    return max(ks, 9) if ref_side >= 45 else ks


def _default_region(prep, max_region, kernel_size=None):
    """The region an estimate in a ``kernel_size`` window (None: the generous one) picks when none is
    given (x, y, w, h)."""
    luma, lin_max = prep
    ks = _auto_window(min(luma.shape)) if kernel_size is None else int(kernel_size) | 1
    side = max(max_region, 6 * ks)
    return pick_region(luma, saturation_mask(lin_max, ks), side, side)


def working_luma(img, linear):
    """(luminance, per-pixel channel maximum), in linear light when ``linear`` (blur happens there)."""
    if img.ndim == 3:
        rgb = img[..., :3] if img.shape[2] >= 3 else img[..., :1]
    else:
        rgb = img[..., None]
    lin = srgb_to_linear(rgb) if linear else np.clip(rgb, 0, 1).astype(np.float32)
    luma = luminance(lin) if lin.shape[2] == 3 else lin[..., 0]
    return luma, lin.max(axis=2)


def _contrast_range(yb):
    """(offset, scale) that bring the region to a standard contrast (1st-99th percentile to 0-1). Blur is
    linear: so the L0 weight means the same for dark and bright photos."""
    lo, hi = np.percentile(yb, [1, 99])
    return lo, max(hi - lo, 1e-3)


def _normalized(yb):
    lo, scale = _contrast_range(yb)
    return (yb - lo) / scale


def region_luma(luma, roi):
    """The region ``roi`` (x, y, w, h) of a working luminance (:func:`working_luma`), normalised."""
    x0, y0, w, h = roi
    return _normalized(luma[y0:y0 + h, x0:x0 + w].astype(np.float32))


def region_sparsity(region, k, ns_w: float = DEFAULT_SETTINGS.ns_w):
    ypad, crop = pad_for_deconvolution(region, k.shape, margin=max(k.shape) + 4)
    return _sparsity(ypad, crop, k, _grad_energy_otf(ypad.shape), ns_w)


def _estimate(image, kernel_size, *, roi, progress, max_region, iterations, lam, gamma_rel, linear, settings,
              _prep=None,
              _init=None, _fine=None):
    t0 = time.perf_counter()
    report = progress if progress is not None else (lambda f, m: None)

    # A caller passing _prep has validated the photo (the pair, the grid's n^2 cells): no second pass.
    luma, lin_max = working_luma(validate_image(image), linear) if _prep is None else _prep
    H, W = luma.shape

    # --- region ---
    region = clip_region(roi, W, H) if roi is not None else None

    # --- kernel size ---
    if kernel_size is not None:
        ks_req = int(kernel_size)
        if ks_req < MIN_KERNEL or ks_req > MAX_KERNEL:
            raise ValueError(f"kernel size must be between {MIN_KERNEL} and {MAX_KERNEL} px, got {kernel_size}")
        ks_req |= 1
        auto = False
    else:
        auto = True

    ref_side = min(region[2], region[3]) if region else min(H, W)
    if auto:
        ks_req = _auto_window(ref_side)
    if 2 * ks_req > ref_side:
        raise ValueError(f"a {ks_req} px kernel is too large for a {ref_side} px image/region: "
                         f"select a region at least {2 * ks_req} px wide and high, or a smaller kernel")

    valid_full = saturation_mask(lin_max, ks_req)
    if region is None:
        side = max(max_region, 6 * ks_req)
        region = pick_region(luma, valid_full, side, side)
    x0, y0, w, h = region
    yb = luma[y0:y0 + h, x0:x0 + w].astype(np.float32)
    # The finest level's input: the region denoised (see the fine_denoise knob), scaled like ``yb``.
    fine = None
    opt = settings
    if opt.fine_denoise and not auto:
        fine = _fine if _fine is not None else _denoised_region(image, region, linear)
    yb_fine = fine["luma"] if fine is not None else None
    lo, scale = _contrast_range(yb)     # a standard contrast: the L0 weight means the same on every photo
    yb = (yb - lo) / scale
    yb_fine = None if yb_fine is None else (yb_fine - lo) / scale
    valid = valid_full[y0:y0 + h, x0:x0 + w]
    valid = _check_edges(luma[y0:y0 + h, x0:x0 + w], valid, lin_max[y0:y0 + h, x0:x0 + w], ks_req)

    # --- pyramid ---
    n_levels = max(1, int(math.floor(math.log(_COARSEST / ks_req) / math.log(_RATIO))) + 1) if ks_req > _COARSEST else 1
    sizes = [odd(ks_req * _RATIO ** (n_levels - 1 - i)) if i < n_levels - 1 else ks_req for i in range(n_levels)]
    sizes = [max(3, s) for s in sizes]
    n_its = [iterations] * n_levels
    # Multi-start on the cheap coarse levels (up to the first level with a kernel of switch_ks px):
    # each start runs them, the one whose kernel gives the sparsest deconvolved gradients there
    # (Krishnan et al.'s normalized sparsity) goes on to the fine levels.
    n_coarse = 0
    while n_coarse < n_levels - 1 and sizes[n_coarse] < opt.switch_ks:
        n_coarse += 1
    if _init is not None:   # refine a given kernel: the finest level only (see refine_kernel)
        starts, n_coarse = [], n_levels - 1
        planned = n_its[-1]
    else:
        starts = _starts(luma, opt.starts) if n_coarse > 0 else [None]
        planned = len(starts) * sum(n_its[:n_coarse]) + sum(n_its[n_coarse:])
    done = [0]

    def run_level(li, k, size_limit):
        ks_planned = sizes[li]
        scale = ks_planned / ks_req if li < n_levels - 1 else 1.0
        ks = min(ks_planned, odd(size_limit * scale)) if auto else ks_planned
        ks = max(ks, 3)
        # L0 weight: from ``lam`` at the coarsest level down to lam_end at the finest (a strong
        # prior first, to avoid the trivial delta solution; finer edges when the kernel is close).
        lam_l = lam * (opt.lam_end / lam) ** (li / max(n_levels - 1, 1))
        sh, sw = max(8, int(round(h * scale))), max(8, int(round(w * scale)))
        finest = li == n_levels - 1 and yb_fine is not None
        ys = _resize(yb_fine if finest else yb, (sh, sw))
        vs = _resize(valid.astype(np.float32), (sh, sw)) > 0.99
        if not isinstance(k, np.ndarray):
            k = _initial_kernel(ks, k)
        else:
            k = _resize_kernel(k, ks)
            k = _center_support(np.where(k > 1e-3 * k.max(), k, 0))
        # Pad the blurred level (edge taper) so the circular model has no false border edges.
        margin = ks + 4
        ypad, crop = pad_for_deconvolution(ys, (ks, ks), margin=margin)
        shape = ypad.shape
        wpad = np.zeros(shape, np.float32)
        # Use only the region, away from clipped highlights.
        wpad[crop] = vs
        if finest:
            # Consistent kernel step: only blurred pixels whose whole kernel footprint is in the region,
            # with all the latent's gradients there (the region is denoised: no edge selection needed).
            import cv2
            wpad = cv2.erode(wpad, np.ones((ks, ks), np.uint8))
        Y = rfft2(ypad)
        DtD = _grad_energy_otf(shape)
        gyx, gyy = _grad(ypad)
        gyx, gyy = gyx * wpad, gyy * wpad
        Ysg = (rfft2(gyx), rfft2(gyy))
        n_keep = int(2 * math.sqrt(ks * ks) * 4)
        xl = ypad
        for it in range(n_its[li]):
            K = psf2otf(k.astype(np.float32), shape)
            xl = _l0_latent(ypad, Y, K, DtD, lam_l, kappa=opt.kappa)
            gx, gy = _grad(xl)
            if not finest:
                gx, gy = _select_edges(gx, gy, wpad, max(n_keep, int(opt.keep_frac * vs.sum())))
            else:
                gx, gy = gx * wpad, gy * wpad
            Xs = (rfft2(gx), rfft2(gy))
            k_new = _kernel_ls(Xs, Ysg, ks, k, gamma_rel, shape=shape, smooth=opt.smooth,
                               nonneg_iters=opt.nonneg_iters)
            k = _clean_kernel(k_new, opt.thr, opt.min_mass)
            lam_l = max(lam_l / 1.1, opt.lam_end * 0.5)
            done[0] += 1
            report(min(done[0] / planned, 1.0) * 0.95,
                   f"Estimating the shake kernel: level {li + 1}/{n_levels}")
        ext = _support_extent(k)
        if auto and li < n_levels - 1:
            # Shrink a generous window to the support found (plus a margin) before finer levels.
            size_limit = min(size_limit, max(9, odd((ext + 4) / max(scale, 1e-6) * 1.25)))
        lv = {"kernel": int(ks), "image": [int(sw), int(sh)], "extent": int(ext)}
        return k, size_limit, lv, (ypad, crop, DtD, xl, wpad, Ysg)

    best = None if _init is None else (0.0, _embed(_init, sizes[-1]), ks_req, [])
    for st in starts:
        k, size_limit, lvs = st, ks_req, []
        for li in range(n_coarse):
            k, size_limit, lv, ctx = run_level(li, k, size_limit)
            lvs.append(lv)
        if len(starts) > 1:
            score = _sparsity(ctx[0], ctx[1], k, ctx[2], opt.ns_w)
            if best is None or score < best[0]:
                best = (score, k, size_limit, lvs)
        else:
            best = (0.0, k, size_limit, lvs)
    _, k, size_limit, level_info = best
    for li in range(n_coarse, n_levels):
        k, size_limit, lv, ctx = run_level(li, k, size_limit)
        level_info.append(lv)
    ypad, crop, DtD, xl, wpad, Ysg = ctx
    total_iters = done[0]
    psf = _final_trim(k, opt.trim_mass)
    conf = _confidence(xl, k, wpad, Ysg)
    report(1.0, "Kernel estimated")
    info = {
        "size": int(psf.shape[0]),
        "window": int(k.shape[0]),
        "requested_size": None if auto else int(ks_req),
        "auto_size": bool(auto),
        "scales": int(n_levels),
        "levels": level_info,
        "iterations": int(total_iters),
        "roi": [int(x0), int(y0), int(w), int(h)],
        "runtime_s": round(time.perf_counter() - t0, 3),
        "confidence": round(float(conf), 3),
        "excluded_fraction": round(float(1 - valid.mean()), 4),
        "finest_level_denoised": yb_fine is not None,
    }
    if fine is not None:
        if fine["sigma"] is not None:
            info["noise_sigma"] = round(float(fine["sigma"]), 5)
        if fine["warning"]:
            info["warnings"] = [fine["warning"]]
    return psf.astype(np.float32), info


def _check_edges(region_luma, valid, region_lin_max, kernel_side):
    """The region's usable mask: refused (:class:`~deblur_core.shake.TooFewEdges`) only when too few useful
    gradients remain for the kernel step (plain sky or wall), whatever share of it is clipped (issue 24);
    the lights' margins given back when they would leave too few
    (:func:`deblur_core.shake.regions.usable_with_edges`, on the region sRGB-encoded)."""
    from .color import linear_to_srgb
    from .deconvolution import estimate_noise
    from .shake.regions import usable_with_edges
    g = linear_to_srgb(region_luma)
    return usable_with_edges(g, valid, region_lin_max, kernel_side, float(estimate_noise(g, jpeg_robust=True)),
                             0.97)[0]


def _denoised_region(image, region, linear):
    """The working luminance of ``region`` (x, y, w, h, inside the image: :func:`~deblur_core.shake.clip_region`) after the
    denoiser network, for the finest level:
    ``{"luma": (h, w) float32 or None, "sigma": the per-channel noise level it was told, "warning"}``.
    The network missing or broken is no failure: the finest level then runs on the region as it is, and
    the warning says so (the report shows it)."""
    x0, y0, w, h = region
    # Only the region is converted and checked (the grid calls this for each of its cells).
    sub = validate_image(np.asarray(image)[y0:y0 + h, x0:x0 + w])
    planes = sub[..., :3] if sub.ndim == 3 and sub.shape[2] >= 3 else (sub[..., 0] if sub.ndim == 3 else sub)
    from .deconvolution import estimate_noise
    chans = [planes] if planes.ndim == 2 else [planes[..., c] for c in range(planes.shape[2])]
    # Per channel (the network's units); JPEG-robust; a floor: a little denoising costs nothing here.
    sigma = max(float(np.median([estimate_noise(c, jpeg_robust=True) for c in chans])), 0.002)
    try:
        from .network import denoise
        clean = denoise(planes, min(sigma, 0.2))
    except Exception as exc:  # noqa: BLE001 - a missing or corrupt model: estimate without it, say so
        return {"luma": None, "sigma": None,
                "warning": f"denoiser unavailable ({exc}); the kernel's finest level used the noisy photo"}
    luma, _ = working_luma(clean, linear)
    return {"luma": luma.astype(np.float32), "sigma": sigma, "warning": None}


def _embed(k: np.ndarray, size: int) -> np.ndarray:
    """``k`` centred in a ``size`` x ``size`` window (cropped or zero-padded about its centre), sum 1."""
    k = np.asarray(k, np.float64)
    out = np.zeros((size, size))
    kh, kw = k.shape
    oy, ox = size // 2 - kh // 2, size // 2 - kw // 2
    y0, x0 = max(0, oy), max(0, ox)
    y1, x1 = min(size, oy + kh), min(size, ox + kw)
    out[y0:y1, x0:x1] = k[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    t = out.sum()
    return out / t if t > 0 else _delta(size)


def refine_kernel(image: np.ndarray, psf: np.ndarray, kernel_size: int, *, roi=None, progress=None,
                  max_region: int = 640, iterations: int = 5, lam: float = 0.06, gamma_rel: float = 2e-3,
                  linear: bool = True, settings: ClassicSettings = DEFAULT_SETTINGS, _prep=None):
    """Refine a kernel on another region: the finest level of :func:`estimate_kernel` only, started
    from ``psf`` (centred in a ``kernel_size`` window). Same arguments and returns as
    :func:`estimate_kernel`; cheaper (no coarse levels) and anchored to ``psf``, for kernels that vary
    slowly across a photo (:mod:`deblur_core.spatial`, which passes the photo's working luminance,
    ``_prep`` = :func:`working_luma`, once for all its cells)."""
    if kernel_size is None:
        raise ValueError("refine_kernel needs the kernel window size")
    return _estimate(image, kernel_size, roi=roi, progress=progress, max_region=max_region, iterations=iterations,
                     lam=lam, gamma_rel=gamma_rel, linear=linear, settings=settings, _prep=_prep,
                     _init=np.asarray(psf, np.float64))


def _initial_kernel(ks: int, start) -> np.ndarray:
    """The coarsest level's first kernel: a small cross (None) or a short line at ``start`` degrees."""
    k = _delta(ks)
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


def _starts(luma: np.ndarray, n: int):
    """Initial kernels for the multi-start: the cross, then lines along the cepstrum's motion
    direction and across it."""
    out = [None]
    if n <= 1:
        return out
    try:
        from .estimate import estimate_motion
        f = min(1.0, 1024 / max(luma.shape))
        g = _resize(luma, (int(luma.shape[0] * f), int(luma.shape[1] * f)))
        _, angle, _ = estimate_motion(g)
    except Exception:  # noqa: BLE001 - a start less is no failure
        angle = 0.0
    out.append(float(angle))
    if n > 2:
        out.append(float(angle) + 90.0)
    return out[:n]


def _sparsity(ypad, crop, k, DtD, w) -> float:
    """Normalized sparsity (L1/L2, Krishnan et al. 2011) of the gradients of the image deconvolved
    with ``k`` (Wiener with a gradient prior of weight ``w``): lower = sharper, fewer ghosts."""
    shape = ypad.shape
    K = psf2otf(k.astype(np.float32), shape)
    x = irfft2(np.conj(K) * rfft2(ypad) / ((K.real ** 2 + K.imag ** 2) + w * DtD), shape)
    gx, gy = _grad(x)
    m = 4
    sl = (slice(crop[0].start + m, crop[0].stop - m), slice(crop[1].start + m, crop[1].stop - m))
    g = np.hypot(gx[sl], gy[sl]).astype(np.float64)
    return float(g.sum() / max(math.sqrt(float((g * g).sum()) * g.size), 1e-30))


def _final_trim(k: np.ndarray, trim_mass: float = DEFAULT_SETTINGS.trim_mass) -> np.ndarray:
    from .kernels import center, normalize
    k = normalize(k)
    # Drop the outer rings that hold only stray specks (1 % of the mass at most).
    r = min(_support_extent(k, 0.0), _mass_extent(k, trim_mass) + 2) // 2
    c = k.shape[0] // 2
    k = k[c - r:c + r + 1, c - r:c + r + 1]
    k = center(k)
    if k.shape[0] < 3:
        k = np.pad(k, 1)
    return normalize(k)


def _confidence(xl, k, wpad, Ysg) -> float:
    """Re-blur consistency of the blurred gradients: the share of their energy the estimated
    kernel explains with the last sparse-edge latent image ``xl`` (1 = fully, 0 = not at all). That
    latent comes from the kernel before the last update: a fresh one would cost another L0 solve
    over the region (0.5-0.7 s on a 1 MP region) for a figure that is only reported."""
    shape = xl.shape
    K = psf2otf(k.astype(np.float32), shape)
    gx, gy = _grad(xl)
    tot = 0.0
    err = 0.0
    for g, Yg in zip((gx, gy), Ysg):
        pred = irfft2(rfft2(g) * K, shape) * wpad
        obs = irfft2(Yg, shape)
        err += float(((pred - obs) ** 2).sum())
        tot += float((obs ** 2).sum())
    return max(0.0, 1.0 - err / max(tot, 1e-12))

"""Point spread functions (blur kernels): construction, normalisation, centring, PNG input/output.

Convention: a kernel is a 2-D float32 array with odd sides, non-negative, summing to 1, whose centre
pixel ``(h // 2, w // 2)`` is the origin. It is a *convolution* kernel: blurred = image (*) psf, which is
what ``scipy.signal.fftconvolve`` / :func:`deblur_core.fftutils.convolve` compute. Angles are in degrees,
counter-clockwise from the +x axis as seen on screen (y grows downwards in the array).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "normalize", "center", "motion_kernel", "defocus_kernel", "gaussian_kernel", "shake_kernel",
    "hand_shake_kernel", "hand_shake_trajectory",
    "load_kernel", "save_kernel", "kernel_from_points",
]


def normalize(psf: np.ndarray) -> np.ndarray:
    """Clip negatives and scale to sum 1; raises ValueError for an empty or all-zero kernel."""
    psf = np.clip(np.asarray(psf, dtype=np.float64), 0, None)
    if psf.ndim != 2 or psf.size == 0:
        raise ValueError(f"a kernel must be a non-empty 2-D array, got shape {psf.shape}")
    total = psf.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("the kernel is all zero")
    return (psf / total).astype(np.float32)


def _pad_odd(psf: np.ndarray) -> np.ndarray:
    h, w = psf.shape
    return np.pad(psf, ((0, 1 - h % 2), (0, 1 - w % 2)))


def center(psf: np.ndarray) -> np.ndarray:
    """Shift the kernel so its centre of mass sits on the centre pixel (integer shift), odd-sized output.

    Deconvolving with an off-centre kernel shifts the result; centring removes that shift.
    """
    psf = normalize(psf)
    ys, xs = np.indices(psf.shape)
    cy, cx = float((ys * psf).sum()), float((xs * psf).sum())
    dy, dx = int(round(cy - (psf.shape[0] - 1) / 2)), int(round(cx - (psf.shape[1] - 1) / 2))
    pad = ((max(0, -2 * dy), max(0, 2 * dy)), (max(0, -2 * dx), max(0, 2 * dx)))
    return normalize(_trim(_pad_odd(np.pad(psf, pad))))


def _trim(psf: np.ndarray, rel: float = 0.0) -> np.ndarray:
    """Remove symmetric zero borders (keeps the centre where it is)."""
    h, w = psf.shape
    thr = psf.max() * rel
    rows = np.nonzero(psf.max(axis=1) > thr)[0]
    cols = np.nonzero(psf.max(axis=0) > thr)[0]
    if rows.size == 0:
        return psf
    ry = max(h // 2 - rows[0], rows[-1] - h // 2)
    rx = max(w // 2 - cols[0], cols[-1] - w // 2)
    return psf[h // 2 - ry:h // 2 + ry + 1, w // 2 - rx:w // 2 + rx + 1]


def kernel_from_points(xs: np.ndarray, ys: np.ndarray, size: int, weights=None) -> np.ndarray:
    """Splat sub-pixel points (relative to the centre, x right, y down) bilinearly into a size x size kernel."""
    size = int(size) | 1
    c = size // 2
    k = np.zeros((size + 1, size + 1), np.float64)
    weights = np.ones_like(xs, dtype=np.float64) if weights is None else weights
    fx, fy = xs + c, ys + c
    x0, y0 = np.floor(fx).astype(int), np.floor(fy).astype(int)
    ax, ay = fx - x0, fy - y0
    ok = (x0 >= 0) & (y0 >= 0) & (x0 < size) & (y0 < size)
    x0, y0, ax, ay, wt = x0[ok], y0[ok], ax[ok], ay[ok], weights[ok]
    np.add.at(k, (y0, x0), wt * (1 - ax) * (1 - ay))
    np.add.at(k, (y0, x0 + 1), wt * ax * (1 - ay))
    np.add.at(k, (y0 + 1, x0), wt * (1 - ax) * ay)
    np.add.at(k, (y0 + 1, x0 + 1), wt * ax * ay)
    return normalize(k[:size, :size])


def motion_kernel(length: float, angle: float, *, size: int | None = None) -> np.ndarray:
    """Linear motion blur: an anti-aliased line of sub-pixel ``length`` (px) at ``angle`` (degrees).

    The line is centred on the kernel origin; length <= 1 gives the identity kernel.
    """
    length = float(length)
    if not np.isfinite(length) or length < 0:
        raise ValueError("motion length must be a finite number >= 0")
    if length <= 1.0:
        return np.ones((1, 1), np.float32)
    size = size or int(math.ceil(length)) + 2
    t = np.linspace(-length / 2, length / 2, max(2, int(length * 16)))
    a = math.radians(angle)
    return kernel_from_points(t * math.cos(a), -t * math.sin(a), size)


def defocus_kernel(radius: float, *, oversample: int = 8) -> np.ndarray:
    """Out-of-focus blur: a uniform disk of ``radius`` px with an anti-aliased edge (area coverage)."""
    radius = float(radius)
    if not np.isfinite(radius) or radius < 0:
        raise ValueError("defocus radius must be a finite number >= 0")
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    c = int(math.ceil(radius))
    size = 2 * c + 1
    s = (np.arange(size * oversample) + 0.5) / oversample - c - 0.5
    yy, xx = np.meshgrid(s, s, indexing="ij")
    inside = (xx * xx + yy * yy <= radius * radius).astype(np.float64)
    k = inside.reshape(size, oversample, size, oversample).mean(axis=(1, 3))
    return normalize(k)


def gaussian_kernel(sigma: float, *, size: int | None = None) -> np.ndarray:
    """Isotropic gaussian blur of standard deviation ``sigma`` px, truncated at 3.5 sigma."""
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError("gaussian sigma must be a finite number >= 0")
    if sigma < 0.2:
        return np.ones((1, 1), np.float32)
    r = size // 2 if size else int(math.ceil(3.5 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return normalize(np.outer(g, g))


def shake_kernel(size: int, rng: np.random.Generator | int | None = None, *,
                 anxiety: float | None = None, samples: int = 2000) -> np.ndarray:
    """A random camera-shake kernel: a curved, unevenly exposed trajectory fitting in ``size`` px.

    Follows the random trajectory model of Boracchi & Foi, "Modeling the Performance of Image
    Restoration From Motion Blur", IEEE TIP 2012: a velocity with inertia, random drift and occasional
    jerks, sampled over the exposure; the kernel is the time spent at each position.
    """
    size = int(size) | 1
    px, py = shake_trajectory(size, rng, anxiety=anxiety, samples=samples)
    k = kernel_from_points(px, py, size)
    return center(k)


def shake_trajectory(size: int, rng: np.random.Generator | int | None = None, *,
                     anxiety: float | None = None, samples: int = 2000):
    """The positions (x, y), px, of :func:`shake_kernel`'s trajectory at ``samples`` equal time steps,
    centred on its bounding box; it spans ``size`` - 3 px along its longer side."""
    rng = np.random.default_rng(rng)
    size = int(size) | 1
    anxiety = rng.uniform(0.005, 0.1) if anxiety is None else anxiety
    centripetal = 0.7 * rng.uniform(0, 1)
    gaussian_term = 10 * rng.uniform(0, 1)
    freq_big_shakes = 0.2 * rng.uniform(0, 1)
    n = 64
    v = np.exp(1j * rng.uniform(0, 2 * np.pi)) * 0.5 ** 0.5
    x = np.zeros(n, complex)
    for t in range(n - 1):
        big = 2 * np.exp(1j * np.pi * rng.standard_normal() + rng.uniform()) if rng.uniform() < freq_big_shakes * anxiety else 0
        dv = -centripetal * x[t] + (gaussian_term * complex(rng.standard_normal(), rng.standard_normal()) + big) * anxiety
        v = v + dv
        v = v / max(abs(v), 1e-9) * 0.5 ** 0.5
        x[t + 1] = x[t] + v
    x -= x.mean()
    extent = max(np.ptp(x.real), np.ptp(x.imag), 1e-6)
    scale = (size - 3) / extent
    tt = np.linspace(0, n - 1, samples)
    px = np.interp(tt, np.arange(n), x.real) * scale
    py = np.interp(tt, np.arange(n), x.imag) * scale
    return px - (px.max() + px.min()) / 2, py - (py.max() + py.min()) / 2


def hand_shake_kernel(size: int, rng: np.random.Generator | int | None = None, *,
                      samples: int = 4000) -> np.ndarray:
    """A random camera-shake kernel as hands make it in one exposure: an open curve, sometimes
    hooked or crossing itself once, brighter where the motion slowed, spanning ``size`` - 3 px.

    :func:`shake_kernel` (Boracchi & Foi's whole trajectory) fills its window with loops; kernels
    measured on real photos (Levin et al., CVPR 2009; Köhler et al., ECCV 2012; the estimates
    published with Lai et al., CVPR 2016) are single strokes. This model matches those: the share of
    the kernel's bounding square it covers (values above 5 % of the peak) has a median of 0.16 here,
    0.15 on the 18 published estimates in ``shared/data/real_blur/lai2016_real_kernels``; 0.5-0.7
    for :func:`shake_kernel`.
    """
    size = int(size) | 1
    px, py = hand_shake_trajectory(size, rng, samples=samples)
    return center(kernel_from_points(px, py, size))


def hand_shake_trajectory(size: int, rng: np.random.Generator | int | None = None, *, samples: int = 4000):
    """Positions (x, y), px, of :func:`hand_shake_kernel`'s path at ``samples`` equal time steps.

    The camera's angle over the exposure as a slow random process: a drift plus four sinusoids of
    0.25-3.2 cycles per exposure whose amplitudes fall as 1/f^1.5 (hand tremor is low-pass); equal
    time steps make the slow parts bright, as on a sensor."""
    rng = np.random.default_rng(rng)
    size = int(size) | 1
    t = np.linspace(0.0, 1.0, int(samples))
    p = np.zeros((2, t.size))
    for j in range(1, 5):
        f = rng.uniform(0.25, 0.8) * j
        amp = rng.normal(0.0, 1.0, 2) / j ** 1.5
        phase = rng.uniform(0.0, 2 * np.pi, 2)
        p += amp[:, None] * np.sin(2 * np.pi * f * t[None] + phase[:, None])
    p += rng.normal(0.0, 1.0, 2)[:, None] * t[None] * rng.uniform(0.0, 1.5)
    scale = (size - 3) / max(np.ptp(p[0]), np.ptp(p[1]), 1e-6)
    px = (p[0] - (p[0].max() + p[0].min()) / 2) * scale
    py = (p[1] - (p[1].max() + p[1].min()) / 2) * scale
    return px, py


def load_kernel(path: str) -> np.ndarray:
    """Load a PSF from a gray (or RGB, averaged) image: normalised to sum 1, centre of the file = origin."""
    from .imageio import read_image
    img, _ = read_image(path)
    if img.ndim == 3:
        img = img[..., :3].mean(axis=2) if img.shape[2] >= 3 else img[..., 0]
    if not np.any(img > 0):
        raise ValueError(f"the kernel image {path} is all black")
    return normalize(_pad_odd(img))


def save_kernel(path: str, psf: np.ndarray) -> None:
    """Save a PSF as a 16-bit gray PNG scaled so the brightest pixel is white."""
    from .imageio import write_image
    psf = np.asarray(psf, dtype=np.float32)
    write_image(path, psf / max(float(psf.max()), 1e-12), np.uint16)

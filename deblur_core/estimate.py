"""Parametric blur estimation from the photo alone: the fast path for motion and defocus.

- :func:`power_cepstrum`: Welch-averaged log power spectrum and its cepstrum. A uniform blur's spectral
  zeros make negative cepstral peaks at the blur's extent: a pair of points at distance ``length`` along
  the motion direction, a ring at about twice the defocus radius (Cannon, "Blind deconvolution of
  spatially invariant image blurs with phase", IEEE TASSP 1976; Rom 1975).
- :func:`estimate_motion`, :func:`estimate_defocus`: read those peaks, sub-pixel.
- :func:`edge_blur_sigma`: gaussian-equivalent blur at edges by re-blurring (Zhuo & Sim, "Defocus map
  estimation from a single image", Pattern Recognition 2011); also the local blur map.
- :func:`spectral_gaussian_sigma`: the sigma of a gaussian blur from the fall of the power spectrum.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from scipy import ndimage

from .color import luminance, srgb_to_linear

__all__ = ["power_cepstrum", "estimate_motion", "estimate_defocus", "edge_blur_sigma", "edge_ratio_sigma", "blur_map", "directional_blur",
           "working_luma", "edge_candidates", "spectral_gaussian_sigma", "soft_focus_sigma"]

# The cepstral peak of a motion blur sits at its length, which is taken as it is (no correction). The
# defocus ring sits at about 1.91 times the radius, so its radius is scaled by 1 / 1.91 (measured on
# synthetic blur with this package's kernels; bench/bench_engine.py reports the median length and
# radius errors).
DEFOCUS_SCALE = 0.523
# The shortest motion the cepstral search looks at (px): an estimate there is the search's floor (no
# signature found), not a measured length.
MOTION_FLOOR = 3.5
# estimate_motion(normalise="radius")'s score below which no straight line explains the blur (camera bench,
# train split: 8 of 9 estimates under it were wrong, 2 of 21 above it).
MOTION_MIN_LINE_SCORE = 5.5


def working_luma(image: np.ndarray, max_side: int | None = None) -> np.ndarray:
    """Linear-light luminance (H, W) float32 of an sRGB-encoded engine image (alpha ignored)."""
    img = image
    if img.ndim == 3:
        img = img[..., :3] if img.shape[2] >= 3 else img[..., 0]
    if max_side and max(img.shape[:2]) > 1.5 * max_side:
        # Big photos: area reduction before linearising keeps the analysis of 12-24 MP photos fast
        # (the small sRGB-vs-linear averaging difference does not matter for blur measures).
        s = max_side / max(img.shape[:2])
        img = cv2.resize(np.ascontiguousarray(img), (max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))),
                         interpolation=cv2.INTER_AREA)
    y = luminance(srgb_to_linear(img))
    if max_side and max(y.shape) > max_side:
        s = max_side / max(y.shape)
        y = cv2.resize(y, (max(1, round(y.shape[1] * s)), max(1, round(y.shape[0] * s))), interpolation=cv2.INTER_AREA)
    return y


def power_cepstrum(gray: np.ndarray, tile: int = 256, max_tiles: int = 48, *, logpower: bool = False):
    """Welch-averaged cepstrum of a (H, W) image, fftshifted so the origin is at (tile//2, tile//2).

    Returns (cepstrum (tile, tile) float64, tile size used); with ``logpower`` also the Welch-averaged
    log power spectrum (tile, tile), fftshifted (zero frequency at (tile//2, tile//2)).
    """
    h, w = gray.shape
    # Averaging several tiles matters more than a long reach: keep at least ~4 half-overlapping tiles.
    tile = int(min(tile, 2 ** int(math.log2(max(16, min(h, w) / 1.5)))))
    win = np.outer(np.hanning(tile), np.hanning(tile))
    step = tile // 2
    ys = list(range(0, max(1, h - tile + 1), step)) or [0]
    xs = list(range(0, max(1, w - tile + 1), step)) or [0]
    coords = [(y, x) for y in ys for x in xs]
    if len(coords) > max_tiles:  # spread the tiles that are used over the whole image
        idx = np.linspace(0, len(coords) - 1, max_tiles).round().astype(int)
        coords = [coords[i] for i in idx]
    acc = np.zeros((tile, tile // 2 + 1))
    # Real tiles: half spectra (rfft2) carry it all, in batches (one FFT call per batch, not per tile).
    for i in range(0, len(coords), 16):
        t = np.stack([gray[y:y + tile, x:x + tile] for y, x in coords[i:i + 16]]).astype(np.float64)
        t -= t.mean(axis=(1, 2), keepdims=True)
        f = np.fft.rfft2(t * win)
        acc += (f.real ** 2 + f.imag ** 2).sum(axis=0)
    acc /= len(coords)
    # The mean over the full spectrum: the half spectrum's inner columns stand for two columns each.
    cols = np.full(acc.shape[1], 2.0)
    cols[0] = cols[-1] = 1.0
    mean = float((acc.sum(axis=0) * cols).sum()) / (tile * tile)
    logp = np.log(acc + 1e-3 * mean + 1e-12)
    # The log power spectrum of real tiles is real and even, so its inverse FFT is real: irfft2.
    cep = np.fft.irfft2(logp, s=(tile, tile))
    if logpower:
        # The full spectrum from the half one: P[k1, -k2] = P[-k1, k2] for real tiles.
        full = np.empty((tile, tile))
        full[:, :tile // 2 + 1] = logp
        full[:, tile // 2 + 1:] = logp[(-np.arange(tile)) % tile][:, 1:tile - tile // 2][:, ::-1]
        return np.fft.fftshift(cep), tile, np.fft.fftshift(full)
    return np.fft.fftshift(cep), tile


SPECTRUM_BANDS = (0.02, 0.04, 0.07, 0.11, 0.16, 0.22, 0.30, 0.40, 0.5)


def spectrum_polar_grid(logp: np.ndarray, bins: int = 12, bands=SPECTRUM_BANDS) -> np.ndarray:
    """Mean of an fftshifted (n, n) log power spectrum in ``bins`` orientation sectors x radial bands
    (cycles/px): (bins, len(bands) - 1), NaN where a cell holds no frequency."""
    n = logp.shape[0]
    f = (np.arange(n) - n // 2) / n
    fy, fx = f[:, None], f[None, :]
    r = np.hypot(fx, fy)
    b = np.clip(((np.arctan2(-fy, fx) % np.pi) / np.pi * bins).astype(int), 0, bins - 1)
    j = np.searchsorted(np.asarray(bands), r, side="right") - 1
    ok = (j >= 0) & (j < len(bands) - 1)
    cell = (b * (len(bands) - 1) + j)[ok]
    size = bins * (len(bands) - 1)
    cnt = np.bincount(cell, minlength=size)
    tot = np.bincount(cell, weights=logp[ok], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (tot / cnt).reshape(bins, len(bands) - 1)


def _polar(cep: np.ndarray, radii: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    c = cep.shape[0] // 2
    a = np.deg2rad(angles_deg)[:, None]
    rows = c - radii[None, :] * np.sin(a)   # screen convention: +angle goes up
    cols = c + radii[None, :] * np.cos(a)
    return ndimage.map_coordinates(cep, [rows, cols], order=1, mode="nearest")


def estimate_motion(gray: np.ndarray, *, max_length: float = 80.0, cep=None, normalise: str = "radius"):
    """Linear motion length (px) and angle (degrees, [0, 180)) from the cepstrum, with a score.

    The cepstrum is read on a polar grid (radius x angle) with each radius's median over the angles
    taken away: motion is what differs by angle. The most negative point is the blur's length peak.

    ``normalise``: "radius" (default): each radius's deviations are divided by their own robust spread
    over the angles before the minimum is taken, so the strong anisotropy of the smallest quefrencies
    (the photo's own edges, JPEG blocks, the blur's low-pass itself) does not outrank the length peak
    on a camera's JPEG. Its score below :data:`MOTION_MIN_LINE_SCORE` means no clear line: the length
    and angle returned are then the "global" reading's (the best straight line for a blur that is not
    one, e.g. camera shake), the score stays the low one. "global": one spread for the whole grid (the
    blur-type classifier's features were measured so; score > ~4 clear). On bench_shake's camera
    pipeline (straight motion 8-30 px, 30 photos) "radius" finds the length within 1.5 px and the angle
    within 3 degrees for 19 / 26 (train / held-out) against 16 / 21; on real shaken photos it finds
    "clear" false lines of 10-110 px, so the classifier keeps "global" (docs/experiments/diagnosis.md).

    Returns (length, angle, score).
    """
    if normalise not in ("radius", "global"):
        raise ValueError(f"normalise must be 'radius' or 'global', not {normalise!r}")
    if cep is None:
        cep, _ = power_cepstrum(gray, tile=256 if max_length <= 100 else 512)
    tile = cep.shape[0]
    rmax = min(max_length + 4, tile / 2 - 4)
    radii = np.arange(MOTION_FLOOR, rmax, 0.25)
    angles = np.arange(0.0, 180.0, 0.5)
    P = _polar(cep, radii, angles)
    # Remove the isotropic part (the image's own radial falloff): motion is what differs by angle.
    A = P - np.median(P, axis=0, keepdims=True)
    A = ndimage.gaussian_filter(A, (1.0, 1.0), mode=("wrap", "nearest"))
    found = _deepest_line(A, radii, angles)
    if normalise == "global":
        return found
    spread_r = 1.4826 * np.median(np.abs(A), axis=0, keepdims=True) + 1e-12
    line = _deepest_line(A / ndimage.uniform_filter1d(spread_r, 9, axis=1), radii, angles, refine_on=A)
    return line if line[2] >= MOTION_MIN_LINE_SCORE else (found[0], found[1], line[2])


def _deepest_line(A: np.ndarray, radii: np.ndarray, angles: np.ndarray, refine_on: np.ndarray | None = None):
    """(length, angle, score) of the most negative point of the polar grid ``A``, sub-pixel. With
    ``refine_on`` (the same grid before a per-radius scaling) the sub-pixel position is read there, within
    a px of the point found: the scaling, smooth across radii, would otherwise pull it."""
    ia, ir = np.unravel_index(np.argmin(A), A.shape)
    depth = -A[ia, ir]
    spread = 1.4826 * np.median(np.abs(A - np.median(A))) + 1e-12
    score = float(depth / spread)
    if refine_on is not None:
        A = refine_on
        lo, hi = max(ir - 4, 0), min(ir + 5, A.shape[1])
        ir = lo + int(np.argmin(A[ia, lo:hi]))
    r = radii[ir] + _parabolic(A[ia, max(ir - 1, 0)], A[ia, ir], A[ia, min(ir + 1, len(radii) - 1)]) * 0.25
    ang = angles[ia] + _parabolic(A[(ia - 1) % len(angles), ir], A[ia, ir], A[(ia + 1) % len(angles), ir]) * 0.5
    return float(max(r, 1.0)), float(ang % 180.0), score


def estimate_defocus(gray: np.ndarray, *, max_radius: float = 30.0, cep=None):
    """Defocus disk radius (px) from the cepstrum's negative ring, with a score (> ~4: clear ring)."""
    if cep is None:
        cep, _ = power_cepstrum(gray)
    tile = cep.shape[0]
    rmax = min(2 * max_radius + 4, tile / 2 - 4)
    radii = np.arange(2.0, rmax, 0.25)
    P = _polar(cep, radii, np.arange(0.0, 360.0, 2.0))
    prof = ndimage.gaussian_filter1d(P.mean(axis=0), 1.0)
    tail = prof[len(prof) // 2:]
    spread = 1.4826 * np.median(np.abs(tail - np.median(tail))) + 1e-12
    # The ring is the first clear negative dip after the image's own positive falloff.
    best, ir = 0.0, None
    for i in range(2, len(prof) - 2):
        if prof[i] < 0 and prof[i] <= prof[i - 1] and prof[i] <= prof[i + 1]:
            depth = -prof[i] / spread
            if depth > 3:
                best, ir = depth, i
                break
            if depth > best:
                best, ir = depth, i
    if ir is None:
        return 0.5, 0.0
    consistency = float(np.mean(P[:, ir] < 0))  # a ring is negative at every angle, a line is not
    r = radii[ir] + _parabolic(prof[ir - 1], prof[ir], prof[ir + 1]) * 0.25
    return float(max(r * DEFOCUS_SCALE, 0.5)), float(best * consistency)


def _parabolic(a, b, c) -> float:
    den = a - 2 * b + c
    if den <= 1e-12:
        return 0.0
    return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def edge_candidates(gray: np.ndarray):
    """The part of :func:`edge_ratio_sigma` that does not depend on the re-blur: the image's gradients
    and its candidate edge pixels (local maxima of the gradient magnitude among the strongest ones).

    Returns (gx, gy, magnitude, candidates (H, W) bool); pass it on as ``candidates=`` to measure with
    several re-blurs at the cost of one.
    """
    g = gray.astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    m1 = np.sqrt(gx * gx + gy * gy)
    u8 = np.clip(255 * g / max(float(g.max()), 1e-6), 0, 255).astype(np.uint8)
    edges = cv2.Canny(u8, 40, 100, L2gradient=True) > 0
    strong = m1 > max(np.quantile(m1, 0.9), 0.02)
    return gx, gy, m1, edges & strong


def edge_ratio_sigma(gray: np.ndarray, sigma0: float = 1.0, return_orientation: bool = False, *,
                     candidates=None):
    """Per-pixel gaussian-equivalent blur at edges and the edge mask (Zhuo & Sim 2011).

    ``candidates``: :func:`edge_candidates` of ``gray``, to reuse. With ``return_orientation`` also the
    gradient orientation (radians), at the edge pixels only (0 elsewhere).
    """
    g = gray.astype(np.float32)
    gx, gy, m1, cand = candidates if candidates is not None else edge_candidates(g)
    b = cv2.GaussianBlur(g, (0, 0), sigma0)
    bx = cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=3)
    by = cv2.Sobel(b, cv2.CV_32F, 0, 1, ksize=3)
    # The ratio only matters at the candidate edge pixels (a few percent of the image).
    idx = np.flatnonzero(cand)
    bxi, byi = bx.ravel()[idx], by.ravel()[idx]
    ratio = m1.ravel()[idx] / (np.sqrt(bxi * bxi + byi * byi) + 1e-6)
    keep = ratio > 1.01
    idx = idx[keep]
    mask = np.zeros(g.shape, bool)
    mask.ravel()[idx] = True
    sigma = np.full(g.shape, np.nan, np.float32)
    sigma.ravel()[idx] = sigma0 / np.sqrt(ratio[keep] ** 2 - 1)
    if return_orientation:
        theta = np.zeros(g.shape, np.float32)
        theta.ravel()[idx] = np.arctan2(gy.ravel()[idx], gx.ravel()[idx])
        return sigma, mask, theta
    return sigma, mask


def edge_blur_sigma(gray: np.ndarray, *, measured=None, candidates=None) -> float:
    """Gaussian-equivalent blur (px) at the image's edges (median over strong edges); 0 when no edges.

    ``measured``: the (sigma, mask) of an earlier default re-blur measurement of ``gray``, to reuse;
    ``candidates``: its :func:`edge_candidates`, to reuse for the wide re-blur.
    """
    if measured is None:
        candidates = candidates if candidates is not None else edge_candidates(gray)
        measured = edge_ratio_sigma(gray, candidates=candidates)
    sigma, mask = measured
    if mask.sum() < 20:
        return 0.0
    s = float(np.median(sigma[mask]))
    if s > 2.0:  # the re-blur ratio saturates for wide edges: measure again with a wider re-blur
        sigma, mask = edge_ratio_sigma(gray, sigma0=2.5, candidates=candidates)
        if mask.sum() >= 20:
            s = float(np.median(sigma[mask]))
    return float(np.clip(s, 0.0, 50.0))


def spectral_gaussian_sigma(gray: np.ndarray, *, band=(0.01, 0.45), bins: int = 32, side: int = 1024,
                            sectors: int = 8, min_sectors: int = 7, slope_prior: float = 1.0) -> float:
    """Sigma (px) of a gaussian blur from the fall of the photo's power spectrum; NaN when it cannot be read.

    A gaussian blur multiplies the power spectrum by exp(-sigma^2 (2 pi f)^2); a natural scene's spectrum
    falls as a power of the frequency f (van der Schaaf & van Hateren, "Modelling the power spectra of
    natural images", Vision Research 1996). In each of ``sectors`` orientation sectors, over the annuli
    whose median power stands 4x clear of the noise floor, log(P(f) - floor) = a - beta log f -
    sigma^2 (2 pi f)^2 is fitted by least squares (beta per sector, weakly held near 2). The blur is the
    same in every direction while a scene can be soft in some (sky, blinds), so each sector's sigma
    bounds the blur from above: the second smallest is returned (the smallest can be one noisy sector).
    The edge-width measure (:func:`edge_blur_sigma`) reads camera-like gaussian blur of sigma 2-5 px as
    0.6-2 px; this reads most within 0.3 px (docs/experiments/diagnosis.md, stop 27).

    Parameters
    ----------
    gray : ndarray (H, W), linear-light luminance (:func:`working_luma`); at least 64 px on each side.
    band : (low, high) frequencies in cycles/px of the fit.
    bins : log-spaced annuli in ``band``; a sector needs 5 above the floor, spanning an octave.
    side : the central square (px) whose spectrum is measured.
    sectors, min_sectors : orientation sectors over [0, pi), and how many must be fitted: a scene with
        detail in too few directions (a smooth sky) cannot tell its own softness from blur.
    slope_prior : weight of the prior holding beta near 2 (in squared log-power units).

    Returns
    -------
    float : sigma in px of ``gray``; NaN when too few sectors can be fitted.
    """
    from .deconvolution import estimate_noise
    g = np.asarray(gray, np.float64)
    h, w = g.shape
    n = min(h, w, side)
    if n < 64:
        return float("nan")
    y0, x0 = (h - n) // 2, (w - n) // 2
    g = g[y0:y0 + n, x0:x0 + n]
    floor = float(estimate_noise(g.astype(np.float32), jpeg_robust=True)) ** 2
    win = np.outer(np.hanning(n), np.hanning(n))
    # normalised so that white noise reads its variance at every frequency
    power = (np.abs(np.fft.rfft2((g - g.mean()) * win)) ** 2 / float((win * win).sum())).ravel()
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :]
    f = np.hypot(fy, fx).ravel()
    sector = np.minimum(((np.arctan2(fy, fx).ravel() % np.pi) / np.pi * sectors).astype(int), sectors - 1)
    edges = np.geomspace(band[0], band[1], bins + 1)
    annulus = np.digitize(f, edges) - 1
    inside = (annulus >= 0) & (annulus < bins)
    cell = sector[inside] * bins + annulus[inside]
    order = np.argsort(cell, kind="stable")
    groups = np.split(power[inside][order], np.searchsorted(cell[order], np.arange(1, sectors * bins)))
    fits = []
    for sec in range(sectors):
        freqs, logs = [], []
        for b in range(bins):
            values = groups[sec * bins + b]
            if values.size < 8:
                continue
            p = float(np.median(values))    # the median: JPEG's block peaks sit on the axes
            if p > 4 * floor:
                freqs.append(np.sqrt(edges[b] * edges[b + 1]))
                logs.append(np.log(p - floor))
        if len(freqs) < 5 or freqs[-1] < 2 * freqs[0]:
            continue
        fr = np.asarray(freqs)
        A = np.stack([np.ones_like(fr), -np.log(fr), -(2 * np.pi * fr) ** 2], axis=1)
        # The slope and the gaussian's curvature trade off where few annuli clear the noise (a large blur).
        A = np.vstack([A, [0.0, np.sqrt(slope_prior), 0.0]])
        rhs = np.append(np.asarray(logs), 2.0 * np.sqrt(slope_prior))
        (_, beta, s2), *_ = np.linalg.lstsq(A, rhs, rcond=None)
        if 0.5 <= beta <= 4.5:
            fits.append(float(np.sqrt(max(s2, 0.0))))
    if len(fits) < min_sectors:
        return float("nan")
    return sorted(fits)[1] if len(fits) > 1 else fits[0]


def soft_focus_sigma(luma: np.ndarray, scale: float, edge_sigma: float) -> tuple[float, bool]:
    """The soft-focus sigma in px of the full-size photo: :func:`spectral_gaussian_sigma` of ``luma`` (the
    photo's working luma, ``scale`` times its size), or ``edge_sigma`` (full-size px) where the spectrum
    cannot be read. Returns (sigma, whether the spectrum read it)."""
    spectral = spectral_gaussian_sigma(luma) / scale
    return (float(spectral), True) if np.isfinite(spectral) else (float(edge_sigma), False)


def directional_blur(gray: np.ndarray, bins: int = 4, *, measured=None):
    """Median edge blur (px) for edges of ``bins`` gradient orientations, and the edge-blur quartiles.

    Motion and shake blur widen edges across their direction only; defocus and gaussian blur widen all.
    Returns (per-orientation medians (bins,), (q25, q50, q75)); NaN where a bin has too few edges.
    ``measured``: (sigma, mask, theta) of an earlier measurement with orientation, to reuse.
    """
    sigma, mask, theta = measured if measured is not None else edge_ratio_sigma(gray, return_orientation=True)
    if mask.sum() < 20:
        return np.full(bins, np.nan), (np.nan, np.nan, np.nan)
    s = sigma[mask]
    b = (((theta[mask] % np.pi) / np.pi * bins + 0.5).astype(int)) % bins
    med = np.array([np.median(s[b == i]) if np.sum(b == i) >= 10 else np.nan for i in range(bins)])
    return med, tuple(float(v) for v in np.percentile(s, [25, 50, 75]))


def gradient_autocorrelation(gray: np.ndarray, radius: int = 40) -> np.ndarray:
    """Autocorrelation (2r+1, 2r+1) of the image's derivatives, normalised to 1 at the origin.

    Natural-image gradients are close to white noise, so this approximates the autocorrelation of the
    blur kernel (Yitzhaky & Kopeika, "Identification of blur parameters from motion blurred images",
    1997): a line for linear motion, an irregular elongated blob for shake, a round one for defocus.
    """
    g = gray.astype(np.float64)
    n = 512
    if min(g.shape) > n:  # a centre window keeps this fast
        y0, x0 = (g.shape[0] - n) // 2, (g.shape[1] - n) // 2
        g = g[y0:y0 + n, x0:x0 + n]
    h, w = g.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    power = 0
    for d in (np.diff(g, axis=1)[:-1, :], np.diff(g, axis=0)[:, :-1]):
        d = (d - d.mean()) * win[:d.shape[0], :d.shape[1]]
        F = np.fft.rfft2(d, s=(2 * h, 2 * w))
        power = power + (F.real ** 2 + F.imag ** 2)
    # The inverse FFT is linear: one for the sum of both derivatives' power spectra.
    ac = np.fft.fftshift(np.fft.irfft2(power, s=(2 * h, 2 * w)))
    c0, c1 = ac.shape[0] // 2, ac.shape[1] // 2
    r = int(min(radius, h // 4, w // 4))
    ac = ac[c0 - r:c0 + r + 1, c1 - r:c1 + r + 1]
    # The origin also holds the noise power: replace it by its neighbours' mean.
    ac[r, r] = (ac[r - 1, r] + ac[r + 1, r] + ac[r, r - 1] + ac[r, r + 1]) / 4
    return (ac / max(ac[r, r], 1e-12)).astype(np.float32)


def autocorrelation_shape(ac: np.ndarray, level: float = 0.1):
    """Second moments of the central positive lobe of an autocorrelation: (major, minor) standard
    deviations in px and the lobe's area fill against its bounding ellipse."""
    r = ac.shape[0] // 2
    lobe = ac > level
    lab, _ = ndimage.label(lobe)
    lobe = lab == lab[r, r]
    wgt = np.where(lobe, ac - level, 0).astype(np.float64)
    ys, xs = np.indices(ac.shape) - r
    tot = wgt.sum() + 1e-12
    cov = np.array([[(wgt * xs * xs).sum(), (wgt * xs * ys).sum()],
                    [(wgt * xs * ys).sum(), (wgt * ys * ys).sum()]]) / tot
    ev = np.sort(np.linalg.eigvalsh(cov))[::-1]
    major, minor = np.sqrt(np.maximum(ev, 1e-6))
    fill = lobe.sum() / (np.pi * 4 * major * minor + 1e-6)
    return float(major), float(minor), float(fill)


def _wide_gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing with a wide sigma, computed on an area-reduced copy (sigma <= 4 px there)
    and scaled back: same result to a small fraction of sigma, and independent of sigma in cost
    (OpenCV's direct Gaussian of sigma 300 px on a megapixel takes 0.2 s)."""
    h, w = a.shape
    f = max(1.0, sigma / 4.0)
    if f <= 1.5:
        return cv2.GaussianBlur(a, (0, 0), sigma)
    sh, sw = max(1, round(h / f)), max(1, round(w / f))
    small = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
    # The area reduction already averaged over ~f px (a box of variance f^2 / 12): take it off.
    rest = np.sqrt(max(sigma ** 2 - f ** 2 / 12.0, 0.25)) / f
    small = cv2.GaussianBlur(small, (0, 0), rest, borderType=cv2.BORDER_REFLECT_101)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def blur_map(gray: np.ndarray, *, smooth: float | None = None) -> np.ndarray:
    """Dense local blur map (H, W) float32: gaussian-equivalent blur in px, interpolated from edges.

    Sparse per-edge estimates are spread by normalised convolution; regions with no edges at all take
    the image's median blur.
    """
    h, w = gray.shape
    scale = 1.0
    small = gray
    if max(h, w) > 1024:  # the map is smooth: compute it at <= 1024 px and scale back
        scale = 1024 / max(h, w)
        small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    sigma, mask = edge_ratio_sigma(small)
    sigma = np.where(mask, np.clip(sigma, 0, 20 * scale), 0).astype(np.float32) / scale
    wgt = mask.astype(np.float32)
    s = smooth or max(4.0, min(small.shape) / 24)
    fallback = float(np.median(sigma[mask])) if mask.any() else 0.0
    dense = np.full(small.shape, fallback, np.float32)
    conf = np.zeros(small.shape, np.float32)
    # Coarse to fine: wider neighbourhoods fill edge-free areas, finer ones keep detail where edges are.
    for width in (8 * s, 3 * s, s):
        num = _wide_gaussian(sigma * wgt, width)
        den = _wide_gaussian(wgt, width)
        local = num / np.maximum(den, 1e-6)
        c = np.clip(den / 0.02, 0.0, 1.0)
        dense = np.where(c > 0, c * local + (1 - c) * dense, dense).astype(np.float32)
        conf = np.maximum(conf, c)
    if scale != 1.0:
        dense = cv2.resize(dense, (w, h), interpolation=cv2.INTER_LINEAR)
    return dense

"""Over-sharpening guard: cap the correction before it makes halos or turns grain into sand.

Two measurements of a result against its input, both on luminance:

* :func:`halo_overshoot`: around strong edges of the input, how far the result goes beyond the local
  [min, max] of the input over a (2r+1)^2 window (a bright or dark rim: a halo, or deconvolution
  ringing), in [0, 1] units; the ``percentile`` (99th) over the edge zone. For sharpening (slight
  softness) that is exactly a halo; for deconvolution of a larger blur restored detail counts too, so
  pass the kernel's half size as ``radius`` and the relaxed :data:`DECONV_LIMITS`.
* :func:`noise_gain`: in flat areas of the input (local contrast at noise level, away from edges), the
  standard deviation of the high-pass (image minus a 1 px gaussian) of the result divided by that of
  the input: 1 = grain untouched, 2 = grain doubled.

:func:`guard` looks for the largest blend factor ``b <= requested`` such that
``original + b * (result - original)`` keeps both below their thresholds (both grow with ``b``, so a
bisection finds it), and returns the capped image with a JSON-serialisable report.

Big photos are measured on a sample of tiles (at most ``max_pixels``), so the guard costs a few
hundred milliseconds whatever the size.
"""
from __future__ import annotations

import cv2
import numpy as np

from .color import luminance

__all__ = ["halo_overshoot", "noise_gain", "guard", "GuardRegions", "MAX_HALO", "MAX_NOISE_GAIN", "VISIBLE_NOISE", "DECONV_LIMITS"]

MAX_HALO = 0.04          # 99th-percentile overshoot beyond the local range, [0, 1] units (~10/255)
MAX_NOISE_GAIN = 2.0     # flat-area high-pass std, result / input
VISIBLE_NOISE = 0.006    # ... unless the result's flat-area high-pass std stays below this (~1.5/255)
# Limits for a deconvolution result (pass radius = the kernel's half size): restored detail exceeds the
# blurred input's local range too (the sharp ground truth of gaussian sigma 2 blur scores ~0.15), so
# only gross ringing is capped there. Areas flat in the *blurred* input are not flat in the scene
# (the sharp ground truth of a 17 px shake scores a "noise gain" of 2.8x), so only an amplification
# far beyond that counts as noise.
DECONV_LIMITS = {"max_halo": 0.25, "max_noise_gain": 8.0}


def _luma(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, np.float32)
    if img.ndim == 2:
        return img
    if img.shape[2] >= 3:
        return luminance(img[..., :3])
    return img[..., 0]


class GuardRegions:
    """What the measurements need from the input, computed once.

    Halo: the edge zone (strong gradients of the input, top 5 % and at least 0.02 per px, dilated by
    ``radius``) with the input's local [min, max] over a (2r+1)^2 window there.

    Noise: flat areas (local contrast of the 2 px-smoothed input in the lowest third, away from its
    notable gradients: flat in structure, whatever the grain) and the input's high-pass level there.

    Note on deconvolution: a deblurred thin highlight legitimately rises above its *blurred*
    neighbourhood, so the local-range test also counts restored detail. On synthetic gaussian blur
    (sigma 2 px) the sharp ground truth itself scores about 0.15 at the 99th percentile with a window
    of the kernel's half size; so for deconvolution use ``radius`` = the kernel's half size and a
    relaxed ``max_halo`` (see :data:`DECONV_LIMITS`); the default limits are for sharpening.
    """

    def __init__(self, original: np.ndarray, *, radius: int = 3, noise_floor: float = 0.002):
        y = _luma(original)
        self.y = y
        self.radius = r = max(1, int(radius))
        k = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * r + 1, 2 * r + 1))
        self.lo = cv2.erode(y, k)
        self.hi = cv2.dilate(y, k)
        gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3) / 8
        gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3) / 8
        g = np.hypot(gx, gy)
        t = max(float(np.percentile(g, 95)), 0.02)
        strong = (g >= t).astype(np.uint8)
        self.edge_zone = cv2.dilate(strong, k).astype(bool)
        self.has_edges = int(strong.sum()) >= 20
        # flat = flat in *structure*: judged on a 2 px gaussian of the input, so grain (which is what
        # is measured there) does not make skin or sky look like detail
        ys = cv2.GaussianBlur(y, (0, 0), 2.0)
        mu = cv2.blur(ys, (7, 7))
        std = np.sqrt(np.maximum(cv2.blur(ys * ys, (7, 7)) - mu * mu, 0))
        gs = np.hypot(cv2.Sobel(ys, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(ys, cv2.CV_32F, 0, 1, ksize=3)) / 8
        notable = (gs >= max(float(np.percentile(gs, 70)), 0.005)).astype(np.uint8)
        k2 = cv2.getStructuringElement(cv2.MORPH_RECT, (4 * r + 5, 4 * r + 5))
        near = cv2.dilate(notable, k2).astype(bool)
        flat = (~near) & (std <= np.percentile(std, 33))
        self.flat_zone = flat
        self.has_flat = int(flat.sum()) >= 200
        self.hp0 = max(float(np.std(self._highpass(y)[flat])) if self.has_flat else 0.0, noise_floor)

    @staticmethod
    def _highpass(y):
        return y - cv2.GaussianBlur(y, (0, 0), 1.0)

    def overshoots(self, result_luma: np.ndarray) -> np.ndarray:
        """Per edge-zone pixel: how far the result leaves the input's local [min, max]."""
        if not self.has_edges:
            return np.zeros(0, np.float32)
        over = np.maximum(np.maximum(result_luma - self.hi, self.lo - result_luma), 0.0)
        return over[self.edge_zone]

    def halo(self, result_luma: np.ndarray, percentile: float = 99.0) -> float:
        o = self.overshoots(result_luma)
        return float(np.percentile(o, percentile)) if o.size else 0.0

    def noise_std(self, result_luma: np.ndarray) -> float:
        return float(np.std(self._highpass(result_luma)[self.flat_zone])) if self.has_flat else 0.0

    def noise(self, result_luma: np.ndarray) -> float:
        if not self.has_flat:
            return 1.0
        return self.noise_std(result_luma) / self.hp0


def halo_overshoot(result: np.ndarray, original: np.ndarray, *, radius: int = 3, percentile: float = 99.0) -> float:
    """Overshoot of ``result`` beyond the input's local [min, max] ((2r+1)^2 window) around strong
    edges of ``original``: the ``percentile`` over the edge zone, in [0, 1] units (0 = no halo)."""
    return GuardRegions(original, radius=radius).halo(_luma(result), percentile)


def noise_gain(result: np.ndarray, original: np.ndarray, *, radius: int = 3) -> float:
    """Flat-area high-pass standard deviation of ``result`` over that of ``original`` (1 = unchanged)."""
    return GuardRegions(original, radius=radius).noise(_luma(result))


def _sample_tiles(shape, max_pixels: int, tile: int = 256):
    """Slices of an even grid of tiles covering at most ``max_pixels`` (the whole image when small)."""
    H, W = shape[:2]
    if H * W <= max_pixels:
        return [(slice(0, H), slice(0, W))]
    n = max(1, max_pixels // (tile * tile))
    ny = max(1, int(round(np.sqrt(n * H / W))))
    nx = max(1, n // ny)
    ys = np.linspace(0, max(0, H - tile), ny).astype(int)
    xs = np.linspace(0, max(0, W - tile), nx).astype(int)
    return [(slice(y, y + tile), slice(x, x + tile)) for y in ys for x in xs]


def guard(result: np.ndarray, original: np.ndarray, *, requested: float = 1.0, max_halo: float = MAX_HALO,
          max_noise_gain: float = MAX_NOISE_GAIN, visible_noise: float = VISIBLE_NOISE, radius: int = 3,
          mask: np.ndarray | None = None, percentile: float = 99.0, max_pixels: int = 1_500_000, steps: int = 7):
    """Largest blend ``b <= requested`` of ``result`` over ``original`` that stays within the limits.

    Parameters
    ----------
    result : ndarray, the full correction (blend 1), same shape as ``original``, float32 [0, 1].
    original : ndarray, the input.
    requested : float >= 0
        The blend the user asked for (the pipeline's ``blend``).
    max_halo : float
        Largest allowed ``percentile`` overshoot at clean step edges, [0, 1] units.
    max_noise_gain : float
        Largest allowed flat-area noise gain (high-pass std, result / input) ...
    visible_noise : float
        ... unless the result's flat-area high-pass std stays below this (gain on a clean photo is
        invisible: 3x of nothing is nothing).
    radius : int
        About the blur's extent in px (the PSF's half size): plateaus are looked for beyond it.
    mask : ndarray (H, W), optional
        Measure only where mask > 0.5 (where the correction will show).

    Returns
    -------
    (image, report): image = original + applied * (result - original), float32 in [0, 1], same shape;
    report = {"requested", "applied", "halo", "noise_gain", "halo_requested", "noise_gain_requested",
    "max_halo", "max_noise_gain", "capped", "message"} (JSON-serialisable).
    """
    original = np.asarray(original, np.float32)
    result = np.asarray(result, np.float32)
    if result.shape != original.shape:
        raise ValueError(f"result {result.shape} and original {original.shape} differ in shape")
    requested = float(max(requested, 0.0))
    y0 = _luma(original)
    y1 = _luma(result)
    regions, d = [], []
    for sy, sx in _sample_tiles(original.shape, max_pixels):
        reg = GuardRegions(y0[sy, sx], radius=radius)
        if mask is not None:
            m = np.asarray(mask, np.float32)[sy, sx] > 0.5
            reg.edge_zone &= m
            reg.flat_zone &= m
            reg.has_edges = reg.has_edges and int(reg.edge_zone.sum()) >= 20
            reg.has_flat = int(reg.flat_zone.sum()) >= 200
        regions.append(reg)
        d.append(y1[sy, sx] - y0[sy, sx])

    def measure(b):
        overs, hp2, n = [], 0.0, 0
        for reg, dd in zip(regions, d):
            yb = reg.y + b * dd
            if reg.has_edges:
                overs.append(reg.overshoots(yb))
            if reg.has_flat:
                hp = reg._highpass(yb)[reg.flat_zone]
                hp2 += float(np.sum((hp - hp.mean()) ** 2))
                n += hp.size
        halo = float(np.percentile(np.concatenate(overs), percentile)) if overs else 0.0
        if n:
            hp0 = [r.hp0 for r in regions if r.has_flat]
            w = [float(r.flat_zone.sum()) for r in regions if r.has_flat]
            level0 = float(np.sqrt(np.average(np.square(hp0), weights=w)))
            level = float(np.sqrt(hp2 / n))
        else:
            level0 = level = 1.0
        return halo, level / level0, level

    def ok(m):
        h, g, level = m
        return h <= max_halo and (g <= max_noise_gain or level <= visible_noise)

    m_req = measure(requested)
    applied, m_app = requested, m_req
    if requested > 0 and not ok(m_req):
        lo, hi = 0.0, requested
        m_app = measure(0.0)
        for _ in range(steps):
            mid = 0.5 * (lo + hi)
            mm = measure(mid)
            if ok(mm):
                lo, m_app = mid, mm
            else:
                hi = mid
        applied = lo
    (h_req, g_req, _), (h_app, g_app, _) = m_req, m_app
    capped = applied < requested - 1e-6
    if capped:
        why, words = [], []
        if h_req > max_halo:
            why.append(f"halo overshoot {h_req:.3f} > {max_halo:.3f}")
            words.append("halos")
        if g_req > max_noise_gain and m_req[2] > visible_noise:
            why.append(f"flat-area noise gain {g_req:.2f}x > {max_noise_gain:.2f}x")
            words.append("grain in flat areas")
        # Said to photographers (GIMP shows it): what was done and why, the measurements in brackets.
        message = (f"over-sharpening guard: the correction was reduced to {100 * applied / requested:.0f}% of the one "
                   f"requested, to avoid {' and '.join(words) or 'artefacts'} ({'; '.join(why)})")
    else:
        message = f"over-sharpening guard: within limits (halo {h_req:.3f}, noise gain {g_req:.2f}x)"
    out = original + applied * (result - original)
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    report = {"requested": round(requested, 4), "applied": round(float(applied), 4), "halo": round(h_app, 4),
              "noise_gain": round(g_app, 3), "halo_requested": round(h_req, 4),
              "noise_gain_requested": round(g_req, 3), "max_halo": max_halo, "max_noise_gain": max_noise_gain,
              "capped": bool(capped), "message": message}
    return out, report

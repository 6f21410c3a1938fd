"""Is the photo sharp? Noise-robust, scale-normalised blur cues for the sharp / blurry decision.

A threshold on a sharpness statistic (variance of the Laplacian, high-frequency energy) fails on real
photos: sensor noise, JPEG blocks, fine texture and clipped lights read as sharpness. The cues here look
at the *strongest edges* only (far above the noise), away from clipped highlights, and compare their
width across scales:

* edge width (gaussian-equivalent sigma, Zhuo & Sim 2011 re-blur ratio) on the strongest edges of the
  photo at 1/1, 1/2 and 1/4 of its size, per gradient orientation. A sharp photo's edges stay at the
  floor (~0.5-0.8 px) at every scale; a blurred one's edges are wide at full size and halve with the
  photo. Camera shake and motion blur widen edges across their direction only: the most blurred
  orientations count, not the median (light trails in night shots are sharp across the trail).
* the blur extent that explains the widths at all scales (``extent``): full-size px.

:func:`sharpness_cues` returns the cues; :func:`blur_probability` the probability that the photo is
blurry (a logistic model on the cues, fitted on the train split's sharp photos with JPEG and noise and
on real and synthetic camera-shake photos, ``bench/bench_diagnosis.py``).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["sharpness_cues", "model_inputs", "blur_probability", "THRESHOLD"]

SCALES = (1.0, 0.5, 0.25)
BINS = 8


def _luma_srgb(image: np.ndarray, max_side: int, clip_level: float = 0.975) -> tuple[np.ndarray, np.ndarray]:
    """Encoded (sRGB) luma and a mask of clipped pixels (any channel at the top or the bottom)."""
    img = image
    if img.ndim == 3:
        img = img[..., :3] if img.shape[2] >= 3 else img[..., :1]
    h, w = img.shape[:2]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        img = cv2.resize(np.ascontiguousarray(img), (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] == 3:
        y = img[..., 0] * 0.2126 + img[..., 1] * 0.7152 + img[..., 2] * 0.0722
    else:
        y = img[..., 0]
    clip = (img.max(axis=2) > clip_level)
    return np.ascontiguousarray(y, np.float32), clip


def _edge_sigmas(y: np.ndarray, clip: np.ndarray, top: float = 0.12):
    """Re-blur edge widths (px of this scale) at the strongest edge pixels, their orientations and
    their flat indices into ``y``."""
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3)
    m = np.sqrt(gx * gx + gy * gy)
    # non-maximum suppression along the gradient (4 directions): edge centres only
    ang = (np.round(np.arctan2(gy, gx) / (np.pi / 4)).astype(int)) % 4
    nb = {0: (0, 1), 1: (1, 1), 2: (1, 0), 3: (1, -1)}
    keep = np.zeros(y.shape, bool)
    for k, (dy, dx) in nb.items():
        a = np.roll(m, (dy, dx), (0, 1))
        b = np.roll(m, (-dy, -dx), (0, 1))
        keep |= (ang == k) & (m >= a) & (m > b)
    near_clip = cv2.dilate(clip.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    b = 4
    border = np.zeros(y.shape, bool)
    border[b:-b, b:-b] = True
    cand = keep & ~near_clip & border & (m > 1e-4)
    vals = m[cand]
    if vals.size < 50:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    thr = np.quantile(vals, 1 - top)
    cand &= m >= thr
    idx = np.flatnonzero(cand)
    th = np.arctan2(gy.ravel()[idx], gx.ravel()[idx])
    best = np.full(idx.size, np.nan)
    for s0 in (1.0, 2.5):
        bl = cv2.GaussianBlur(y, (0, 0), s0)
        bx = cv2.Sobel(bl, cv2.CV_32F, 1, 0, ksize=3).ravel()[idx]
        by = cv2.Sobel(bl, cv2.CV_32F, 0, 1, ksize=3).ravel()[idx]
        r = m.ravel()[idx] / (np.sqrt(bx * bx + by * by) + 1e-9)
        sig = s0 / np.sqrt(np.maximum(r * r - 1, 1e-6))
        # the narrow re-blur resolves narrow edges, the wide one wide edges
        use = np.isnan(best) | ((best > 2.0) & (sig > 2.0))
        best = np.where(use, sig, best)
    return np.clip(best, 0, 30), th, idx


def _orient_stats(sig: np.ndarray, th: np.ndarray, bins: int = BINS):
    if sig.size < 30:
        return np.nan, np.nan, np.nan, np.nan, np.nan, 0.0
    b = (((th % np.pi) / np.pi * bins + 0.5).astype(int)) % bins
    med = np.array([np.median(sig[b == i]) if np.sum(b == i) >= 15 else np.nan for i in range(bins)])
    ok = np.isfinite(med)
    if ok.sum() < 2:
        m = float(np.median(sig))
        return m, m, m, float(np.percentile(sig, 75)), float(np.percentile(sig, 25)), 1.0
    s = np.sort(med[ok])
    conc = float(np.abs(np.mean(np.exp(2j * th))))
    return float(np.median(sig)), float(s[0]), float(s[-1]), float(np.percentile(sig, 75)), float(np.percentile(sig, 25)), conc


def sharpness_cues(image: np.ndarray, *, max_side: int = 2048, clip_level: float = 0.975, top: float = 0.12) -> dict:
    """Blur cues of an sRGB-encoded image (H, W[, C]) in [0, 1]; widths in px of the analysed image
    (at most ``max_side`` on the long side), ``scale`` the factor from the photo to it."""
    h, w = image.shape[:2]
    y, clip = _luma_srgb(image, max_side, clip_level)
    scale = y.shape[1] / w
    cues: dict = {"scale": scale}
    for s in SCALES:
        if s == 1.0:
            ys, cs = y, clip
        else:
            sz = (max(1, round(y.shape[1] * s)), max(1, round(y.shape[0] * s)))
            if min(sz) < 48:
                break
            ys = cv2.resize(y, sz, interpolation=cv2.INTER_AREA)
            cs = cv2.resize(clip.astype(np.float32), sz, interpolation=cv2.INTER_AREA) > 0
        sig, th, _ = _edge_sigmas(ys, cs, top)
        med, lo, hi, q75, q25, conc = _orient_stats(sig, th)
        tag = {1.0: "s1", 0.5: "s2", 0.25: "s4"}[s]
        cues[f"{tag}_med"], cues[f"{tag}_min"], cues[f"{tag}_max"], cues[f"{tag}_q75"] = med, lo, hi, q75
        cues[f"{tag}_q25"], cues[f"{tag}_conc"] = q25, conc
    return cues



# The blurry-vs-sharp model: logistic regression on the log edge widths above (log(sigma + 0.1)), the
# orientation concentrations, the blur-type classifier's log-odds of "sharp" ("lp") and its log noise
# feature ("v9"). Fitted on the train split only: 41 sharp photos x 3 (JPEG 90; + noise 0.005 sRGB;
# + noise 0.01 linear and JPEG 75), the same photos with synthetic shake (11-45 px) and gaussian
# (sigma 1-2) blur, and half of the real blurry photos (Köhler Blurry1-2, Lai even indices, weight 3).
# Threshold 0.45: 92% of the train split's sharp variants stay sharp.
MODEL = {
    "names": ["s1_med", "s1_max", "s2_med", "s2_max", "s4_med", "s4_max", "s1_q25", "s2_q25", "s1_q75", "s2_q75",
              "s1_conc", "s2_conc", "lp", "v9"],
    "mean": [0.08741, 0.22751, 0.11822, 0.26132, 0.00032, 0.14795, -0.19677, -0.13297, 0.39307, 0.37541, 0.26692,
             0.33028, -0.00641, -5.87585],
    "std": [0.48971, 0.51316, 0.36786, 0.40231, 0.29027, 0.32679, 0.49263, 0.368, 0.50545, 0.41579, 0.2199, 0.24631,
            3.79324, 0.55183],
    "coef": [0.41905, 0.4234, -0.12326, 0.16065, 0.32634, -0.2864, 0.35944, 0.14232, -0.59977, -0.73077, -0.28268,
             -0.54835, -4.02382, -0.47779, 1.38161],
}
THRESHOLD = 0.45


def model_inputs(cues: dict, p_sharp: float, log_noise: float, names) -> list:
    """The blurry-vs-sharp model's raw inputs, in the order of ``names`` (training/fit_sharpness.py uses
    the same): log(width + 0.1) for the edge widths, the concentrations as they are, the classifier's
    log-odds of "sharp" (``lp``) and its log-noise feature (``v9``). Missing cues (no edges) take neutral
    values."""
    x = []
    for k in names:
        v = cues.get(k)
        missing = v is None or not np.isfinite(v)
        if k == "lp":
            p = min(max(float(p_sharp), 1e-4), 1 - 1e-4)
            x.append(np.log(p / (1 - p)))
        elif k == "v9":
            x.append(float(log_noise))
        elif k.endswith("conc"):
            x.append(0.5 if missing else float(v))
        else:
            x.append(np.log((0.7 if missing else float(v)) + 0.1))
    return x


def blur_probability(cues: dict, p_sharp: float, log_noise: float, *, model: dict | None = None) -> float:
    """Probability that the photo is blurry, from :func:`sharpness_cues`, the blur-type classifier's
    probability of "sharp" and its log-noise feature (``model``: :data:`MODEL` unless given)."""
    model = MODEL if model is None else model
    x = model_inputs(cues, p_sharp, log_noise, model["names"])
    z = (np.asarray(x) - np.asarray(model["mean"])) / np.asarray(model["std"])
    t = float(z @ np.asarray(model["coef"][:-1]) + model["coef"][-1])
    return float(1 / (1 + np.exp(-np.clip(t, -30, 30))))

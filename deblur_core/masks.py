"""Float masks in [0, 1] (H, W) that become GIMP layer masks: where the correction should show."""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["full_mask", "empty_mask", "blur_mask", "flat_area_guard", "subject_mask", "make_mask", "MASK_KINDS"]

MASK_KINDS = ("auto", "full", "none", "subject", "faces")


def full_mask(shape) -> np.ndarray:
    return np.ones(shape[:2], np.float32)


def empty_mask(shape) -> np.ndarray:
    """All hidden: the user paints the correction in with a soft white brush."""
    return np.zeros(shape[:2], np.float32)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def blur_mask(blur_map: np.ndarray, *, low: float = 0.6, high: float = 1.6) -> np.ndarray:
    """Where the photo is blurred: 0 at gaussian-equivalent blur <= ``low`` px, 1 at >= ``high`` px."""
    return _smoothstep((blur_map - low) / max(high - low, 1e-6)).astype(np.float32)


def flat_area_guard(gray: np.ndarray, noise_sigma: float, *, radius: int = 3) -> np.ndarray:
    """Near 0 in flat areas whose local contrast is no more than noise (sky, skin), 1 on detail:
    deconvolution there only amplifies noise."""
    g = gray.astype(np.float32)
    mu = cv2.blur(g, (2 * radius + 1, 2 * radius + 1))
    var = np.maximum(cv2.blur(g * g, (2 * radius + 1, 2 * radius + 1)) - mu * mu, 0)
    std = np.sqrt(var)
    n = max(noise_sigma, 0.002)
    return (0.35 + 0.65 * _smoothstep((std - 1.5 * n) / (4 * n))).astype(np.float32)


def subject_mask(blur_map: np.ndarray) -> np.ndarray:
    """What was meant to be in focus: the least blurred regions when the blur map is bimodal (subject
    against bokeh); the whole frame when blur is uniform (shake, missed focus everywhere)."""
    v = blur_map.astype(np.float32)
    lo, hi = np.percentile(v, 10), np.percentile(v, 90)
    if hi - lo < 0.8 or hi < 1.2 * lo:       # uniform blur: no intended background blur
        return full_mask(v.shape)
    t = lo + 0.5 * (hi - lo)
    m = 1.0 - _smoothstep((v - (t - 0.25 * (hi - lo))) / (0.5 * (hi - lo)))
    return cv2.GaussianBlur(m.astype(np.float32), (0, 0), max(2.0, min(v.shape) / 100))


def make_mask(kind: str, shape, *, blur_map=None, gray=None, noise_sigma: float = 0.0,
              faces=None) -> np.ndarray:
    """Build the mask named ``kind`` (one of :data:`MASK_KINDS`) for an image of ``shape``."""
    if kind == "full":
        return full_mask(shape)
    if kind == "none":
        return empty_mask(shape)
    if kind == "faces":
        if faces is None:
            raise ValueError("no face mask available")
        return faces
    if blur_map is None:
        raise ValueError(f"the {kind!r} mask needs a blur map")
    if kind == "subject":
        return subject_mask(blur_map)
    if kind == "auto":
        m = np.maximum(blur_mask(blur_map), 0.25)
        if gray is not None:
            m = m * flat_area_guard(gray, noise_sigma)
        m = cv2.GaussianBlur(m, (0, 0), max(2.0, min(shape[:2]) / 200))
        return np.clip(m, 0.0, 1.0).astype(np.float32)
    raise ValueError(f"unknown mask {kind!r}; choose from {', '.join(MASK_KINDS)}")

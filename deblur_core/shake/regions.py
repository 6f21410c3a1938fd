"""What the kernel step may look at: the working gray image, clipped lights, the region with the most
edges, and the rule that refuses a region only when too few useful gradients remain.

Two kinds of clipped highlights (issue 24): a *light* (lamp, specular glint, a small window) is a
small clipped blob whose blur trail the sensor cut off, so the blur model fails around it: it is left
out of the kernel step together with a kernel-sized margin (Pan et al. 2016 and Hu et al. 2014 treat
such pixels as outliers). A *flat clipped area* (white paper, overcast sky, snow) has no gradients
and carries no blur information either way: its own pixels are left out, its surroundings stay in,
and it is never a reason to refuse a photo.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..color import srgb_to_linear

__all__ = ["working_gray", "usable_mask", "pick_region", "check_gradients", "usable_with_edges", "TooFewEdges"]


class TooFewEdges(ValueError):
    """The region holds too few useful gradients to estimate a kernel from."""


def working_gray(img: np.ndarray, linear: bool):
    """(gray (H, W) float32 in [0, 1], clipped-channel maximum (H, W) sRGB-encoded) of an sRGB-encoded
    (H, W[, C]) photo; the gray is in linear light when ``linear``."""
    if img.ndim == 3:
        rgb = img[..., :3] if img.shape[2] >= 3 else img[..., :1]
    else:
        rgb = img[..., None]
    rgb = np.clip(rgb, 0, 1).astype(np.float32)
    top = rgb.max(axis=2)
    if rgb.shape[2] == 3:
        w = np.array([0.2126, 0.7152, 0.0722], np.float32) if linear else np.array([0.299, 0.587, 0.114], np.float32)
        planes = srgb_to_linear(rgb) if linear else rgb
        gray = np.tensordot(planes, w, axes=([2], [0])).astype(np.float32)
    else:
        gray = srgb_to_linear(rgb[..., 0]) if linear else rgb[..., 0]
    return gray, top


def usable_mask(top: np.ndarray, kernel_side: int, clip_level: float):
    """(mask (H, W) bool: True where the blur model holds, number of clipped lights).

    Lights: clipped 8-connected blobs whose bounding box fits in 3 kernel sides, away (a kernel side
    or more) from any larger clipped area; they are dilated by the kernel. Larger clipped areas are
    flat, and the small clipped specks next to them (the paper inside a letter's loop) belong to them:
    only their own pixels are left out."""
    clipped = (top >= clip_level).astype(np.uint8)
    if not clipped.any():
        return np.ones(top.shape, bool), 0
    n, lab, stats, _ = cv2.connectedComponentsWithStats(clipped, connectivity=8)
    ks = max(3, int(kernel_side) | 1)
    small = (np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) <= 3 * ks)
    small[0] = False
    large = (~small)[lab] & clipped.astype(bool)
    if large.any():
        se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * ks + 1, 2 * ks + 1))
        near = cv2.dilate(large.astype(np.uint8), se).astype(bool)
        touching = np.unique(lab[near & clipped.astype(bool)])
        small[touching] = False
    lights = small[lab]
    out = clipped.astype(bool)
    if lights.any():
        se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (ks + 2, ks + 2))
        out |= cv2.dilate(lights.astype(np.uint8), se).astype(bool)
    return ~out, int(small.sum())


def _edge_strength(gray: np.ndarray) -> np.ndarray:
    s = np.sqrt(np.clip(gray, 0, None))             # dark and bright edges count alike
    gx = cv2.Sobel(s, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(s, cv2.CV_32F, 0, 1, ksize=3)
    return np.hypot(gx, gy)


def pick_region(gray: np.ndarray, usable: np.ndarray, side: int):
    """(x, y, w, h) of the ``side`` x ``side`` window (clipped to the image) with the most strong
    edges among the usable pixels."""
    H, W = gray.shape
    sh, sw = min(side, H), min(side, W)
    if sh >= H and sw >= W:
        return 0, 0, W, H
    f = max(1, int(max(H, W) // 512))
    small = cv2.resize(gray, (W // f, H // f), interpolation=cv2.INTER_AREA) if f > 1 else gray
    us = (cv2.resize(usable.astype(np.float32), (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA) > 0.99
          if f > 1 else usable)
    mag = _edge_strength(small) * us
    thr = np.percentile(mag[us], 90) if us.any() else 0
    score = np.minimum(mag, 4 * thr + 1e-6) * (mag > thr)
    ii = cv2.integral(score.astype(np.float64))
    wh, ww = max(1, sh // f), max(1, sw // f)
    ys = np.unique(np.linspace(0, small.shape[0] - wh, max(2, 2 * small.shape[0] // wh + 2)).astype(int))
    xs = np.unique(np.linspace(0, small.shape[1] - ww, max(2, 2 * small.shape[1] // ww + 2)).astype(int))
    best, by, bx = -1.0, 0, 0
    for y0 in ys:
        for x0 in xs:
            v = ii[y0 + wh, x0 + ww] - ii[y0, x0 + ww] - ii[y0 + wh, x0] + ii[y0, x0]
            if v > best:
                best, by, bx = v, y0, x0
    return int(min(bx * f, W - sw)), int(min(by * f, H - sh)), int(sw), int(sh)


_SMOOTH = 2.0   # px: gradients are counted on a smoothed copy, where noise is weak and blurred edges are not


def _smoothed_gradient(gray: np.ndarray) -> np.ndarray:
    g = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), _SMOOTH)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
    return np.hypot(gx, gy)


def _gradient_noise_gain() -> float:
    """Standard deviation of :func:`_smoothed_gradient` on unit white noise."""
    rng = np.random.default_rng(0)
    return float(_smoothed_gradient(rng.standard_normal((256, 256)).astype(np.float32))[16:-16, 16:-16].std())


_NOISE_GAIN = _gradient_noise_gain()


def useful_gradient_count(gray: np.ndarray, usable: np.ndarray, noise_sigma: float) -> int:
    """Pixels whose (smoothed) gradient stands well above what the noise alone makes, among the usable
    ones. Blur spreads an edge but keeps its contrast, so a shaken edge still counts; a plain sky or
    wall does not, however noisy."""
    mag = _smoothed_gradient(gray)
    thr = 6.0 * _NOISE_GAIN * max(noise_sigma, 5e-4) + 1e-3
    return int(((mag > thr) & usable).sum())


def check_gradients(gray: np.ndarray, usable: np.ndarray, kernel_side: int, noise_sigma: float) -> int:
    """The useful-gradient count; raises :class:`TooFewEdges` with a plain message when fewer than
    10 per kernel pixel of side remain (a region of sky or plain wall)."""
    n = useful_gradient_count(gray, usable, noise_sigma)
    if n < 10 * kernel_side:
        raise TooFewEdges("the area has too few edges to measure the camera shake from (plain sky, wall or "
                          "paper): select an area with clear detail such as text, edges or small lights, "
                          "or use Focus Correction or Smart Sharpen")
    return n


def usable_with_edges(gray: np.ndarray, usable: np.ndarray, top: np.ndarray, kernel_side: int, noise_sigma: float,
                      clip_level: float):
    """(usable mask, useful-gradient count, note or None): ``usable`` when it leaves enough useful
    gradients; when the lights' margins would leave too few (a photo strewn with glints), only the clipped
    pixels themselves, with a note saying so; :class:`TooFewEdges` when even that is too few."""
    try:
        return usable, check_gradients(gray, usable, kernel_side, noise_sigma), None
    except TooFewEdges:
        bare = top < clip_level
        if bare.sum() <= usable.sum():
            raise
        n = check_gradients(gray, bare, kernel_side, noise_sigma)
        return bare, n, ("many small clipped highlights: their surroundings were kept in the kernel estimate, "
                         "which may make it less exact")

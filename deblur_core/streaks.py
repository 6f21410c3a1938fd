"""Light trails: in a shaken night photo every small light draws the same trail, the blur kernel itself.

At night the edge widths that :mod:`deblur_core.sharpness` measures mislead: the photo's strongest
edges are the trails' sides, sharp across the trail, and the rest is dark and noisy. A point light
blurred by the camera's path *is* that path (Hu, Cho, Wang & Yang, "Deblurring Low-light Images with
Light Streaks", CVPR 2014), so several lights drawing the same non-round shape are direct evidence of
camera shake. :func:`agreed_streak` finds them: bright seeds, each grown to the connected structure
above a fraction of its peak over the local surround, kept when the structure ends inside its window
and is neither round nor a filled box; candidates that match in shape (normalised cross-correlation)
vote for each other. Figures (Lai et al.'s real photos, the sharp photo set): ``docs/experiments/diagnosis.md``.

The trail is evidence, not a kernel to deconvolve with: a lamp has a size and its core clips, so the
trail is thicker than the camera's path and deconvolving with it rings (tried, same document).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["find_streaks", "agreed_streak", "MIN_VOTES"]

MIN_VOTES = 2           # other trails of the same shape (3 in all): 2 agreeing were seen in sharp photos
MATCH = 0.8             # normalised cross-correlation for "the same shape"
MIN_LENGTH = 15         # px at the working scale: shorter trails are lamps with a glow
MAX_FILL = 0.7          # share of its bounding box a trail fills; a disk or an ellipse fills 0.785
MAX_BRIGHT_SHARE = 0.25  # share of the photo brighter than mid-grey: trails show on a dark surround only
LAMP_LIFT = 0.35        # a seed also where a thin structure stands this far above its surround (white top-hat) ...
LAMP_LEVEL = 0.8        # ... and is at least this bright: a lamp, wherever the photo's brightest region is
LAMP_DISK = 15          # px: the top-hat's disk, wider than a trail
WORKING_SIDE = 1024


def _gray(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """sRGB-encoded grey (channel mean) at most ``max_side`` px on the long side, and the scale factor."""
    h, w = image.shape[:2]
    s = min(1.0, max_side / max(h, w))
    img = image
    if s < 1:
        img = cv2.resize(np.ascontiguousarray(image), (max(1, round(w * s)), max(1, round(h * s))),
                         interpolation=cv2.INTER_AREA)
    g = img[..., :3].mean(axis=2) if img.ndim == 3 else img
    return np.ascontiguousarray(g, np.float32), s


def _grow(sm: np.ndarray, seed: np.ndarray, box, rel: float, isolated: bool):
    """The trail through ``seed`` inside the window ``box`` (y0, y1, x0, x1), or None when it leaves the
    window, is faint, or (``isolated``) shares the window with more bright structure than itself."""
    y0, y1, x0, x1 = box
    p = sm[y0:y1, x0:x1]
    ring = np.ones(p.shape, bool)
    ring[3:-3, 3:-3] = False
    surround = float(np.median(p if isolated else p[ring]))
    peak = float(p.max())
    if peak - surround < 0.35:
        return None
    above = (p >= surround + rel * (peak - surround)).astype(np.uint8)
    _, labels = cv2.connectedComponents(above, connectivity=8)
    ids = np.unique(labels[seed[y0:y1, x0:x1]])
    ids = ids[ids > 0]
    if ids.size == 0:
        return None
    comp = np.isin(labels, ids)
    ys, xs = np.nonzero(comp)
    if xs.min() == 0 or ys.min() == 0 or xs.max() == p.shape[1] - 1 or ys.max() == p.shape[0] - 1:
        return None
    if isolated and ((above > 0) & ~comp).sum() > 0.5 * comp.sum():
        return None
    ya, yb, xa, xb = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    shape = np.where(comp, np.maximum(p - surround, 0), 0)[ya:yb, xa:xb]
    return {"x": int(x0 + xa), "y": int(y0 + ya), "w": int(xb - xa), "h": int(yb - ya),
            "fill": float(comp.sum()) / ((yb - ya) * (xb - xa)), "shape": shape.astype(np.float32)}


def find_streaks(gray: np.ndarray, *, max_length: int = 81, rel: float = 0.3, max_seeds: int = 300) -> list[dict]:
    """Light-trail candidates in an sRGB-encoded grey image (H, W) in [0, 1].

    Seeds are the connected regions above the 99.5th percentile (and at least 0.5) of the lightly smoothed
    image, and thin bright structures (:data:`LAMP_LIFT` above a disk opening, at least :data:`LAMP_LEVEL`):
    where a lit building or a sky sets the percentile, the lamps' trails are dimmer than it. Each is grown
    twice: in a fixed window of the longest trail looked for (``max_length`` px), where the trail must stand
    alone, and in its own bounding box plus a margin, where neighbouring lights may show. Returns dicts with ``x``, ``y``, ``w``, ``h`` (the trail's box, px), ``fill`` (share of the
    box) and ``shape`` (the trail above its surround), duplicates (boxes overlapping by half) removed.
    """
    sm = cv2.GaussianBlur(np.asarray(gray, np.float32), (0, 0), 1.0)
    H, W = sm.shape
    level = max(0.5, float(np.quantile(sm, 0.995)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (LAMP_DISK, LAMP_DISK))
    lamps = (sm - cv2.morphologyEx(sm, cv2.MORPH_OPEN, disk) >= LAMP_LIFT) & (sm >= LAMP_LEVEL)
    seeds = ((sm >= level) | lamps).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(seeds, connectivity=8)
    order = [i for i in np.argsort(-stats[1:, 4]) + 1 if stats[i, 4] >= 3 and max(stats[i, 2:4]) <= max_length]
    found = []
    half = max_length // 2 + 4
    for i in order[:max_seeds]:
        x, y, w, h = (int(v) for v in stats[i, :4])
        seed = labels == i
        cx, cy = x + w // 2, y + h // 2
        if half <= cx <= W - half and half <= cy <= H - half:       # fixed window, the trail alone in it
            found.append(_grow(sm, seed, (cy - half, cy + half, cx - half, cx + half), rel, True))
        m = max(10, max(w, h) // 2)                                   # the seed's own box plus a margin
        found.append(_grow(sm, seed, (max(0, y - m), min(H, y + h + m), max(0, x - m), min(W, x + w + m)), rel, False))
    found = [f for f in found if f is not None and max(f["w"], f["h"]) <= max_length]
    found.sort(key=lambda f: -f["w"] * f["h"] * f["fill"])
    kept: list[dict] = []
    for f in found:
        if not any(_overlap(f, k) > 0.5 * f["w"] * f["h"] for k in kept):
            kept.append(f)
    return kept


def _overlap(a: dict, b: dict) -> int:
    ix = max(0, min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]))
    iy = max(0, min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]))
    return ix * iy


def _match(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two trail shapes at their best shift: the correlation over the
    product of both norms, so a short bar does not match a long one by sitting inside it."""
    H, W = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])
    canvas = np.zeros((2 * H, 2 * W), np.float32)
    canvas[H // 2:H // 2 + a.shape[0], W // 2:W // 2 + a.shape[1]] = a
    best = float(cv2.matchTemplate(canvas, b, cv2.TM_CCORR).max())
    return best / (float(np.linalg.norm(a)) * float(np.linalg.norm(b)) + 1e-12)


def agreed_streak(image: np.ndarray, *, min_votes: int = MIN_VOTES, max_side: int = WORKING_SIDE) -> dict | None:
    """The light trail that most other trails of the photo agree with, when at least ``min_votes`` do.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), float in [0, 1], sRGB-encoded
    min_votes : int
        Other trails that must match its shape (:data:`MATCH`) and length (within 1.6x).
    max_side : int
        Long side of the working image in px.

    Returns
    -------
    dict or None
        ``size`` [w, h] of the trail in px of ``image``, ``votes``, ``candidates`` (trails found),
        ``box`` [x, y, w, h] in px of ``image``; None on a bright scene or without agreement.
    """
    gray, scale = _gray(np.asarray(image, np.float32), max_side)
    if min(gray.shape) < 64 or float((gray > 0.5).mean()) > MAX_BRIGHT_SHARE:
        return None
    trails = [t for t in find_streaks(gray) if t["fill"] < MAX_FILL and max(t["w"], t["h"]) >= MIN_LENGTH][:12]
    best, votes = None, 0
    for i, a in enumerate(trails):
        la = max(a["w"], a["h"])
        v = sum(1 for j, b in enumerate(trails)
                if j != i and 0.6 < la / max(b["w"], b["h"]) < 1.6 and _match(a["shape"], b["shape"]) >= MATCH)
        # on a tie the smaller trail: two lights close together merge into one larger box
        if v > votes or (v == votes and best is not None and a["w"] * a["h"] < best["w"] * best["h"]):
            best, votes = a, v
    if best is None or votes < min_votes:
        return None
    f = 1.0 / scale
    return {"size": [round(best["w"] * f), round(best["h"] * f)], "votes": int(votes), "candidates": len(trails),
            "box": [round(best["x"] * f), round(best["y"] * f), round(best["w"] * f), round(best["h"] * f)]}

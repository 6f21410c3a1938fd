"""Float masks in [0, 1] (H, W) that become GIMP layer masks: where the correction should show.

Kinds (:data:`MASK_KINDS`): "auto" (where the photo is blurred, less on flat areas), "full", "none",
"subject" (what was meant to be in focus, from the blur map, plus every person found by the face or,
seen from behind or too small for a face, by the silhouette; intended bokeh stays out) and "faces" (detected faces, eyes strongest; see :mod:`.faces`).
:func:`people_mask` covers each person found by their face: head, shoulders and torso. :func:`background_layer` makes
the companion background-softening layer (a very light blur shown through the inverted subject mask).
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["full_mask", "empty_mask", "blur_mask", "flat_area_guard", "subject_mask", "make_mask", "MASK_KINDS",
           "faces_mask", "people_mask", "background_layer", "gray_for_detection"]

from .vocabulary import MASKS as MASK_KINDS  # noqa: E402  one vocabulary (deblur_core/vocabulary.py)


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


def _otsu(values: np.ndarray, bins: int = 128) -> float:
    """Otsu's threshold of a 1-D sample."""
    hist, edges = np.histogram(values, bins=bins)
    centers = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers) / np.maximum(w0, 1)
    m1 = ((hist * centers).sum() - np.cumsum(hist * centers)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centers[int(np.argmax(between))])


def subject_mask(blur_map: np.ndarray, *, gray: np.ndarray | None = None, faces=None,
                 max_side: int = 512, people: bool = True) -> np.ndarray:
    """What was meant to be in focus: the least blurred regions when the blur map is bimodal (subject
    against intended bokeh), the whole frame when blur is uniform (shake, missed focus everywhere).

    The blur map (gaussian-equivalent blur in px, :func:`estimate.blur_map`) is split in two classes by
    Otsu's threshold on log blur, so a small subject (a bird filling 5 % of the frame) is found as well
    as a large one. The split counts as "subject against bokeh" when the blurred class is clearly
    blurrier (at least 0.8 px more and 1.6 times); then the mask goes from 1 in the sharp class to 0
    in the blurred one over the middle half of the gap, specks smaller than 1/40 of the frame are
    removed (highlights in the bokeh), and the edge is feathered. ``faces`` (a list from
    :func:`faces.detect_faces`) are always subject: each face at full strength, and with ``people``
    the person below it too (:func:`people_mask`).

    With ``gray`` (the luma the blur map came from), areas without any edge nearby count as blurred:
    the blur map only measures at edges and fills edge-free areas with the photo's median, which is the
    in-focus value when the subject holds all the edges, so smooth bokeh would pass for subject. Such
    areas have nothing to restore anyway, only noise to amplify.
    """
    v = blur_map.astype(np.float32)
    H, W = v.shape
    s = min(1.0, max_side / max(H, W))
    if s < 1.0:
        v = cv2.resize(v, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA)
    if gray is not None:
        from .estimate import edge_ratio_sigma
        g = np.asarray(gray, np.float32)
        if g.shape != v.shape:
            g = cv2.resize(g, (v.shape[1], v.shape[0]), interpolation=cv2.INTER_AREA)
        _, edges = edge_ratio_sigma(g)
        width = max(3.0, min(v.shape) / 24)
        support = np.clip(cv2.GaussianBlur(edges.astype(np.float32), (0, 0), width) / 0.01, 0.0, 1.0)
        if edges.sum() >= 20 and float(support.min()) < 0.5:
            sharp_ref = float(np.median(v[support > 0.5])) if (support > 0.5).any() else float(np.median(v))
            unknown = max(2.0 * sharp_ref + 1.0, float(np.percentile(v, 95)))
            v = support * v + (1.0 - support) * unknown
    lv = np.log(np.maximum(v, 0.0) + 0.3)
    m = None
    if float(np.ptp(lv)) > 1e-3:
        t = _otsu(lv.ravel())
        sharp_cls, blur_cls = v[lv <= t], v[lv > t]
        if sharp_cls.size and blur_cls.size:
            m0, m1 = float(np.median(sharp_cls)), float(np.median(blur_cls))
            frac = sharp_cls.size / v.size
            if m1 - m0 >= 0.8 and m1 >= 1.6 * m0 and 0.01 <= frac <= 0.95:
                gap = m1 - m0
                m = 1.0 - _smoothstep((v - (m0 + 0.25 * gap)) / (0.5 * gap))
                k = max(3, int(min(v.shape) / 40) | 1)
                ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
                m = cv2.morphologyEx(m.astype(np.float32), cv2.MORPH_OPEN, ker)
    if m is None:
        m = np.ones(v.shape, np.float32)
    m = cv2.GaussianBlur(m.astype(np.float32), (0, 0), max(1.0, min(v.shape) / 100))
    if s < 1.0:
        m = cv2.resize(m, (W, H), interpolation=cv2.INTER_LINEAR)
    if faces:
        from .faces import face_mask
        m = np.maximum(m, np.minimum(1.0, face_mask((H, W), faces) / 0.7))
        if people:
            m = np.maximum(m, people_mask((H, W), faces))
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def _box_of(f):
    return tuple(float(v) for v in (f.box if hasattr(f, "box") else (f["box"] if isinstance(f, dict) else f)))


def people_mask(shape, faces, *, body: bool = True, max_side: int = 1024) -> np.ndarray:
    """Soft mask (H, W) float32 in [0, 1] over the people in ``faces`` (a list of :class:`faces.Face`,
    their dicts, or bare (x, y, w, h) face boxes; :func:`faces.detect_people` gives faces and bodies),
    union over all of them.

    Each person found by the face is the head (an ellipse 1.5 face widths wide from the top of the hair
    to the chin), the neck and shoulders (an ellipse 3.2 face widths wide centred 1.6 face heights below
    the face's centre) and, with ``body``, the torso below them (2.6 face widths wide, down to about 5
    face heights under the face), all at 1. The proportions are an adult's seen from the front; a turned
    head moves the shoulders a little towards the side it faces. A person found by the silhouette
    (``kind == "body"``: seen from behind, or too small for the face detector) is its own outline when the
    person segmentation found it (``silhouette``), else an ellipse filling the box, with the head's width
    at its top. Edges are feathered by a gaussian of a quarter of the
    face width (a tenth of a body's width), so the edge of the mask does not show as a line.
    """
    H, W = int(shape[0]), int(shape[1])
    s = min(1.0, max_side / max(H, W))
    h, w = max(1, round(H * s)), max(1, round(W * s))
    m = np.zeros((h, w), np.float32)
    boxes = [(_box_of(f), getattr(f, "kind", None) or (f.get("kind") if isinstance(f, dict) else None))
             for f in faces or []]
    if not boxes:
        return m if (h, w) == (H, W) else np.zeros((H, W), np.float32)
    widths = []

    def e(c, ax):
        return ((round(c[0] * 16), round(c[1] * 16)), (max(16, round(ax[0] * 16)), max(16, round(ax[1] * 16))))

    shapes = [getattr(f, "silhouette", None) for f in faces or []]
    for ((x, y, bw, bh), kind), shape in zip(boxes, shapes):
        x, y, bw, bh = x * s, y * s, max(bw * s, 1.0), max(bh * s, 1.0)
        cx, cy = x + bw / 2, y + bh / 2
        if kind == "body":
            widths.append(bw / 2.5)     # a body box is about 2.5 head widths wide
            if shape is not None:       # the person's own outline (person segmentation)
                x0, y0 = max(0, round(x)), max(0, round(y))
                x1, y1 = min(w, round(x + bw)), min(h, round(y + bh))
                if x1 > x0 and y1 > y0:
                    part = cv2.resize(np.asarray(shape, np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
                    m[y0:y1, x0:x1] = np.maximum(m[y0:y1, x0:x1], np.clip(part, 0, 1))
                continue
            head = 0.4 * bw             # the head: a circle at the top, the rest an ellipse below
            cv2.ellipse(m, *e((cx, y + 0.55 * head), (0.5 * head, 0.6 * head)), 0, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
            cv2.ellipse(m, *e((cx, y + head + 0.5 * (bh - head)), (0.5 * bw, 0.5 * (bh - head) + 0.1 * head)),
                        0, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
            continue
        widths.append(bw)
        turn = {"profile-left": -0.25, "profile-right": 0.25}.get(kind, 0.0) * bw
        cv2.ellipse(m, *e((cx, cy - 0.1 * bh), (0.75 * bw, 0.72 * bh)), 0, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
        cv2.ellipse(m, *e((cx - 0.5 * turn, cy + 1.6 * bh), (1.6 * bw, 0.9 * bh)), 0, 0, 360, 1.0, -1, cv2.LINE_AA, 4)
        cv2.rectangle(m, (round(cx - 0.35 * bw), round(cy)), (round(cx + 0.35 * bw), round(cy + 1.6 * bh)), 1.0, -1)
        if body:
            cv2.ellipse(m, *e((cx - 0.5 * turn, cy + 3.4 * bh), (1.3 * bw, 2.0 * bh)), 0, 0, 360, 1.0, -1,
                        cv2.LINE_AA, 4)
    m = cv2.GaussianBlur(m, (0, 0), max(1.0, 0.25 * float(np.median(widths))))
    if (h, w) != (H, W):
        m = cv2.resize(m, (W, H), interpolation=cv2.INTER_LINEAR)
    return np.clip(m, 0.0, 1.0).astype(np.float32)


def gray_for_detection(gray_linear: np.ndarray) -> np.ndarray:
    """The pipeline's linear-light luma, gamma-encoded again (what face detectors were trained on)."""
    from .color import linear_to_srgb
    return linear_to_srgb(np.clip(gray_linear, 0.0, 1.0)).astype(np.float32)


def faces_mask(shape, *, image=None, gray=None, faces=None, eyes_boost: float = 1.0, info: dict | None = None):
    """Face mask (H, W) for an image: ``faces`` if given (a list from :func:`faces.detect_faces`),
    else detected on ``image`` (sRGB-encoded) or on ``gray`` (the pipeline's linear luma). Fills
    ``info`` (when given) with "faces" (list of dicts) and, when none are found, "warning".
    Returns None when no face was found or the detector is unavailable."""
    from . import faces as fc
    if faces is None:
        src = image if image is not None else (gray_for_detection(gray) if gray is not None else None)
        if src is None:
            raise ValueError("the 'faces' mask needs the image (or its gray) or detected faces")
        det: dict = {}
        try:
            faces = fc.detect_faces(src, info=det)
        except fc.FaceDetectorUnavailable as exc:
            if info is not None:
                info["warning"] = str(exc)
            return None
        if info is not None and det.get("warning"):
            info["warning"] = det["warning"]
    if info is not None:
        info["faces"] = [fc._as_face(f).to_dict() for f in faces]
    if not faces:
        if info is not None:
            info["warning"] = "; ".join(w for w in (info.get("warning"), "no face found") if w)
        return None
    return fc.face_mask(shape, faces, eyes_boost=eyes_boost)


def background_layer(image: np.ndarray, subject: np.ndarray, *, sigma: float = 0.5,
                     noise_sigma: float | None = None):
    """The background-softening layer: a very light blur (gaussian ``sigma`` px, about 0.5) that tames
    grain and crunchy over-sharpened texture, shown through the inverted subject mask.

    When ``noise_sigma`` (encoded [0, 1]) is given and above 0.01, sigma grows a little with it (up
    to 1 px): heavy grain needs a bit more. Returns (layer like ``image``, float32 in [0, 1]; mask
    (H, W) = 1 - subject). Alpha (C = 2 or 4) is kept.
    """
    img = np.asarray(image, np.float32)
    if noise_sigma is not None and noise_sigma > 0.01:
        sigma = float(min(1.0, sigma + 10 * (noise_sigma - 0.01)))
    if img.ndim == 3 and img.shape[2] in (2, 4):
        color = img[..., :-1]
        soft = cv2.GaussianBlur(color, (0, 0), sigma)
        if soft.ndim == 2:
            soft = soft[..., None]
        layer = np.concatenate([soft, img[..., -1:]], axis=2)
    else:
        layer = cv2.GaussianBlur(img, (0, 0), sigma)
    mask = 1.0 - np.clip(np.asarray(subject, np.float32), 0.0, 1.0)
    return np.clip(layer, 0.0, 1.0).astype(np.float32), mask.astype(np.float32)


def make_mask(kind: str, shape, *, blur_map=None, gray=None, noise_sigma: float = 0.0,
              faces=None, image=None, info: dict | None = None) -> np.ndarray:
    """Build the mask named ``kind`` (one of :data:`MASK_KINDS`) for an image of ``shape``.

    ``faces``: for "faces" and "subject": a ready (H, W) mask (used as is, for "faces"), or a list
    of detections (:func:`faces.detect_faces`). For "subject" without ``faces`` but with ``image``,
    faces are detected and their people added (``info`` gets "faces"). For "faces" without ``faces``, faces are detected on
    ``image`` (sRGB-encoded) or ``gray`` (the pipeline's linear luma); when none are found the subject
    mask is used instead (or the full mask without a blur map), and ``info`` (an optional dict the
    caller passes in) gets "faces" and "warning".
    """
    if kind == "full":
        return full_mask(shape)
    if kind == "none":
        return empty_mask(shape)
    if kind == "faces":
        if isinstance(faces, np.ndarray) and faces.ndim == 2:
            return faces
        if faces is None and image is None and gray is None:
            raise ValueError("no face mask available")
        local = {} if info is None else info
        m = faces_mask(shape, image=image, gray=gray, faces=faces, info=local)
        if m is not None:
            return m
        if blur_map is not None:
            local["warning"] = local.get("warning", "no face found") + "; used the subject mask instead"
            return subject_mask(blur_map)
        local["warning"] = local.get("warning", "no face found") + "; used the full mask instead"
        return full_mask(shape)
    if blur_map is None:
        raise ValueError(f"the {kind!r} mask needs a blur map")
    if kind == "subject":
        if faces is None and image is not None:
            # people are subject: every person, found by the face or by the silhouette (seen from
            # behind, too small for the face detector); a detector failure only costs the faces
            from . import faces as fc
            det: dict = {}
            faces = fc.detect_people(image, info=det)
            if info is not None:
                info["faces"] = [f.to_dict() for f in faces if f.kind != "body"]
                info["people"] = [f.to_dict() for f in faces]
                if det.get("warning"):
                    info["warning"] = det["warning"]
        return subject_mask(blur_map, gray=gray, faces=faces if isinstance(faces, (list, tuple)) else None)
    if kind == "auto":
        m = np.maximum(blur_mask(blur_map), 0.25)
        if gray is not None:
            m = m * flat_area_guard(gray, noise_sigma)
        m = cv2.GaussianBlur(m, (0, 0), max(2.0, min(shape[:2]) / 200))
        return np.clip(m, 0.0, 1.0).astype(np.float32)
    raise ValueError(f"unknown mask {kind!r}; choose from {', '.join(MASK_KINDS)}")

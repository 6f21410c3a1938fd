"""Faces, eyes and mouths, and the soft face mask used for selective (portrait) deblurring.

Detection uses MTCNN (:mod:`.face_detector`: three small ONNX networks shipped in ``models/``, see
``models/mtcnn-v1.md``): a face box, a confidence and five landmarks (eyes, nose tip, mouth corners)
per face, which place the eyes and the mouth. It runs on a downscaled copy (at most ``max_side`` px)
and takes a fraction of a second; boxes come back in full-resolution pixels. It finds faces on blurred
photos too, which is the point here (a face has to be found *before* it is deblurred).

When the network files are missing or corrupt, OpenCV's Haar cascades (Viola & Jones 2001; Lienhart &
Maydt 2002, shipped inside the ``opencv-python(-headless)`` wheel under ``cv2.data.haarcascades``)
stand in: frontal and profile faces, eyes and smiles inside each face. They miss more faces and find
faces in robes and foliage; :func:`detect_faces` says so through ``info["warning"]`` and a
:class:`FaceDetectorFallback` warning. Nothing is downloaded.

:func:`face_mask` turns the detections into a float (H, W) mask in [0, 1]: a feathered ellipse per face
at ``face_level`` (0.7), eyes at ``eyes_boost`` (1.0) and the mouth in between: in a portrait the eyes
must be crisp; skin should only be lightly touched (sharpening skin texture is unflattering).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["Face", "FaceDetectorUnavailable", "FaceDetectorFallback", "detect_faces", "detect_people", "detect_bodies",
           "person_box", "face_mask", "cascade_path",
           "to_gray_u8", "DETECTORS"]

DETECTORS = ("auto", "mtcnn", "haar")

CASCADES = {
    "frontal": "haarcascade_frontalface_default.xml",
    "frontal_alt": "haarcascade_frontalface_alt2.xml",
    "profile": "haarcascade_profileface.xml",
    "eye": "haarcascade_eye.xml",
    "eye_glasses": "haarcascade_eye_tree_eyeglasses.xml",
    "smile": "haarcascade_smile.xml",
}
_cache: dict = {}


class FaceDetectorUnavailable(RuntimeError):
    """No face detector can run: the MTCNN networks and the Haar cascade files are both missing or broken
    (or the one asked for is)."""


class FaceDetectorFallback(RuntimeWarning):
    """The MTCNN networks could not be loaded; OpenCV's Haar cascades stood in."""


Box = tuple  # (x, y, w, h) ints, full-resolution pixels


@dataclass
class Face:
    box: Box                                   # (x, y, w, h) of the face, full-resolution px
    kind: str = "frontal"                      # "frontal", "profile-left", "profile-right"
    score: float = 0.0                         # MTCNN probability (Haar: cascade level weight)
    eyes: list = field(default_factory=list)   # [(x, y, w, h), ...] full-resolution px
    mouth: Box | None = None
    eyes_estimated: bool = False               # True: eye positions from face geometry, not detected
    mouth_estimated: bool = False
    silhouette: np.ndarray | None = field(default=None, repr=False)  # a body's person probability over its box

    def to_dict(self) -> dict:
        """JSON-serialisable form (for reports)."""
        return {"box": [int(v) for v in self.box], "kind": self.kind, "score": round(float(self.score), 3),
                "eyes": [[int(v) for v in e] for e in self.eyes],
                "mouth": None if self.mouth is None else [int(v) for v in self.mouth],
                "eyes_estimated": self.eyes_estimated, "mouth_estimated": self.mouth_estimated}


def cascade_path(name: str) -> str:
    """Path of one of the bundled Haar cascades (``CASCADES`` key); raises FaceDetectorUnavailable."""
    fname = CASCADES[name]
    base = getattr(getattr(cv2, "data", None), "haarcascades", None)
    candidates = [os.path.join(base, fname)] if base else []
    env = os.environ.get("AI_DEBLUR_HAAR_DIR")
    if env:
        candidates.insert(0, os.path.join(env, fname))
    candidates += [os.path.join(p, fname) for p in ("/usr/share/opencv4/haarcascades", "/usr/share/opencv/haarcascades")]
    for path in candidates:
        if os.path.isfile(path):
            return path
    raise FaceDetectorUnavailable(
        f"OpenCV's Haar cascade {fname} was not found (looked in: {', '.join(candidates) or 'nowhere'}). "
        "Face detection needs the opencv-python or opencv-python-headless wheel, which ships them under "
        "cv2.data.haarcascades; reinstall it (python3 install.py) or set AI_DEBLUR_HAAR_DIR to a folder "
        "holding the haarcascade_*.xml files.")


def _cascade(name: str) -> cv2.CascadeClassifier:
    if name not in _cache:
        path = cascade_path(name)
        clf = cv2.CascadeClassifier(path)
        if clf.empty():
            raise FaceDetectorUnavailable(f"OpenCV could not load the Haar cascade {path}")
        _cache[name] = clf
    return _cache[name]


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """8-bit gamma-encoded gray of an engine image (float [0, 1] sRGB, or uint8/uint16; alpha ignored)."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        f = img.astype(np.float32) / 255
    elif img.dtype == np.uint16:
        f = img.astype(np.float32) / 65535
    else:
        f = img.astype(np.float32)
    if f.ndim == 3:
        c = f.shape[2]
        f = f[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32) if c >= 3 else f[..., 0]
    return np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8)


def _detect(clf, gray, *, min_size, neighbors, scale=1.1):
    """detectMultiScale3 -> (boxes (N, 4) int, weights (N,)). Falls back when level weights are absent."""
    try:
        boxes, _levels, weights = clf.detectMultiScale3(gray, scaleFactor=scale, minNeighbors=neighbors,
                                                        minSize=(int(min_size), int(min_size)),
                                                        outputRejectLevels=True)
        boxes = np.asarray(boxes, np.int32).reshape(-1, 4)
        weights = np.asarray(weights, np.float64).reshape(-1)
        if len(weights) != len(boxes):
            weights = np.ones(len(boxes))
    except cv2.error:
        boxes = np.asarray(clf.detectMultiScale(gray, scaleFactor=scale, minNeighbors=neighbors,
                                                minSize=(int(min_size), int(min_size))), np.int32).reshape(-1, 4)
        weights = np.ones(len(boxes))
    return boxes, weights


def _iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter + 1e-9)


def _overlaps(a, b) -> bool:
    """Same face: boxes overlap a lot, or one holds the other's centre."""
    if _iou(a, b) > 0.3:
        return True
    for p, q in ((a, b), (b, a)):
        cx, cy = p[0] + p[2] / 2, p[1] + p[3] / 2
        if q[0] <= cx <= q[0] + q[2] and q[1] <= cy <= q[1] + q[3] and min(p[2], q[2]) > 0.5 * max(p[2], q[2]):
            return True
    return False


def _features(gray, box, face_kind):
    """Eyes and mouth inside one face (small-image coordinates). Returns (eyes, mouth, eyes_est, mouth_est)."""
    x, y, w, h = box
    H, W = gray.shape
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    roi = gray[y0:y1, x0:x1]
    up = 1.0
    if roi.shape[1] < 160:  # eye cascades need ~20 px eyes: enlarge small faces
        up = 160.0 / max(1, roi.shape[1])
        roi = cv2.resize(roi, (max(1, round(roi.shape[1] * up)), max(1, round(roi.shape[0] * up))),
                         interpolation=cv2.INTER_CUBIC)
    rh, rw = roi.shape
    eyes = []
    top = roi[: int(rh * 0.6)]
    for name in ("eye", "eye_glasses"):
        boxes, weights = _detect(_cascade(name), top, min_size=max(12, rw // 10), neighbors=4)
        cand = []
        for b, s in zip(boxes, weights):
            bx, by, bw, bh = b
            cy = by + bh / 2
            if bw > rw * 0.45 or cy < rh * 0.15:       # too big, or on the forehead/hair
                continue
            cand.append((float(s), tuple(int(v) for v in b)))
        cand.sort(reverse=True)
        for s, b in cand:
            if len(eyes) >= 2:
                break
            if all(_iou(b, e) < 0.1 and abs((b[0] + b[2] / 2) - (e[0] + e[2] / 2)) > rw * 0.15 for e in eyes):
                eyes.append(b)
        if len(eyes) >= 2:
            break
    eyes_est = False
    if face_kind == "frontal" and len(eyes) < 2:
        ew, eh = rw * 0.24, rh * 0.16
        geo = [(rw * 0.30, rh * 0.40), (rw * 0.70, rh * 0.40)]
        if len(eyes) == 1:  # keep the detected one, mirror it for the other
            e = eyes[0]
            ecx, ecy = e[0] + e[2] / 2, e[1] + e[3] / 2
            geo = [(rw - ecx, ecy)]
        for cx, cy in geo:
            eyes.append((int(cx - ew / 2), int(cy - eh / 2), int(ew), int(eh)))
        eyes_est = True
    elif face_kind != "frontal" and not eyes:
        # profile cascade is trained on left-facing faces: the visible eye is in the left half
        cx = rw * (0.35 if face_kind == "profile-left" else 0.65)
        eyes.append((int(cx - rw * 0.12), int(rh * 0.40 - rh * 0.08), int(rw * 0.24), int(rh * 0.16)))
        eyes_est = True
    mouth = None
    bottom_y = int(rh * 0.6)
    bottom = roi[bottom_y:]
    if bottom.size and bottom.shape[0] >= 12:
        boxes, weights = _detect(_cascade("smile"), bottom, min_size=max(12, rw // 6), neighbors=20)
        best = None
        for b, s in zip(boxes, weights):
            bx, by, bw, bh = b
            cx = bx + bw / 2
            if abs(cx - rw / 2) > rw * 0.25 and face_kind == "frontal":
                continue
            if best is None or s > best[0]:
                best = (float(s), (int(bx), int(by) + bottom_y, int(bw), int(bh)))
        if best is not None:
            mouth = best[1]
    mouth_est = mouth is None
    if mouth is None:
        cx = rw * {"frontal": 0.5, "profile-left": 0.4, "profile-right": 0.6}[face_kind]
        mouth = (int(cx - rw * 0.2), int(rh * 0.72), int(rw * 0.4), int(rh * 0.15))
    back = lambda b: (x0 + b[0] / up, y0 + b[1] / up, b[2] / up, b[3] / up)  # noqa: E731
    return [back(e) for e in eyes], back(mouth), eyes_est, mouth_est


def _detect_haar(image: np.ndarray, *, max_side: int = 1024, min_face: float = 0.03, profile: bool = True,
                 features: bool = True, neighbors: int = 5) -> list[Face]:
    """The Haar-cascade detector (the fallback); arguments as :func:`detect_faces`."""
    gray = to_gray_u8(image)
    H, W = gray.shape
    s = min(1.0, max_side / max(H, W))
    small = gray if s == 1.0 else cv2.resize(gray, (max(1, round(W * s)), max(1, round(H * s))),
                                             interpolation=cv2.INTER_AREA)
    small = cv2.equalizeHist(small)
    min_size = max(20, int(min(small.shape) * min_face))
    found = []  # (score, kind, box)
    boxes, weights = _detect(_cascade("frontal"), small, min_size=min_size, neighbors=neighbors)
    found += [(float(w) + 1.0, "frontal", tuple(int(v) for v in b)) for b, w in zip(boxes, weights)]
    if profile:
        sw = small.shape[1]
        for flipped in (False, True):
            img = small[:, ::-1].copy() if flipped else small
            boxes, weights = _detect(_cascade("profile"), img, min_size=min_size, neighbors=neighbors)
            for b, w in zip(boxes, weights):
                x, y, bw, bh = (int(v) for v in b)
                if flipped:
                    x = sw - x - bw
                found.append((float(w), "profile-right" if flipped else "profile-left", (x, y, bw, bh)))
    # Non-maximum suppression; frontal detections get +1 so they win over a profile of the same face.
    found.sort(key=lambda t: -t[0])
    kept = []
    for score, kind, box in found:
        if all(not _overlaps(box, k[2]) for k in kept):
            kept.append((score, kind, box))
    faces = []
    for score, kind, box in kept:
        eyes, mouth, eyes_est, mouth_est = ([], None, False, False)
        if features:
            eyes, mouth, eyes_est, mouth_est = _features(small, box, kind)
        sc = lambda b: tuple(int(round(v / s)) for v in b)  # noqa: E731
        faces.append(Face(box=sc(box), kind=kind, score=score - (1.0 if kind == "frontal" else 0.0),
                          eyes=[sc(e) for e in eyes], mouth=None if mouth is None else sc(mouth),
                          eyes_estimated=eyes_est, mouth_estimated=mouth_est))
    faces.sort(key=lambda f: -f.box[2] * f.box[3])
    return faces


def _face_from_mtcnn(det, s: float) -> Face:
    """A :class:`Face` from one MTCNN detection made on a copy scaled by ``s``: box, and eyes and
    mouth placed on the landmarks (sizes from the distance between the eyes)."""
    x1, y1, x2, y2 = (v / s for v in det.box)
    w, h = x2 - x1, y2 - y1
    pts = np.asarray(det.landmarks, np.float64) / s
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = pts
    d = max(float(np.hypot(rx - lx, ry - ly)), 0.25 * w)
    ew, eh = max(0.6 * d, 0.22 * w), max(0.4 * d, 0.15 * h)
    eyes = [(ex - ew / 2, ey - eh / 2, ew, eh) for ex, ey in ((lx, ly), (rx, ry))]
    mw = max(abs(mrx - mlx), 0.25 * w) * 1.3
    mh = max(0.14 * h, 0.35 * mw)
    mcx, mcy = (mlx + mrx) / 2, (mly + mry) / 2
    mouth = (mcx - mw / 2, mcy - mh / 2, mw, mh)
    # turned head: the nose tip well off the line between the eyes' midpoint and the mouth's
    off = (nx - (lx + rx + mlx + mrx) / 4) / max(w, 1e-6)
    kind = "frontal" if abs(off) < 0.14 else ("profile-left" if off < 0 else "profile-right")
    ri = lambda b: tuple(int(round(v)) for v in b)  # noqa: E731
    return Face(box=ri((x1, y1, w, h)), kind=kind, score=float(det.score), eyes=[ri(e) for e in eyes],
                mouth=ri(mouth), eyes_estimated=False, mouth_estimated=False)


def _detect_mtcnn(image: np.ndarray, *, max_side: int, min_face: float) -> list[Face]:
    from . import face_detector as fd
    img = np.asarray(image)
    H, W = img.shape[:2]
    s = min(1.0, max_side / max(H, W))
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        img = img.astype(np.float32)
    small = img if s >= 1.0 else cv2.resize(img, (max(1, round(W * s)), max(1, round(H * s))),
                                            interpolation=cv2.INTER_AREA)
    min_px = max(20.0, min(small.shape[:2]) * float(min_face))
    dets = fd.detect(small, min_face=min_px)
    return [_face_from_mtcnn(d, s) for d in dets]


def detect_faces(image: np.ndarray, *, max_side: int = 1024, min_face: float = 0.03, profile: bool = True,
                 features: bool = True, neighbors: int = 5, detector: str = "auto",
                 info: dict | None = None) -> list[Face]:
    """Find faces and their eyes and mouth.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), float32 [0, 1] sRGB-encoded (or uint8 / uint16); RGB order for
        colour (alpha ignored). A linear-light gray works too but detects less well (detectors were
        trained on gamma-encoded photos).
    max_side : int
        Detection runs on a copy downscaled to at most this many px on the long side.
    min_face : float
        Smallest face searched, as a fraction of the image's short side (at least 20 px of the small copy).
    profile : bool
        Haar only: also look for faces seen from the side (MTCNN finds turned faces by itself).
    features : bool
        Locate eyes and mouth inside each face (MTCNN: from its landmarks; Haar: eye and smile
        cascades, estimated from the face geometry when not found).
    neighbors : int
        Haar only: cascade ``minNeighbors``: higher = fewer false faces, fewer found.
    detector : "auto" (MTCNN, the Haar cascades when its networks cannot be loaded), "mtcnn" or "haar".
    info : dict, optional
        Filled with "detector" (the one that ran) and, when the Haar cascades stood in, "warning"
        (why, in words the caller can show).

    Returns
    -------
    list of :class:`Face`, boxes in full-resolution pixels, biggest first.

    Raises
    ------
    FaceDetectorUnavailable when no detector (or not the one asked for) can run.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}; choose from {', '.join(DETECTORS)}")
    info = {} if info is None else info
    why = None
    if detector in ("auto", "mtcnn"):
        from .network import ModelError
        try:
            faces = _detect_mtcnn(image, max_side=max_side, min_face=min_face)
        except ModelError as exc:
            if detector == "mtcnn":
                raise FaceDetectorUnavailable(f"the MTCNN face detector cannot run: {exc}") from exc
            why = str(exc)
        else:
            if not features:
                for f in faces:
                    f.eyes, f.mouth = [], None
            faces.sort(key=lambda f: -f.box[2] * f.box[3])
            info["detector"] = "mtcnn"
            return faces
    try:
        faces = _detect_haar(image, max_side=max_side, min_face=min_face, profile=profile, features=features,
                             neighbors=neighbors)
    except FaceDetectorUnavailable as exc:
        if why is not None:
            raise FaceDetectorUnavailable(f"no face detector can run: {why}; and {exc}") from exc
        raise
    info["detector"] = "haar"
    if why is not None:
        msg = (f"the face detector network could not be loaded ({why}); OpenCV's Haar cascades stood in "
               "(they miss more faces)")
        info["warning"] = msg
        warnings.warn(msg, FaceDetectorFallback, stacklevel=2)
    return faces


def _as_face(f) -> Face:
    if isinstance(f, Face):
        return f
    if isinstance(f, dict):
        return Face(box=tuple(f["box"]), kind=f.get("kind", "frontal"), score=f.get("score", 0.0),
                    eyes=[tuple(e) for e in f.get("eyes", [])], mouth=tuple(f["mouth"]) if f.get("mouth") else None)
    return Face(box=tuple(int(v) for v in f))  # a bare (x, y, w, h)


def face_mask(shape, faces, *, eyes_boost: float = 1.0, face_level: float = 0.7, mouth_level: float = 0.85,
              feather: float = 0.12, max_side: int = 1024) -> np.ndarray:
    """Soft mask (H, W) float32 in [0, 1] over the faces.

    Each face is an ellipse a little taller than its box (the cascade's box cuts forehead and chin) at
    ``face_level``; eyes (ellipses over the eye boxes, a bit enlarged to take in lashes and brows) at
    ``eyes_boost``; the mouth at ``mouth_level``. Edges are feathered with a gaussian of ``feather``
    times the face width. Built at <= ``max_side`` px and resized (the mask is smooth).

    ``faces``: list of :class:`Face`, their ``to_dict()`` forms, or bare (x, y, w, h) boxes (then eyes
    are not boosted).
    """
    H, W = int(shape[0]), int(shape[1])
    s = min(1.0, max_side / max(H, W))
    h, w = max(1, round(H * s)), max(1, round(W * s))
    out = np.zeros((h, w), np.float32)
    for f in (_as_face(f) for f in faces or []):
        if f.kind == "body":   # a person found by the silhouette (detect_people): no face to show
            continue
        x, y, bw, bh = (v * s for v in f.box)
        sig = max(0.8, feather * bw)
        pad = int(3 * sig + 0.2 * bh) + 2
        X0, Y0 = max(0, int(x - pad)), max(0, int(y - 0.15 * bh - pad))
        X1, Y1 = min(w, int(x + bw + pad) + 1), min(h, int(y + 1.15 * bh + pad) + 1)
        if X1 <= X0 or Y1 <= Y0:
            continue
        layer = np.zeros((Y1 - Y0, X1 - X0), np.float32)
        cx, cy = x + bw / 2 - X0, y + bh * 0.52 - Y0
        if f.kind == "profile-left":
            cx -= 0.05 * bw
        elif f.kind == "profile-right":
            cx += 0.05 * bw
        cv2.ellipse(layer, (round(cx * 16), round(cy * 16)), (round(bw * 0.46 * 16), round(bh * 0.62 * 16)),
                    0, 0, 360, float(face_level), -1, cv2.LINE_AA, 4)
        layer = cv2.GaussianBlur(layer, (0, 0), sig)
        feat = np.zeros_like(layer)
        for (ex, ey, ew, eh), level, grow in ([(e, eyes_boost, 1.35) for e in f.eyes]
                                             + ([(f.mouth, mouth_level, 1.15)] if f.mouth is not None else [])):
            ex, ey, ew, eh = ex * s - X0, ey * s - Y0, ew * s, eh * s
            ax, ay = max(1.0, ew * 0.5 * grow), max(1.0, eh * 0.5 * grow * (0.8 if level == eyes_boost else 1.0))
            cv2.ellipse(feat, (round((ex + ew / 2) * 16), round((ey + eh / 2) * 16)),
                        (round(ax * 16), round(ay * 16)), 0, 0, 360, float(level), -1, cv2.LINE_AA, 4)
        if f.eyes or f.mouth is not None:
            feat = cv2.GaussianBlur(feat, (0, 0), max(0.6, 0.35 * sig))
            layer = np.maximum(layer, feat)
        out[Y0:Y1, X0:X1] = np.maximum(out[Y0:Y1, X0:X1], layer)
    if (h, w) != (H, W):
        out = cv2.resize(out, (W, H), interpolation=cv2.INTER_LINEAR)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# People: faces, and bodies whose face the face detector cannot see (turned away, too small)
HOG_MIN_SCORE = 0.5      # the HOG people detector's SVM margin a body needs (see bench_faces.py --parts p)
HOG_SIDE = (640, 1280)   # the HOG pass runs on a copy with its long side within these (small photos upscaled)
FINE_SIDE = 2048         # a second face pass at up to this long side finds faces too small at max_side
_hog: dict = {}


def _hog_people():
    """OpenCV's HOG descriptor with its built-in people detector (Dalal & Triggs 2005, trained on INRIA
    pedestrians; its SVM weights are compiled into the opencv wheel: nothing to load or download)."""
    if "hog" not in _hog:
        hog = cv2.HOGDescriptor()
        hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        _hog["hog"] = hog
    return _hog["hog"]


def detect_bodies(image: np.ndarray, *, min_score: float = HOG_MIN_SCORE, side=HOG_SIDE) -> list[Face]:
    """Upright people, whole or in large part, found by their silhouette (HOG people detector), so that
    a person seen from behind or whose face is too small counts too.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), float [0, 1] sRGB-encoded (or uint8 / uint16).
    min_score : float
        The detector's SVM margin a detection needs (higher: fewer false people, fewer found).
    side : (int, int)
        The copy searched has its long side clamped to this range (the detector's window is 64 x 128 px:
        on a photo upscaled to 640 px a person 20 % of its height is found).

    Returns
    -------
    list of :class:`Face` with ``kind == "body"`` and ``box`` the person's extent (the detector's window
    less its margins), full-resolution px, best score first.
    """
    gray = to_gray_u8(image)
    H, W = gray.shape
    long_side = max(H, W)
    s = min(max(1.0, side[0] / long_side), side[1] / long_side)
    small = gray if s == 1.0 else cv2.resize(gray, (max(1, round(W * s)), max(1, round(H * s))),
                                             interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    if min(small.shape) < 128:
        return []
    rects, weights = _hog_people().detectMultiScale(small, winStride=(8, 8), padding=(16, 16), scale=1.05,
                                                    hitThreshold=0.0, groupThreshold=2)
    found = []
    for (x, y, w, h), score in zip(np.asarray(rects).reshape(-1, 4), np.ravel(np.asarray(weights, np.float64))):
        if score < min_score:
            continue
        # the 64 x 128 window holds the person in its middle 40 x 112 px or so
        bx, by, bw, bh = x + 0.2 * w, y + 0.06 * h, 0.6 * w, 0.88 * h
        found.append(Face(box=tuple(int(round(v / s)) for v in (bx, by, bw, bh)), kind="body", score=float(score)))
    found.sort(key=lambda f: -f.score)
    kept: list[Face] = []
    for f in found:
        if all(_iou(f.box, k.box) < 0.3 for k in kept):
            kept.append(f)
    return kept


def person_box(face) -> tuple:
    """The extent of a person from a face box (x, y, w, h): 3 face widths wide, from the top of the hair
    to about 5 face heights below the chin (what :func:`masks.people_mask` covers)."""
    x, y, w, h = _as_face(face).box
    return (x - w, y - 0.3 * h, 3 * w, 6.3 * h)


def _covered(body, persons) -> bool:
    """A body box belongs to a person already found by the face when the face lies in its top half."""
    bx, by, bw, bh = body
    for f in persons:
        fx, fy, fw, fh = f.box
        cx, cy = fx + fw / 2, fy + fh / 2
        if bx <= cx <= bx + bw and by - 0.25 * bh <= cy <= by + 0.5 * bh:
            return True
    return False


def _person_sized(body, faces, *, score: float = 0.75) -> bool:
    """A silhouette counts as a person when the network is sure of it and, in a photo with faces, it is as
    tall as a person with a face of theirs would be (1.5-12 face heights: a head and shoulders to a whole
    figure): the network, trained on photos that show a person, also outlines walls and furniture."""
    if body.score < score:
        return False
    if not faces:
        return True
    fh = float(np.median([f.box[3] for f in faces]))
    return 1.5 * fh <= body.box[3] <= 12 * fh


def segment_bodies(image: np.ndarray, *, max_side: int = 1024, agreed: bool = False) -> list[Face]:
    """People as silhouettes (:mod:`deblur_core.person_segmenter`, MediaPipe's Selfie Segmentation): a body
    (``kind == "body"``, box = the region) per person-shaped region, whichever way the person faces.
    ``agreed``: the whole photo only, and only where the network's two variants agree (else none)."""
    from .person_segmenter import agreed_probability, person_regions
    if agreed:
        prob = agreed_probability(image, max_side=max_side)
        if prob is None:
            return []
        found = person_regions(image, prob=prob, with_shapes=True)
    else:
        found = person_regions(image, max_side=max_side, with_shapes=True)
    return [Face((x, y, w, h), kind="body", score=score, silhouette=shape) for x, y, w, h, score, shape in found]


def detect_people(image: np.ndarray, *, faces=None, bodies="segment", fine: bool = True,
                  max_side: int = 1024, info: dict | None = None) -> list[Face]:
    """Every person in a photo: the faces (MTCNN, :func:`detect_faces`) and the people whose face it does
    not find.

    * Faces too small at ``max_side`` (a group on a large scan): with ``fine``, photos larger than
      1.4 x ``max_side`` get a second face pass at up to :data:`FINE_SIDE` px, whose new faces are added.
    * People seen from behind, or whose face is hidden or turned away: ``bodies="segment"`` (the default)
      adds the person-shaped regions of :func:`segment_bodies` (a person segmentation network) whose
      face was not found; a body whose face was found is not counted twice. In a photo without a found
      face only the regions the network's two variants agree on count ("segment-everywhere": all).
      ``bodies=True`` or "with-faces" use OpenCV's HOG people detector instead (:func:`detect_bodies`;
      it finds windows, columns and foliage as people: 62 false people in 97 photos without people,
      ``bench_faces.py --parts p``), False the faces alone.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), float [0, 1] sRGB-encoded (or uint8 / uint16).
    faces : list of :class:`Face`, optional
        Faces already found (then not detected again).
    info : dict, optional
        Filled with "faces" and "bodies" (counts) and "warning" when the face detector could not run.

    Returns
    -------
    list of :class:`Face`: faces (their kinds) first, then bodies (``kind == "body"``, box = the person).
    """
    info = {} if info is None else info
    H, W = np.asarray(image).shape[:2]
    if faces is None:
        det: dict = {}
        try:
            faces = detect_faces(image, features=False, max_side=max_side, info=det)
        except FaceDetectorUnavailable as exc:
            faces, det["warning"] = [], str(exc)
        if det.get("warning"):
            info["warning"] = det["warning"]
        if fine and max(H, W) > 1.4 * max_side and det.get("detector") == "mtcnn":
            side = min(FINE_SIDE, max(H, W))
            more = detect_faces(image, features=False, max_side=side, min_face=0.01, detector="mtcnn")
            faces = list(faces) + [f for f in more if all(_iou(f.box, g.box) < 0.2 for g in faces)]
    faces = [_as_face(f) for f in faces]
    people = list(faces)
    if bodies in ("segment", "segment-everywhere"):
        from .network import ModelError
        try:
            # without a face found, only silhouettes the network's two variants agree on (photos without
            # people get outlines too, mostly different ones)
            agreed = bodies == "segment" and not faces
            found = segment_bodies(image, max_side=max_side, agreed=agreed)
        except ModelError as exc:       # a missing or corrupt file: the faces alone, and say so
            found = []
            info["warning"] = f"people seen from behind are not found: {exc}"
        people.extend(b for b in found if not _covered(b.box, faces) and _person_sized(b, faces))
    elif bodies is True or (bodies == "with-faces" and faces):
        for b in detect_bodies(image):
            if not _covered(b.box, faces):
                people.append(b)
    info["faces"] = len(faces)
    info["bodies"] = len(people) - len(faces)
    return people

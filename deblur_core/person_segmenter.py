"""People as silhouettes: MediaPipe's Selfie Segmentation network (landscape, 144 x 256) in onnxruntime.

The face detector finds people by their faces; a person seen from behind, or with the face turned away
or hidden, has none. This network labels every pixel with the probability that it belongs to a person,
whatever way the person faces (Google, "MediaPipe Selfie Segmentation", a MobileNetV3-small encoder with
a light decoder; Apache-2.0). The weights ship in the ``mediapipe`` 0.10.14 wheel on PyPI, converted to
ONNX by ``training/export_selfie.py`` (checked against MediaPipe's own runtime: largest difference
6e-5) and shipped in ``models/`` (``models/selfie-seg-v1.md``: source, licence, checksum). Nothing is
downloaded.

The photo is squashed to 256 x 144 as MediaPipe does (its pipeline does not keep the aspect ratio), and
large photos are also seen as overlapping crops, where a small person is large enough for the network.
The network outlines something in any photo, person or not; in a photo without a found face only what
its square variant (``models/selfie-seg-square-v1.onnx``) marks too counts (:func:`agreed_probability`).
"""
from __future__ import annotations

import threading

import cv2
import numpy as np

from .color import to_float
from .network import ModelError, file_sha256, models_dir

__all__ = ["SEGMENTER_FILE", "SECOND_FILE", "load_segmenter", "person_probability", "agreed_probability",
           "person_regions"]

SEGMENTER_FILE = ("selfie-seg-v1.onnx", "c08051d9903b3a09c04be2b0831e7a2960ee1334e998942cbe2f4dd80cc91fa4")
# the same network's square variant (256 x 256): the second opinion in photos without a face
SECOND_FILE = ("selfie-seg-square-v1.onnx", "b61a1cc74191fef06adf7dbf73c4ee7d7d7528237216f82511358c992363eaa9")
AGREEMENT = 0.9     # IoU of the two variants' person masks: clear people 0.94-0.98, false outlines <= 0.8

_cache: dict = {}
_lock = threading.Lock()


def load_segmenter(*, verify: bool = True, spec: tuple = SEGMENTER_FILE):
    """The onnxruntime session of ``spec`` (file, sha256; cached). Raises :class:`network.ModelError` when
    the file is missing, not the shipped version (sha256) or cannot be opened."""
    path = models_dir() / spec[0]
    with _lock:
        if str(path) in _cache:
            return _cache[str(path)]
        if not path.is_file():
            raise ModelError(f"person segmentation file {path} is missing: reinstall the plug-in "
                             "(the ONNX files ship in models/)")
        if verify:
            got = file_sha256(path)
            if got != spec[1]:
                raise ModelError(f"person segmentation file {path} is corrupt or not the shipped version "
                                 f"(sha256 {got[:12]}..., expected {spec[1][:12]}...): reinstall the plug-in")
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1      # 144 x 256: threads cost more than they give
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot open {path}: {exc}") from exc
        _cache[str(path)] = sess
        return sess


def _working_rgb(image: np.ndarray, max_side: int) -> np.ndarray:
    """RGB float32 in [0, 1] (8/16-bit scaled by :func:`color.to_float`, gray repeated, alpha dropped), at
    most ``max_side`` px on the long side (area filter), the photo's aspect kept."""
    img = to_float(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[2] in (2, 4):
        img = img[..., :-1]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    img = np.clip(img, 0, 1)
    H, W = img.shape[:2]
    s = min(1.0, max_side / max(H, W))
    if s < 1:
        img = cv2.resize(img, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA)
    return img


def _run(sess, rgb: np.ndarray) -> np.ndarray:
    """The network's person probability for ``rgb`` squashed to its input size (as MediaPipe does)."""
    _, h, w, _ = sess.get_inputs()[0].shape
    x = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return sess.run(None, {"image": np.ascontiguousarray(x[None], np.float32)})[0][0, 0]


def person_probability(image: np.ndarray, *, max_side: int = 1024, crops: bool = True) -> np.ndarray:
    """Per-pixel probability (h, w) float32 in [0, 1] that a pixel shows a person, at the photo scaled to at
    most ``max_side`` px (the same aspect as the photo).

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), float [0, 1] sRGB-encoded, or uint8 / uint16.
    crops : bool
        Also look at overlapping crops of half the photo's size (3 x 3, the photo's aspect), where people
        are twice as large for the network; the map is the larger of the whole photo's and the crops'.
    """
    sess = load_segmenter()
    rgb = _working_rgb(image, max_side)
    h, w = rgb.shape[:2]
    prob = cv2.resize(_run(sess, rgb), (w, h), interpolation=cv2.INTER_LINEAR)
    if crops and min(h, w) >= 2 * 96:
        ch, cw = h // 2, w // 2
        for y0 in (0, (h - ch) // 2, h - ch):
            for x0 in (0, (w - cw) // 2, w - cw):
                part = cv2.resize(_run(sess, rgb[y0:y0 + ch, x0:x0 + cw]), (cw, ch), interpolation=cv2.INTER_LINEAR)
                prob[y0:y0 + ch, x0:x0 + cw] = np.maximum(prob[y0:y0 + ch, x0:x0 + cw], part)
    return np.clip(prob, 0, 1).astype(np.float32)


def agreed_probability(image: np.ndarray, *, max_side: int = 1024, agreement: float = AGREEMENT) -> np.ndarray | None:
    """The person probability of the whole photo where both variants of the network (landscape and square)
    mark the same people, or None when their person masks (> 0.5) overlap by less than ``agreement``
    (intersection over union) or are empty. Shown a photo without a person, each variant outlines
    something, mostly not the same thing (``models/selfie-seg-v1.md``)."""
    rgb = _working_rgb(image, max_side)
    h, w = rgb.shape[:2]
    a = cv2.resize(_run(load_segmenter(), rgb), (w, h), interpolation=cv2.INTER_LINEAR)
    b = cv2.resize(_run(load_segmenter(spec=SECOND_FILE), rgb), (w, h), interpolation=cv2.INTER_LINEAR)
    union = int(((a > 0.5) | (b > 0.5)).sum())
    if union == 0 or ((a > 0.5) & (b > 0.5)).sum() < agreement * union:
        return None
    return np.minimum(a, b).astype(np.float32)


def person_regions(image: np.ndarray, *, threshold: float = 0.5, min_area: float = 0.004, max_side: int = 1024,
                   crops: bool = True, prob: np.ndarray | None = None, with_shapes: bool = False) -> list[tuple]:
    """Boxes of the person-shaped regions: connected parts of :func:`person_probability` (or ``prob``, a map
    of the photo at any scale) above ``threshold`` covering at least ``min_area`` of the photo. Returns
    [(x, y, w, h, score), ...] in px of ``image``, score = the region's mean probability, largest first;
    ``with_shapes`` adds the silhouette (the probability map over the box, at the map's scale)."""
    H, W = np.asarray(image).shape[:2]
    if prob is None:
        prob = person_probability(image, max_side=max_side, crops=crops)
    h, w = prob.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats((prob >= threshold).astype(np.uint8), connectivity=8)
    fy, fx = H / h, W / w
    out = []
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if area < min_area * h * w:
            continue
        inside = labels[y:y + bh, x:x + bw] == i
        score = float(prob[y:y + bh, x:x + bw][inside].mean())
        # the silhouette: the probability inside the region's box, other regions cut out
        shape = np.where(inside | (labels[y:y + bh, x:x + bw] == 0), prob[y:y + bh, x:x + bw], 0.0)
        out.append((round(x * fx), round(y * fy), round(bw * fx), round(bh * fy), score, area, shape.astype(np.float32)))
    out.sort(key=lambda r: -r[5])
    return [r[:5] + r[6:] if with_shapes else r[:5] for r in out]

"""MTCNN face detector in numpy + onnxruntime: face boxes, confidences and five landmarks.

The networks are the three small stages of MTCNN (Zhang, Zhang, Li, Qiao, "Joint Face Detection and
Alignment using Multi-task Cascaded Convolutional Networks", IEEE SPL 2016), with the weights shipped
in the ``facenet-pytorch`` wheel (MIT), exported to ONNX by ``training/export_mtcnn.py`` and shipped
in ``models/`` (``models/mtcnn-v1.md``: source, licence, checksums). Nothing is downloaded.

Cascade (all in :func:`detect`):

1. An image pyramid (each level 0.709 times the previous, the first one scaled so that the smallest
   face searched becomes 12 px) runs through PNet, fully convolutional: one face probability and box
   offset per 12 x 12 window, stride 2. Windows above ``thresholds[0]`` become boxes, thinned by
   non-maximum suppression per level (IoU 0.5) and over all levels (0.7), moved by their offsets and
   made square.
2. RNet rescores each box on a 24 x 24 crop (``thresholds[1]``), NMS 0.7, offsets, square.
3. ONet rescores on a 48 x 48 crop (``thresholds[2]``) and gives the final offsets and the five
   landmarks (eyes, nose tip, mouth corners); overlapping boxes are thinned by NMS on the
   intersection over the smaller box (0.7).

Inputs are RGB in [0, 255] mapped to (v - 127.5) / 128. Gray photos run as R = G = B.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .network import ModelError, file_sha256, models_dir

__all__ = ["MTCNN_FILES", "MtcnnDetection", "load_mtcnn", "detect", "nms"]

# file and sha256 of each stage (training/export_mtcnn.py prints them; models/mtcnn-*-v1.sha256 too)
MTCNN_FILES = {
    "pnet": ("mtcnn-pnet-v1.onnx", "c6f809a91040dc08a59389bda6ec321145c9baa28b4c9fe8b3d90c22f437827a"),
    "rnet": ("mtcnn-rnet-v1.onnx", "11728a9dfa130e5d99a57b373857472538ca11ff24cd062904367b08576da461"),
    "onet": ("mtcnn-onet-v1.onnx", "344a07fb0702fbc399a9f5d28986e13cec6dc7c3e04c66021ff3fb031b1581ed"),
}
THRESHOLDS = (0.6, 0.7, 0.9)   # PNet, RNet, ONet probability cut-offs (ONet 0.9, not MTCNN's 0.7: on real
                               # blurred photos false faces in foliage and clutter scored 0.83-0.92)
SMALL_FACE = (32.0, 0.97)      # faces under 32 px need ONet >= 0.97: texture makes small false faces
FACTOR = 0.709                 # pyramid step (area halves every two levels)

_cache: dict = {}
_lock = threading.Lock()


@dataclass
class MtcnnDetection:
    box: tuple          # (x1, y1, x2, y2) float, pixels of the input image
    score: float        # ONet's face probability
    landmarks: np.ndarray  # (5, 2) x, y: left eye, right eye (as seen in the image), nose, mouth left, right


class _Nets:
    def __init__(self, sessions: dict):
        self.s = sessions

    def run(self, name: str, x: np.ndarray) -> list:
        return self.s[name].run(None, {"image": np.ascontiguousarray(x, np.float32)})


def load_mtcnn(*, verify: bool = True, threads: int | None = None) -> _Nets:
    """The three onnxruntime sessions (cached). Raises :class:`network.ModelError` when a file is
    missing, not the shipped version (sha256) or cannot be opened."""
    base = models_dir()
    key = (str(base), threads)
    with _lock:
        if key in _cache:
            return _cache[key]
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a hard requirement
            raise ModelError(f"onnxruntime is not installed: {exc}") from exc
        sessions = {}
        for name, (fname, digest) in MTCNN_FILES.items():
            path = base / fname
            if not path.is_file():
                raise ModelError(f"face detector file {path} is missing: reinstall the plug-in "
                                 "(the ONNX files ship in models/)")
            if verify:
                got = file_sha256(path)
                if got != digest:
                    raise ModelError(f"face detector file {path} is corrupt or not the shipped version "
                                     f"(sha256 {got[:12]}..., expected {digest[:12]}...): reinstall the plug-in")
            so = ort.SessionOptions()
            so.intra_op_num_threads = int(threads or 1)   # tiny networks: threads cost more than they give
            so.inter_op_num_threads = 1
            so.log_severity_level = 3
            try:
                sessions[name] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise ModelError(f"onnxruntime cannot open {path}: {exc}") from exc
        nets = _Nets(sessions)
        _cache[key] = nets
        return nets


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first. ``boxes`` (N, 4) x1, y1, x2,
    y2; overlap = intersection over union, or over the smaller box (``mode="min"``)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = iw * ih
        if mode == "min":
            ov = inter / np.maximum(np.minimum(area[i], area[rest]), 1e-9)
        else:
            ov = inter / np.maximum(area[i] + area[rest] - inter, 1e-9)
        order = rest[ov <= threshold]
    return np.asarray(keep, np.int64)


def _calibrate(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Move each box's sides by the network's offsets (fractions of its width / height)."""
    w = (boxes[:, 2] - boxes[:, 0])[:, None]
    h = (boxes[:, 3] - boxes[:, 1])[:, None]
    return boxes[:, :4] + reg * np.concatenate([w, h, w, h], axis=1)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Squares of the longer side, same centres."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _crops(img: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(N, 3, size, size) network input: each box cut from ``img`` (H, W, 3 float [0, 255]; zero outside)."""
    H, W = img.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k, b in enumerate(np.round(boxes).astype(np.int64)):
        x1, y1, x2, y2 = b
        bw, bh = x2 - x1, y2 - y1
        if bw < 1 or bh < 1:
            continue
        patch = np.zeros((bh, bw, 3), np.float32)
        sx0, sy0, sx1, sy1 = max(0, x1), max(0, y1), min(W, x2), min(H, y2)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y1:sy1 - y1, sx0 - x1:sx1 - x1] = img[sy0:sy1, sx0:sx1]
        interp = cv2.INTER_AREA if bw > size else cv2.INTER_LINEAR
        out[k] = cv2.resize(patch, (size, size), interpolation=interp)
    return np.transpose((out - 127.5) * 0.0078125, (0, 3, 1, 2))


def _batched(nets: _Nets, name: str, x: np.ndarray, batch: int = 256) -> list:
    parts = [nets.run(name, x[i:i + batch]) for i in range(0, len(x), batch)]
    return [np.concatenate([p[j] for p in parts], axis=0) for j in range(len(parts[0]))]


def _as_rgb255(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype == np.uint8:
        f = img.astype(np.float32)
    elif img.dtype == np.uint16:
        f = img.astype(np.float32) / 257.0
    else:
        f = np.clip(img.astype(np.float32), 0.0, 1.0) * 255.0
    if f.ndim == 2:
        f = np.repeat(f[..., None], 3, axis=2)
    elif f.shape[2] in (1, 2):
        f = np.repeat(f[..., :1], 3, axis=2)
    else:
        f = f[..., :3]
    return np.ascontiguousarray(f)


def detect(image: np.ndarray, *, min_face: float = 20.0, thresholds=THRESHOLDS, factor: float = FACTOR,
           small_face=SMALL_FACE, nets: _Nets | None = None) -> list[MtcnnDetection]:
    """Faces in ``image`` ((H, W) or (H, W, C) RGB: float [0, 1] sRGB-encoded, uint8 or uint16).

    ``min_face``: the smallest face side searched, in pixels of ``image`` (at least 12).
    ``small_face``: (side px, probability): faces smaller than that side need that probability. Returns
    :class:`MtcnnDetection` objects, best score first. Raises :class:`network.ModelError` when the
    networks cannot be loaded.
    """
    nets = nets or load_mtcnn()
    img = _as_rgb255(image)
    H, W = img.shape[:2]
    min_face = max(12.0, float(min_face))
    scale = 12.0 / min_face
    scales = []
    while min(H, W) * scale >= 12:
        scales.append(scale)
        scale *= factor
    # 1. PNet over the pyramid
    cand = []
    for sc in scales:
        hs, ws = int(math.ceil(H * sc)), int(math.ceil(W * sc))
        level = cv2.resize(img, (ws, hs), interpolation=cv2.INTER_AREA if sc < 1 else cv2.INTER_LINEAR)
        x = np.transpose((level - 127.5) * 0.0078125, (2, 0, 1))[None]
        prob, reg = nets.run("pnet", x)
        prob, reg = prob[0], reg[0]
        ys, xs = np.nonzero(prob >= thresholds[0])
        if ys.size == 0:
            continue
        score = prob[ys, xs]
        b = np.stack([(2 * xs + 1) / sc, (2 * ys + 1) / sc, (2 * xs + 12) / sc, (2 * ys + 12) / sc], axis=1)
        r = reg[:, ys, xs].T
        keep = nms(b, score, 0.5)
        cand.append(np.concatenate([b[keep], score[keep, None], r[keep]], axis=1))
    if not cand:
        return []
    c = np.concatenate(cand, axis=0)
    keep = nms(c[:, :4], c[:, 4], 0.7)
    c = c[keep]
    boxes = _square(_calibrate(c[:, :4], c[:, 5:9]))
    # 2. RNet
    prob, reg = _batched(nets, "rnet", _crops(img, boxes, 24))
    ok = prob >= thresholds[1]
    if not ok.any():
        return []
    boxes, score, reg = boxes[ok], prob[ok], reg[ok]
    keep = nms(boxes, score, 0.7)
    boxes = _square(_calibrate(boxes[keep], reg[keep]))
    # 3. ONet
    prob, reg, lm = _batched(nets, "onet", _crops(img, boxes, 48))
    ok = prob >= thresholds[2]
    if not ok.any():
        return []
    boxes, score, reg, lm = boxes[ok], prob[ok], reg[ok], lm[ok]
    w, h = (boxes[:, 2] - boxes[:, 0])[:, None], (boxes[:, 3] - boxes[:, 1])[:, None]
    pts = np.stack([boxes[:, :1] + w * lm[:, :5], boxes[:, 1:2] + h * lm[:, 5:]], axis=2)   # (N, 5, 2)
    boxes = _calibrate(boxes, reg)
    keep = nms(boxes, score, 0.7, mode="min")
    if small_face is not None:
        side = np.sqrt(np.maximum(boxes[keep, 2] - boxes[keep, 0], 0) * np.maximum(boxes[keep, 3] - boxes[keep, 1], 0))
        keep = keep[(side >= small_face[0]) | (score[keep] >= small_face[1])]
    return [MtcnnDetection(box=tuple(float(v) for v in boxes[i]), score=float(score[i]), landmarks=pts[i])
            for i in keep]

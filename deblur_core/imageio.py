"""Read and write PNG, TIFF and JPEG (8/16-bit, gray or colour, with alpha) for the command line.

Pixels come back as float32 in [0, 1] in RGB(A) channel order together with the file's bit depth, so a
written result keeps the input's depth and alpha.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from .color import from_float, to_float

__all__ = ["read_image", "write_image", "ImageReadError"]


class ImageReadError(ValueError):
    """A file that is missing, unreadable or not an image."""


def read_image(path: str):
    """Read an image file.

    Returns
    -------
    image : ndarray, float32, (H, W) or (H, W, C) with C in {2, 3, 4}, values in [0, 1], RGB order.
    dtype : numpy dtype of the file's samples (uint8 or uint16; float32 for float TIFF).
    """
    if not os.path.isfile(path):
        raise ImageReadError(f"no such file: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0:
        raise ImageReadError(f"empty file: {path}")
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ImageReadError(f"not a readable image (PNG, TIFF or JPEG expected): {path}")
    dtype = raw.dtype
    if dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageReadError(f"unsupported sample type {dtype} in {path}")
    if raw.ndim == 3 and raw.shape[2] == 3:
        raw = raw[..., ::-1]
    elif raw.ndim == 3 and raw.shape[2] == 4:
        raw = raw[..., [2, 1, 0, 3]]
    elif raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    image = to_float(np.ascontiguousarray(raw))
    if image.size == 0:
        raise ImageReadError(f"empty image: {path}")
    return image, dtype


def write_image(path: str, image: np.ndarray, dtype=np.uint8, *, quality: int = 95) -> None:
    """Write float [0, 1] pixels with the given sample type (8-bit for JPEG). Raises OSError on failure."""
    ext = os.path.splitext(path)[1].lower()
    if ext in (".jpg", ".jpeg"):
        dtype = np.uint8
        if image.ndim == 3 and image.shape[2] in (2, 4):  # JPEG has no alpha
            image = image[..., :-1] if image.shape[2] == 4 else image[..., 0]
    if ext not in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
        raise OSError(f"unsupported output format {ext!r} (use .png, .tif or .jpg)")
    if image.ndim == 3 and image.shape[2] == 2:
        # OpenCV cannot write gray+alpha: store as RGBA, which every reader understands.
        image = np.concatenate([np.repeat(image[..., :1], 3, axis=2), image[..., 1:]], axis=2)
    out = from_float(image, dtype if np.dtype(dtype).kind != "f" else np.uint16)
    if out.ndim == 3 and out.shape[2] == 3:
        out = out[..., ::-1]
    elif out.ndim == 3 and out.shape[2] == 4:
        out = out[..., [2, 1, 0, 3]]
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(out), params)
    if not ok:
        raise OSError(f"could not encode {path}")
    tmp = path + ".part"
    buf.tofile(tmp)
    os.replace(tmp, path)  # never leave a half-written file under the real name

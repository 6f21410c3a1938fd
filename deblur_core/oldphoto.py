"""Old Photo Clarity: the two layers a retoucher builds for a soft, grainy scanned print.

1. Grain: estimated at full and half resolution (white noise halves its standard deviation when the
   image is area-downscaled by 2; film grain and scan noise, spatially correlated, much less), then
   removed with the project's learned denoiser (:func:`network.denoise`) or, when the model cannot be
   loaded, OpenCV's non-local means (Buades et al. 2005; a warning says so).
2. Focus: the remaining softness is treated as a gaussian blur and deconvolved
   (:func:`sharpen.smart_sharpen`, halo-limited).
3. People: faces (:mod:`.faces`) get a gentle extra unsharp mask, strongest on the eyes.

Layers (what :func:`old_photo` returns):

* ``clarity``: denoised + focus-corrected + faces, shown through ``clarity_mask``: the subjects
  (people: each face and a body region below it; plus the in-focus part of the blur map when the photo
  has intended background blur). Without faces and without a depth-of-field split the whole frame is
  the subject.
* ``background``: denoised + a very light blur (about 0.5 px) that keeps the background smooth,
  shown through ``background_mask`` = 1 - ``clarity_mask``.

Both are full images of the input's shape (alpha kept), float32 in [0, 1]; the masks are (H, W).
"""
from __future__ import annotations

import cv2
import numpy as np

from . import estimate as est
from . import masks
from .color import merge_alpha, split_alpha, validate_image
from .deconvolution import estimate_noise
from .sharpen import smart_sharpen, unsharp_mask

__all__ = ["old_photo", "estimate_grain", "denoise_grain", "people_mask"]


def estimate_grain(color: np.ndarray) -> dict:
    """Grain level of an sRGB-encoded image: {"sigma": encoded [0, 1] std, "full": .., "half": ..,
    "kind": "fine" | "coarse"}. ``sigma`` is the larger of the full-resolution estimate and the
    half-resolution one times 2 (area-halving divides white noise by 2) when the grain is coarse."""
    full = estimate_noise(color)
    h, w = color.shape[:2]
    if min(h, w) >= 64:
        half_img = cv2.resize(color, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        half = estimate_noise(half_img)
    else:
        half = full / 2
    # white noise: half ~= full / 2. Correlated grain: half / full approaches 1.
    ratio = half / max(full, 1e-6)
    kind = "coarse" if ratio > 0.75 else "fine"
    sigma = max(full, 2.0 * half) if kind == "coarse" else full
    return {"sigma": float(sigma), "full": float(full), "half": float(half), "kind": kind}


def denoise_grain(color: np.ndarray, sigma: float, *, use_network: bool | None = None, report: dict | None = None):
    """Remove grain of level ``sigma`` (encoded [0, 1]). Network first (unless ``use_network`` is False),
    NL-means otherwise; ``report`` gets "denoiser" and, on fallback, a warning."""
    report = report if report is not None else {}
    report.setdefault("warnings", [])
    if sigma < 0.002:
        report["denoiser"] = "none (no grain)"
        return color.copy()
    if use_network is not False:
        try:
            from .network import denoise
            out = denoise(color, float(sigma))
            report["denoiser"] = "network"
            return np.asarray(out, np.float32)
        except Exception as exc:  # missing onnxruntime / model: degrade, say so
            if use_network:
                raise
            report["warnings"].append(f"learned denoiser unavailable ({type(exc).__name__}: {exc}); "
                                      "used non-local means")
    u8 = np.clip(color * 255 + 0.5, 0, 255).astype(np.uint8)
    hstr = float(np.clip(sigma * 255 * 1.1, 2, 20))
    if color.ndim == 3:
        den = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(u8[..., ::-1]), None, hstr, hstr, 5, 15)[..., ::-1]
    else:
        den = cv2.fastNlMeansDenoising(u8, None, hstr, 5, 15)
    report["denoiser"] = f"non-local means (h {hstr:.1f})"
    # 8-bit round trip: keep the original's fine tonal steps where NL-means changed nothing
    den = den.astype(np.float32) / 255
    return np.clip(color + (den - np.round(color * 255) / 255), 0, 1).astype(np.float32)


def people_mask(shape, faces, *, body: bool = True) -> np.ndarray:
    """Soft mask over people: each face (full strength) and, below it, the head and torso (an
    ellipse about 3 face widths wide and 4 face heights tall), feathered."""
    H, W = int(shape[0]), int(shape[1])
    s = min(1.0, 1024 / max(H, W))
    h, w = max(1, round(H * s)), max(1, round(W * s))
    m = np.zeros((h, w), np.float32)
    for f in faces:
        x, y, bw, bh = (v * s for v in (f.box if hasattr(f, "box") else f["box"]))
        cx, cy = x + bw / 2, y + bh / 2
        cv2.ellipse(m, (round(cx), round(cy)), (max(1, round(bw * 0.75)), max(1, round(bh * 0.95))), 0, 0, 360, 1.0, -1)
        if body:
            cv2.ellipse(m, (round(cx), round(y + bh * 3.0)), (max(1, round(bw * 1.5)), max(1, round(bh * 2.3))),
                        0, 0, 360, 1.0, -1)
    if faces:
        m = cv2.GaussianBlur(m, (0, 0), max(1.0, 0.25 * np.median([(f.box if hasattr(f, "box") else f["box"])[2]
                                                                    for f in faces]) * s))
    if (h, w) != (H, W):
        m = cv2.resize(m, (W, H), interpolation=cv2.INTER_LINEAR)
    return np.clip(m, 0, 1).astype(np.float32)


def old_photo(image: np.ndarray, strength: float = 50, *, faces=None, use_network: bool | None = None,
              progress=None) -> dict:
    """Old Photo Clarity.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), float32 [0, 1] sRGB-encoded (uint8 / uint16 converted); alpha kept.
    strength : float in [0, 100]; 50 = the recommended correction, 0 = denoise and sharpen nothing.
    faces : list of :class:`faces.Face`, optional (detected when None).
    use_network : None = learned denoiser when it loads, else NL-means; True = require it; False = NL-means.
    progress : callable(fraction, message), optional.

    Returns
    -------
    dict(clarity=ndarray, clarity_mask=(H, W), background=ndarray, background_mask=(H, W),
    report=dict) with ``background_mask == 1 - clarity_mask``.
    """
    def tick(f, msg):
        if progress is not None:
            progress(float(f), msg)

    image = validate_image(image)
    if not 0 <= float(strength) <= 100:
        raise ValueError("strength must be between 0 and 100")
    color, alpha = split_alpha(image)
    color = np.clip(color, 0.0, 1.0).astype(np.float32)
    k = float(strength) / 50.0
    report: dict = {"mode": "old-photo", "strength": float(strength), "warnings": []}
    tick(0.05, "Measuring grain")
    grain = estimate_grain(color)
    report["grain"] = {key: (round(v, 5) if isinstance(v, float) else v) for key, v in grain.items()}
    tick(0.1, "Removing grain")
    den_sigma = grain["sigma"] * (0.6 + 0.4 * min(k, 1.5))
    den = denoise_grain(color, den_sigma, use_network=use_network, report=report)
    tick(0.45, "Finding people")
    if faces is None:
        from .faces import FaceDetectorUnavailable, detect_faces
        try:
            faces = detect_faces(color)
        except FaceDetectorUnavailable as exc:
            faces = []
            report["warnings"].append(str(exc))
    report["faces"] = [f.to_dict() if hasattr(f, "to_dict") else f for f in faces]
    tick(0.55, "Correcting focus")
    gray = est.working_luma(den)
    sigma = float(np.clip(est.edge_blur_sigma(est.working_luma(den, max_side=2048)), 0.6, 3.0))
    clarity = smart_sharpen(den, sigma=sigma, amount=float(min(1.2, 0.8 * k))) if k > 0 else den.copy()
    report["focus_sigma"] = round(sigma, 2)
    if faces and k > 0:
        from .faces import face_mask
        fm = face_mask(color.shape, faces)
        thr = float(min(0.03, 1.5 * grain["sigma"]))
        clarity = unsharp_mask(clarity, 1.0, 0.5 * min(k, 1.5), thr, mask=fm)
    tick(0.8, "Building masks")
    bmap = est.blur_map(gray)
    subject = masks.subject_mask(bmap)
    split = float(subject.min()) < 0.5
    if faces:
        people = people_mask(color.shape, faces)
        clarity_mask = people if not split else np.maximum(people, subject)
    else:
        clarity_mask = subject
    clarity_mask = np.clip(clarity_mask, 0, 1).astype(np.float32)
    background, background_mask = masks.background_layer(den, clarity_mask, noise_sigma=grain["sigma"])
    report["subject"] = ("people" if faces else "") + (" + in-focus area" if split and faces else
                                                        ("in-focus area" if split else ("" if faces else "whole frame")))
    report["extra_layers"] = [
        {"name": "Old Photo Clarity: subjects", "key": "clarity", "mask": "clarity_mask", "mode": "normal"},
        {"name": "Old Photo Clarity: background", "key": "background", "mask": "background_mask", "mode": "normal"},
    ]
    report["title"] = f"Old Photo Clarity, {strength:.0f}%"
    tick(1.0, "Done")
    return {"clarity": merge_alpha(np.clip(clarity, 0, 1).astype(np.float32), alpha, image),
            "clarity_mask": clarity_mask,
            "background": merge_alpha(background[..., :color.shape[2]] if background.ndim == 3 else background,
                                      alpha, image),
            "background_mask": background_mask,
            "report": report}

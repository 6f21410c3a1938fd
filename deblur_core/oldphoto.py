"""Old Photo Clarity: the layers a retoucher builds for a soft, grainy scanned print, following the
guide the product follows: a gentle AI pass, a gentle unsharp mask on the people only (feathered mask
edges), the background blurred by about 0.5 px against grain.

1. Grain: estimated at full and half resolution (white noise halves its standard deviation when the
   image is area-downscaled by 2; film grain and scan noise, spatially correlated, much less), then
   removed with the project's learned denoiser (:func:`network.denoise`) or, when the model cannot be
   loaded, OpenCV's non-local means (Buades et al. 2005; a warning says so). The ``grain`` control
   (0-100, 50 = the measured level) says how much.
2. Focus: the remaining softness is treated as a gaussian blur and gently deconvolved
   (:func:`sharpen.smart_sharpen`, halo-limited).
3. People (:func:`faces.detect_people`: faces, and bodies in photos with faces) get a gentle halo-free
   unsharp mask; elsewhere the AI pass is softened by ``background_soften`` px (0-3, default 0.5).

:func:`old_photo` returns the two layers (``background`` under ``clarity``) and their masks.
"""
from __future__ import annotations

import cv2
import numpy as np

from . import estimate as est
from . import masks
from .color import merge_alpha, split_alpha, validate_image
from .deconvolution import estimate_noise
from .sharpen import smart_sharpen, unsharp_mask

__all__ = ["old_photo", "estimate_grain", "denoise_grain", "people_mask", "check_controls"]


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


# default controls (the guide's recipe)
BACKGROUND_SOFTEN = 0.5   # px: the background's gaussian blur against grain
GRAIN = 50.0              # 0-100: how much of the measured grain is removed (50 = the measured level)
PEOPLE_RADIUS = 1.2       # px: the people's unsharp mask radius
PEOPLE_AMOUNT = 0.5       # the people's unsharp mask amount at strength 50 (GIMP's "amount")


def people_mask(shape, faces, *, body: bool = True) -> np.ndarray:
    """Soft mask over people: :func:`masks.people_mask` (head, shoulders, torso per face; a body found by
    its silhouette filled), feathered."""
    return masks.people_mask(shape, faces, body=body)


def check_controls(grain, background_soften) -> tuple[float, float | None]:
    """The two controls, checked: ``grain`` 0-100 (None = 50) and ``background_soften`` 0-3 px (None =
    auto: 0.5 px, a little more on heavy grain). A value outside is an error, never clamped."""
    g = GRAIN if grain is None else float(grain)
    if not np.isfinite(g) or not 0.0 <= g <= 100.0:
        raise ValueError(f"grain removal must be between 0 and 100, got {grain}")
    if background_soften is None:
        return g, None
    b = float(background_soften)
    if not np.isfinite(b) or not 0.0 <= b <= 3.0:
        raise ValueError(f"background softening must be between 0 and 3 px, got {background_soften}")
    return g, b


def old_photo(image: np.ndarray, strength: float = 50, *, faces=None, use_network: bool | None = None,
              grain: float | None = None, background_soften: float | None = None, progress=None) -> dict:
    """Old Photo Clarity, as the retoucher's guide builds it by hand (two layers, bottom to top):

    1. ``background``: a gentle AI pass over the whole photo: the grain removed (``grain``: 0 keeps it,
       50 removes the measured level, 100 twice that) and the remaining softness gently deconvolved
       (halo-limited, at most 0.6 of the full correction); outside the people it is blurred by
       ``background_soften`` px (about 0.5) against the grain that is left. Full (white) mask.
    2. ``clarity``: the AI pass with a gentle, halo-free unsharp mask (radius 1.2 px, amount 0.5 at
       strength 50; grain below its threshold left alone: no crunchy texture, no ringing), shown on
       the people only (``clarity_mask``: each person found by the face or, with a face in the photo,
       by the silhouette, feathered over a quarter of a face width, so no line shows where the mask
       ends). Without people, the in-focus part of the blur map (or the whole frame) is the subject.

    The background's softening follows the same feathered mask, so the two layers compose without a
    seam: ``image = clarity * clarity_mask + background * (1 - clarity_mask)``.

    Parameters
    ----------
    image : ndarray (H, W) or (H, W, C), float32 [0, 1] sRGB-encoded (uint8 / uint16 converted); alpha kept.
    strength : float in [0, 100]; 50 = the recommended correction, 0 = only the grain removal and the
        background softening.
    faces : list of :class:`faces.Face`, optional (people detected when None).
    use_network : None = learned denoiser when it loads, else NL-means; True = require it; False = NL-means.
    grain : float in [0, 100], optional (None = 50).
    background_soften : float in [0, 3] px, optional (None = 0.5, up to 1 on heavy grain; 0 = none).
    progress : callable(fraction, message), optional.

    Returns
    -------
    dict with ``layers`` (bottom to top: dicts name, key, image, mask), ``image`` (the two flattened),
    ``background``, ``background_mask`` (all 1), ``clarity``, ``clarity_mask`` (H, W) and ``report``.
    Images have the input's shape (alpha kept), float32 in [0, 1].
    """
    def tick(f, msg):
        if progress is not None:
            progress(float(f), msg)

    image = validate_image(image)
    if not 0 <= float(strength) <= 100:
        raise ValueError("strength must be between 0 and 100")
    grain_pct, soften = check_controls(grain, background_soften)
    color, alpha = split_alpha(image)
    color = np.clip(color, 0.0, 1.0).astype(np.float32)
    k = float(strength) / 50.0
    report: dict = {"mode": "old-photo", "strength": float(strength), "warnings": [], "grain_removal": grain_pct}
    tick(0.05, "Measuring grain")
    measured = estimate_grain(color)
    report["grain"] = {key: (round(v, 5) if isinstance(v, float) else v) for key, v in measured.items()}
    tick(0.1, "Removing grain")
    den_sigma = measured["sigma"] * grain_pct / 50.0
    den = denoise_grain(color, den_sigma, use_network=use_network, report=report) if grain_pct > 0 else color.copy()
    if grain_pct <= 0:
        report["denoiser"] = "none (grain kept)"
    tick(0.45, "Finding people")
    if faces is None:
        from .faces import detect_people
        det: dict = {}
        faces = detect_people(color, info=det)
        if det.get("warning"):
            report["warnings"].append(det["warning"])
    report["faces"] = [f.to_dict() if hasattr(f, "to_dict") else f for f in faces
                       if (getattr(f, "kind", None) or (f.get("kind") if isinstance(f, dict) else None)) != "body"]
    report["people"] = len(faces)
    tick(0.55, "Gentle AI pass")
    gray = est.working_luma(den)
    sigma = float(np.clip(est.edge_blur_sigma(est.working_luma(den, max_side=2048)), 0.6, 2.0))
    base = smart_sharpen(den, sigma=sigma, amount=float(min(0.6, 0.4 * k))) if k > 0 else den.copy()
    report["focus_sigma"] = round(sigma, 2)
    tick(0.75, "Building masks")
    if faces:
        clarity_mask = people_mask(color.shape, faces)
        subject = "people"
    else:
        clarity_mask = masks.subject_mask(est.blur_map(gray))
        subject = "in-focus area" if float(clarity_mask.min()) < 0.5 else "whole frame"
    clarity_mask = np.clip(clarity_mask, 0, 1).astype(np.float32)
    report["subject"] = subject
    tick(0.85, "Sharpening the people")
    # grain left after the denoiser stays below the threshold: only edges are sharpened
    residual = estimate_grain(base)["sigma"] if grain_pct > 0 else measured["sigma"]
    thr = float(np.clip(2.0 * residual, 0.004, 0.03))
    amount = float(min(0.8, PEOPLE_AMOUNT * k))
    clarity = unsharp_mask(base, PEOPLE_RADIUS, amount, thr) if amount > 0 else base.copy()
    report["people_sharpening"] = {"radius": PEOPLE_RADIUS, "amount": round(amount, 3), "threshold": round(thr, 4)}
    if soften is None:
        soften = BACKGROUND_SOFTEN if measured["sigma"] <= 0.01 else \
            float(min(1.0, BACKGROUND_SOFTEN + 10 * (measured["sigma"] - 0.01)))
    background = cv2.GaussianBlur(base, (0, 0), soften) if soften > 0 else base.copy()
    report["background_soften"] = round(float(soften), 3)
    m = clarity_mask if base.ndim == 2 else clarity_mask[..., None]
    background = background + m * (base - background)     # softened outside the people, feathered
    flat = background + m * (clarity - background)        # the people's layer over it
    keep = lambda a: merge_alpha(np.clip(a, 0, 1).astype(np.float32), alpha, image)  # noqa: E731
    layers = [
        {"name": "Old Photo Clarity: background", "key": "background", "image": keep(background),
         "mask": np.ones_like(clarity_mask)},
        {"name": "Old Photo Clarity: subjects", "key": "clarity", "image": keep(clarity), "mask": clarity_mask},
    ]
    report["extra_layers"] = [{"name": layer["name"], "key": layer["key"], "mode": "normal"} for layer in layers]
    report["title"] = f"Old Photo Clarity, {strength:.0f}%"
    tick(1.0, "Done")
    return {"layers": layers, "image": keep(flat), "background": layers[0]["image"],
            "background_mask": layers[0]["mask"], "clarity": layers[1]["image"], "clarity_mask": clarity_mask,
            "report": report}

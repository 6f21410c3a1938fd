"""What blur does a photo have, how much, how sure are we, and can it be repaired?

:func:`analyze` combines the cepstral motion and defocus signatures (:mod:`.estimate`), the edge-width
blur measure, a noise estimate and the image size into a report (a JSON-serialisable dict).
Thresholds were set on the training split of the photo set (bench/bench_engine.py --split train).
"""
from __future__ import annotations

import numpy as np

from . import estimate as est
from .color import validate_image
from .deconvolution import estimate_noise
from .kernels import defocus_kernel, gaussian_kernel, motion_kernel

__all__ = ["analyze", "BLUR_TYPES", "kernel_for"]

BLUR_TYPES = ("sharp", "motion", "shake", "defocus", "gaussian")

SHARP_SIGMA = 0.75          # edge blur (gaussian-equivalent px) below which a photo counts as sharp
MOTION_SCORE = 22.0         # cepstral line depth (robust z-score) for a clear linear motion
DEFOCUS_SCORE = 6.0         # cepstral ring depth x angular consistency for a clear defocus disk
MAX_FRACTION = 0.12         # blur extent beyond this fraction of the short side: beyond repair
MAX_NOISE = 0.05            # noise sigma (encoded [0, 1]) beyond which detail is swamped
LOW_RES = 400               # short side in px below which sharpening cannot add real detail


def kernel_for(report: dict) -> np.ndarray:
    """The parametric kernel a report describes (identity for sharp; the blind estimate for shake)."""
    t, p = report["blur_type"], report["params"]
    if t == "motion":
        return motion_kernel(p["length"], p["angle"])
    if t == "defocus":
        return defocus_kernel(p["radius"])
    if t == "gaussian":
        return gaussian_kernel(p["sigma"])
    if t == "shake" and report.get("kernel") is not None:
        return np.asarray(report["kernel"], np.float32)
    return np.ones((1, 1), np.float32)


def analyze(image: np.ndarray, *, max_side: int = 2048) -> dict:
    """Classify the blur of an sRGB-encoded float image (H, W) or (H, W, C) in [0, 1].

    Returns a dict: ``blur_type`` (one of :data:`BLUR_TYPES`), ``params`` (length/angle, radius or
    sigma in px of the full-size image), ``confidence`` in [0, 1], ``recoverable`` (bool), ``verdict``
    ("sharp", "recoverable", "uncertain", "beyond repair"), ``warnings`` (list of sentences),
    ``noise_sigma``, ``edge_blur`` and ``size``. Camera shake gets its kernel from :mod:`.blind` in the
    pipeline; here it is only recognised.
    """
    image = validate_image(image)
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    y = est.working_luma(image, max_side=max_side)
    noise = estimate_noise(image)
    warnings: list[str] = []
    if min(h, w) < 32:
        return _report("sharp", {}, 0.0, h, w, noise, 0.0, "uncertain",
                       ["the image is too small to analyse (under 32 px)"])
    edge = est.edge_blur_sigma(y) / scale
    cep, _ = est.power_cepstrum(y)
    m_len, m_ang, m_score = est.estimate_motion(y, max_length=min(120.0, min(y.shape) / 4), cep=cep)
    d_rad, d_score = est.estimate_defocus(y, max_radius=min(40.0, min(y.shape) / 8), cep=cep)
    m_len /= scale
    d_rad /= scale
    motion_ok = m_score >= MOTION_SCORE and m_len >= 4.0 / scale
    defocus_ok = d_score >= DEFOCUS_SCORE and d_rad >= 1.5
    if edge < SHARP_SIGMA and not (motion_ok and m_len > 4) and not (defocus_ok and d_rad > 2):
        kind, params = "sharp", {}
        conf = float(np.clip((SHARP_SIGMA - edge) / SHARP_SIGMA + 0.5, 0.3, 1.0))
    elif motion_ok and (not defocus_ok or m_score / MOTION_SCORE >= d_score / DEFOCUS_SCORE):
        kind, params = "motion", {"length": round(m_len, 2), "angle": round(m_ang, 2)}
        conf = float(np.clip(0.5 + 0.5 * (m_score - MOTION_SCORE) / MOTION_SCORE, 0.3, 0.99))
    elif defocus_ok:
        kind, params = "defocus", {"radius": round(d_rad, 2)}
        conf = float(np.clip(0.5 + 0.5 * (d_score - DEFOCUS_SCORE) / DEFOCUS_SCORE, 0.3, 0.99))
    else:
        anis = _anisotropy(y)
        if anis > 0.35 and edge > 1.0:
            kind, params = "shake", {"extent": round(float(4 * edge), 1)}
            conf = float(np.clip(anis, 0.3, 0.9))
        else:
            kind, params = "gaussian", {"sigma": round(float(edge), 2)}
            conf = float(np.clip(1 - anis, 0.3, 0.9))
    extent = {"motion": params.get("length", 0), "defocus": 2 * params.get("radius", 0),
              "gaussian": 6 * params.get("sigma", 0), "shake": params.get("extent", 0)}.get(kind, 0)
    verdict = "sharp" if kind == "sharp" else "recoverable"
    if kind != "sharp" and extent > MAX_FRACTION * min(h, w):
        verdict = "beyond repair"
        warnings.append(f"the blur ({extent:.0f} px) is too large for a {w}x{h} image to be restored")
    if noise > MAX_NOISE and kind != "sharp":
        verdict = "beyond repair"
        warnings.append(f"noise (sigma {noise:.3f}) swamps the detail that deblurring would recover")
    if min(h, w) < LOW_RES:
        warnings.append("low-resolution image: sharpening can make edges crisper but cannot add detail")
    if verdict == "recoverable" and conf < 0.45:
        verdict = "uncertain"
    return _report(kind, params, conf, h, w, noise, edge, verdict, warnings,
                   scores={"motion": round(m_score, 2), "defocus": round(d_score, 2)})


def _anisotropy(y: np.ndarray) -> float:
    """Directional imbalance of high-frequency energy (0 isotropic .. 1 one direction only).

    Blur along a direction removes gradients along it; isotropic blur (defocus, gaussian) does not.
    """
    g = y - y.mean()
    F = np.abs(np.fft.fft2(g[: 512, : 512] if min(g.shape) >= 512 else g)) ** 2
    F = np.fft.fftshift(F)
    n, m = F.shape
    yy, xx = np.indices(F.shape)
    fy, fx = (yy - n // 2) / n, (xx - m // 2) / m
    r = np.hypot(fx, fy)
    band = (r > 0.05) & (r < 0.35)
    ang = (np.degrees(np.arctan2(fy, fx)) % 180)[band]
    e = np.log(F[band] + 1e-12)
    bins = np.clip((ang / 15).astype(int), 0, 11)
    means = np.array([e[bins == b].mean() for b in range(12)])
    return float(np.clip((means.max() - means.min()) / 6.0, 0.0, 1.0))


def _report(kind, params, conf, h, w, noise, edge, verdict, warnings, scores=None) -> dict:
    return {
        "blur_type": kind, "params": params, "confidence": round(float(conf), 3),
        "recoverable": verdict in ("recoverable", "uncertain", "sharp"), "verdict": verdict,
        "warnings": warnings, "noise_sigma": round(float(noise), 5), "edge_blur": round(float(edge), 3),
        "size": [int(w), int(h)], "scores": scores or {},
    }

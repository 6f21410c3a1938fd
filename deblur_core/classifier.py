"""What blur does a photo have, how much, how sure are we, and can it be repaired?

:func:`features` measures the cepstral motion and defocus signatures (:mod:`.estimate`), edge width
overall and by orientation, spectral anisotropy and noise; a small multinomial logistic model with
quadratic terms (``classifier_model.json``) and the blur-type network (``models/blurtype-v2.onnx``,
which also reads the cepstrum and log power spectrum themselves, :func:`spectral_planes`), both fitted
on the training split only (``training/train_blurtype.py``), vote on the blur type (:func:`classify`);
the parametric estimates give its parameters. :func:`analyze` adds the recoverability verdict (blur
extent against image size, noise).
"""
from __future__ import annotations

import json
import os

import numpy as np

from . import estimate as est
from . import sharpness as sharp
from .color import validate_image
from .deconvolution import estimate_noise
from .kernels import defocus_kernel, gaussian_kernel, motion_kernel
from .streaks import agreed_streak

__all__ = ["analyze", "BLUR_TYPES", "kernel_for"]

BLUR_TYPES = ("sharp", "motion", "defocus", "gaussian", "shake")

MAX_FRACTION = 0.12         # blur extent beyond this fraction of the short side: beyond repair
MAX_NOISE = 0.05            # noise sigma (encoded [0, 1]) beyond which detail is swamped
LOW_RES = 400               # short side in px below which sharpening cannot add real detail
# A motion length within this many px of the cepstral search's floor (estimate.MOTION_FLOOR) is the floor,
# not a measurement: real shaken photos read 4.2-4.8 px there (stop 23), synthetic motion is 5-40 px.
FLOOR_MARGIN = 1.5
MOTION_MIN_SCORE = 3.0      # cepstral motion score below which a straight line does not explain the blur
DEFOCUS_MIN_SCORE = 2.0     # cepstral ring score below which the defocus radius is a guess




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


FEATURES = ("edge", "edge_q25", "edge_q75", "dir_anisotropy", "motion_score", "motion_length",
            "defocus_score", "defocus_radius", "spectral_anisotropy", "noise",
            "ac_major", "ac_minor", "ac_elongation", "ac_fill", "spectral_drop", "spectral_drop_std",
            # the Welch log power spectrum's radial decay (band 0.02-0.04 cycles/px as reference) and its
            # orientation spread in three bands: gaussian falls off steeply and evenly, defocus
            # slowly with ripples, motion and shake unevenly
            "welch_r1", "welch_r2", "welch_r3", "welch_r4", "welch_r5", "welch_r6", "welch_r7",
            "welch_aniso2", "welch_aniso4", "welch_aniso6",
            # edge blur in 8 gradient orientations: spread, sharpest orientation, within-orientation spread;
            # entropy of the edge-width histogram
            "edge8_anisotropy", "edge8_min", "edge8_iqr", "edge_entropy",
            # the gradient autocorrelation's lobe at two more levels (elongation, minor axis, fill)
            "ac50_elongation", "ac50_minor", "ac50_fill", "ac25_elongation", "ac25_minor", "ac25_fill")
MODEL_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "classifier_model.json")
_model_cache: dict = {}


PLANE_SIZE = 96  # the blur-type network's input: (2, 96, 96) spectral planes


def spectral_planes(cep: np.ndarray, logp: np.ndarray, size: int = PLANE_SIZE) -> np.ndarray | None:
    """The blur-type network's input planes, (2, size, size) float32, from the Welch cepstrum and log
    power spectrum (both fftshifted, tile x tile, :func:`estimate.power_cepstrum`); None when the tile
    is smaller than ``size`` (tiny images).

    0: the cepstrum's centre, size x size px (blur extents up to size / 2 px: a motion blur's pair of
    dips, a defocus blur's ring, a shake's trajectory), over its robust spread (the origin clipped);
    1: the log power spectrum, area-resampled to size x size, standardised (its decay and zeros)."""
    import cv2
    tile = cep.shape[0]
    if tile < size:
        return None
    c, r = tile // 2, size // 2
    a = cep[c - r:c + r, c - r:c + r].astype(np.float32)
    a = a - np.median(a)
    a /= 1.4826 * np.median(np.abs(a)) + 1e-9
    b = cv2.resize(logp.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    b = (b - b.mean()) / (b.std() + 1e-9)
    return np.stack([np.clip(a, -20, 20), np.clip(b, -6, 6)]).astype(np.float32)


def features(image: np.ndarray, *, max_side: int = 2048, with_planes: bool = False) -> dict:
    """Blur features of an sRGB-encoded image, plus the parametric estimates they come from.

    Returns a dict with ``vector`` (the model's inputs, in :data:`FEATURES` order) and ``raw`` (the
    estimates in px of the full-size image: edge blur, motion length/angle/score, defocus radius/score,
    noise); with ``with_planes`` also ``planes`` (:func:`spectral_planes`, or None).
    """
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    y = est.working_luma(image, max_side=max_side)
    noise = estimate_noise(image, window=1536)
    cep, _, logp = est.power_cepstrum(y, logpower=True)
    # The global reading: the model was trained on it, and on real shaken photos the per-radius reading
    # finds "clear" straight lines of 10-110 px (docs/experiments/diagnosis.md, stop 23).
    m_len, m_ang, m_score = est.estimate_motion(y, max_length=min(120.0, min(y.shape) / 4), cep=cep,
                                                normalise="global")
    d_rad, d_score = est.estimate_defocus(y, max_radius=min(40.0, min(y.shape) / 8), cep=cep)
    cand = est.edge_candidates(y)  # gradients and edge pixels: shared by every re-blur measurement
    measured = est.edge_ratio_sigma(y, return_orientation=True, candidates=cand)  # and by the two edge measures
    edge = est.edge_blur_sigma(y, measured=measured[:2], candidates=cand)
    dirs, (q25, q50, q75) = est.directional_blur(y, measured=measured)
    dirs = dirs[np.isfinite(dirs)]
    anis = float(np.log((dirs.max() + 0.2) / (dirs.min() + 0.2))) if dirs.size >= 2 else 0.0
    vec = [np.log(edge + 0.2), np.log(np.nan_to_num(q25, nan=edge) + 0.2), np.log(np.nan_to_num(q75, nan=edge) + 0.2),
           anis, np.log1p(max(m_score, 0)), np.log(m_len + 1), np.log1p(max(d_score, 0)), np.log(d_rad + 1),
           0.0, np.log(noise + 1e-3)]
    drops = spectral_drops(y)
    vec[8] = float(drops.max() - drops.min())
    vec += [float(drops.mean()), float(np.std(drops))]
    ac = est.gradient_autocorrelation(y)
    major, minor, fill = est.autocorrelation_shape(ac)
    vec += [np.log(major), np.log(minor), np.log(major / minor), fill]
    vec += _spectrum_features(est.spectrum_polar_grid(logp))
    vec += _edge_features(measured, vec[0])
    for level in (0.5, 0.25):
        try:
            a, b, fl = est.autocorrelation_shape(ac, level)
        except Exception:  # a degenerate lobe
            a, b, fl = 1.0, 1.0, 1.0
        vec += [np.log(a / b), np.log(b), fl]
    raw = {"edge_blur": edge / scale, "motion_length": m_len / scale, "motion_angle": m_ang,
           "motion_score": m_score, "defocus_radius": d_rad / scale, "defocus_score": d_score, "noise": noise}
    vec = np.nan_to_num(np.array(vec, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    out = {"vector": vec, "raw": raw, "scale": scale, "luma": y}
    if with_planes:
        out["planes"] = spectral_planes(cep, logp)
    return out


def _spectrum_features(grid: np.ndarray) -> list:
    """Radial decay of the log power (each band against the lowest) and its orientation spread."""
    import warnings
    with warnings.catch_warnings():  # all-NaN bands (tiny images): NaN features, zeroed by the caller
        warnings.simplefilter("ignore", RuntimeWarning)
        rad = np.nanmean(grid, axis=0)
        out = [rad[j] - rad[0] for j in range(1, grid.shape[1])]
        for j in (2, 4, 6):
            d = grid[:, j] - grid[:, 0]
            out.append(np.nanmax(d) - np.nanmin(d))
    return [float(v) for v in out]


def _edge_features(measured, log_edge: float, bins: int = 8) -> list:
    """Edge-width quartiles in ``bins`` gradient orientations -> (log max/min median, log min median,
    mean log inter-quartile ratio) and the entropy of the log edge-width histogram."""
    sigma, mask, theta = measured
    s = sigma[mask]
    b = (((theta[mask] % np.pi) / np.pi * bins + 0.5).astype(int)) % bins
    q = np.array([np.percentile(s[b == i], [25, 50, 75]) if np.sum(b == i) >= 10 else [np.nan] * 3
                  for i in range(bins)])
    ok = np.isfinite(q[:, 1])
    if ok.sum() >= 2:
        med = q[ok, 1]
        out = [np.log((med.max() + 0.2) / (med.min() + 0.2)), np.log(med.min() + 0.2),
               float(np.mean(np.log((q[ok, 2] + 0.2) / (q[ok, 0] + 0.2))))]
    else:
        out = [0.0, log_edge, 0.0]
    h = np.histogram(np.log(np.clip(s, 0.05, 50)), bins=16, range=(np.log(0.05), np.log(50)))[0] / max(1, s.size)
    out.append(float(-np.sum(h * np.log(h + 1e-6))))
    return [float(v) for v in out]


def _model():
    if "m" not in _model_cache:
        with open(MODEL_FILE) as f:
            m = json.load(f)
        if tuple(m["features"]) != FEATURES:
            raise RuntimeError(f"{MODEL_FILE} was trained for other features; retrain with training/train_classifier.py")
        _model_cache["m"] = {k: np.asarray(v) if isinstance(v, list) else v for k, v in m.items()}
    return _model_cache["m"]


def expand(vec: np.ndarray) -> np.ndarray:
    """Standardised features with their pairwise products (a quadratic decision surface)."""
    iu = np.triu_indices(vec.shape[-1])
    quad = (vec[..., :, None] * vec[..., None, :])[..., iu[0], iu[1]]
    return np.concatenate([vec, quad], axis=-1)


def predict_proba(vec: np.ndarray) -> np.ndarray:
    """Class probabilities (in :data:`BLUR_TYPES` order) for one feature vector."""
    m = _model()
    z = (vec - m["mean"]) / m["std"]
    logits = expand(z) @ m["weights"] + m["bias"]
    e = np.exp(logits - logits.max())
    return e / e.sum()


NETWORK = "blurtype-v2"  # the blur-type network of deblur_core.network.MODELS


def network_logits(planes: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """The blur-type network's logits (in :data:`BLUR_TYPES` order) for one case: ``planes`` from
    :func:`spectral_planes`, ``vec`` the feature vector. Raises ``network.ModelError`` when the
    network is missing, corrupt or cannot run."""
    from .network import ModelError, load_model
    model = load_model(NETWORK, threads=1)  # a few MMAC: more threads would only cost their start
    try:
        out = model.session.run(None, {"planes": np.ascontiguousarray(planes[None], np.float32),
                                       "features": np.ascontiguousarray(vec[None], np.float32)})[0]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
        raise ModelError(f"the blur-type network failed: {exc}") from exc
    return np.asarray(out, np.float64)[0]


def classify(vec: np.ndarray, planes: np.ndarray | None) -> tuple:
    """Class probabilities (in :data:`BLUR_TYPES` order) and a warning (or None).

    The logistic model on the features and the blur-type network (which also reads the spectral
    planes) are combined as the normalised geometric mean of their probabilities; without planes
    (images under ~150 px) or without a working network, the logistic model decides alone and the
    warning says why."""
    p_feat = predict_proba(vec)
    if planes is None:
        return p_feat, None
    from .network import ModelError
    try:
        logits = network_logits(planes, vec)
    except ModelError as exc:
        return p_feat, f"the blur-type network is unavailable ({exc}); the blur type comes from the feature model alone"
    e = np.exp(logits - logits.max())
    p_net = e / e.sum()
    g = np.sqrt(np.maximum(p_feat, 1e-12) * np.maximum(p_net, 1e-12))
    return g / g.sum(), None


def analyze(image: np.ndarray, *, max_side: int = 2048) -> dict:
    """Classify the blur of an sRGB-encoded float image (H, W) or (H, W, C) in [0, 1].

    Returns a dict: ``blur_type`` (one of :data:`BLUR_TYPES`), ``params`` (length/angle, radius or
    sigma in px of the full-size image), ``confidence`` in [0, 1] (the class probability),
    ``probabilities``, ``recoverable`` (bool), ``verdict`` ("sharp", "recoverable", "uncertain",
    "beyond repair"), ``warnings`` (list of sentences), ``noise_sigma``, ``edge_blur`` and ``size``.
    Camera shake gets its kernel from :mod:`.blind` in the pipeline; here it is only recognised.
    """
    image = validate_image(image)
    if image.ndim == 3 and image.shape[2] in (2, 4):
        image = image[..., :-1]
    h, w = image.shape[:2]
    if min(h, w) < 32:
        rep = _report("sharp", {}, 0.0, h, w, estimate_noise(image) if min(h, w) >= 3 else 0.0, 0.0,
                      "uncertain", ["the image is too small to analyse (under 32 px)"])
        rep["summary"] = "No diagnosis: the image is too small to analyse (under 32 px)."
        return rep
    f = features(image, max_side=max_side, with_planes=True)
    raw = f["raw"]
    proba, model_note = classify(f["vector"], f["planes"])
    warnings: list[str] = [model_note] if model_note else []
    kind = BLUR_TYPES[int(np.argmax(proba))]
    # Blurry or sharp: the classifier's verdict checked against noise-robust edge widths across scales
    # (sharpness.py). Noise, JPEG and texture read as sharpness by the spectral features alone.
    cues = sharp.sharpness_cues(image, max_side=max_side)
    p_blur = sharp.blur_probability(cues, float(proba[0]), float(f["vector"][9]))
    blurry_share = proba[1:] / max(float(proba[1:].sum()), 1e-12)  # the blur type, given it is blurred
    if kind == "sharp" and p_blur > sharp.THRESHOLD:
        kind = BLUR_TYPES[1 + int(np.argmax(blurry_share))]
        warnings.append("the edges are wider than a sharp photo's at every scale: called blurred although the "
                        "blur-type model alone saw a sharp photo")
    # Confidence: the blurry/sharp decision and the type within "blurred" must both hold. When the
    # classifier and the edge-width measure disagree, p_blur sits near the threshold and this is low.
    if kind == "sharp":
        conf = min(float(proba[0]), 1.0 - p_blur) if p_blur > 0.2 else float(proba[0])
    else:
        conf = p_blur * float(blurry_share[BLUR_TYPES.index(kind) - 1])
    # At night the strongest edges are light trails, sharp across the trail: the edge widths read
    # "sharp". Several lights drawing one shape are the camera's path itself (streaks.py).
    trail = agreed_streak(image) if kind in ("sharp", "shake") else None
    if trail is not None and kind == "sharp":
        kind = "shake"
        conf = min(0.9, 0.4 + 0.1 * trail["votes"])
        warnings.append(f"{trail['votes'] + 1} lights draw the same {trail['size'][0]}x{trail['size'][1]} px trail: "
                        "the camera moved during the exposure, although the edges alone looked sharp")
    conf = float(np.clip(conf, 0.0, 1.0))
    if not np.isfinite(cues.get("s1_med", np.nan)):
        # no strong edge to measure a width on (a flat or featureless image): nothing is measured
        conf = min(conf, 0.3)
        warnings.append("the image has no clear edges to measure blur on; the diagnosis is a guess")
    edge = raw["edge_blur"]
    status, why = "measured", ""
    at_floor = raw["motion_length"] * f["scale"] <= est.MOTION_FLOOR + FLOOR_MARGIN
    if kind == "motion" and (raw["motion_score"] < MOTION_MIN_SCORE or at_floor):
        # A straight line does not explain the blur (no clear cepstral pair, or the length sits at the
        # estimator's floor): camera shake, whose kernel the blind estimator measures.
        why = (f"no straight-line motion signature (cepstral score {raw['motion_score']:.1f}, length estimate "
               f"{raw['motion_length']:.1f} px at the estimator's floor)" if at_floor
               else f"the straight-line motion signature is weak (cepstral score {raw['motion_score']:.1f} < {MOTION_MIN_SCORE})")
        kind = "shake"
        warnings.append(f"{why}: treated as camera shake, whose blur path is estimated blindly")
    if kind == "motion":
        params = {"length": round(raw["motion_length"], 2), "angle": round(raw["motion_angle"], 2)}
        extent = params["length"]
    elif kind == "defocus":
        params = {"radius": round(raw["defocus_radius"], 2)}
        extent = 2 * params["radius"]
        if raw["defocus_score"] < DEFOCUS_MIN_SCORE or raw["defocus_radius"] * f["scale"] <= 0.55:
            status = "uncertain"
            why = (f"no clear defocus ring in the cepstrum (score {raw['defocus_score']:.1f}); the radius "
                   f"{params['radius']:.1f} px is a guess")
    elif kind == "gaussian":
        # The spectrum's fall reads the sigma of a gaussian blur; the edge widths under-read one of 2-5 px
        # by half or more (estimate.spectral_gaussian_sigma), so they stand in only where the spectrum cannot
        # be read.
        sigma, spectral = est.soft_focus_sigma(f["luma"], f["scale"], edge)
        params = {"sigma": round(max(sigma, 0.5), 2)}
        extent = 6 * params["sigma"]
        if not spectral:
            status, why = "uncertain", ("the spectrum does not show the blur in enough directions: the sigma is the "
                                        "edge width's")
            if edge <= 0.5:
                why = "the edge width is at the measurement's floor"
    elif kind == "shake" and trail is not None:
        params = {"extent": float(max(trail["size"])), "trail": trail["size"]}
        extent = params["extent"]
        why = (f"camera shake: the extent (px) is the longer side of the trail that {trail['votes'] + 1} lights "
               "agree on (a lamp's own size included); the kernel itself is measured by the blind estimator "
               "(deblur --mode shake)")
    elif kind == "shake":
        params = {"extent": round(float(max(4 * edge, raw["motion_length"] if raw["motion_score"] > 10 else 0)), 1)}
        extent = params["extent"]
        status = "uncertain"
        why = why or "camera shake: the extent (px) is a rough figure from the edge width"
        why += "; the kernel itself is measured by the blind estimator (deblur --mode shake)"
    else:
        params, extent = {}, 0.0
        status = "none"
    noise = raw["noise"]
    verdict = "sharp" if kind == "sharp" else "recoverable"
    if kind != "sharp" and extent > MAX_FRACTION * min(h, w):
        verdict = "beyond repair"
        warnings.append(f"the blur ({extent:.0f} px) is too large for a {w}x{h} image to be restored")
    if noise > MAX_NOISE:  # noise this strong also hides the blur: "sharp" cannot be told either
        verdict = "beyond repair"
        warnings.append(f"noise (sigma {noise:.3f}) swamps the detail that deblurring would recover")
    if min(h, w) < LOW_RES:
        warnings.append("low-resolution image: sharpening can make edges crisper but cannot add detail")
    if verdict == "recoverable" and conf < 0.45:
        verdict = "uncertain"
        warnings.append("the blur type is uncertain; try the specific modes and compare")
    rep = _report(kind, params, conf, h, w, noise, edge, verdict, warnings,
                  scores={"motion": round(raw["motion_score"], 2), "defocus": round(raw["defocus_score"], 2)})
    rep["probabilities"] = {k: round(float(p), 3) for k, p in zip(BLUR_TYPES, proba)}
    rep["estimates"] = {k: round(float(v), 3) for k, v in raw.items()}
    # How far the parameters are measurements: "measured", "uncertain" (with the reason in
    # params_note; the figures are then a guess, never an estimator's floor passed off as a size) or
    # "none" (sharp).
    rep["params_status"] = status
    rep["summary"] = plain_summary(kind, params, conf, verdict, measured=status != "uncertain")
    if why:
        rep["params_note"] = why
    rep["blur_probability"] = round(p_blur, 3)
    if trail is not None:
        rep["light_trails"] = trail
    rep["sharpness"] = {k: (round(float(v), 3) if v is not None and np.isfinite(v) else None)
                        for k, v in cues.items() if k.endswith(("_med", "_max"))}
    return rep


def spectral_drops(y: np.ndarray, bins: int = 12) -> np.ndarray:
    """Per-direction drop of log power from low (0.03-0.08 cycles/px) to high (0.25-0.45) frequencies.

    A scene's own directional structure shifts the whole spectrum of a direction up or down; blur
    steepens its decay. The drop cancels the first and keeps the second: equal drops in every direction
    mean isotropic blur (defocus, gaussian), unequal ones directional blur (motion, shake).
    """
    g = y - y.mean()
    if min(g.shape) > 512:
        y0, x0 = (g.shape[0] - 512) // 2, (g.shape[1] - 512) // 2
        g = g[y0:y0 + 512, x0:x0 + 512]
    n, m = g.shape
    win = np.outer(np.hanning(n), np.hanning(m))
    F = np.fft.fftshift(np.abs(np.fft.fft2(g * win)) ** 2)
    yy, xx = np.indices(F.shape)
    fy, fx = (yy - n // 2) / n, (xx - m // 2) / m
    r = np.hypot(fx, fy)
    ang = (np.arctan2(fy, fx) % np.pi) / np.pi * bins
    b = np.clip(ang.astype(int), 0, bins - 1)
    logp = np.log(F + 1e-14)
    low = (r > 0.03) & (r < 0.08)
    high = (r > 0.25) & (r < 0.45)
    drops = np.empty(bins)
    for i in range(bins):
        sel = b == i
        drops[i] = logp[sel & low].mean() - logp[sel & high].mean()
    return drops


def _report(kind, params, conf, h, w, noise, edge, verdict, warnings, scores=None) -> dict:
    return {
        "blur_type": kind, "params": params, "confidence": round(float(conf), 3),
        "recoverable": verdict in ("recoverable", "uncertain", "sharp"), "verdict": verdict,
        "warnings": warnings, "noise_sigma": round(float(noise), 5), "edge_blur": round(float(edge), 3),
        "size": [int(w), int(h)], "scores": scores or {},
    }


_VERDICT_WORDS = {"sharp": "nothing to restore", "recoverable": "can be restored",
                  "uncertain": "uncertain, try the specific modes and compare",
                  "beyond repair": "beyond repair, expect limited benefit"}


def plain_summary(kind: str, params: dict, confidence: float, verdict: str, *, measured: bool = True) -> str:
    """The diagnosis in one sentence a photographer reads: the blur, its size in px of the photo, how sure,
    and the verdict; e.g. "Camera shake, about 26 px across (70 % sure): can be restored." A size that is
    not a measurement (``measured`` False, the report's ``params_status`` "uncertain") is called a guess."""
    p = params or {}
    if kind == "motion":
        what = f"Motion blur, {p.get('length', 0):.0f} px long at {p.get('angle', 0):.0f} degrees"
    elif kind == "defocus":
        what = f"Out of focus, blur radius {p.get('radius', 0):.1f} px"
    elif kind == "gaussian":
        what = f"Soft focus, edges about {p.get('sigma', 0):.1f} px wide (gaussian sigma)"
    elif kind == "shake" and "trail" in p:
        what = f"Camera shake, about {p.get('extent', 0):.0f} px across, seen in the light trails"
    elif kind == "shake":
        what = f"Camera shake, about {p.get('extent', 0):.0f} px across"
        if not measured:
            what = (f"Camera shake; its size is measured when deblurring (Camera Shake), a rough guess "
                    f"here is {p.get('extent', 0):.0f} px")
    else:
        what = "Sharp"
    if not measured and kind in ("defocus", "gaussian"):
        what += " (a guess: see the notes)"
    return f"{what} ({100 * float(confidence):.0f} % sure): {_VERDICT_WORDS.get(verdict, verdict)}."

"""deblur(): from a photo to the restored photo, a suggested layer mask and a report."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import estimate as est
from . import masks
from .classifier import analyze, kernel_for
from .color import merge_alpha, split_alpha, validate_image
from .deconvolution import deconvolve
from .kernels import defocus_kernel, gaussian_kernel, motion_kernel, normalize
from .sharpen import smart_sharpen, unsharp_mask
from .vocabulary import MASKS, MODES, mode_for_blur_type

__all__ = ["deblur", "DeblurResult", "MODES", "SHAKE_METHODS", "Strength", "strength_settings"]

SHAKE_METHODS = ("dark", "classic")


class Cancelled(Exception):
    """Raised through the progress callback to stop work."""


@dataclass
class DeblurResult:
    image: np.ndarray                      # float32, same shape as the input
    mask: np.ndarray                       # float32 (H, W) in [0, 1]
    report: dict = field(default_factory=dict)
    kernel: np.ndarray | None = None       # the PSF used, when there was one
    # The layers a retoucher would build, bottom to top: dicts with "name", "image" (like ``image``)
    # and "mask" (H, W). Empty: one layer, ``image`` with ``mask``.
    layers: list = field(default_factory=list)


def _progress(cb, fraction, message):
    if cb is not None:
        cb(float(fraction), message)


@dataclass(frozen=True)
class Strength:
    """What the strength slider (0..100) means, computed once (:func:`strength_settings`) and read by every
    route. 50, the default, is the recommended correction; below 50 the result fades toward the original,
    above 50 the restoration relaxes its regularisation (more detail, more risk)."""

    percent: float          # the slider, 0..100 (Old Photo Clarity maps it onto its own curves)
    blend: float            # share of the correction in the result, 0..1 (the guards may lower it)
    regularization: float   # deconvolution's regularisation scale: 1 at <= 50, halving every 25 above
    sharpen_amount: float   # Smart Sharpen's amount when not given
    gentle_amount: float    # gentle sharpening of a photo already sharp, or in place of an untrusted kernel


def strength_settings(strength: float) -> Strength:
    """The :class:`Strength` record for a slider value in [0, 100] (ValueError outside)."""
    s = float(strength)
    if not 0 <= s <= 100:
        raise ValueError("strength must be between 0 and 100")
    blend = min(s / 50.0, 1.0)
    reg = 1.0 if s <= 50 else 2.0 ** (-(s - 50) / 25.0)
    return Strength(percent=s, blend=blend, regularization=reg, sharpen_amount=1.0 / reg,
                    gentle_amount=0.5 / reg ** 0.5)


def deblur(image: np.ndarray, mode: str = "auto", strength: float = 50, kernel: np.ndarray | None = None, *,
           mask: str = "auto", progress=None, length: float | None = None, angle: float | None = None,
           radius: float | None = None, kernel_size: int | None = None, sharpen_radius: float | None = None,
           amount: float | None = None, threshold: float = 0.0, use_network: bool | None = None,
           roi=None, shake_regions: int | None = None, shake_method: str = "dark") -> DeblurResult:
    """Restore a blurred photo.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, C), C in 1..4 (alpha last), float32 in [0, 1] sRGB-encoded
        (uint8 / uint16 are converted). Alpha is passed through unchanged.
    mode : {"auto", "motion", "focus", "shake", "sharpen", "old-photo"}
    strength : float in [0, 100]
        0 returns the input, 50 (default) the recommended correction, 100 the strongest.
    kernel : ndarray (kh, kw), optional
        A known PSF: used as is (non-blind), whatever the mode.
    mask : {"auto", "full", "none", "subject", "faces"}
        Which suggested mask to return.
    progress : callable(fraction, message), optional
        Called as work advances; raising from it cancels.
    length, angle, radius, kernel_size, sharpen_radius, amount, threshold, roi
        Mode controls; None means estimated from the photo.
    shake_regions : int or None
        Camera shake: kernels per side of a grid (1..4; 1 = one kernel for the whole photo), for blur
        that varies across the frame (:mod:`deblur_core.spatial`). None (default): 2 on photos at least
        :data:`~deblur_core.spatial.GRID_MIN_SIDE` (1024) px on the shorter side, else 1. Ignored with
        ``roi`` (the selection is the one region to estimate on).
    shake_method : {"dark", "classic"}
        Camera-shake kernel estimator tried first: "dark" (default: dark channel and L0 gradient priors,
        Pan et al. 2016, :mod:`deblur_core.shake`) or "classic" (L0 gradients, Cho & Lee edge selection,
        the finest level denoised, :mod:`deblur_core.blind`). When its kernel does not explain the photo
        the other one is tried (figures: ``docs/experiments/shake.md``).

    Returns
    -------
    DeblurResult with ``image`` (same shape and range), ``mask`` (H, W) and ``report`` (dict).
    """
    t0 = time.perf_counter()
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if mask not in MASKS:
        raise ValueError(f"unknown mask {mask!r}; choose from {', '.join(MASKS)}")
    image = validate_image(image)
    st = strength_settings(strength)        # what the slider means, for every route below
    from .spatial import MAX_REGIONS, auto_regions
    if shake_method not in SHAKE_METHODS:
        raise ValueError(f"unknown shake method {shake_method!r}; choose from {', '.join(SHAKE_METHODS)}")
    if shake_regions is not None and (int(shake_regions) != shake_regions or not 1 <= shake_regions <= MAX_REGIONS):
        raise ValueError(f"shake regions per side must be a whole number from 1 to {MAX_REGIONS}, got {shake_regions}")
    color, alpha = split_alpha(image)
    color = np.clip(color, 0.0, 1.0)
    h, w = color.shape[:2]
    if shake_regions is None:
        shake_regions = auto_regions(h, w)
    _progress(progress, 0.02, "Analysing blur")
    report = analyze(color)
    report["mode"] = mode
    report["strength"] = float(strength)
    blend, reg_scale = st.blend, st.regularization
    psf = None
    action = ""
    layers: list = []
    grid: dict = {}     # shake with several regions: their kernels (spatial.estimate_kernel_grid)
    if kernel is not None:
        psf = normalize(np.asarray(kernel, np.float32))
        if psf.shape[0] > h or psf.shape[1] > w:
            raise ValueError(f"the kernel ({psf.shape[1]}x{psf.shape[0]}) is larger than the image ({w}x{h})")
        action = f"custom kernel {psf.shape[1]}x{psf.shape[0]}"
        route = "deconvolve"
    else:
        route, psf, action = _choose(color, mode, report, length=length, angle=angle, radius=radius,
                                     kernel_size=kernel_size, roi=roi, progress=progress,
                                     shake_regions=shake_regions, grid=grid, shake_method=shake_method)
    _progress(progress, 0.3, "Restoring")
    if blend <= 0:
        restored = color.copy()
    elif route == "deconvolve" and grid:
        from .spatial import restore_grid
        restored = restore_grid(color, grid["regions"], grid["kernels"],
                                lambda part, k: _restore(part, k, reg_scale, use_network, report, None),
                                progress=(lambda f, m: _progress(progress, 0.3 + 0.55 * f, m)) if progress else None)
    elif route == "deconvolve":
        restored = _restore(color, psf, reg_scale, use_network, report, progress)
    elif route == "sharpen":
        r = sharpen_radius or float(np.clip(report["edge_blur"] * 1.5, 0.7, 4.0))
        a = amount if amount is not None else st.sharpen_amount
        restored = unsharp_mask(color, r, a, threshold)
        action = f"smart sharpen radius {r:.1f} px, amount {a:.2f}"
    elif route == "old-photo":
        from .oldphoto import old_photo
        op = old_photo(color, st.percent, use_network=use_network,
                       progress=(lambda f, m: _progress(progress, 0.3 + 0.5 * f, m)) if progress else None)
        cm = op["clarity_mask"] if color.ndim == 2 else op["clarity_mask"][..., None]
        restored = op["clarity"] * cm + op["background"] * (1 - cm)
        report["old_photo"] = {k: v for k, v in op["report"].items() if k != "extra_layers"}
        report["warnings"].extend(op["report"].get("warnings", []))
        blend = 1.0  # old_photo applies the strength itself
        layers = [{"name": "Old Photo Clarity: background", "image": op["background"], "mask": op["background_mask"]},
                  {"name": "Old Photo Clarity: subjects", "image": op["clarity"], "mask": op["clarity_mask"]}]
    else:  # nothing to do: a sharp photo gets a gentle deconvolution sharpening
        restored = smart_sharpen(color, amount=st.gentle_amount)
    _progress(progress, 0.85, "Building mask")
    user_kernel = kernel is not None or (mode == "motion" and length is not None and angle is not None) or \
        (mode == "focus" and radius is not None)
    if route == "deconvolve" and not user_kernel and blend > 0 and grid and not _grid_trusted(color, restored, grid, report):
        # A region's own kernel does not explain its part of the photo: one kernel for the whole photo,
        # checked like any other below.
        grid.clear()
        restored = _restore(color, psf, reg_scale, use_network, report, progress)
        action = f"camera shake {psf.shape[1]}x{psf.shape[0]} px kernel (one for the whole photo)"
    if route == "deconvolve" and not user_kernel and blend > 0 and psf is not None and psf.size > 1 and not grid:
        trusted = _kernel_trusted(color, restored, psf, report)
        # Candidates when a kernel is not trusted: a straight line or a disk is one kind of kernel, the
        # blind estimators find the others (issue 20); the other shake estimator next (issue 19).
        tried = [shake_method] if mode == "shake" or report["blur_type"] == "shake" and mode == "auto" else []
        first = report["blur_type"]
        for method in (shake_method, "dark" if shake_method == "classic" else "classic"):
            if trusted or mode not in ("auto", "shake") or method in tried:
                continue
            tried.append(method)
            try:
                _, psf2, action2 = _choose(color, "shake", report, length=None, angle=None, radius=None,
                                           kernel_size=kernel_size, roi=roi, progress=progress, shake_regions=1,
                                           grid={}, shake_method=method)
            except ValueError:          # too few edges for a blind estimate: the fallback below
                break
            restored2 = _restore(color, psf2, reg_scale, use_network, report, progress)
            if _kernel_trusted(color, restored2, psf2, report):
                what = f"the {first} kernel" if len(tried) == 1 and mode == "auto" and first != "shake" else \
                    "the first camera-shake estimate"
                report["warnings"].append(f"{what} did not explain the blur; the {method} camera-shake estimate did")
                restored, psf, action, trusted = restored2, psf2, action2, True
        if not trusted:
            restored, route, psf = _fallback_sharpen(color, report, st), "smart", None
            action = "gentle sharpening (the estimated blur was not trusted)"
    if route != "old-photo":
        blend = _apply_guard(restored, color, blend, route, psf, report)
    out = color + blend * (restored - color)
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    gray = est.working_luma(color)
    bmap = est.blur_map(gray)
    mask_info: dict = {}
    suggested = masks.make_mask(mask, color.shape, blur_map=bmap, gray=gray, image=color,
                                noise_sigma=report["noise_sigma"], info=mask_info)
    if "faces" in mask_info:
        report["faces"] = mask_info["faces"]
    if mask_info.get("warning"):
        report["warnings"].append(mask_info["warning"])
    if mask == "subject" and not layers:
        # Sharpen the subject, and tame grain / crunchy texture elsewhere with a very light blur.
        bg, bg_mask = masks.background_layer(color, suggested, noise_sigma=report["noise_sigma"])
        layers = [{"name": "AI Deblur: background smoothing", "image": bg, "mask": bg_mask}]
    title_action = action or report["blur_type"]
    report["action"] = title_action
    report["title"] = f"AI Deblur: {title_action}, {strength:.0f}%"
    report["mask"] = mask
    report["runtime_s"] = round(time.perf_counter() - t0, 3)
    if psf is not None:
        report["kernel"] = np.asarray(psf, np.float32).round(6).tolist()
        report["kernel_size"] = [int(psf.shape[1]), int(psf.shape[0])]
    for layer in layers:
        layer["image"] = merge_alpha(np.clip(layer["image"], 0, 1).astype(np.float32), alpha, image)
        layer["mask"] = np.clip(layer["mask"], 0, 1).astype(np.float32)
    if mask == "subject" and layers:  # the restored layer goes on top, masked to the subject
        layers.append({"name": report["title"], "image": merge_alpha(out, alpha, image), "mask": suggested})
    report["layers"] = [layer["name"] for layer in layers]
    _progress(progress, 1.0, "Done")
    return DeblurResult(merge_alpha(out, alpha, image), suggested, report, psf, layers)


def _choose(color, mode, report, *, length, angle, radius, kernel_size, roi, progress, shake_regions=1, grid=None,
            shake_method="dark"):
    """Pick the route and kernel for a mode. Returns (route, psf or None, description)."""
    y = None

    def luma():
        nonlocal y
        if y is None:
            y = est.working_luma(color)
        return y

    kind = report["blur_type"]
    if mode == "auto":
        if report["verdict"] == "beyond repair":
            report["warnings"].append("restoring anyway at the requested strength; expect limited benefit")
        mode = mode_for_blur_type(kind)
        if mode == "sharp":
            return "smart", None, "gentle sharpening (photo already sharp)"
    if mode == "motion":
        if length is None or angle is None:
            L, A, _ = est.estimate_motion(luma())
            length = L if length is None else length
            angle = A if angle is None else angle
        psf = motion_kernel(length, angle)
        return "deconvolve", psf, f"motion {length:.0f} px at {angle:.0f} degrees"
    if mode == "focus":
        if radius is None:
            if kind == "defocus":
                radius = report["params"]["radius"]
            else:
                r, score = est.estimate_defocus(luma())
                if score >= 4:
                    radius = r
        if radius is not None:
            return "deconvolve", defocus_kernel(radius), f"focus radius {radius:.1f} px"
        sigma = max(report["edge_blur"], 0.6)
        return "deconvolve", gaussian_kernel(sigma), f"soft focus sigma {sigma:.1f} px"
    if mode == "shake":
        if shake_method == "classic":
            from .blind import estimate_kernel
        else:
            from .shake import estimate_kernel
        shake_progress = (lambda f, m: _progress(progress, 0.05 + 0.25 * f, m)) if progress else None
        if shake_regions != 1 and roi is None:
            from .spatial import estimate_kernel_grid
            psf, info, cells = estimate_kernel_grid(color, shake_regions, kernel_size, progress=shake_progress,
                                                    method=shake_method)
        else:   # a selection names the one region to estimate on
            psf, info = estimate_kernel(color, kernel_size=kernel_size, roi=roi, progress=shake_progress)
            cells = []
        report["shake"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str, list, bool))}
        report["warnings"].extend(info.get("warnings", []))
        if len(cells) > 1:
            grid.update(regions=int(shake_regions), kernels=[c["psf"] for c in cells])
            report["shake"]["regions"] = [
                {"roi": c["roi"], "window": c["window"], "source": c["source"], "size": [int(c["psf"].shape[1]), int(c["psf"].shape[0])],
                 **({"sparsity": c["sparsity"]} if "sparsity" in c else {}), **({"reason": c["reason"]} if "reason" in c else {})}
                for c in cells]
            own = sum(c["source"] == "own" for c in cells)
            if own == 0:    # a uniform blur: say it plainly
                return "deconvolve", psf, (f"camera shake {psf.shape[1]}x{psf.shape[0]} px kernel (the same in all "
                                           f"{shake_regions}x{shake_regions} regions)")
            return "deconvolve", psf, (f"camera shake, {shake_regions}x{shake_regions} regions ({own} with their own kernel, "
                                       f"{len(cells) - own} with the photo's {psf.shape[1]}x{psf.shape[0]} px)")
        return "deconvolve", psf, f"camera shake {psf.shape[1]}x{psf.shape[0]} px kernel"
    if mode == "sharpen":
        return "sharpen", None, ""
    if mode == "old-photo":
        return "old-photo", None, "old photo clarity"
    raise ValueError(mode)


def _restore(color, psf, reg_scale, use_network, report, progress):
    if psf.shape == (1, 1):
        return color.copy()
    if use_network is not False:
        try:
            from .pnp import pnp_deconvolve
            out = pnp_deconvolve(color, psf, strength_scale=reg_scale,
                                 progress=(lambda f, m: _progress(progress, 0.3 + 0.55 * f, m)) if progress else None)
            report["method"] = "network (plug-and-play)"
            return out
        except ImportError:
            if use_network:
                raise
        except Exception as exc:  # a broken model must not lose the user's work: say so, fall back
            if use_network:
                raise
            report["warnings"].append(f"neural network unavailable ({exc}); used classical deconvolution")
    report["method"] = "hyper-laplacian"
    return deconvolve(color, psf, method="hyper-laplacian", regularization=reg_scale)


def _kernel_trusted(color, restored, psf, report) -> bool:
    """Whether an estimated kernel explains the photo: the restoration blurred again matches the photo
    to within :data:`deblur_core.harm.MAX_RESIDUAL` x its noise variance
    (:func:`deblur_core.harm.reblur_residual`). The measure goes to report["harm"] (the last one checked)."""
    from .harm import MAX_RESIDUAL, reblur_residual
    residual = reblur_residual(color, restored, psf)
    trusted = residual <= MAX_RESIDUAL
    report["harm"] = {"reblur_residual": round(residual, 2), "limit": MAX_RESIDUAL, "trusted": bool(trusted),
                      "kernel_size": [int(psf.shape[1]), int(psf.shape[0])]}
    return trusted


def _grid_trusted(color, restored, grid, report) -> bool:
    """Whether every region of a grid restoration is explained by its own kernel (the re-blur residual of
    :func:`_kernel_trusted` on each cell, with a kernel-sized margin); the figures go to
    report["harm"]["regions"], an untrusted grid to the warnings."""
    from .harm import MAX_RESIDUAL, reblur_residual
    h, w = color.shape[:2]
    cells = report.get("shake", {}).get("regions", [])
    residuals = []
    for cell, k in zip(cells, grid["kernels"]):
        x, y, cw, ch = cell["roi"]
        m = 2 * max(k.shape)
        y0, y1, x0, x1 = max(0, y - m), min(h, y + ch + m), max(0, x - m), min(w, x + cw + m)
        residuals.append(round(reblur_residual(color[y0:y1, x0:x1], restored[y0:y1, x0:x1], k), 2))
    trusted = bool(residuals) and max(residuals) <= MAX_RESIDUAL
    report["harm"] = {"regions": residuals, "limit": MAX_RESIDUAL, "trusted": trusted}
    if not trusted:
        bad = sum(r > MAX_RESIDUAL for r in residuals)
        report["warnings"].append(f"the kernels of {bad} of {len(residuals)} regions did not explain their part of "
                                  "the photo: one kernel for the whole photo was used instead")
    return trusted


def _fallback_sharpen(color, report, st):
    """Gentle sharpening in place of a restoration whose kernel was not trusted, said in plain words."""
    residual = report["harm"]["reblur_residual"]
    report["warnings"].append(
        "the estimated blur does not explain this photo well (the result blurred again differs from it "
        f"{residual:.0f}x more than the noise), so deblurring it would add ringing stripes: gentle sharpening "
        "was used instead. Try Camera Shake on a selection with clear detail, or give the kernel size")
    report["fallback"] = "sharpen"
    return smart_sharpen(color, amount=1.6 * st.gentle_amount)


# --- over-sharpening guard (issue 6; deblur_core/guard.py) ------------------------------------------
def _apply_guard(restored, color, blend, route, psf, report):
    """Largest blend <= the requested one that keeps halos and flat-area noise gain within limits;
    the measurements go to report["guard"], a cap also to the warnings."""
    if blend <= 0 or (psf is not None and psf.shape == (1, 1)):
        return blend
    from .guard import DECONV_LIMITS, guard
    kw = {"radius": 3}
    if route == "deconvolve" and psf is not None:   # restored detail legitimately exceeds the blurred range
        kw = dict(DECONV_LIMITS, radius=max(3, max(psf.shape) // 2))
    _, rep = guard(restored, color, requested=blend, **kw)
    report["guard"] = rep
    if rep["capped"]:
        report.setdefault("warnings", []).append(rep["message"])
    return rep["applied"]

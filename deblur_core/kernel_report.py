"""The blur kernel an analysis report describes: one function for the command line
(``analyze --kernel-out``) and the GIMP worker (Analyze Blur's kernel layer)."""
from __future__ import annotations

import numpy as np

from .classifier import kernel_for
from .color import split_alpha, validate_image

__all__ = ["kernel_for_report"]


def kernel_for_report(image: np.ndarray, report: dict, *, progress=None) -> np.ndarray:
    """The kernel of ``report`` (from :func:`deblur_core.classifier.analyze` of ``image``).

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, C), float in [0, 1], sRGB-encoded (engine convention); alpha
        is ignored.
    report : dict with "blur_type" and "params", as ``analyze()`` returns it.
    progress : callable(fraction, message) or None
        Called along a camera-shake estimate; raising from it cancels.

    Returns
    -------
    float32 (kh, kw) kernel, sum 1: the parametric kernel for "motion", "defocus" and "gaussian"
    (:func:`deblur_core.classifier.kernel_for`), the blind estimate for "shake"
    (:func:`deblur_core.shake.estimate_kernel`, the default estimator, size found), and the
    (1, 1) identity for a sharp photo.
    """
    if report["blur_type"] == "shake":
        from .shake import estimate_kernel
        color, _alpha = split_alpha(validate_image(image))
        return estimate_kernel(color, progress=progress)[0]
    return np.asarray(kernel_for(report), np.float32)

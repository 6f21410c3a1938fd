"""The engine's words, in one place: correction modes, mask kinds, and which mode corrects which blur
type. The pipeline, the worker and the command line use these; the GIMP plug-in (standard library +
gi only) keeps its own copy, checked against this one by tests/test_vocabulary.py."""
from __future__ import annotations

__all__ = ["MODES", "MASKS", "SHAKE_METHODS", "BLUR_TYPE_MODES", "mode_for_blur_type"]

# deblur(mode=...): "auto" picks from the analysis (mode_for_blur_type)
MODES = ("auto", "motion", "focus", "shake", "sharpen", "old-photo")
SHAKE_METHODS = ("intensity", "dark", "classic")   # the blind camera-shake estimators, in the order tried
# the suggested layer mask (deblur_core.masks.make_mask): where the photo is blurred, everywhere,
# nowhere, on the main subject, on faces
MASKS = ("auto", "full", "none", "subject", "faces")
# analyze()'s blur type -> the mode that corrects it; any other type (a sharp photo) -> "sharp",
# gentle sharpening
BLUR_TYPE_MODES = {"motion": "motion", "defocus": "focus", "gaussian": "focus", "shake": "shake"}


def mode_for_blur_type(blur_type) -> str:
    """The mode that corrects ``blur_type`` (:data:`BLUR_TYPE_MODES`), "sharp" for any other."""
    return BLUR_TYPE_MODES.get(blur_type, "sharp")

"""The classic camera-shake kernel estimator (L0 gradients, Cho & Lee edge selection, denoised finest level):
the second candidate when the dark-channel kernel (:mod:`deblur_core.shake`) is not trusted."""
from ..blind import (DEFAULT_SETTINGS, MAX_KERNEL, MIN_KERNEL, ClassicSettings, estimate_kernel,  # noqa: F401
                     refine_kernel)

__all__ = ["estimate_kernel", "refine_kernel", "ClassicSettings", "DEFAULT_SETTINGS", "MIN_KERNEL", "MAX_KERNEL"]

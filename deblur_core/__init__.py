"""AI Deblur engine: blur classification, kernel estimation, deconvolution, sharpening and masks.

Images are float32 arrays in [0, 1], (H, W) or (H, W, C), sRGB-encoded; see :mod:`deblur_core.color`.
"""
from .classifier import analyze
from .pipeline import MODES, DeblurResult, deblur

__all__ = ["analyze", "deblur", "DeblurResult", "MODES"]
__version__ = "0.1.0"

"""The classic camera-shake kernel estimator (uniform blur), coarse to fine: the second candidate when the
dark-channel kernel (:mod:`deblur_core.shake`) is not trusted.

The method belongs to the fast, CPU-friendly family of Cho & Lee ("Fast Motion Deblurring", SIGGRAPH Asia
2009) and Xu & Jia ("Two-Phase Kernel Estimation for Robust Motion Deblurring", ECCV 2010), with the
sharp-edge prediction done by an L0 gradient prior (Xu, Zheng & Jia, CVPR 2013; Pan et al., CVPR 2014).
It works on the luminance in linear light, on an edge-rich region of the photo (the user's selection, or
the window with the most strong edges), with clipped highlights and their blurred surroundings left out;
the finest level works on the region after the denoiser network (``models/denoiser-v2.onnx``). Two
estimates compete side by side on two cores (the sparsest deconvolved gradients win): the generous window
against a moderate one when the size is found, the size given against a window a quarter larger.

Modules, one job each:

* :mod:`.settings`: the frozen :class:`ClassicSettings` record, kernel-size limits, pyramid geometry;
* :mod:`.steps`: the latent step (L0 gradients, Cho & Lee edge selection) and the kernel step (least
  squares on gradients, CG then FISTA with k >= 0);
* :mod:`.cleanup`: first kernels, clean-up between steps, the final trim;
* :mod:`.regions`: working luminance, clipped lights, region choice and contrast, the too-few-edges rule,
  the denoised region;
* :mod:`.scores`: the sparsity that picks among candidate kernels, the reported confidence;
* :mod:`.pyramid`: the coarse-to-fine alternation, multi-start, window shrinking;
* :mod:`.estimator`: :func:`estimate_kernel`, :func:`refine_kernel`, the pair of windows in two threads,
  :class:`PartsProgress`;
* :mod:`.fft`: FFT threads shared between estimates running at once.

Settings and what was tried, with figures: ``docs/experiments/shake.md``.
"""
from .estimator import PartsProgress, estimate_kernel, refine_kernel
from .fft import set_fft_sharing
from .regions import region_luma, saturation_mask, working_luma
from .scores import region_sparsity
from .settings import DEFAULT_SETTINGS, MAX_KERNEL, MIN_KERNEL, ClassicSettings

__all__ = ["estimate_kernel", "refine_kernel", "ClassicSettings", "DEFAULT_SETTINGS", "MIN_KERNEL", "MAX_KERNEL",
           "PartsProgress", "set_fft_sharing", "working_luma", "saturation_mask", "region_luma", "region_sparsity"]

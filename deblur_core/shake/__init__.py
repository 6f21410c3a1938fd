"""Blind camera-shake kernel estimation (uniform blur): L0 gradient prior with an L0 intensity or dark channel
prior (Pan et al. 2014 / 2016), coarse to fine, saturation-aware (issue 19). Modules, one job each:

* :mod:`.settings`: the frozen :class:`ShakeSettings` record;
* :mod:`.latent`: the latent (sharp image) step;
* :mod:`.kernel_step`: the kernel step, clean-up, centring, resampling;
* :mod:`.regions`: working image, clipped lights, region choice, the too-few-edges rule;
* :mod:`.pyramid`: the coarse-to-fine alternation;
* :mod:`.estimator`: :func:`estimate_kernel`, :func:`refine_kernel`.
"""
from .estimator import MAX_KERNEL, MIN_KERNEL, clip_region, estimate_kernel, refine_kernel
from .regions import TooFewEdges
from .settings import DEFAULT, PRIORS, ShakeSettings

__all__ = ["estimate_kernel", "refine_kernel", "ShakeSettings", "DEFAULT", "PRIORS", "TooFewEdges", "MIN_KERNEL",
           "MAX_KERNEL", "clip_region"]

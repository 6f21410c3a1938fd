"""Rebuild samples/sample-shake.jpg: scikit-image's astronaut photo (NASA, public domain) blurred in
linear light with a fixed random camera-shake kernel, light noise, JPEG quality 92.

    .venv/bin/python tools/make_sample.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from deblur_core import color, fftutils, kernels  # noqa: E402
from deblur_core.imageio import write_image  # noqa: E402


def main():
    from skimage import data
    sharp = data.astronaut().astype(np.float32) / 255
    psf = kernels.shake_kernel(17, 7)
    blurred = color.linear_to_srgb(fftutils.convolve(color.srgb_to_linear(sharp), psf))
    blurred = np.clip(blurred + np.random.default_rng(7).normal(0, 0.004, blurred.shape), 0, 1)
    root = os.path.join(os.path.dirname(__file__), "..", "samples")
    write_image(os.path.join(root, "sample-shake.jpg"), blurred.astype(np.float32), np.uint8, quality=92)
    kernels.save_kernel(os.path.join(root, "sample-shake-kernel.png"), psf)
    print("wrote samples/sample-shake.jpg and samples/sample-shake-kernel.png")


if __name__ == "__main__":
    main()

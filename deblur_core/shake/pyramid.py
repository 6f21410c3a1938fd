"""Coarse-to-fine alternation of the latent and kernel steps on one gray region (Pan et al. 2016's
``blind_deconv`` / ``blind_deconv_main``): levels in sqrt(1/2) steps from a ~5 px kernel up; at each,
``iterations`` rounds of latent step, strong-edge selection, kernel step and clean-up; the L0 weights
and the edge threshold relax by 1.1 a round, across levels."""
from __future__ import annotations

import math

import cv2
import numpy as np

from ..fftutils import pad_for_deconvolution, psf2otf
from .kernel_step import (center_kernel, clean_kernel, initial_edge_threshold, kernel_from_gradients, odd,
                          resize_kernel, strong_edges, valid_gradients)
from .latent import gradient_energy, l0_latent

__all__ = ["level_sizes", "coarse_to_fine", "refine_level"]

RATIO = math.sqrt(0.5)


def level_sizes(kernel_side: int, coarsest: int, image_side: int | None = None, min_image: int = 0):
    """Kernel sides from the coarsest level to the finest (odd; the last is ``kernel_side``) and the
    levels' scales. The pyramid stops at a kernel of about ``coarsest`` px, or where the image's
    shorter side (``image_side`` at full scale) would drop below ``min_image`` px."""
    n = max(int(math.floor(math.log(coarsest / kernel_side) / math.log(RATIO))), 0) + 1
    if image_side and min_image:
        n = max(1, min(n, int(math.floor(math.log(min_image / image_side) / math.log(RATIO))) + 1))
    return [odd(kernel_side * RATIO ** i) for i in range(n - 1, -1, -1)], [RATIO ** i for i in range(n - 1, -1, -1)]


def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return img.astype(np.float32, copy=True)
    h, w = img.shape
    size = (max(8, int(round(w * scale))), max(8, int(round(h * scale))))
    return cv2.resize(img.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def _initial_kernel(size: int) -> np.ndarray:
    k = np.zeros((size, size))
    c = size // 2
    k[c, c - 1:c + 1] = 0.5     # the reference's two-pixel start
    return k


class _State:
    """What relaxes across rounds and levels: the L0 weights and the edge threshold."""

    def __init__(self, settings, threshold):
        self.lam_pixel = settings.lam_pixel
        self.lam_grad = settings.lam_grad
        self.threshold = threshold

    def relax(self):
        self.lam_pixel = max(self.lam_pixel / 1.1, 1e-4) if self.lam_pixel else 0.0
        self.lam_grad = max(self.lam_grad / 1.1, 1e-4)


def _level(y, usable, k, size, settings, state, rounds, tick):
    """``rounds`` alternations at one level; ``y`` (h, w) gray, ``usable`` (h, w) bool or None."""
    ypad, crop = pad_for_deconvolution(y, (size, size), margin=size + 4)
    DtD = gradient_energy(ypad.shape)
    bx, by = valid_gradients(y)
    mask = None
    if usable is not None and not usable.all():
        mask = usable[:-1, :-1].astype(np.float32)
    latent = None
    for _ in range(rounds):
        K = psf2otf(k.astype(np.float32), ypad.shape)
        latent = l0_latent(ypad, K, settings, state.lam_pixel, state.lam_grad, DtD=DtD)[crop]
        lx, ly, used = strong_edges(latent, state.threshold)
        state.threshold = used / 1.1
        k = kernel_from_gradients([lx, ly], [bx, by], size, settings.kernel_weight, mask=mask,
                                  iterations=settings.cg_iterations, cut=settings.step_cut)
        k = clean_kernel(k, settings.min_component)
        state.relax()
        tick()
    return center_kernel(k), latent


def coarse_to_fine(y: np.ndarray, usable: np.ndarray | None, kernel_side: int, settings, tick):
    """The kernel (``kernel_side`` square, centred, sum 1) of the gray region ``y``, with the last
    latent image and per-level notes. ``tick()`` is called after every round (progress, cancel)."""
    sizes, scales = level_sizes(kernel_side, settings.coarsest, min(y.shape), settings.min_image)
    k = None
    state = None
    notes = []
    latent = None
    for size, scale in zip(sizes, scales):
        ys = _resize(y, scale)
        us = None
        if usable is not None:
            us = _resize(usable.astype(np.float32), scale) > 0.99
        if k is None:
            k = _initial_kernel(size)
            state = _State(settings, initial_edge_threshold(ys, size, settings.edge_count))
        else:
            k = resize_kernel(k, size, factor=1 / RATIO)
        k, latent = _level(ys, us, k, size, settings, state, settings.iterations, tick)
        notes.append({"kernel": int(size), "image": [int(ys.shape[1]), int(ys.shape[0])]})
    return k, latent, notes


def refine_level(y: np.ndarray, usable: np.ndarray | None, k0: np.ndarray, kernel_side: int, settings, tick,
                 rounds: int | None = None):
    """The finest level only, started from ``k0`` (centred in a ``kernel_side`` window), with the
    weights where a full pyramid leaves them: for kernels that vary slowly across a photo."""
    k = np.zeros((kernel_side, kernel_side))
    n = k0.shape[0]
    if n <= kernel_side:
        o = (kernel_side - n) // 2
        k[o:o + n, o:o + n] = k0
    else:
        o = (n - kernel_side) // 2
        k = np.array(k0[o:o + kernel_side, o:o + kernel_side], np.float64)
    k = k / max(k.sum(), 1e-12)
    state = _State(settings, initial_edge_threshold(y, kernel_side, settings.edge_count))
    state.lam_pixel = 1e-4 if settings.lam_pixel else 0.0
    state.lam_grad = 1e-4
    return _level(y, usable, k, kernel_side, settings, state, rounds or settings.iterations, tick)

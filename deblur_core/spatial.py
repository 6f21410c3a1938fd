"""Spatially varying camera shake: one kernel per region of a grid, the restorations blended.

When the camera rotates during the exposure (roll especially), the blur differs across the frame:
the trajectory seen in a corner is the centre's plus the rotation's arc there. Photoshop's Shake
Reduction calls the remedy "multiple blur traces". Here the photo is cut into an ``n`` x ``n`` grid;
the whole photo's kernel is estimated first, then refined on each cell's window with the most strong
edges (:func:`deblur_core.classic.refine_kernel`: the estimator's finest level, started from that
kernel in a window 1.25 times larger), and each cell is restored with its kernel. Refining rather
than estimating each cell from scratch: the same quality on the train split (2 x 2, roll + translation
shake, 3 photos: -0.47 against -0.41 dB; uniform shake +1.97 against +2.10 dB) in half the time. The restorations are
blended with bilinear weights between cell centres, the "efficient filter flow" model of Hirsch et
al. ("Efficient Filter Flow for Space-Variant Multiframe Blind Deconvolution", CVPR 2010), which is
how a smoothly varying blur is usually approximated.

A cell's own kernel must earn its place: it is kept only when it deconvolves the cell's window to
sparser gradients than the whole-photo kernel does (Krishnan et al.'s normalized sparsity, the same
test that picks among the estimator's candidates); a flat cell, or one whose estimate failed, takes the
whole-photo kernel.
"""
from __future__ import annotations

import threading

import numpy as np

from . import classic
from .color import validate_image
from .shake.kernel_step import odd
from .shake.regions import pick_region

__all__ = ["MAX_REGIONS", "GRID_MIN_SIDE", "GRID_MAX_PIXELS", "auto_regions", "estimate_kernel_grid", "restore_grid", "grid_centres",
           "cell_weight"]

MAX_REGIONS = 4          # cells per side; more leaves too little of the photo per kernel
# Regions per side when the caller does not say: 2 x 2 once each cell holds a 512 px estimation window.
# bench_varying.py --cases 6 --size 1024 --split train, seeds 0 and 1 (stop 17), mean PSNR gain over the
# blurry photo, 1 kernel -> 2 x 2 (-> 3 x 3): roll + translation +0.77 -> +1.37 dB (+1.17), 2 x 2 better
# / equal / worse on 5 / 5 / 2 of 12 cases; uniform shake (the control) +2.78 -> +2.90 dB (+2.47), 2 / 5 /
# 5 (worst -0.42 dB, best +2.15). About 1.5x the time on a 1 MP crop (7-10 s against 4-6 s: the cells are
# refined two at a time); a grid whose cells all keep the photo's kernel is restored once (restore_grid).
GRID_MIN_SIDE = 1024
# ... and up to this many pixels: a grid restores 2.25x the photo's area, and with the dark-channel
# estimator every cell tends to keep its own kernel. 12 MP (stop 19, 2 cores shared with other jobs):
# 2 x 2 grid 187 s, one kernel 110 s, against the 60 s in GIMP.
GRID_MAX_PIXELS = 6_000_000


def auto_regions(height: int, width: int) -> int:
    """Cells per side for a photo of ``height`` x ``width`` px when the caller does not choose: 2 from
    :data:`GRID_MIN_SIDE` px on the shorter side up to :data:`GRID_MAX_PIXELS`, else 1 (one kernel)."""
    return 2 if min(height, width) >= GRID_MIN_SIDE and height * width <= GRID_MAX_PIXELS else 1


def grid_centres(length: int, n: int) -> np.ndarray:
    """Centres (px) of ``n`` equal cells along an axis of ``length`` px."""
    return (np.arange(n) + 0.5) * (length / n)


def cell_weight(length: int, n: int, i: int) -> np.ndarray:
    """Bilinear weight of cell ``i`` along an axis: 1 at its centre (and beyond it at the edges of
    the photo), falling linearly to 0 at the neighbouring centres. The n tents sum to 1 everywhere."""
    c = grid_centres(length, n)
    t = np.arange(length) + 0.5
    w = np.ones(length)
    if i > 0:
        w = np.minimum(w, np.clip((t - c[i - 1]) / (c[i] - c[i - 1]), 0, 1))
    if i < n - 1:
        w = np.minimum(w, np.clip((c[i + 1] - t) / (c[i + 1] - c[i]), 0, 1))
    return w


def _cell(length: int, n: int, i: int):
    a = int(round(i * length / n))
    b = int(round((i + 1) * length / n))
    return a, b - a


def estimate_kernel_grid(image: np.ndarray, regions: int, kernel_size: int | None = None, *,
                         progress=None, max_region: int = 640, workers: int = 2, method: str = "intensity"):
    """Estimate one camera-shake kernel per cell of a ``regions`` x ``regions`` grid.

    Parameters
    ----------
    image : ndarray, (H, W) or (H, W, C), float in [0, 1], sRGB-encoded.
    regions : int
        Cells per side, 1..:data:`MAX_REGIONS` (1: one kernel for the whole photo).
    kernel_size : int or None
        Kernel window in px for every estimate; None: found on the whole photo, then the cells refine
        it in a window 1.25 times the size found plus 4 px (a corner's trajectory is longer under
        rotation).
    progress : callable(fraction, message) or None; raising from it cancels. Called from one thread at a
        time, not always the caller's.
    method : {"intensity", "dark", "classic"}
        The estimator: :mod:`deblur_core.shake` with the L0 intensity (default) or dark channel prior, or
        :mod:`deblur_core.classic`.
    workers : int
        Cells refined at once (threads; their FFTs and array maths release the GIL). The kernels do not
        depend on it.

    Returns
    -------
    (psf, info, cells): the whole-photo kernel and its report, and per cell (row-major) a dict with
    ``roi`` (x, y, w, h of the cell), ``window`` (where its kernel was estimated), ``psf`` (the kernel
    it uses), ``source`` ("own" or "whole photo", see the module notes), and, when the cell's own
    estimate ran, ``own_psf`` and ``sparsity`` (own, whole photo; lower is sharper), else ``reason``.
    """
    img = validate_image(image)
    regions = int(regions)
    if not 1 <= regions <= MAX_REGIONS:
        raise ValueError(f"regions per side must be between 1 and {MAX_REGIONS}, got {regions}")
    h, w = img.shape[:2]
    report = progress if progress is not None else (lambda f, m: None)
    n_cells = regions * regions
    share = 1.0 / (n_cells + 1)
    prep = luma, lin_max = classic.working_luma(img, True)   # once for the photo and every cell
    if method == "classic":
        psf, info = classic.estimate_kernel(img, kernel_size, max_region=max_region,
                                            progress=lambda f, m: report(share * f, m), _prep=prep)
    else:
        from . import shake
        psf, info = shake.estimate_kernel(img, kernel_size, progress=lambda f, m: report(share * f, m),
                                          settings=shake.PRIORS[method])
    if regions == 1:
        return psf, info, [{"roi": [0, 0, w, h], "window": info["roi"], "psf": psf, "source": "whole photo"}]
    # The photo's kernel may have come from a window larger than the size given (classic.estimate_kernel's
    # pair): the cells refine it whole.
    size = max(int(kernel_size) | 1, max(psf.shape)) if kernel_size is not None else odd(1.25 * max(psf.shape) + 4)
    cells, jobs = [], []
    for i in range(regions):
        y0, ch = _cell(h, regions, i)
        for j in range(regions):
            x0, cw = _cell(w, regions, j)
            cell = {"roi": [x0, y0, cw, ch], "window": None, "psf": psf, "source": "whole photo"}
            cells.append(cell)
            ks = min(size, odd(min(cw, ch) / 2) - 2)
            if ks < (size if kernel_size is not None else max(psf.shape)):
                cell["reason"] = f"the cell ({cw}x{ch} px) is too small for a kernel this size"
                continue
            valid = classic.saturation_mask(lin_max[y0:y0 + ch, x0:x0 + cw], ks)
            side = max(min(max_region, cw, ch), 6 * ks)
            wx, wy, ww, wh = pick_region(luma[y0:y0 + ch, x0:x0 + cw], valid, side)
            cell["window"] = [int(x0 + wx), int(y0 + wy), int(ww), int(wh)]
            jobs.append((cell, ks))
    parts = classic.PartsProgress(lambda f, m: report(share + (1 - share) * f, m), len(jobs),
                                   lambda done, n: f"Refining the kernel per region ({done}/{n} done)")
    running = [len(jobs)]
    lock = threading.Lock()

    def refine(k, cell, ks):
        # both cores for the FFTs once the other refinements are done
        classic.set_fft_sharing(lambda: running[0] <= 1)
        try:
            if method == "classic":
                return classic.refine_kernel(img, psf, ks, roi=tuple(cell["window"]), max_region=max_region,
                                             progress=parts.part(k), _prep=prep)[0]
            from . import shake
            return shake.refine_kernel(img, psf, ks, roi=tuple(cell["window"]), progress=parts.part(k),
                                       settings=shake.PRIORS[method])[0]
        except ValueError as exc:           # flat or clipped cell: the whole-photo kernel serves it
            return exc
        finally:
            with lock:
                running[0] -= 1
            classic.set_fft_sharing(None)

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max(1, min(int(workers), len(jobs) or 1))) as pool:
        futures = [pool.submit(refine, k, cell, ks) for k, (cell, ks) in enumerate(jobs)]
        try:
            owns = [parts.result(f) for f in futures]
        except BaseException:
            parts.cancel()                  # the running refinements stop at their next progress report
            raise
    for (cell, _), own in zip(jobs, owns):
        if isinstance(own, ValueError):
            cell["reason"] = str(own)
            continue
        region = classic.region_luma(luma, tuple(cell["window"]))
        scores = [classic.region_sparsity(region, k) for k in (own, psf)]
        cell["sparsity"] = [round(sc, 5) for sc in scores]
        cell["own_psf"] = own
        if scores[0] < scores[1]:
            cell["psf"], cell["source"] = own, "own"
    report(1.0, "Kernels estimated")
    return psf, info, cells


def restore_grid(image: np.ndarray, regions: int, kernels, restore, *, progress=None) -> np.ndarray:
    """Restore each cell with its kernel and blend (bilinear weights between cell centres).

    ``kernels`` lists the ``regions`` x ``regions`` kernels row-major; ``restore(part, psf)`` restores
    an (h, w[, C]) crop and returns it at the same shape. Each cell is restored over the area its
    weight covers plus a margin of twice its kernel, so no crop border shows in the blend. When all the
    kernels are the same, the whole photo is restored once.
    """
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    kernels = list(kernels)
    if len(kernels) != regions * regions:
        raise ValueError(f"{regions}x{regions} regions need {regions * regions} kernels, got {len(kernels)}")
    if all(np.array_equal(k, kernels[0]) for k in kernels[1:]):
        # Every cell kept the same kernel (a uniform blur: the cells fell back to the photo's): one
        # restoration of the whole photo, not regions^2 overlapping ones (2x2 restores 2.25x the area).
        out = np.asarray(restore(img, kernels[0]), np.float32)
        if progress is not None:
            progress(1.0, "Restored")
        return out
    out = np.zeros(img.shape, np.float32)
    for idx, psf in enumerate(kernels):
        i, j = divmod(idx, regions)
        ty, tx = cell_weight(h, regions, i), cell_weight(w, regions, j)
        rows, cols = np.nonzero(ty > 0)[0], np.nonzero(tx > 0)[0]
        m = 2 * max(psf.shape)
        a0, a1 = max(0, rows[0] - m), min(h, rows[-1] + 1 + m)
        b0, b1 = max(0, cols[0] - m), min(w, cols[-1] + 1 + m)
        part = restore(img[a0:a1, b0:b1], psf)
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        wgt = np.outer(ty[r0:r1], tx[c0:c1]).astype(np.float32)
        if img.ndim == 3:
            wgt = wgt[..., None]
        out[r0:r1, c0:c1] += wgt * part[r0 - a0:r1 - a0, c0 - b0:c1 - b0]
        if progress is not None:
            progress((idx + 1) / len(kernels), f"Restoring region {idx + 1}/{len(kernels)}")
    return out

#!/usr/bin/env python3
"""The learned path (plug-and-play HQS with the shipped denoiser) against the engine's classical solvers.

Each case: a held-out photo crop (tools/photos.py held-out split, never trained on), blurred in linear
light with the *true* kernel, white gaussian noise of std ``--noise`` (0.01) added in linear light,
re-encoded to sRGB. Kernels: linear motion, defocus disk, a Boracchi-Foi shake trajectory (the engine's
generators) and the measured-looking kernels in /work/shared/data/kernels/*.png (normalised). The same
kernel blurs and deconvolves, so the kernel-file orientation (convolution vs correlation) cannot bias
the comparison; the script still checks that the blurry input is the re-blur with the kernel as loaded.

Rows: mean PSNR (sRGB, borders cropped, best +-2 px shift) of the blurry input, the engine's classical
solvers (``deconvolution.deconvolve`` with "wiener" and "hyper-laplacian", given the true noise level)
and ``pnp.pnp_deconvolve`` with its prior (``pnp-prior-v1``, trained inside the loop) and, as the
before, with the white-noise denoiser it was fine-tuned from (``denoiser-v2``), same schedule.
Target: the network path >= 1.0 dB over the best classical path.
Also: speed in s/MP (with MACs per pixel), tiled vs untiled max difference, and peak memory (ru_maxrss
of a fresh subprocess) for a 24 MP photo.

    python bench/bench_network.py --count 4 --size 768 [--skip-24mp]
"""
from __future__ import annotations

import argparse
import glob
import inspect
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, os.path.join(ROOT, "tools"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

from common import as_engine_process, photos, psnr, run_measured, table  # noqa: E402

from deblur_core import network  # noqa: E402
from deblur_core.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from deblur_core.deconvolution import deconvolve  # noqa: E402
from deblur_core.fftutils import convolve  # noqa: E402
from deblur_core.kernels import defocus_kernel, load_kernel, motion_kernel, normalize, shake_kernel  # noqa: E402
from deblur_core.pnp import auto_iterations, pnp_deconvolve, schedule  # noqa: E402

KERNEL_DIRS = (os.environ.get("AI_DEBLUR_KERNELS", ""), os.path.join(ROOT, "shared", "data", "kernels"),
               os.path.join(os.path.dirname(ROOT), "shared", "data", "kernels"), "/work/shared/data/kernels")


def kernels(use_files: bool = True):
    ks = [("motion 21px 30deg", motion_kernel(21, 30)), ("defocus r5", defocus_kernel(5)),
          ("shake 27px", shake_kernel(27, 7))]
    if use_files:
        for d in KERNEL_DIRS:
            files = sorted(glob.glob(os.path.join(d, "*.png"))) if d else []
            if files:
                ks += [(os.path.splitext(os.path.basename(f))[0], normalize(load_kernel(f))) for f in files]
                break
    return ks


def blur_case(img, psf, sigma, rng):
    lin = convolve(srgb_to_linear(img), psf)
    check = convolve(srgb_to_linear(img), psf[::-1, ::-1])
    noisy = lin + rng.standard_normal(lin.shape).astype(np.float32) * sigma
    y = linear_to_srgb(np.clip(noisy, 0, 1))
    # orientation self-check: the observation is the re-blur with the kernel as loaded, not its flip
    if not np.allclose(psf, psf[::-1, ::-1], atol=1e-6):
        assert np.mean((noisy - lin) ** 2) < np.mean((noisy - check) ** 2)
    return y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=4, help="number of held-out photos")
    ap.add_argument("--size", type=int, default=768, help="crop side (px)")
    ap.add_argument("--noise", type=float, default=0.01)
    default_it = inspect.signature(pnp_deconvolve).parameters["iterations"].default
    ap.add_argument("--iterations", type=int, default=default_it,
                    help="HQS iterations (default: pnp's own choice for the noise level)")
    ap.add_argument("--no-kernel-files", action="store_true")
    ap.add_argument("--skip-24mp", action="store_true")
    ap.add_argument("--mp24-iterations", type=int, default=default_it)
    a = ap.parse_args(argv)
    as_engine_process()

    model = network.load_model()                                 # white-noise denoiser (denoise, before)
    prior = network.load_model(network.DEFAULT_PNP_PRIOR)         # pnp's prior
    spec = prior.spec
    n_its = a.iterations or auto_iterations(a.noise, schedule(a.noise)[1])
    print(f"model {spec.name}: {spec.parameters:,} parameters, {spec.macs_per_pixel:,} MAC/pixel, "
          f"providers {prior.providers}; noise sigma {a.noise} (linear light), {n_its} HQS iterations; "
          f"before: {model.spec.name} in the same loop")
    imgs = [(n, im) for n, im in photos("heldout", side=a.size) if min(im.shape[:2]) >= min(256, a.size)]
    full = [t for t in imgs if min(t[1].shape[:2]) >= a.size] or imgs   # prefer full-size crops
    if len(full) > a.count:                                               # spread over the sources
        full = [full[i] for i in np.linspace(0, len(full) - 1, a.count).round().astype(int)]
    imgs = full[:a.count]
    print("photos: " + ", ".join(f"{n} {im.shape[1]}x{im.shape[0]}" for n, im in imgs))
    rng = np.random.default_rng(0)
    rows, allres = [], {m: [] for m in ("blurry", "wiener", "hyper-laplacian", "pnp before", "pnp")}
    t_hl = t_pnp = mp = 0.0
    for kname, psf in kernels(not a.no_kernel_files):
        res = {m: [] for m in allres}
        for name, img in imgs:
            y = blur_case(img, psf, a.noise, rng)
            res["blurry"].append(psnr(y, img))
            res["wiener"].append(psnr(deconvolve(y, psf, method="wiener", noise_sigma=a.noise), img))
            t = time.perf_counter()
            res["hyper-laplacian"].append(psnr(deconvolve(y, psf, method="hyper-laplacian", noise_sigma=a.noise), img))
            t_hl += time.perf_counter() - t
            res["pnp before"].append(psnr(pnp_deconvolve(y, psf, noise_sigma=a.noise, iterations=a.iterations,
                                                         model=model), img))
            t = time.perf_counter()
            res["pnp"].append(psnr(pnp_deconvolve(y, psf, noise_sigma=a.noise, iterations=a.iterations,
                                                  model=prior), img))
            t_pnp += time.perf_counter() - t
            mp += img.shape[0] * img.shape[1] / 1e6
        means = {m: float(np.mean(v)) for m, v in res.items()}
        best = max(means["wiener"], means["hyper-laplacian"])
        rows.append([f"{kname} ({psf.shape[0]}px)", means["blurry"], means["wiener"], means["hyper-laplacian"],
                     means["pnp before"], means["pnp"], means["pnp"] - best])
        for m in allres:
            allres[m] += res[m]
        print(f"  {kname}: done", flush=True)
    means = {m: float(np.mean(v)) for m, v in allres.items()}
    best = max(means["wiener"], means["hyper-laplacian"])
    rows.append(["**mean**", means["blurry"], means["wiener"], means["hyper-laplacian"], means["pnp before"],
                 means["pnp"], means["pnp"] - best])
    table(f"Non-blind deconvolution, true kernel, noise {a.noise}, {len(imgs)} held-out photos "
          f"(PSNR dB, sRGB)", ["kernel", "blurry", "wiener", "hyper-laplacian", f"pnp, {model.spec.name}",
                               f"pnp, {spec.name}", "pnp - best classical"], rows)
    verdict = "MET" if means["pnp"] - best >= 1.0 else "NOT MET"
    print(f"\ntarget network path >= best classical + 1.0 dB: {verdict} ({means['pnp'] - best:+.2f} dB)")

    # speed
    img = imgs[0][1]
    big = np.ascontiguousarray(np.tile(img, (2, 2, 1) if img.ndim == 3 else (2, 2))[:1000, :1000])
    psf = shake_kernel(27, 7)
    y = blur_case(big, psf, a.noise, rng)
    n_mp = y.shape[0] * y.shape[1] / 1e6
    t = time.perf_counter()
    pnp_deconvolve(y, psf, noise_sigma=a.noise, iterations=a.iterations, model=prior)
    t_p = (time.perf_counter() - t) / n_mp
    t = time.perf_counter()
    deconvolve(y, psf, method="hyper-laplacian", noise_sigma=a.noise)
    t_h = (time.perf_counter() - t) / n_mp
    t = time.perf_counter()
    network.denoise(y, 0.03, model=model)
    t_d = (time.perf_counter() - t) / n_mp
    gmacs = spec.macs_per_pixel * 1e6 / 1e9
    table(f"Speed ({os.cpu_count()} cores, onnxruntime {prior.providers[0]}), 1 MP photo, 27 px kernel",
          ["path", "s/MP", "MAC/pixel", "GMAC/s of the network"],
          [["denoiser alone (1 pass)", t_d, f"{spec.macs_per_pixel:,}", gmacs / t_d],
           [f"pnp, {n_its} iterations", t_p, f"{n_its * spec.macs_per_pixel:,}",
            n_its * gmacs / t_p],
           ["hyper-laplacian (classical)", t_h, "-", "-"],
           ["ratio pnp / hyper-laplacian (same run)", t_p / t_h, "", ""],
           ["(benchmark crops, mean) pnp / hyper-laplacian", t_pnp / mp, "", f"{t_hl / mp:.3f} s/MP HL"]])

    # tiling
    img = big[:600, :1000]
    noisy = img + rng.standard_normal(img.shape).astype(np.float32) * 0.05
    whole = network.denoise(noisy, 0.05, model=model, tile=1 << 14)
    rows = []
    for tile, ov in ((spec.tile, spec.overlap), (256, spec.overlap), (128, 64)):
        tl = network.denoise(noisy, 0.05, model=model, tile=tile, overlap=ov)
        rows.append([f"{tile} / {ov}", float(np.abs(tl - whole).max() * 255), float(np.abs(tl - whole).mean() * 255)])
    table(f"Tiled vs untiled denoiser output ({img.shape[1]}x{img.shape[0]})",
          ["tile / overlap px", "max diff (1/255)", "mean diff (1/255)"], rows)

    if not a.skip_24mp:
        code = f"""
import json, time, numpy as np
from deblur_core.pnp import pnp_deconvolve
from deblur_core.kernels import shake_kernel
rng = np.random.default_rng(0)
small = rng.random((60, 40, 3), dtype=np.float32)
import cv2
img = cv2.resize(small, (6000, 4000), interpolation=cv2.INTER_CUBIC).clip(0, 1)
img = (img + rng.standard_normal(img.shape).astype(np.float32) * 0.01).clip(0, 1)
t = time.perf_counter()
out = pnp_deconvolve(img, shake_kernel(27, 7), noise_sigma=0.01, iterations={a.mp24_iterations})
print(json.dumps({{"seconds": time.perf_counter() - t, "shape": list(out.shape)}}))
"""
        r = run_measured(code, 6000 * 4000)
        table("24 MP photo (6000x4000 RGB), fresh subprocess",
              ["iterations", "seconds", "s/MP", "peak RSS MB", "input image MB (float32)"],
              [[a.mp24_iterations or n_its, r["seconds"], r["seconds"] / 24, r["peak_mb"], 24 * 3 * 4.0]])


if __name__ == "__main__":
    main()

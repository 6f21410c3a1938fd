#!/usr/bin/env python3
"""Photos of printed text with camera shake (issue 24): pages whose white paper clips, at 60-90 % plain
paper, through the product's own paths (``deblur(mode="shake")`` and ``deblur(mode="auto")``).

Each page: lines of black text on paper of radiance 1.2-1.5 (so the paper clips at white), a random
shake trajectory of 13-27 px, blur in linear light, camera noise (Poisson-Gaussian) and JPEG 90
(bench_shake.camera's model without the exposure push). The table gives whether a result came back
(the refusal of issue 24 is a failure), the route taken, the PSNR of the blurry page and of each result
against the sharp page, and the true kernel's restoration through the same deconvolution (the network).

    python bench/bench_documents.py --pages 6 [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def page(white: float, rng, side: int = 512):
    """(sharp sRGB page, blurred camera photo of it, kernel)."""
    import cv2
    from deblur_core.color import linear_to_srgb
    from deblur_core.fftutils import convolve
    from deblur_core.kernels import shake_kernel
    paper = float(rng.uniform(1.2, 1.5))
    lin = np.full((side, side), paper, np.float32)
    lines = max(1, int(round(side * (1 - white) / 24)))
    top = int(rng.integers(20, 60))
    for r in range(lines):
        txt = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789   "), 34))
        cv2.putText(lin, txt, (8, top + r * 24), cv2.FONT_HERSHEY_SIMPLEX, 0.65, 0.03, 2, cv2.LINE_AA)
    k = shake_kernel(int(rng.integers(13, 28)), rng)
    k = k / k.sum()
    blurred = convolve(lin, k)
    a, b = rng.uniform(0.0005, 0.002), rng.uniform(0.001, 0.002)
    noisy = blurred + rng.normal(0, 1, blurred.shape).astype(np.float32) * np.sqrt(a * np.clip(blurred, 0, None) + b * b)
    out = linear_to_srgb(np.clip(noisy, 0, 1))
    enc = cv2.imencode(".jpg", (out * 255 + 0.5).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    photo = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    sharp = linear_to_srgb(np.clip(lin, 0, 1))
    return np.repeat(sharp[..., None], 3, 2), np.repeat(photo[..., None], 3, 2), k.astype(np.float32)


def psnr(a, b, border=24):
    d = (np.asarray(a, np.float64) - b)[border:-border, border:-border]
    return 10 * np.log10(1 / max(float(np.mean(d * d)), 1e-12))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from deblur_core import deblur
    from deblur_core.pnp import pnp_deconvolve
    rng = np.random.default_rng(args.seed)
    whites = np.linspace(0.6, 0.9, args.pages)
    print(f"# Printed pages with camera shake: {args.pages} pages of 512 px, 60-90 % plain paper that clips\n")
    print("| paper | clipped | kernel px | blurry dB | true kernel dB | shake: route | shake dB | auto: route | auto dB | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    refused, gains = 0, {"shake": [], "auto": []}
    for w in whites:
        sharp, photo, k = page(float(w), rng)
        t = time.perf_counter()
        row = [f"{w:.0%}", f"{(photo[..., 0] >= 0.99).mean():.0%}", str(k.shape[0]), f"{psnr(photo, sharp):.2f}",
               f"{psnr(pnp_deconvolve(photo, k), sharp):.2f}"]
        for mode in ("shake", "auto"):
            try:
                res = deblur(photo, mode=mode, strength=50, shake_regions=1)
                row += [res.report["action"][:40], f"{psnr(res.image, sharp):.2f}"]
                gains[mode].append(psnr(res.image, sharp) - psnr(photo, sharp))
            except ValueError as exc:
                refused += 1
                row += [f"refused: {str(exc)[:40]}", ""]
        row.append(f"{time.perf_counter() - t:.1f}")
        print("| " + " | ".join(row) + " |", flush=True)
    print(f"\nrefused: {refused} of {2 * len(whites)} runs; mean PSNR gain over the blurry page: shake "
          f"{np.mean(gains['shake']) if gains['shake'] else float('nan'):+.2f} dB, auto "
          f"{np.mean(gains['auto']) if gains['auto'] else float('nan'):+.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

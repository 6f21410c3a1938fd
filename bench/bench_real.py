#!/usr/bin/env python3
"""Real blurry photos, no ground truth (issue 19): a contact sheet to look at before any claim, and
no-reference figures beside it.

For each photo of ``/work/shared/data/real_blur`` (Köhler et al. 2012 recorded shake, Lai et al. 2016
real photos; ``--every N`` takes one in N, ``--names`` picks some) the engine restores it through the
product's own path (``deblur(mode=...)``, default ``shake``) and the sheet shows input | result |
kernel (| the kernel a published method estimated, for the 18 Lai photos that have one). The table
gives the kernel size, its similarity to the published kernel (max normalised cross-correlation, either
orientation), the do-no-harm re-blur residual (:func:`deblur_core.harm.reblur_residual`, x the noise variance;
above ``harm.MAX_RESIDUAL`` the kernel is not trusted: the other estimator's, or gentle sharpening, stands in),
what the report says (strength applied, warnings) and the time.

    python bench/bench_real.py --every 4 --out out/real_sheet.png [--mode auto] [--method classic] [--crops]
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DATA = "/work/shared/data/real_blur"


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.signal import fftconvolve
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    best = 0.0
    for bb in (b, b[::-1, ::-1]):
        c = fftconvolve(a, bb[::-1, ::-1], mode="full")
        best = max(best, float(c.max() / np.sqrt((a * a).sum() * (bb * bb).sum())))
    return best


def photos(every: int, names):
    paths = sorted(glob.glob(os.path.join(DATA, "lai2016_real", "*.jpg"))) + \
        sorted(glob.glob(os.path.join(DATA, "kohler2012", "*.png")))
    if names:
        return [p for p in paths if os.path.splitext(os.path.basename(p))[0] in names]
    return paths[::every]


def published_kernel(name: str):
    from deblur_core.kernels import load_kernel
    found = sorted(glob.glob(os.path.join(DATA, "lai2016_real_kernels", f"{name}_[0-9][0-9]_*_psf.png")))
    return load_kernel(found[0]) if found else None


def _tile(img, side):
    import cv2
    h, w = img.shape[:2]
    f = side / max(h, w)
    t = cv2.resize(img, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
    if t.ndim == 2:
        t = np.repeat(t[..., None], 3, axis=2)
    out = np.full((side, side, 3), 0.15, np.float32)
    out[:t.shape[0], :t.shape[1]] = t[..., :3]
    return out


def _kernel_tile(k, side):
    import cv2
    if k is None:
        return np.full((side, side, 3), 0.15, np.float32)
    k = np.asarray(k, np.float32)
    k = k / max(k.max(), 1e-12)
    t = cv2.resize(k, (side, side), interpolation=cv2.INTER_NEAREST)
    return np.repeat(t[..., None], 3, axis=2)


def _changed_most(before, after, side):
    """The ``side`` x ``side`` window (top, left) where the result differs most from the photo: where
    restored detail, ringing or crunch would show first at 100 %."""
    import cv2
    d = np.abs(np.asarray(after, np.float32) - np.asarray(before, np.float32))
    d = d.mean(axis=2) if d.ndim == 3 else d
    h, w = d.shape
    side = min(side, h, w)
    m = cv2.boxFilter(d, -1, (side, side), normalize=True, borderType=cv2.BORDER_CONSTANT)
    r = side // 2
    inner = m[r:h - side + r + 1, r:w - side + r + 1]
    y, x = np.unravel_index(int(np.argmax(inner)), inner.shape)
    return int(y), int(x), side


def _crop_row(before, after, side):
    y, x, s = _changed_most(before, after, side)
    pair = [np.asarray(im[y:y + s, x:x + s], np.float32) for im in (before, after)]
    pair = [np.repeat(c[..., None], 3, axis=2) if c.ndim == 2 else c[..., :3] for c in pair]
    out = np.full((side, 2 * side + 4, 3), 1.0, np.float32)
    out[:s, :s], out[:s, side + 4:side + 4 + s] = pair
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=4, help="one photo in N (default 4)")
    ap.add_argument("--names", nargs="*", help="photo names without extension (instead of --every)")
    ap.add_argument("--mode", default="shake", help="deblur mode (default shake)")
    ap.add_argument("--strength", type=float, default=50)
    ap.add_argument("--method", default=None, help="shake estimator: intensity (default), dark or classic")
    ap.add_argument("--tile", type=int, default=360, help="contact sheet tile side in px")
    ap.add_argument("--out", default=os.path.join(ROOT, "out", "real_sheet.png"))
    ap.add_argument("--crops", action="store_true",
                    help="also write OUT_100.png: photo | result at 100 %% where the result changed most")
    args = ap.parse_args(argv)

    from deblur_core import deblur
    from deblur_core.harm import MAX_RESIDUAL
    from deblur_core.imageio import read_image, write_image

    rows, crops = [], []
    print(f"# Real blurry photos: deblur(mode={args.mode!r}, strength={args.strength:g}"
          f"{', shake_method=' + repr(args.method) if args.method else ''}); sheet: {args.out}\n")
    print("| photo | px | route | kernel px | similarity to published | re-blur residual | applied | warnings | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    sims, rings, times = [], [], []
    for path in photos(args.every, args.names):
        name = os.path.splitext(os.path.basename(path))[0]
        img, _ = read_image(path)
        img = img[..., :3] if img.ndim == 3 else img
        kw = {"shake_method": args.method} if args.method else {}
        t = time.perf_counter()
        try:
            res = deblur(img, mode=args.mode, strength=args.strength, **kw)
        except ValueError as exc:
            print(f"| {name} | {img.shape[1]}x{img.shape[0]} | refused: {exc} | | | | | | |")
            continue
        dt = time.perf_counter() - t
        times.append(dt / (img.shape[0] * img.shape[1] / 1e6))
        k = res.kernel
        pub = published_kernel(name)
        sim = similarity(pub, k) if (pub is not None and k is not None) else None
        if sim is not None:
            sims.append(sim)
        ring = res.report.get('harm', {}).get('reblur_residual', float('nan'))
        rings.append(ring)
        rep = res.report
        applied = rep.get("guard", {}).get("applied", None)
        warn = "; ".join(w[:60] for w in rep.get("warnings", []))
        print(f"| {name} | {img.shape[1]}x{img.shape[0]} | {rep.get('action', '')[:48]} | "
              f"{'' if k is None else k.shape[0]} | {'' if sim is None else f'{sim:.3f}'} | {ring:.2f} | "
              f"{'' if applied is None else f'{applied:.2f}'} | {warn} | {dt:.1f} |", flush=True)
        rows.append(np.concatenate([_tile(img, args.tile), _tile(res.image, args.tile),
                                    _kernel_tile(k, args.tile),
                                    _kernel_tile(pub, args.tile)], axis=1))
        if args.crops:
            crops.append(_crop_row(img, res.image, args.tile))
    if rows:
        sheet = np.concatenate([np.pad(r, ((2, 2), (0, 0), (0, 0)), constant_values=1.0) for r in rows], axis=0)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        write_image(args.out, np.clip(sheet, 0, 1))
    if crops:
        sheet = np.concatenate([np.pad(r, ((2, 2), (0, 0), (0, 0)), constant_values=1.0) for r in crops], axis=0)
        write_image(os.path.splitext(args.out)[0] + "_100.png", np.clip(sheet, 0, 1))
    print(f"\n{len(rows)} photos; similarity to the published kernels: median "
          f"{np.median(sims) if sims else float('nan'):.3f} over {len(sims)}; re-blur residual median "
          f"{np.nanmedian(rings) if rings else float('nan'):.2f}, above the limit on {sum(r > MAX_RESIDUAL for r in rings)}; "
          f"median {np.median(times) if times else float('nan'):.1f} s/MP")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Camera shake that varies across the frame: one kernel for the photo against a grid of kernels (issue 5).

Each case: a held-out photo crop blurred in linear light by a shake with a roll. The camera
translates along a random Boracchi-Foi trajectory (``kernels.shake_trajectory``) and turns about the
frame's centre by an angle that grows over the exposure, so a point at distance r from the centre
sweeps an extra arc of r * angle. The blur is synthesised with the "efficient filter flow" model
(Hirsch et al. 2010): the true kernels on a 6 x 6 grid of positions, the photo split by bilinear
weights, each part blurred with its kernel. Noise sigma 0.005 is added to the sRGB result. A second
set of cases blurs the same crops with one uniform shake kernel (the control: what the grid costs
when the blur does not vary).

Each restoration is ``deblur(photo, "shake", 50, shake_regions=N, use_network=False)``: the blind
estimates, then the classical deconvolution (``--network``: the engine's default, the learned prior).
Oracle rows deconvolve with the true kernels, same deconvolution: the centre kernel for the whole
photo, and the 2 x 2 cell-centre kernels blended as the grid does.

    python bench/bench_varying.py --cases 6 --size 768
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, os.path.join(ROOT, "tools"), HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_shake import crop, load_photos  # noqa: E402
from deblur_core.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from deblur_core.fftutils import convolve  # noqa: E402
from deblur_core.kernels import center, kernel_from_points, shake_trajectory  # noqa: E402
from deblur_core.memory import policy_for  # noqa: E402
from deblur_core.spatial import cell_weight, grid_centres  # noqa: E402

NOISE = 0.005
FLOW_GRID = 6


def kernel_at(px, py, roll, x, y, side, size):
    """The kernel seen at pixel (x, y): the translation trajectory plus the roll's arc there."""
    c = (side - 1) / 2
    dx, dy = x - c, y - c
    # small-angle rotation about the centre: displacement = angle * (-dy, dx)
    return center(kernel_from_points(px - roll * dy, py + roll * dx, size))


def varying_case(sharp, rng, side):
    """(blurred sRGB, (px, py, roll, size)) for a shake with a roll: the translation trajectory, the
    roll angle at each of its time samples, and the kernel window that holds every position's kernel
    (:func:`kernel_at`)."""
    t_size = int(rng.integers(13, 26)) | 1
    px, py = shake_trajectory(t_size, rng)
    # roll ramps over the exposure (same time samples as the trajectory); corner arc of 8-16 px
    arc = rng.uniform(8, 16) * rng.choice([-1, 1])
    roll = np.linspace(0, 1, px.size) ** rng.uniform(0.7, 1.5) * (arc / (side / np.sqrt(2)))
    roll -= roll.mean()
    size = (t_size + int(np.ceil(abs(arc))) * 2 + 6) | 1
    pos = grid_centres(side, FLOW_GRID)
    lin = srgb_to_linear(sharp)
    out = np.zeros_like(lin)
    for gy, cy in enumerate(pos):
        for gx, cx in enumerate(pos):
            w = np.outer(cell_weight(side, FLOW_GRID, gy), cell_weight(side, FLOW_GRID, gx)).astype(np.float32)[..., None]
            out += convolve(lin * w, kernel_at(px, py, roll, cx, cy, side, size))
    blurred = np.clip(linear_to_srgb(out) + rng.normal(0, NOISE, out.shape).astype(np.float32), 0, 1)
    return blurred, (px, py, roll, size)


def psnr(a, b, border):
    d = (np.asarray(a, np.float64) - b)[border:-border, border:-border]
    return float(10 * np.log10(1.0 / max(np.mean(d * d), 1e-12)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--size", type=int, default=768, help="photo crop side in px")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="heldout", choices=("heldout", "train"))
    ap.add_argument("--network", action="store_true", help="restore with the learned prior (the default path)")
    args = ap.parse_args(argv)
    policy_for(args.size ** 2)
    from deblur_core import deblur
    from deblur_core.deconvolution import deconvolve
    from deblur_core.kernels import shake_kernel
    from deblur_core.spatial import restore_grid
    photos, source = load_photos(args.size, args.split)
    rng = np.random.default_rng(args.seed)
    use_net = None if args.network else False

    def restore_true(y, k):
        if use_net is False:
            return deconvolve(y, k, method="hyper-laplacian")
        from deblur_core.pnp import pnp_deconvolve
        return pnp_deconvolve(y, k)

    rows = {"varying": [], "uniform": []}
    print(f"# Spatially varying shake: {args.cases} cases, {args.size} px crops ({source}), noise {NOISE}, "
          f"{'network' if args.network else 'classical'} deconvolution\n")
    print("| # | photo | blur | blurry | 1 kernel | 2x2 | 3x3 | oracle: centre kernel | oracle: 2x2 true | own kernels 2x2 / 3x3 | time 1 / 2x2 / 3x3 s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    b = 24
    for i in range(args.cases):
        name, img = photos[i % len(photos)]
        sharp = crop(img, args.size, rng)
        blurred, (px, py, roll, size) = varying_case(sharp, rng, args.size)
        k_uni = shake_kernel(int(rng.integers(13, 32)) | 1, rng)
        uni = np.clip(linear_to_srgb(convolve(srgb_to_linear(sharp), k_uni))
                      + rng.normal(0, NOISE, sharp.shape).astype(np.float32), 0, 1)
        for blur, y in (("varying", blurred), ("uniform", uni)):
            vals, own, times = [psnr(y, sharp, b)], [], []
            for n in (1, 2, 3):
                t = time.perf_counter()
                res = deblur(y, "shake", 50, mask="none", use_network=use_net, shake_regions=n)
                times.append(time.perf_counter() - t)
                vals.append(psnr(res.image, sharp, b))
                if n > 1:
                    own.append(sum(r["source"] == "own" for r in res.report["shake"].get("regions", [])))
            if blur == "varying":
                c = (args.size - 1) / 2
                k_c = kernel_at(px, py, roll, c, c, args.size, size)
                o1 = psnr(restore_true(y, k_c), sharp, b)
                cs = grid_centres(args.size, 2)
                ks = [kernel_at(px, py, roll, cx, cy, args.size, size) for cy in cs for cx in cs]
                o2 = psnr(restore_grid(y, 2, ks, restore_true), sharp, b)
            else:
                o1 = o2 = psnr(restore_true(y, k_uni), sharp, b)
            rows[blur].append(vals + [o1, o2])
            print(f"| {i} | {name[:26]} | {blur} | {vals[0]:.2f} | {vals[1]:.2f} | {vals[2]:.2f} | {vals[3]:.2f} | "
                  f"{o1:.2f} | {o2:.2f} | {own[0]}/4, {own[1]}/9 | {times[0]:.0f} / {times[1]:.0f} / {times[2]:.0f} |", flush=True)
    print()
    for blur, r in rows.items():
        a = np.array(r)
        g = a[:, 1:] - a[:, :1]
        print(f"{blur}: mean PSNR gain over the blurry photo: 1 kernel {g[:, 0].mean():+.2f} dB, 2x2 {g[:, 1].mean():+.2f} dB, "
              f"3x3 {g[:, 2].mean():+.2f} dB; oracle centre kernel {g[:, 3].mean():+.2f}, oracle 2x2 {g[:, 4].mean():+.2f}; "
              f"2x2 better than 1 kernel on {int(np.sum(a[:, 2] > a[:, 1]))}/{len(a)} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main())

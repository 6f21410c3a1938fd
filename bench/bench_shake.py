#!/usr/bin/env python3
"""Blind camera-shake kernel estimation on held-out photos (issue 5).

Each case: a held-out photo crop, blurred in linear light with a real-looking shake kernel
(/work/shared/data/kernels/*.png, or a random Boracchi-Foi trajectory of 11-45 px), noise sigma 0.005
added to the sRGB-encoded result. The kernel is estimated blind (:func:`deblur_core.shake.estimate_kernel`, or the classic
:func:`deblur_core.classic.estimate_kernel`)
and both the estimated and the true kernel go through the same non-blind deconvolution
(``deconvolve(..., method="hyper-laplacian")``; ``--deconv network``: the plug-and-play loop with our
network, which the product uses by default).

Error ratio = MSE(result with estimated kernel) / MSE(result with true kernel) (sRGB, borders
cropped, after the best small integer shift: kernels are only defined up to a translation; a second
column aligns to 0.25 px as well, as Levin et al.'s evaluation code does). Targets:
>= 70 % of cases with ratio <= 2 and >= 90 % with ratio <= 3 (Levin et al. 2011 protocol; Cho & Lee
2009 reach 75 % at <= 3 on the Levin set).

Peer in the same run: the best-fitting *linear* motion kernel from the cepstrum
(``deblur_core.estimate.estimate_motion``), same deconvolution, same ratio.

    python bench/bench_shake.py --cases 12 --size 512 [--auto-size] [--timing 6]

``--latent-net FILE.onnx`` (size given only) replaces the estimator by one kernel step from a blind
sharp-edge network's latent (``training/train_sharpedge.py``, not shipped): the research path of stop 17.

``--capture --size 255 --kernels small``: real-capture-like cases (gray whole scenes, a 'valid' blur, low camera
noise, 8-bit PNG: the kind of Levin et al.'s recorded captures, on which the issue's first target is set).

``--timing N`` then times N estimates on whole 1 MP regions (1024 x 1024 crops), size given and found:
the issue's runtime target is "at most 10 s to estimate a kernel on a 1 MP region on 2 cores".
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, os.path.join(ROOT, "tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

from deblur_core.color import linear_to_srgb, srgb_to_linear  # noqa: E402
from deblur_core.deconvolution import deconvolve  # noqa: E402
from deblur_core.fftutils import convolve  # noqa: E402
from deblur_core.kernels import hand_shake_kernel, load_kernel, shake_kernel  # noqa: E402
from deblur_core.memory import policy_for  # noqa: E402

KERNEL_DIR = "/work/shared/data/kernels"
NOISE = 0.005
NOT_SHARP = ("clock", "page", "text", "coins", "moon", "immunohistochemistry", "hubble")


def square(k: np.ndarray) -> np.ndarray:
    """Pad a kernel to an odd square (centre kept)."""
    h, w = k.shape
    n = max(h, w) | 1
    return np.pad(k, (((n - h) // 2, (n - h) - (n - h) // 2), ((n - w) // 2, (n - w) - (n - w) // 2)))


def trim(k: np.ndarray, rel: float = 1e-3) -> np.ndarray:
    """Symmetric trim of near-zero borders (centre kept), odd square."""
    m = k > rel * k.max()
    ys, xs = np.nonzero(m)
    c = k.shape[0] // 2
    r = max(abs(ys - c).max(), abs(xs - c).max(), 1)
    return k[c - r:c + r + 1, c - r:c + r + 1]


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Max normalised cross-correlation over all shifts (1 = same kernel up to a translation)."""
    from scipy.signal import fftconvolve
    c = fftconvolve(a.astype(np.float64), b[::-1, ::-1].astype(np.float64), mode="full")
    return float(c.max() / np.sqrt((a.astype(np.float64) ** 2).sum() * (b.astype(np.float64) ** 2).sum()))


def mse_aligned(result, ref, border: int, max_shift: int, subpixel: bool = False) -> float:
    """MSE over the interior after the best integer shift of ``result`` (|shift| <= max_shift);
    ``subpixel``: then refined in 0.25 px steps around it (cubic-spline shift), as Levin et al.'s
    ``comp_upto_shift`` does: a kernel is only defined up to a translation, including a fraction
    of a pixel (its centre of mass is not on the pixel grid), and a 0.5 px offset of an otherwise
    perfect result alone costs a large MSE ratio."""
    a = np.asarray(result, np.float64)
    b = np.asarray(ref, np.float64)
    s = border
    best, by, bx = np.inf, 0, 0
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            d = a[s + dy:a.shape[0] - s + dy, s + dx:a.shape[1] - s + dx] - b[s:-s, s:-s]
            e = float(np.mean(d * d))
            if e < best:
                best, by, bx = e, dy, dx
    if not subpixel:
        return best
    from scipy.ndimage import shift as nd_shift, spline_filter
    m = 4                                           # context for the spline around the crop
    win = a[s + by - m:a.shape[0] - s + by + m, s + bx - m:a.shape[1] - s + bx + m]
    planes = [win] if a.ndim == 2 else [win[..., c] for c in range(win.shape[2])]
    coefs = [spline_filter(p, order=3, mode="nearest") for p in planes]   # prefilter once
    ref_c = b[s:-s, s:-s]
    for fy in np.arange(-0.75, 0.76, 0.25):
        for fx in np.arange(-0.75, 0.76, 0.25):
            if fy == 0 and fx == 0:
                continue
            sh = np.stack([nd_shift(c, (-fy, -fx), order=3, mode="nearest", prefilter=False)[m:-m, m:-m]
                           for c in coefs], -1).reshape(ref_c.shape)
            d = sh - ref_c
            best = min(best, float(np.mean(d * d)))
    return best


def load_photos(side: int, split: str = "heldout"):
    try:
        from photos import photo_paths
        from deblur_core.imageio import read_image
        paths = [p for p in photo_paths(split) if not any(t in p.name for t in NOT_SHARP)]
        out = []
        for p in paths:
            img, _ = read_image(str(p))
            if img.ndim == 3:
                img = img[..., :3]
            out.append((p.stem, img))
        if out:
            return out, f"tools/photos.py {split}"
    except Exception as exc:  # noqa: BLE001 - fall back to the bundled images
        print(f"(tools/photos.py unavailable: {exc}; using scikit-image images)")
    from skimage import data
    out = []
    for name in ("astronaut", "camera", "coffee", "chelsea", "rocket", "brick", "grass"):
        img = getattr(data, name)().astype(np.float32) / 255
        out.append((name, img))
    return out, "scikit-image"


def crop(img, side, rng):
    h, w = img.shape[:2]
    if h < side or w < side:
        import cv2
        s = side / min(h, w)
        img = cv2.resize(img, (int(np.ceil(w * s)), int(np.ceil(h * s))), interpolation=cv2.INTER_CUBIC)
        h, w = img.shape[:2]
    y0 = (h - side) // 2
    x0 = (w - side) // 2
    return np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side]).astype(np.float32)


def shot_and_read_noise(linear: np.ndarray, shot: float, read: float, rng) -> np.ndarray:
    """``linear`` (a sensor's linear values) with Poisson-Gaussian noise: variance shot x value + read^2."""
    return linear + rng.normal(0, 1, linear.shape).astype(np.float32) * np.sqrt(shot * np.clip(linear, 0, None) + read * read)


def camera(sharp: np.ndarray, k: np.ndarray, rng, *, lights: bool = False):
    """A camera's view of ``sharp`` (sRGB-encoded) shaken by ``k``: exposure pushed so highlights clip,
    optional small lamps (radiance 4-20x white, their trails clip), blur in linear light,
    Poisson-Gaussian noise at phone-to-APS-C levels (shot gain 0.0005-0.004, read noise 0.001-0.003 in
    linear units), clipping, sRGB encoding, JPEG quality 85-95. Returns (sharp reference as the camera
    would record it without shake, blurred photo), both sRGB-encoded in [0, 1]."""
    import cv2
    lin = srgb_to_linear(sharp) * np.float32(rng.uniform(1.0, 1.5))
    if lights:
        h, w = lin.shape[:2]
        for _ in range(int(rng.integers(3, 9))):
            y, x = int(rng.integers(k.shape[0], h - k.shape[0])), int(rng.integers(k.shape[1], w - k.shape[1]))
            r = int(rng.integers(1, 4))
            cv2.circle(lin, (x, y), r, (float(rng.uniform(4, 20)),) * 3, -1)
    blurred = convolve(lin, k)
    a, b = rng.uniform(0.0005, 0.004), rng.uniform(0.001, 0.003)
    noisy = shot_and_read_noise(blurred, a, b, rng)
    out = linear_to_srgb(np.clip(noisy, 0, 1))
    q = int(rng.integers(85, 96))
    enc = cv2.imencode(".jpg", (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)[..., ::-1] if out.ndim == 3
                       else (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])[1]
    dec = cv2.imdecode(enc, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255
    dec = dec[..., ::-1] if dec.ndim == 3 else dec
    return linear_to_srgb(np.clip(lin, 0, 1)), np.ascontiguousarray(dec)


def capture(photo: np.ndarray, k: np.ndarray, side: int, rng, noise_scale: float = 1.0):
    """A real capture as Levin et al. (CVPR 2009) recorded them: the whole scene (the photo area-downscaled
    so that its shorter side is the crop plus the kernel's margins, centre crop) in gray, shaken in linear
    light with the blur's tails coming in from outside the frame (a 'valid' blur, no wrap-around), low
    Poisson-Gaussian camera noise (base ISO: shot gain 0.0001-0.0008, read noise 0.0005-0.0015), sRGB, an
    8-bit PNG (no JPEG); ``noise_scale`` scales both noise terms (0.15: a tripod-steady clean capture).
    Returns (sharp, blurred), both ``side`` x ``side``, sRGB-encoded gray in [0, 1]."""
    import cv2
    g = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY) if photo.ndim == 3 else photo
    m = k.shape[0]
    need = side + 2 * m
    f = need / min(g.shape)
    g = cv2.resize(g, (max(need, int(round(g.shape[1] * f))), max(need, int(round(g.shape[0] * f)))),
                   interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    lin = srgb_to_linear(crop(g, need, rng)) * np.float32(rng.uniform(0.7, 1.0))
    b = convolve(lin, k)
    a, r = noise_scale * rng.uniform(0.0001, 0.0008), noise_scale * rng.uniform(0.0005, 0.0015)
    b = shot_and_read_noise(b, a, r, rng)
    blurred = np.round(linear_to_srgb(np.clip(b, 0, 1)) * 255) / 255
    sharp = linear_to_srgb(np.clip(lin, 0, 1))
    return (np.ascontiguousarray(sharp[m:-m, m:-m], np.float32),
            np.ascontiguousarray(blurred[m:-m, m:-m], np.float32))


def make_cases(n: int, side: int, seed: int, split: str = "heldout", noise: float = NOISE, *,
               camera_model: bool = False, kernel_range=(11, 45), lights: bool = False, files=None,
               trajectories: str = "hand", captures: bool = False, capture_noise: float = 1.0):
    photos, source = load_photos(side, split)
    files = sorted(glob.glob(os.path.join(KERNEL_DIR, "*.png"))) if files is None else files
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        name, img = photos[i % len(photos)]
        if i % 2 == 0 and files:
            f = files[(i // 2) % len(files)]
            k = trim(square(load_kernel(f)))
            kname = os.path.basename(f)[:-4]
        else:
            size = int(rng.integers(kernel_range[0], kernel_range[1] + 1))
            make = hand_shake_kernel if trajectories == "hand" else shake_kernel
            k = square(make(size, rng))
            kname = f"shake{size}"
        k = (k / k.sum()).astype(np.float32)
        if captures:
            sharp, blurred = capture(img, k, side, rng, capture_noise)
            cases.append((name, kname, sharp, blurred, k))
            continue
        sharp = crop(img, side, rng)
        if camera_model:
            sharp, blurred = camera(sharp, k, rng, lights=lights)
        else:
            blurred = linear_to_srgb(convolve(srgb_to_linear(sharp), k))
            blurred = np.clip(blurred + rng.normal(0, noise, blurred.shape).astype(np.float32), 0, 1)
        cases.append((name, kname, sharp, blurred, k))
    return cases, source


def latent_net_estimator(onnx_path: str):
    """``estimate(blurred, size) -> (kernel, info)``: the kernel from ONE consistent kernel step (the classic
    estimator's finest-level step, on the whole crop) whose latent is a blind sharp-edge network's prediction from the
    blurred luminance alone (``training/train_sharpedge.py``: sRGB-encoded gray in and out)."""
    import cv2
    import onnxruntime as ort
    from deblur_core.classic import DEFAULT_SETTINGS
    from deblur_core.classic.cleanup import clean_kernel, final_trim
    from deblur_core.classic.steps import kernel_least_squares
    from deblur_core.color import linear_luminance
    from deblur_core.fftutils import rfft2
    from deblur_core.shake.kernel_step import delta
    from deblur_core.shake.latent import forward_gradients
    from deblur_core.fftutils import pad_for_deconvolution

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])

    def estimate(blurred, ks):
        yb = linear_luminance(blurred)
        h, w = yb.shape
        hp, wp = -(-h // 32) * 32, -(-w // 32) * 32       # the network's pad multiple
        x = np.pad(linear_to_srgb(yb), ((0, hp - h), (0, wp - w)), mode="reflect")[None, None]
        latent = srgb_to_linear(sess.run(None, {"input": x.astype(np.float32)})[0][0, 0, :h, :w])
        lo, hi = np.percentile(yb, [1, 99])
        s = max(hi - lo, 1e-3)
        ypad, crop = pad_for_deconvolution((yb - lo) / s, (ks, ks), margin=ks + 4)
        xpad, _ = pad_for_deconvolution((latent - lo) / s, (ks, ks), margin=ks + 4)
        region = np.zeros(ypad.shape, np.float32)
        region[crop] = 1
        footprint_in = cv2.erode(region, np.ones((ks, ks), np.uint8))
        gy = [g * footprint_in for g in forward_gradients(ypad)]
        gx = [g * footprint_in for g in forward_gradients(xpad)]
        k = kernel_least_squares([rfft2(g) for g in gx], [rfft2(g) for g in gy], ks, delta(ks), 2e-3, shape=ypad.shape)
        k = final_trim(clean_kernel(k, DEFAULT_SETTINGS.thr, DEFAULT_SETTINGS.min_mass))
        return k.astype(np.float32), {"roi": [0, 0, w, h]}
    return estimate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=12)
    ap.add_argument("--size", type=int, default=512, help="photo crop side in px")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--auto-size", action="store_true", help="let the estimator find the kernel size")
    ap.add_argument("--split", default="heldout", choices=("heldout", "train"),
                    help="photos: the held-out split (report) or the train split (tuning)")
    ap.add_argument("--size-scale", type=float, default=1.0, metavar="S",
                    help="size given = S x the true kernel's (a user's guess: 0.75 is 25 %% too small)")
    ap.add_argument("--single-window", action="store_true",
                    help="size given: estimate in that window only (the peer of the default given/grown pair)")
    ap.add_argument("--noise", type=float, default=NOISE, metavar="SIGMA",
                    help=f"noise sigma added to the sRGB-encoded blurred crop (the issue's: {NOISE})")
    ap.add_argument("--classic-fine", action="store_true",
                    help="the finest level on the photo as it is, edge-selected kernel step (the peer of the "
                         "default denoised finest level with the consistent step, stop 16)")
    ap.add_argument("--latent-net", default="", metavar="ONNX",
                    help="size given: one kernel step from this blind sharp-edge network's latent instead of the "
                         "estimator (training/train_sharpedge.py; research, not shipped)")
    ap.add_argument("--deconv", default="hyper-laplacian", choices=("hyper-laplacian", "network"),
                    help="the non-blind deconvolution both kernels go through (network: the product's default, "
                         "the plug-and-play loop; slower)")
    ap.add_argument("--camera", action="store_true",
                    help="camera-pipeline synthesis instead of plain noise: exposure with clipped highlights, "
                         "Poisson-Gaussian noise, sRGB, JPEG 85-95 (bench_shake.camera)")
    ap.add_argument("--lights", action="store_true", help="with --camera: small saturated lamps in every photo")
    ap.add_argument("--capture", action="store_true",
                    help="real-capture-like cases (Levin et al. 2009's kind, issue 19's first target): the whole scene "
                         "in gray at --size (use 255), a 'valid' blur in linear light, low camera noise, 8-bit PNG "
                         "(bench_shake.capture); with --kernels small")
    ap.add_argument("--capture-noise", type=float, default=1.0, metavar="S",
                    help="with --capture: scale the camera noise (0.15: a clean capture, where BLIND_NOISE_FLOOR acts)")
    ap.add_argument("--kernels", default="all", choices=("all", "small", "large"),
                    help="all: the shared kernels + random 11-45 px; small: random 13-27 px only (real-capture-like); "
                         "large: the shared kernels + random 31-75 px")
    ap.add_argument("--trajectories", default="hand", choices=("hand", "loops"),
                    help="random kernels: hand (open strokes like measured real shake, kernels.hand_shake_kernel; "
                         "the default) or loops (Boracchi & Foi's whole trajectory, kernels.shake_kernel: the window "
                         "filled with loops, much harder than real shake; the bench's kernels before stop 20)")
    ap.add_argument("--method", default="intensity", choices=("intensity", "dark", "classic"),
                    help="the estimator: intensity (deblur_core.shake with the L0 intensity prior, the default), "
                         "dark (the same with the dark channel prior) or classic (deblur_core.classic)")
    ap.add_argument("--product", action="store_true",
                    help="the product's whole path instead of the estimator alone: deblur(mode='shake', strength=50, "
                         "shake_regions=1) with its do-no-harm check and second candidate (ratio against the true "
                         "kernel through --deconv)")
    ap.add_argument("--mode", default="shake", choices=("shake", "auto"),
                    help="with --product: the mode the product is asked for (auto: the diagnosis routes it; "
                         "issue 20's auto-mode target on real-capture-like shake)")
    ap.add_argument("--timing", type=int, default=0, metavar="N",
                    help="then time N estimates on 1 MP regions (the issue's runtime target), size given and found")
    args = ap.parse_args(argv)
    policy_for(args.size ** 2)  # the memory policy of the engine's own processes (deblur_core/memory.py)

    import functools
    from deblur_core import classic as classic_estimator
    classic = classic_estimator.DEFAULT_SETTINGS.but(**({"grow": None} if args.single_window else {}),
                                                     **({"fine_denoise": False} if args.classic_fine else {}))
    estimate_kernel = functools.partial(classic_estimator.estimate_kernel, settings=classic)
    if args.method != "classic":
        from deblur_core import shake
        estimate_kernel = functools.partial(shake.estimate_kernel, settings=shake.PRIORS[args.method])
    if args.latent_net:
        if args.auto_size:
            ap.error("--latent-net needs the size given (no --auto-size)")
        estimate_kernel = latent_net_estimator(args.latent_net)
    try:
        from deblur_core.estimate import estimate_motion, working_luma
        from deblur_core.kernels import motion_kernel
    except ImportError:
        estimate_motion = None

    if args.deconv == "network":
        from deblur_core.pnp import pnp_deconvolve as restore
    else:
        def restore(image, psf):
            return deconvolve(image, psf, method="hyper-laplacian")
    kr = {"all": (11, 45), "small": (13, 27), "large": (31, 75)}[args.kernels]
    cases, source = make_cases(args.cases, args.size, args.seed, args.split, args.noise, camera_model=args.camera,
                               kernel_range=kr, lights=args.lights, files=[] if args.kernels == "small" else None,
                               trajectories=args.trajectories, captures=args.capture,
                               capture_noise=args.capture_noise)
    print(f"# Blind shake-kernel estimation: {len(cases)} cases, {args.size} px crops ({source}), "
          f"noise {args.noise:g}, kernel size {'auto' if args.auto_size else 'given'}"
          f"{f' x {args.size_scale:g}' if args.size_scale != 1 and not args.auto_size else ''}"
          f"{', that window only' if args.single_window else ''}"
          f"{', finest level on the photo as it is' if args.classic_fine else ''}"
          f"{f', one kernel step from the latent of {os.path.basename(args.latent_net)}' if args.latent_net else ''}"
          f"; deconvolution: {args.deconv}; estimator: {args.method}"
          f"{'; camera pipeline (clipping, Poisson-Gaussian noise, JPEG)' if args.camera else ''}"
          f"{'; real-capture-like (whole scene in gray, valid blur, low camera noise, 8-bit PNG)' if args.capture else ''}"
          f"{f', noise x {args.capture_noise:g}' if args.capture and args.capture_noise != 1 else ''}"
          f"{' with lamps' if args.lights else ''}; kernels: {args.kernels}, random ones {args.trajectories}\n")
    print("| # | photo | kernel | true px | est px | similarity | ratio | ratio, sub-px | PSNR dB: est / true kernel "
          "| linear-motion ratio | time s | s/MP |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratios, sub, peer, rt_mp, sims, psnr = [], [], [], [], [], []
    fallbacks = 0
    routes = []
    for i, (name, kname, sharp, blurred, k) in enumerate(cases):
        border = max(k.shape[0], 16)
        ref = restore(blurred, k)
        e_true = mse_aligned(ref, sharp, border, 2)
        e_true_sub = mse_aligned(ref, sharp, border, 2, subpixel=True)
        t = time.perf_counter()
        given = max(3, int(round(k.shape[0] * args.size_scale)) | 1)
        if args.product:
            from deblur_core import deblur
            out = deblur(blurred, mode=args.mode, strength=50, kernel_size=None if args.auto_size else given,
                         shake_regions=1, shake_method=args.method)
            res = out.image
            ke = out.kernel if out.kernel is not None else np.ones((1, 1), np.float32)
            info = dict(out.report.get("shake", {}), roi=out.report.get("shake", {}).get("roi", [0, 0, *blurred.shape[1::-1]]))
            fallbacks += out.report.get("fallback") == "sharpen"
            routes.append(out.report.get("action", "").split(" ")[0] or "?")
        else:
            ke, info = estimate_kernel(blurred, None if args.auto_size else given)
            res = None
        dt = time.perf_counter() - t
        if res is None:
            res = restore(blurred, ke)
        e_est = mse_aligned(res, sharp, border, 6)
        ratio = e_est / max(e_true, 1e-12)
        ratios.append(ratio)
        e_blur = mse_aligned(blurred, sharp, border, 2)
        psnr.append([10 * np.log10(1 / max(e, 1e-12)) for e in (e_est, e_true, e_blur)])
        sub.append(mse_aligned(res, sharp, border, 6, subpixel=True) / max(e_true_sub, 1e-12))
        roi = info["roi"]
        rt_mp.append(dt / (roi[2] * roi[3] / 1e6))
        pr = ""
        if estimate_motion is not None:
            length, angle, _ = estimate_motion(working_luma(blurred), normalise="global")
            km = motion_kernel(length, angle)
            rm = restore(blurred, km)
            p = mse_aligned(rm, sharp, border, 6) / max(e_true, 1e-12)
            peer.append(p)
            pr = f"{p:.2f}"
        sims.append(similarity(k, ke))
        print(f"| {i} | {name[:28]} | {kname} | {k.shape[0]} | {ke.shape[0]} | {sims[-1]:.3f} | "
              f"{ratio:.2f} | {sub[-1]:.2f} | {psnr[-1][0]:.2f} / {psnr[-1][1]:.2f} | {pr} | {dt:.2f} | {rt_mp[-1]:.1f} |", flush=True)
    r = np.array(ratios)
    label = (f"latent net {os.path.basename(args.latent_net)}, one step" if args.latent_net else
             f"the product's deblur(mode='{args.mode}')" if args.product else
             {"intensity": "deblur_core.shake, L0 intensity", "dark": "deblur_core.shake, dark channel",
              "classic": "deblur_core.classic"}[args.method])
    print(f"\nblind ({label}): ratio <= 2: {np.mean(r <= 2) * 100:.0f} %, <= 3: {np.mean(r <= 3) * 100:.0f} %, "
          f"median ratio {np.median(r):.2f}; median runtime {np.median(rt_mp):.1f} s/MP "
          f"(targets: >= 70 % at <= 2, >= 90 % at <= 3); kernel similarity median {np.median(sims):.3f}, "
          f"mean {np.mean(sims):.3f}")
    if args.product:
        print(f"the product fell back to gentle sharpening on {fallbacks} of {len(cases)} photos; routes taken: "
              + ", ".join(f"{r} {routes.count(r)}" for r in sorted(set(routes))))
    db = np.array(psnr).mean(axis=0)
    print(f"mean PSNR of the result ({args.deconv}): estimated kernel {db[0]:.2f} dB, true kernel "
          f"{db[1]:.2f} dB, the blurry photo {db[2]:.2f} dB")
    loss = np.array([p[2] - p[0] for p in psnr])      # do no harm: the result below the photo it came from
    print(f"worse than the blurry photo by more than 0.5 dB: {int(np.sum(loss > 0.5))} of {len(loss)} "
          f"(worst {loss.max():+.2f} dB)")
    r = np.array(sub)
    print(f"same, aligned to 0.25 px (Levin et al.'s comp_upto_shift): ratio <= 2: {np.mean(r <= 2) * 100:.0f} %, "
          f"<= 3: {np.mean(r <= 3) * 100:.0f} %, median ratio {np.median(r):.2f}")
    if peer:
        p = np.array(peer)
        print(f"peer, best linear motion kernel (estimate.estimate_motion): ratio <= 2: {np.mean(p <= 2) * 100:.0f} %, "
              f"<= 3: {np.mean(p <= 3) * 100:.0f} %, median ratio {np.median(p):.2f}")
    else:
        print("peer line skipped: deblur_core.estimate.estimate_motion is not available")
    if args.timing:
        time_1mp(args.timing, args.seed, args.split, estimate_kernel)
    return 0


def time_1mp(n: int, seed: int, split: str, estimate_kernel) -> None:
    """Seconds ``estimate_kernel`` (the --method's) takes on a whole 1024 x 1024 region (the issue's "1 MP
    region on 2 cores"), size given and found, beside the straight-line (cepstrum) estimate of the same
    region. The per-MP figures of the main table come from the default 512 px crops, where the kernel
    step's fixed cost weighs more."""
    from deblur_core.estimate import estimate_motion, working_luma
    policy_for(1024 ** 2)
    cases, _ = make_cases(n, 1024, seed + 1000, split)
    print(f"\n# Runtime on 1 MP regions ({n} cases, 1024 x 1024 crops, the whole crop as the region, "
          f"{os.cpu_count()} cores)\n")
    print("| # | kernel | size given: s | size found: s (window) | straight line (cepstrum): s |")
    print("|---|---|---|---|---|")
    given, found, line = [], [], []
    roi = (0, 0, 1024, 1024)
    for i, (name, kname, sharp, blurred, k) in enumerate(cases):
        t = time.perf_counter()
        estimate_kernel(blurred, k.shape[0], roi=roi)
        given.append(time.perf_counter() - t)
        t = time.perf_counter()
        _, info = estimate_kernel(blurred, None, roi=roi)
        found.append(time.perf_counter() - t)
        t = time.perf_counter()
        estimate_motion(working_luma(blurred), normalise="global")
        line.append(time.perf_counter() - t)
        print(f"| {i} | {kname} | {given[-1]:.2f} | {found[-1]:.2f} ({info['window']} px) | {line[-1]:.2f} |", flush=True)
    print(f"\nper 1 MP region: size given median {np.median(given):.1f} s (max {max(given):.1f}), size found median "
          f"{np.median(found):.1f} s (max {max(found):.1f}); straight line {np.median(line):.2f} s (target: <= 10 s)")


if __name__ == "__main__":
    sys.exit(main())

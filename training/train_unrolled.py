"""Fine-tune the denoiser *inside* the plug-and-play deconvolution loop (deep unfolding, CPU, resumable).

    nice -n 10 .venv-train/bin/python training/train_unrolled.py --name pnp-prior-v1 --steps 1200 --max-minutes 50

The plug-and-play loop of :mod:`deblur_core.pnp` alternates an exact FFT step (the blur model, in linear
light) with a pass of the denoiser. A denoiser trained on white noise sees something else there: the
x-step's output, whose errors are ringing along the kernel's direction, not white noise. Unfolding
the loop with its fixed schedule and training the shared network end to end on the final result
teaches it exactly that (Zhang, Van Gool & Timofte, "Deep Unfolding Network for Image
Super-Resolution", CVPR 2020 (USRNet); Dong et al., "Deep Wiener Deconvolution", NeurIPS 2020).

The loop here is the engine's, step for step: the same edge-tapered extension
(``fftutils.pad_for_deconvolution``), the same noise estimate and schedule (``pnp.schedule``,
``pnp.auto_iterations``), the network on the photo plus an 8 px rim, the sRGB-slope noise map; only the
arithmetic is torch's, so gradients flow through the FFT steps. The engine itself runs the exported
ONNX file with numpy; nothing here is imported by it.

* data: train-split photos only (``tools/photos.py``), 4 of them kept out as this run's validation
  (the benchmarks' held-out split is never seen); random crops blurred in linear light with the
  engine's own kernel generators (motion, defocus, gaussian, Boracchi-Foi shake; no recorded kernels)
  and sensor-like noise in linear light (``degrade.degrade``), sigma 0.002-0.02;
* init: the shipped ``models/denoiser-v2.onnx`` weights (or ``--init`` checkpoint);
* loss: L1 on the final sRGB result, plus a quarter weight on every intermediate denoiser output;
  Adam with warm-up and cosine decay; EMA weights are validated and exported (``export.py``).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, ROOT, os.path.join(ROOT, "tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

from degrade import degrade, random_kernel  # noqa: E402
from model import Denoiser, load_onnx_weights  # noqa: E402
from photos import photo_paths  # noqa: E402
from train import Sampler, load_rgb, warmup_cosine  # noqa: E402

from deblur_core.color import linear_to_srgb, luminance, srgb_to_linear  # noqa: E402
from deblur_core.deconvolution import estimate_noise  # noqa: E402
from deblur_core.fftutils import pad_for_deconvolution, psf2otf  # noqa: E402
from deblur_core.pnp import auto_iterations, schedule  # noqa: E402

MAX_KERNEL = 45
NET_MARGIN = 8          # pnp's default net_margin (a multiple of the network's 8)
N_VAL_PHOTOS = 4


# ------------------------------------------------------------------------------------------- data
class Cases:
    """Blurred, noisy crops ready for the unrolled loop, all of one padded shape per batch."""

    def __init__(self, images, crop: int, rng: np.random.Generator, soft: float = 0.0):
        self.crop, self.rng, self.soft = crop, rng, soft
        self.sampler = Sampler(images, crop, rng)    # train.py's crops: downscale, rotation, flip
        self.margin = int(MAX_KERNEL * 1.5) + 8      # fixed, so every case pads to the same shape

    def one(self, sigma: float, gray: bool):
        rng = self.rng
        psf, _ = random_kernel(rng, max_size=MAX_KERNEL)
        ctx = psf.shape[0] // 2 + 2
        sharp = self.sampler.crop_one(self.crop + 2 * ctx)
        if rng.uniform() < self.soft:
            sharp = soften(sharp, rng)
        if gray:
            sharp = np.repeat(luminance(sharp)[..., None], 3, axis=2)
        # Blur the crop with its surroundings, then cut: the borders hold real outside content.
        y = degrade(sharp, psf, noise_sigma=sigma, rng=rng)[ctx:-ctx, ctx:-ctx]
        if gray:
            y = np.repeat(y[..., :1], 3, axis=2)
        sharp = sharp[ctx:-ctx, ctx:-ctx]
        lin = np.moveaxis(srgb_to_linear(y), 2, 0)
        sn = float(np.mean([estimate_noise(c, jpeg_robust=True) for c in lin[:1 if gray else 3]]))
        z0, crop = pad_for_deconvolution(lin, psf.shape, margin=self.margin)
        otf = psf2otf(psf.astype(np.float32), z0.shape[1:])
        return z0, otf, crop, sharp.transpose(2, 0, 1).copy(), sn

    def batch(self, n: int, sigma: float | None = None):
        rng = self.rng
        if sigma is None:
            sigma = float(np.exp(rng.uniform(np.log(0.002), np.log(0.02))))
        gray = rng.uniform() < 0.15
        items = [self.one(sigma, gray) for _ in range(n)]
        z0 = torch.from_numpy(np.stack([i[0] for i in items]))
        otf = torch.from_numpy(np.stack([i[1] for i in items]))
        sharp = torch.from_numpy(np.stack([i[3] for i in items]))
        sn = np.array([i[4] for i in items])
        return z0, otf, items[0][2], sharp, sn, gray


def soften(sharp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A target that is soft in places, as photos are (depth of field, lens softness): gaussian blur
    of sigma 0.6-3 px in linear light, over the whole crop (30 %) or under a smooth random mask. The
    loop must then remove the kernel's blur only, not sharpen what was soft before it (a prior trained
    on sharp-everywhere targets turned out-of-focus edges hard, and shifted them)."""
    import cv2
    lin = srgb_to_linear(sharp)
    soft = cv2.GaussianBlur(lin, (0, 0), float(rng.uniform(0.6, 3.0)))
    if rng.uniform() < 0.7:
        h, w = lin.shape[:2]
        m = cv2.resize(rng.random((4, 4)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        m = 1 / (1 + np.exp(-(m - 0.5) * 10))
        soft = m[..., None] * soft + (1 - m[..., None]) * lin
    return np.clip(linear_to_srgb(soft), 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------- the unrolled loop
def srgb_to_linear_t(x):
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb_t(x):
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def srgb_slope_t(lin):
    lin = lin.clamp(0, 1)
    return torch.clamp((1.055 / 2.4) * lin.clamp(min=0.0031308) ** (1 / 2.4 - 1), max=12.92)


def unrolled(model, z0, otf, crop, sn_est, *, gray: bool = False, strength_scale: float = 1.0):
    """pnp._pnp_tile in torch for a batch of one padded shape: returns the denoiser's output on the
    photo (sRGB, N x 3 x h x w, unclipped) after every iteration."""
    n, nc, H, W = z0.shape
    sn = np.maximum(sn_est, 0.002) * strength_scale
    lams, starts = zip(*(schedule(float(s)) for s in sn))
    starts = np.maximum(np.array(starts), sn)
    iters = auto_iterations(float(np.median(sn)), float(np.median(starts)))
    sig = np.stack([np.geomspace(a, b, iters) for a, b in zip(starts, sn)], 1)   # (iters, n)
    KtK = (otf.real ** 2 + otf.imag ** 2)[:, None]
    KtY = torch.conj(otf)[:, None] * torch.fft.rfft2(z0)
    m = NET_MARGIN
    wy = slice(max(0, crop[0].start - m), min(H, crop[0].stop + m))
    wx = slice(max(0, crop[1].start - m), min(W, crop[1].stop + m))
    cy = slice(crop[0].start - wy.start, crop[0].stop - wy.start)
    cx = slice(crop[1].start - wx.start, crop[1].stop - wx.start)
    z = z0
    outs = []
    for i in range(iters):
        s = torch.tensor(sig[i], dtype=torch.float32)[:, None, None, None]
        alpha = torch.tensor(np.array(lams) * sn * sn, dtype=torch.float32)[:, None, None, None] / (s * s)
        x = torch.fft.irfft2((KtY + alpha * torch.fft.rfft2(z)) / (KtK + alpha), s=(H, W)).clamp(0, 1)
        xw = x[:, :, wy, wx]
        with torch.no_grad():
            smap = torch.clamp(s * srgb_slope_t(xw.mean(1, keepdim=True)), max=0.25)
        inp = torch.cat([linear_to_srgb_t(xw), smap], 1)
        out = model(inp)
        if gray:
            out = out.mean(1, keepdim=True).expand(-1, 3, -1, -1)
        outs.append(out[:, :, cy, cx])
        zw = srgb_to_linear_t(out.clamp(0, 1))
        z = torch.cat([x[:, :, :wy.start], torch.cat([x[:, :, wy, :wx.start], zw, x[:, :, wy, wx.stop:]], 3),
                       x[:, :, wy.stop:]], 2)
    return outs


# ------------------------------------------------------------------------------------------ train
def val_set(images, crop, n=16, soft=0.0):
    cases = Cases(images, crop, np.random.default_rng(4321), soft=soft)
    out = []
    for sigma in (0.003, 0.01):
        for _ in range(n // 4):
            out.append(cases.batch(2, sigma))
    return out


@torch.no_grad()
def validate(model, vset) -> float:
    model.eval()
    ps = []
    for z0, otf, crop, sharp, sn, gray in vset:
        out = unrolled(model, z0, otf, crop, sn, gray=gray)[-1].clamp(0, 1)
        b = 16
        for o, t in zip(out, sharp):
            mse = float(((o - t)[:, b:-b, b:-b] ** 2).mean())
            ps.append(10 * math.log10(1 / max(mse, 1e-12)))
    model.train()
    return float(np.mean(ps))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="pnp-prior-v1")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--aux", type=float, default=0.25, help="weight of the intermediate outputs' loss")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument("--ckpt-every", type=int, default=25)
    ap.add_argument("--max-minutes", type=float, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init-onnx", default=os.path.join(ROOT, "models", "denoiser-v2.onnx"))
    ap.add_argument("--init", default="", help="start from this run's checkpoint (its EMA weights) instead")
    ap.add_argument("--soft", type=float, default=0.5, help="share of targets softened in places (soften())")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    os.makedirs(os.path.join(HERE, "checkpoints"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "runs"), exist_ok=True)
    ckpt_path = os.path.join(HERE, "checkpoints", f"{a.name}.pt")
    logf = open(os.path.join(HERE, "runs", f"{a.name}.log"), "a", buffering=1)

    def log(msg):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")

    model = Denoiser()
    ema = copy.deepcopy(model)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    step, elapsed = 0, 0.0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, elapsed = ck["step"], ck.get("elapsed", 0.0)
        log(f"resumed {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained)")
    else:
        if a.init:
            ck = torch.load(os.path.join(HERE, "checkpoints", f"{a.init}.pt"), map_location="cpu", weights_only=False)
            model.load_state_dict(ck["ema"])
            source = f"{a.init}'s EMA weights (step {ck['step']})"
        else:
            load_onnx_weights(model, a.init_onnx)
            source = a.init_onnx
        ema.load_state_dict(model.state_dict())
        log(f"new run {a.name}: {json.dumps(vars(a))}; initialised from {source}")
    for p in ema.parameters():
        p.requires_grad_(False)

    paths = sorted(photo_paths("train"))
    val_paths, train_paths = paths[:N_VAL_PHOTOS], paths[N_VAL_PHOTOS:]
    images = [load_rgb(p) for p in train_paths]
    val_images = [load_rgb(p) for p in val_paths]
    vsets = {"sharp": val_set(val_images, a.crop), "soft": val_set(val_images, a.crop, soft=1.0)}
    log(f"train photos {len(images)}, validation photos {len(val_paths)} (train split; held-out never used)")

    def val_line():
        return " ".join(f"psnr-{k} {validate(ema, v):.3f}" for k, v in vsets.items())

    if step == 0:
        log(f"val step 0 {val_line()}")
    cases = Cases(images, a.crop, np.random.default_rng([a.seed, step]), soft=a.soft)

    def lr_at(s):
        return warmup_cosine(s, a.lr, a.warmup, a.steps, floor=0.05)

    def save():
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "step": step, "elapsed": elapsed, "config": model.config, "args": vars(a)},
                   ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    t_start = t_last = time.time()
    loss_acc, n_acc = 0.0, 0
    model.train()
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        z0, otf, crop, sharp, sn, gray = cases.batch(a.batch)
        outs = unrolled(model, z0, otf, crop, sn, gray=gray)
        loss = (outs[-1] - sharp).abs().mean()
        if a.aux > 0 and len(outs) > 1:
            loss = loss + a.aux * sum((o - sharp).abs().mean() for o in outs[:-1]) / (len(outs) - 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(a.ema).add_(pm.detach(), alpha=1 - a.ema)
        step += 1
        loss_acc += loss.item()
        n_acc += 1
        if step % 10 == 0:
            now = time.time()
            elapsed += now - t_last
            log(f"step {step} loss {loss_acc / n_acc:.5f} lr {lr_at(step):.2e} {(now - t_last) / n_acc:.2f} s/step")
            t_last, loss_acc, n_acc = now, 0.0, 0
        if step % a.val_every == 0 or step == a.steps:
            log(f"val step {step} {val_line()}")
        if step % a.ckpt_every == 0:
            save()
        if a.max_minutes and (time.time() - t_start) > a.max_minutes * 60:
            log(f"time limit reached at step {step}")
            break
    save()


if __name__ == "__main__":
    main()

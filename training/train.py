"""Train the denoiser prior on the project's photo set (CPU, resumable).

    nice -n 10 .venv-train/bin/python training/train.py --name denoiser-v1 --steps 9000 --max-minutes 50

* data: ``tools/photos.py`` train split (wallpaper photographs, downscaled to ~1 MP), random crops with
  flips / rotations / occasional 2x area downscaling; noise from :func:`degrade.noisy_pair`;
* loss: L1 on sRGB values; Adam, linear warm-up then cosine decay; an exponential moving average (EMA)
  of the weights is what gets validated and exported;
* validation: PSNR on fixed 256 px centre crops of held-out photos at noise 15, 25 and 50 / 255;
* checkpoint ``training/checkpoints/NAME.pt`` every ``--ckpt-every`` steps and at exit, resumed
  automatically (same NAME); log ``training/runs/NAME.log``.

``--max-minutes`` stops cleanly (checkpoint written) so a run can be continued later with the same
command; the schedule is defined by ``--steps``, not by wall time.
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
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))

from degrade import noisy_pair  # noqa: E402
from model import Denoiser, count_parameters, macs_per_pixel  # noqa: E402
from photos import photo_paths  # noqa: E402

VAL_SIGMAS = (15, 25, 50)


def load_rgb(path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f"cannot read {path}")
    return np.ascontiguousarray(img[..., ::-1])


class Sampler:
    def __init__(self, images, crop: int, rng: np.random.Generator):
        self.images = images
        self.crop = crop
        self.rng = rng
        areas = np.array([im.shape[0] * im.shape[1] for im in images], np.float64)
        self.p = areas / areas.sum()

    def crop_one(self, size: int | None = None) -> np.ndarray:
        """A random ``size`` px (default: the sampler's crop) square of a random photo, in [0, 1]:
        25 % area-downscaled 2x first, then a random rotation and flip."""
        import cv2

        rng, c = self.rng, size or self.crop
        im = self.images[rng.choice(len(self.images), p=self.p)]
        scale = 2 if rng.uniform() < 0.25 and min(im.shape[:2]) > 4 * c else 1
        s = c * scale
        y = rng.integers(0, im.shape[0] - s + 1)
        x = rng.integers(0, im.shape[1] - s + 1)
        patch = im[y:y + s, x:x + s]
        if scale > 1:
            patch = cv2.resize(patch, (c, c), interpolation=cv2.INTER_AREA)
        patch = np.rot90(patch, rng.integers(0, 4))
        if rng.uniform() < 0.5:
            patch = patch[:, ::-1]
        return patch.astype(np.float32) / 255

    def batch(self, n: int):
        xs, ys = [], []
        for _ in range(n):
            clean, noisy, smap = noisy_pair(self.crop_one(), self.rng)
            xs.append(np.concatenate([noisy, smap[..., None]], axis=2).transpose(2, 0, 1))
            ys.append(clean.transpose(2, 0, 1))
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def warmup_cosine(step: int, lr: float, warmup: int, steps: int, *, floor: float) -> float:
    """Learning rate at ``step``: linear warm-up over ``warmup`` steps, then cosine decay to ``floor``
    x ``lr`` at ``steps``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, steps - warmup))
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def validation_set(n_images: int = 12, size: int = 256):
    """Fixed (input, target, sigma) triples from held-out photos; same every run."""
    rng = np.random.default_rng(1234)
    out = []
    for p in photo_paths("heldout")[:n_images] if n_images else photo_paths("heldout"):
        im = load_rgb(p).astype(np.float32) / 255
        h, w = im.shape[:2]
        s = min(size, h, w) // 8 * 8
        y, x = (h - s) // 2, (w - s) // 2
        clean = im[y:y + s, x:x + s]
        for sg in VAL_SIGMAS:
            noisy = clean + rng.standard_normal(clean.shape).astype(np.float32) * sg / 255
            inp = np.concatenate([noisy, np.full((s, s, 1), sg / 255, np.float32)], axis=2)
            out.append((torch.from_numpy(inp.transpose(2, 0, 1)[None].copy()),
                        torch.from_numpy(clean.transpose(2, 0, 1)[None].copy()), sg))
    return out


@torch.no_grad()
def validate(model, vset) -> dict:
    model.eval()
    res = {sg: [] for sg in VAL_SIGMAS}
    for inp, clean, sg in vset:
        out = model(inp).clamp(0, 1)
        mse = float(((out - clean) ** 2).mean())
        res[sg].append(10 * math.log10(1 / max(mse, 1e-12)))
    model.train()
    return {f"psnr{sg}": float(np.mean(v)) for sg, v in res.items()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="denoiser-v2")
    ap.add_argument("--steps", type=int, default=9000, help="total steps of the schedule")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--widths", default="32,64,96")
    ap.add_argument("--blocks", default="1,1,2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this long")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default="", help="fine-tune: start a new run from this run's EMA weights")
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    os.makedirs(os.path.join(HERE, "checkpoints"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "runs"), exist_ok=True)
    ckpt_path = os.path.join(HERE, "checkpoints", f"{a.name}.pt")
    log_path = os.path.join(HERE, "runs", f"{a.name}.log")
    logf = open(log_path, "a", buffering=1)

    def log(msg):
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")

    widths = tuple(int(v) for v in a.widths.split(","))
    blocks = tuple(int(v) for v in a.blocks.split(","))
    model = Denoiser(widths, blocks)
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    step, best, elapsed = 0, -1.0, 0.0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        step, best, elapsed = ck["step"], ck.get("best", -1.0), ck.get("elapsed", 0.0)
        log(f"resumed {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained)")
    else:
        log(f"new run {a.name}: {json.dumps(vars(a))}")
        if a.init:
            ck = torch.load(os.path.join(HERE, "checkpoints", f"{a.init}.pt"), map_location="cpu",
                            weights_only=False)
            model.load_state_dict(ck["ema"])
            ema.load_state_dict(ck["ema"])
            log(f"initialised from {a.init}'s EMA weights (step {ck['step']})")
        log(f"model {model.config}: {count_parameters(model):,} parameters, "
            f"{macs_per_pixel(model):,.0f} MAC/pixel")

    train_paths = photo_paths("train")
    images = [load_rgb(p) for p in train_paths]
    log(f"train photos: {len(images)} ({sum(i.shape[0] * i.shape[1] for i in images) / 1e6:.1f} MP); "
        f"held-out used for validation: {min(12, len(photo_paths('heldout')))}")
    sampler = Sampler(images, a.crop, np.random.default_rng([a.seed, step]))
    vset = validation_set()

    def lr_at(s):
        return warmup_cosine(s, a.lr, a.warmup, a.steps, floor=0.01)

    def save():
        torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                    "step": step, "best": best, "elapsed": elapsed, "config": model.config,
                    "args": vars(a)}, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    t_start = time.time()
    t_last, loss_acc, n_acc = time.time(), 0.0, 0
    model.train()
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x, y = sampler.batch(a.batch)
        loss = (model(x) - y).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.mul_(d).add_(pm.detach(), alpha=1 - d)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        step += 1
        loss_acc += loss.item()
        n_acc += 1
        now = time.time()
        if step % 50 == 0:
            elapsed += now - t_last
            log(f"step {step} loss {loss_acc / n_acc:.5f} lr {lr_at(step):.2e} "
                f"{(now - t_last) / n_acc:.3f} s/step")
            t_last, loss_acc, n_acc = now, 0.0, 0
        if step % a.val_every == 0 or step == a.steps:
            v = validate(ema, vset)
            best = max(best, v["psnr25"])
            log(f"val step {step} " + " ".join(f"{k} {val:.3f}" for k, val in v.items()))
        if step % a.ckpt_every == 0:
            save()
        if a.max_minutes and (time.time() - t_start) > a.max_minutes * 60:
            log(f"time limit reached at step {step}")
            break
    elapsed += time.time() - t_last
    save()
    v = validate(ema, vset)
    log(f"final step {step} ({elapsed / 60:.1f} min) " + " ".join(f"{k} {val:.3f}" for k, val in v.items()))


if __name__ == "__main__":
    main()

"""Train the blind sharp-edge predictor: blurred gray photo in, sharp gray photo out, no kernel given.

The shake estimator (``deblur_core/classic/``) needs a latent image whose errors do not follow its
current kernel: given such a latent, one kernel step recovers the kernel (stop 16's analysis: the true
sharp image blurred by a 1-2 px gaussian still works, kernel-shaped residual blur does not). This
network is that latent: a U-Net that sees only the blurred region (Nah et al. 2017, Tao et al. 2018,
Chen et al. NAFNet 2022 for blind deblurring networks; here small enough for a CPU).

    python training/train_sharpedge.py --photos .gpu/photos --out OUTDIR --minutes 7 [--kernel-loss 0.05]

Cases, made on the device each step: crops of the train-split photos (``sharpedge_data.py``), 25 % of
them area-downscaled 2x first, random flips and 90-degree turns, random exposure (clipped highlights),
blurred in linear light by kernels from the engine's own generators (Boracchi-Foi shake 5-71 px,
log-uniform; straight lines 3-60 px; shake softened by a small gaussian; a few sharp cases), never
the recorded kernels of ``shared/data``; then sRGB-encoded, gaussian noise of std 0-0.03, 8-bit
quantisation. Loss: L1 on the image and on its gradients; with ``--kernel-loss W`` plus W x the L1
error of the kernel that a least-squares kernel step (FFT, Tikhonov) recovers from the prediction and
the blurred input, so the network learns latents that give the right kernel. Time-bounded (cosine
schedule over ``--minutes``), EMA weights, a checkpoint every 2 minutes.
"""
from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, HERE]

from model import ResBlock  # noqa: E402  (the denoiser's block: two 3x3 convolutions, ReLU, skip)

KCANVAS = 75            # kernel bank canvas (odd); kernels up to 71 px plus a softening margin
PAD = KCANVAS // 2 + 1  # sharp crops are this much larger on each side: the blur is exact ('valid')
PAD_MULTIPLE = 32       # pixel-unshuffle 2 x four 2x downsamplings


# ------------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------------
class SharpEdgeNet(nn.Module):
    """(N, 1, H, W) sRGB-encoded gray in [0, 1] -> (N, 1, H, W) sharp gray (input + residual).

    Pixel-unshuffle by 2, then a 5-level U-Net (four 2x strided downsamplings, pixel-shuffle
    upsamplings, additive skips) of residual blocks; H and W multiples of ``PAD_MULTIPLE``. The deepest
    level sees 1/32 of the resolution, a receptive field of several hundred pixels (kernels up to 71).
    """

    def __init__(self, widths=(32, 48, 96, 128, 160), enc=(1, 2, 2, 2, 4), dec=(1, 1, 1, 1)):
        super().__init__()
        self.config = {"widths": list(widths), "enc": list(enc), "dec": list(dec)}
        self.head = nn.Conv2d(4, widths[0], 3, padding=1)
        self.enc = nn.ModuleList([nn.Sequential(*[ResBlock(w) for _ in range(n)]) for w, n in zip(widths, enc)])
        self.down = nn.ModuleList([nn.Conv2d(widths[i], widths[i + 1], 2, stride=2) for i in range(len(widths) - 1)])
        self.up = nn.ModuleList([nn.Conv2d(widths[i + 1], widths[i] * 4, 1) for i in range(len(widths) - 1)])
        self.dec = nn.ModuleList([nn.Sequential(*[ResBlock(widths[i]) for _ in range(dec[i])])
                                  for i in range(len(widths) - 1)])
        self.tail = nn.Conv2d(widths[0], 4, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x):
        h = self.head(F.pixel_unshuffle(x, 2))
        skips = []
        for i, blocks in enumerate(self.enc):
            h = blocks(h)
            if i < len(self.down):
                skips.append(h)
                h = self.down[i](h)
        for i in reversed(range(len(self.up))):
            h = self.dec[i](F.pixel_shuffle(self.up[i](h), 2) + skips[i])
        return x + F.pixel_shuffle(self.tail(h), 2)


def count_parameters(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------------
# colour
# ------------------------------------------------------------------------------------------------
def srgb_to_linear(x):
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055).clamp_min(1e-6) ** 2.4)


def linear_to_srgb(x):
    x = x.clamp(0, 1)
    return torch.where(x <= 0.0031308, x * 12.92, 1.055 * x.clamp_min(1e-8) ** (1 / 2.4) - 0.055)


# ------------------------------------------------------------------------------------------------
# kernels (CPU, the engine's generators)
# ------------------------------------------------------------------------------------------------
def _kernel_chunk(args):
    seed, n = args
    from deblur_core.kernels import center, gaussian_kernel, motion_kernel, shake_kernel
    import cv2
    rng = np.random.default_rng(seed)
    out = np.zeros((n, KCANVAS, KCANVAS), np.float32)
    for i in range(n):
        u = rng.uniform()
        if u < 0.68:
            size = int(round(math.exp(rng.uniform(math.log(5), math.log(71))))) | 1
            k = shake_kernel(min(size, 71), rng)
        elif u < 0.83:
            k = motion_kernel(rng.uniform(3, 60), rng.uniform(0, 180))
        elif u < 0.96:
            size = int(round(math.exp(rng.uniform(math.log(7), math.log(61))))) | 1
            k = shake_kernel(size, rng)
            g = gaussian_kernel(rng.uniform(0.5, 1.5))
            k = cv2.filter2D(np.pad(k, g.shape[0] // 2), -1, g[::-1, ::-1].copy(), borderType=cv2.BORDER_CONSTANT)
        else:
            k = gaussian_kernel(rng.uniform(0.3, 0.8)) if rng.uniform() < 0.5 else np.ones((1, 1), np.float32)
        k = center(np.asarray(k, np.float32))
        h, w = k.shape
        if h > KCANVAS or w > KCANVAS:      # crop (rare: a softened 61 px trajectory), keep the centre
            y0, x0 = max(0, (h - KCANVAS) // 2), max(0, (w - KCANVAS) // 2)
            k = k[y0:y0 + KCANVAS, x0:x0 + KCANVAS]
            k = k / k.sum()
            h, w = k.shape
        y0, x0 = (KCANVAS - h) // 2, (KCANVAS - w) // 2
        out[i, y0:y0 + h, x0:x0 + w] = k
    return out


def kernel_bank(n: int, seed: int, workers: int) -> np.ndarray:
    chunks = [(seed * 100003 + i, min(1000, n - i * 1000)) for i in range((n + 999) // 1000)]
    if workers > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_kernel_chunk, chunks)
    else:
        parts = [_kernel_chunk(c) for c in chunks]
    return np.concatenate(parts)


# ------------------------------------------------------------------------------------------------
# cases (on the device)
# ------------------------------------------------------------------------------------------------
class Cases:
    def __init__(self, photos: list[np.ndarray], kernels: np.ndarray, crop: int, device, seed: int):
        import cv2
        self.device = device
        self.crop = crop
        self.full = [torch.from_numpy(p).to(device) for p in photos]
        self.half = [torch.from_numpy(cv2.resize(p, (p.shape[1] // 2, p.shape[0] // 2),
                                                 interpolation=cv2.INTER_AREA)).to(device) for p in photos]
        self.kernels = torch.from_numpy(kernels).to(device)
        self.g = torch.Generator(device="cpu").manual_seed(seed)
        side = crop + 2 * PAD
        self.full = [p for p in self.full if min(p.shape) >= side]
        self.half = [p for p in self.half if min(p.shape) >= side]

    def _rand(self, *shape):
        return torch.rand(*shape, generator=self.g)

    def sharp_crops(self, n: int):
        side = self.crop + 2 * PAD
        out = torch.empty(n, side, side, device=self.device)
        for i in range(n):
            pool = self.half if (self._rand(1).item() < 0.25 and self.half) else self.full
            p = pool[int(self._rand(1).item() * len(pool))]
            y = int(self._rand(1).item() * (p.shape[0] - side + 1))
            x = int(self._rand(1).item() * (p.shape[1] - side + 1))
            c = p[y:y + side, x:x + side].float() / 255
            r = int(self._rand(1).item() * 8)
            if r & 1:
                c = c.flip(0)
            if r & 2:
                c = c.flip(1)
            if r & 4:
                c = c.t()
            out[i] = c
        return out

    def batch(self, n: int, *, noise: float | None = None, kernel_idx=None):
        """(blurred sRGB, sharp sRGB, sharp linear (cropped), kernels): (n, 1, crop, crop) x 3, (n, K, K)."""
        side = self.crop + 2 * PAD
        sharp = srgb_to_linear(self.sharp_crops(n))
        gain = torch.where(self._rand(n) < 0.2, 1 + 2 * self._rand(n), 0.4 + 0.7 * self._rand(n)).to(self.device)
        lin = sharp * gain[:, None, None]
        if kernel_idx is None:
            kernel_idx = (self._rand(n) * len(self.kernels)).long()
        k = self.kernels[kernel_idx.to(self.device)]
        r = (self._rand(n) * 8).long().to(self.device)
        k = torch.where((r & 1).bool()[:, None, None], k.flip(1), k)
        k = torch.where((r & 2).bool()[:, None, None], k.flip(2), k)
        k = torch.where((r & 4).bool()[:, None, None], k.transpose(1, 2), k)
        kpad = torch.zeros(n, side, side, device=self.device)
        kpad[:, :KCANVAS, :KCANVAS] = k
        kpad = torch.roll(kpad, (-(KCANVAS // 2), -(KCANVAS // 2)), (1, 2))
        blurred = torch.fft.irfft2(torch.fft.rfft2(lin) * torch.fft.rfft2(kpad), s=(side, side))
        c0, c1 = PAD, PAD + self.crop
        blurred = linear_to_srgb(blurred[:, c0:c1, c0:c1].clamp(0, 1))
        target_lin = lin[:, c0:c1, c0:c1].clamp(0, 1)
        target = linear_to_srgb(target_lin)
        if noise is None:
            u = self._rand(n)
            sig = torch.where(u < 0.25, 0.002 * self._rand(n),
                              torch.exp(math.log(0.002) + (math.log(0.03) - math.log(0.002)) * self._rand(n)))
        else:
            sig = torch.full((n,), float(noise))
        gen = torch.Generator(device=self.device).manual_seed(int(self._rand(1).item() * 2**31))
        blurred = blurred + sig.to(self.device)[:, None, None] * torch.randn(blurred.shape, device=self.device,
                                                                             generator=gen)
        blurred = torch.round(blurred.clamp(0, 1) * 255) / 255
        return blurred[:, None], target[:, None], target_lin[:, None], k


# ------------------------------------------------------------------------------------------------
# losses
# ------------------------------------------------------------------------------------------------
def _grads(x):
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def image_loss(out, target):
    gx, gy = _grads(out)
    tx, ty = _grads(target)
    return (out - target).abs().mean() + (gx - tx).abs().mean() + (gy - ty).abs().mean()


_WIN: dict = {}


def kernel_from_latent(latent_lin, blurred_lin, size: int = KCANVAS, rel_reg: float = 0.1):
    """Least-squares kernel from gradients (FFT, Tikhonov weight ``rel_reg`` x mean spectral energy,
    Hann-tapered so the periodic wrap does not dominate): (N, 1, H, W) x 2 -> (N, size, size)."""
    n, _, h, w = latent_lin.shape
    key = (h, w, latent_lin.device)
    if key not in _WIN:
        wy = torch.hann_window(h - 1, periodic=False, device=latent_lin.device)
        wx = torch.hann_window(w - 1, periodic=False, device=latent_lin.device)
        _WIN[key] = (wy[:, None] * wx[None, :]).sqrt()
    win = _WIN[key]
    lx, ly = _grads(latent_lin[:, 0].float())
    bx, by = _grads(blurred_lin[:, 0].float())
    lx, bx = lx[:, :h - 1, :w - 1] * win, bx[:, :h - 1, :w - 1] * win
    ly, by = ly[:, :h - 1, :w - 1] * win, by[:, :h - 1, :w - 1] * win
    Lx, Ly, Bx, By = (torch.fft.rfft2(t) for t in (lx, ly, bx, by))
    den = Lx.abs() ** 2 + Ly.abs() ** 2
    reg = rel_reg * den.mean(dim=(1, 2), keepdim=True) + 1e-12
    K = (Lx.conj() * Bx + Ly.conj() * By) / (den + reg)
    k = torch.fft.irfft2(K, s=(h - 1, w - 1))
    k = torch.roll(k, (size // 2, size // 2), (1, 2))[:, :size, :size]
    return k


def kernel_error(k_est, k_true):
    """Relative squared error of the kernel, ||k_est - k||^2 / ||k||^2: (N,). The plain FFT step is
    crude (from the true sharp image it is ~0.3-1 on 256 px crops, from the blurred one 2-100), so the
    loss takes its log1p: a signal, not a target."""
    return (k_est - k_true).pow(2).sum(dim=(1, 2)) / (k_true.pow(2).sum(dim=(1, 2)) + 1e-12)


# ------------------------------------------------------------------------------------------------
def load_photos(folder: str):
    import cv2
    paths = sorted(glob.glob(os.path.join(folder, "*.png")))
    return [cv2.imread(p, cv2.IMREAD_GRAYSCALE) for p in paths], paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="sharpedge")
    ap.add_argument("--minutes", type=float, default=7.0)
    ap.add_argument("--batch", type=int, default=24)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kernel-loss", type=float, default=0.0)
    ap.add_argument("--kernels", type=int, default=40000)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-photos", type=int, default=4, help="photos kept out of this run for validation")
    ap.add_argument("--log-every", type=int, default=200)
    ap.add_argument("--init", default="", help="a checkpoint to start from (resume)")
    ap.add_argument("--widths", default="32,48,96,128,160")
    ap.add_argument("--max-steps", type=int, default=0)
    a = ap.parse_args(argv)

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(a.seed)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    os.makedirs(a.out, exist_ok=True)
    log_path = os.path.join(a.out, f"{a.name}.log")
    logf = open(log_path, "a")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    t0 = time.time()
    photos, paths = load_photos(a.photos)
    # validation photos: every len/val-th photo (fixed), kept out of this run's training crops
    val_idx = set(range(0, len(photos), max(1, len(photos) // max(a.val_photos, 1)))[:a.val_photos]) if a.val_photos else set()
    train_ph = [p for i, p in enumerate(photos) if i not in val_idx]
    val_ph = [p for i, p in enumerate(photos) if i in val_idx]
    bank = kernel_bank(a.kernels, a.seed, a.workers)
    vbank = kernel_bank(64, a.seed + 7777, 1)
    log(f"{a.name}: device {dev} ({torch.cuda.get_device_name() if dev.type == 'cuda' else 'cpu'}), torch "
        f"{torch.__version__}, {len(train_ph)} train / {len(val_ph)} val photos, {len(bank)} kernels "
        f"({time.time() - t0:.1f} s)")
    cases = Cases(train_ph, bank, a.crop, dev, a.seed)
    vcases = Cases(val_ph or train_ph, vbank, a.crop, dev, 12345)
    val = [vcases.batch(16, noise=0.005, kernel_idx=torch.arange(i * 16, i * 16 + 16)) for i in range(4)]

    widths = tuple(int(w) for w in a.widths.split(","))
    model = SharpEdgeNet(widths).to(dev).to(memory_format=torch.channels_last)
    step = 0
    if a.init:
        ck = torch.load(a.init, map_location="cpu", weights_only=False)
        raw = torch.load(a.init.replace(".pt", "-raw.pt"), map_location="cpu", weights_only=False)
        model.load_state_dict({k: v.float() for k, v in raw["model"].items()})
        step = int(ck.get("step", 0))
    ema = SharpEdgeNet(widths).to(dev).to(memory_format=torch.channels_last)
    ema.load_state_dict(model.state_dict())
    if a.init and "ema" in ck:
        ema.load_state_dict({k: v.float() for k, v in ck["ema"].items()})
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0, betas=(0.9, 0.99))
    log(f"parameters {count_parameters(model):,}; widths {widths}; batch {a.batch} x {a.crop} px; "
        f"kernel loss {a.kernel_loss}")
    amp = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")

    def save():
        # two files, each under the device tool's 16 MiB: the EMA weights (fp32, what is exported) and
        # the raw weights in fp16 (to resume from)
        meta = {"config": model.config, "step": step, "args": vars(a)}
        for tag, part in (("", {"ema": {k: v.detach().float().cpu() for k, v in ema.state_dict().items()}}),
                          ("-raw", {"model": {k: v.detach().half().cpu() for k, v in model.state_dict().items()}})):
            tmp = os.path.join(a.out, f"{a.name}{tag}.pt.tmp")
            torch.save({**meta, **part}, tmp)
            os.replace(tmp, os.path.join(a.out, f"{a.name}{tag}.pt"))

    def validate():
        ema.eval()
        psnr_in, psnr_out, kout, kref = [], [], [], []
        with torch.no_grad():
            for blurred, target, target_lin, k in val:
                with torch.autocast(**amp):
                    out = ema(blurred.contiguous(memory_format=torch.channels_last))
                out = out.float().clamp(0, 1)
                for x, acc in ((blurred, psnr_in), (out, psnr_out)):
                    mse = ((x - target) ** 2).mean(dim=(1, 2, 3))
                    acc.extend((-10 * torch.log10(mse)).tolist())
                bl = srgb_to_linear(blurred)
                kout.extend(kernel_error(kernel_from_latent(srgb_to_linear(out), bl), k).tolist())
                kref.extend(kernel_error(kernel_from_latent(target_lin, bl), k).tolist())
        return (np.mean(psnr_in), np.mean(psnr_out), np.median(kout), np.median(kref))

    pin, pout, ko, kr = validate()
    log(f"step {step}: val PSNR blurred {pin:.2f} dB, predicted {pout:.2f} dB; kernel error (median) from the "
        f"prediction {ko:.3f}, from the true sharp image {kr:.3f}")
    budget = a.minutes * 60
    t_start = time.time()
    last_save = t_start
    run_loss = 0.0
    nlog = 0
    while True:
        el = time.time() - t_start
        frac = el / budget
        if frac >= 1 or (a.max_steps and step >= a.max_steps):
            break
        lr = a.lr * min(1.0, (step + 1) / 300) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(frac, 1))))
        for g in opt.param_groups:
            g["lr"] = lr
        blurred, target, target_lin, k = cases.batch(a.batch)
        model.train()
        with torch.autocast(**amp):
            out = model(blurred.contiguous(memory_format=torch.channels_last))
        out = out.float()
        loss = image_loss(out, target)
        if a.kernel_loss > 0:
            ke = kernel_error(kernel_from_latent(srgb_to_linear(out), srgb_to_linear(blurred)), k)
            loss = loss + a.kernel_loss * torch.nan_to_num(torch.log1p(ke), nan=0.0, posinf=0.0).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            d = 0.999 if step > 1000 else 0.99
            ep, mp_ = list(ema.parameters()), list(model.parameters())
            torch._foreach_mul_(ep, d)
            torch._foreach_add_(ep, mp_, alpha=1 - d)
        step += 1
        run_loss += float(loss.detach()) if step % 20 == 0 else 0.0
        nlog += 1 if step % 20 == 0 else 0
        if step % a.log_every == 0:
            log(f"step {step} ({time.time() - t_start:.0f} s, {(time.time() - t_start) / step * 1000:.0f} ms/step): "
                f"loss {run_loss / max(nlog, 1):.4f}, lr {lr:.2e}")
            run_loss, nlog = 0.0, 0
        if time.time() - last_save > 120:
            pin, pout, ko, kr = validate()
            log(f"step {step}: val PSNR blurred {pin:.2f} dB, predicted {pout:.2f} dB; kernel error from the "
                f"prediction {ko:.3f}, from the true sharp image {kr:.3f}")
            save()
            last_save = time.time()
    pin, pout, ko, kr = validate()
    log(f"final step {step} ({time.time() - t_start:.0f} s): val PSNR blurred {pin:.2f} dB, predicted "
        f"{pout:.2f} dB; kernel error from the prediction {ko:.3f}, from the true sharp image {kr:.3f}")
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

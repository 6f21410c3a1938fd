"""The denoiser prior: a small noise-level-conditioned U-Net (FFDNet / DRUNet family, sized for CPUs).

Input  ``(N, 4, H, W)``: sRGB-encoded RGB in [0, 1] plus a per-pixel noise standard deviation map (same
units, [0, 1] scale); H and W multiples of ``PAD_MULTIPLE``.
Output ``(N, 3, H, W)``: the denoised RGB (input + predicted residual, not clipped).

Layout: pixel-unshuffle by 2 (so the first level already runs on a quarter of the pixels), three levels
of widths ``widths`` joined by 2x2 strided convolutions / transposed convolutions with additive skips,
residual blocks of two 3x3 convolutions (ReLU), pixel-shuffle back. ~28 kMAC per pixel at the default
widths (32, 64, 96) — see :func:`macs_per_pixel`.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

PAD_MULTIPLE = 8   # unshuffle 2 x two 2x downsamplings


class ResBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.relu(self.c1(x)))


class Denoiser(nn.Module):
    def __init__(self, widths=(32, 64, 96), blocks=(1, 1, 2)):
        super().__init__()
        w1, w2, w3 = widths
        self.config = {"widths": list(widths), "blocks": list(blocks)}
        self.head = nn.Conv2d(16, w1, 3, padding=1)
        self.enc1 = nn.Sequential(*[ResBlock(w1) for _ in range(blocks[0])])
        self.down1 = nn.Conv2d(w1, w2, 2, stride=2)
        self.enc2 = nn.Sequential(*[ResBlock(w2) for _ in range(blocks[1])])
        self.down2 = nn.Conv2d(w2, w3, 2, stride=2)
        self.mid = nn.Sequential(*[ResBlock(w3) for _ in range(blocks[2])])
        self.up2 = nn.ConvTranspose2d(w3, w2, 2, stride=2)
        self.dec2 = nn.Sequential(*[ResBlock(w2) for _ in range(blocks[1])])
        self.up1 = nn.ConvTranspose2d(w2, w1, 2, stride=2)
        self.dec1 = nn.Sequential(*[ResBlock(w1) for _ in range(blocks[0])])
        self.tail = nn.Conv2d(w1, 12, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x):
        rgb = x[:, :3]
        h = F.pixel_unshuffle(x, 2)
        h1 = self.enc1(self.head(h))
        h2 = self.enc2(self.down1(h1))
        h3 = self.mid(self.down2(h2))
        d2 = self.dec2(self.up2(h3) + h2)
        d1 = self.dec1(self.up1(d2) + h1)
        return rgb + F.pixel_shuffle(self.tail(d1), 2)


def macs_per_pixel(model: nn.Module, size: int = 64) -> float:
    """Multiply-accumulates per input pixel, counted from the convolution shapes with hooks."""
    total = [0]

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total[0] += out.numel() * k
        elif isinstance(mod, nn.ConvTranspose2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.out_channels // mod.groups
            total[0] += inp[0].numel() * k

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(torch.zeros(1, 4, size, size))
    for h in hs:
        h.remove()
    return total[0] / (size * size)


def load_onnx_weights(model: nn.Module, path: str) -> None:
    """Load the weights of an exported ONNX file of this architecture (its initializers carry the
    state_dict's names) into ``model``."""
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    model.load_state_dict({i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in m.graph.initializer})


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    m = Denoiser()
    print(f"parameters {count_parameters(m):,}  MACs/pixel {macs_per_pixel(m):,.0f}")

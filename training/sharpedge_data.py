"""Write the sharp-edge predictor's training photos: the train split as 8-bit gray PNGs (sRGB-encoded
Rec. 709 luminance of the linear channels), small enough to travel to a GPU machine.

    .venv/bin/python training/sharpedge_data.py --out .gpu/photos

Only ``tools/photos.py``'s train split (the held-out split stays out of training), without the photos
that are not sharp (bench_shake's list). Nothing here downloads anything.
"""
from __future__ import annotations

import argparse
import os
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tools"), os.path.join(ROOT, "bench")]

from deblur_core.color import linear_to_srgb, linear_luminance  # noqa: E402
from deblur_core.imageio import read_image  # noqa: E402
from photos import photo_paths  # noqa: E402

NOT_SHARP = ("clock", "page", "text", "coins", "moon", "immunohistochemistry", "hubble")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    n = 0
    for p in photo_paths("train"):
        if any(t in p.name for t in NOT_SHARP):
            continue
        img, _ = read_image(str(p))
        gray = img[..., :3] if img.ndim == 3 else img
        g = linear_to_srgb(linear_luminance(gray))
        cv2.imwrite(os.path.join(a.out, p.stem + ".png"), np.round(g * 255).astype(np.uint8))
        n += 1
    print(f"{n} train photos written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Diagnosis benchmark: is a photo called "sharp" only when it is? (issue 20)

    .venv/bin/python bench/bench_diagnosis.py                    # real blur + sharp held-out + synthetic 5 types
    .venv/bin/python bench/bench_diagnosis.py --no-classify      # leave the synthetic 5-type table out
    .venv/bin/python bench/bench_diagnosis.py --split train      # the sharp photos of the train split (tuning)

Folders (each through ``deblur_core.analyze()``, the ``blur_type`` key):

* ``kohler tune`` / ``kohler report``: ../shared/data/real_blur/kohler2012, all blurry (real recorded
  camera shake). Thresholds were tuned on Blurry1_*, Blurry2_* only; Blurry3_*, Blurry4_* are reported apart.
* ``lai tune`` / ``lai report``: ../shared/data/real_blur/lai2016_real, all blurry (real photos); tuned on the
  even indices of the sorted list, the odd ones reported apart.
* ``sharp JPEG-90``: the sharp photos of the split (tools/photos.py; graphics, micrographs and the blurry
  'clock' left out, bench/common.py NOT_SHARP), long side at most 1600 px, saved as JPEG quality 90, read back.
* ``sharp + noise``: the same with gaussian noise sigma 0.005 in sRGB values (~1.3/255, a phone at base ISO)
  before the JPEG.

Columns: % diagnosed blurry (not "sharp") and sharp, the blur-type counts, how many reports say their
parameters are uncertain (``params_status``), and the mean confidence.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import ROOT, as_engine_process, table  # noqa: E402

sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tools"))
from deblur_core import analyze  # noqa: E402
from deblur_core.classifier import BLUR_TYPES  # noqa: E402
from deblur_core.imageio import read_image  # noqa: E402

REAL = os.path.join(ROOT, "..", "shared", "data", "real_blur")


def real_sets():
    """(folder label, [paths]) for the real blurry photos, split into the tuning and the reported half."""
    k = sorted(os.listdir(os.path.join(REAL, "kohler2012")))
    k = [os.path.join(REAL, "kohler2012", f) for f in k if f.endswith(".png")]
    lai = sorted(f for f in os.listdir(os.path.join(REAL, "lai2016_real")) if f.lower().endswith((".jpg", ".png")))
    lai = [os.path.join(REAL, "lai2016_real", f) for f in lai]
    tune_k = [p for p in k if os.path.basename(p).startswith(("Blurry1_", "Blurry2_"))]
    rep_k = [p for p in k if p not in tune_k]
    return [("kohler tune (Blurry1-2)", tune_k), ("kohler report (Blurry3-4)", rep_k),
            ("lai real tune (even)", lai[0::2]), ("lai real report (odd)", lai[1::2])]


def jpeg(img: np.ndarray, quality: int = 90) -> np.ndarray:
    import cv2
    u8 = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1] if u8.ndim == 3 else u8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if out.ndim == 3:
        out = out[..., ::-1]
    return out.astype(np.float32) / 255


def sharp_photos(split: str, max_side: int = 1600):
    """The split's sharp photos (bench/common.py), long side at most ``max_side`` px."""
    import cv2
    out = []
    for name, img in common.sharp_photos(split):
        h, w = img.shape[:2]
        if max(h, w) > max_side:
            s = max_side / max(h, w)
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        out.append((name, img))
    return out


def summarise(label, reports, rows, verbose):
    n = len(reports)
    kinds = Counter(r["blur_type"] for _, r in reports)
    blurry = n - kinds.get("sharp", 0)
    unc = sum(r.get("params_status") == "uncertain" for _, r in reports)
    conf = float(np.mean([r["confidence"] for _, r in reports])) if n else float("nan")
    rows.append([label, n, f"{100 * blurry / max(n, 1):.0f}%", f"{100 * kinds.get('sharp', 0) / max(n, 1):.0f}%",
                 " ".join(f"{k}:{kinds[k]}" for k in BLUR_TYPES if kinds.get(k)), unc, conf])
    if verbose:
        for name, r in reports:
            print(f"  {label[:12]:12s} {name:40s} {r['blur_type']:8s} {r['confidence']:.2f} "
                  f"{r.get('params_status', '-'):9s} {r.get('sharpness', {})}")


def bench_real(verbose):
    rows = []
    for label, paths in real_sets():
        reps = []
        for p in paths:
            img, _ = read_image(p)
            reps.append((os.path.basename(p), analyze(img)))
        summarise(label, reps, rows, verbose)
    return rows


def bench_sharp(split, verbose, seed=0):
    rows = []
    rng = np.random.default_rng(seed)
    imgs = sharp_photos(split)
    clean = [(n, analyze(jpeg(i))) for n, i in imgs]
    summarise(f"sharp {split} JPEG-90, <= 1600 px", clean, rows, verbose)
    noisy = [(n, analyze(jpeg(np.clip(i + rng.normal(0, 0.005, i.shape), 0, 1).astype(np.float32)))) for n, i in imgs]
    summarise(f"sharp {split} + noise 0.005, JPEG-90", noisy, rows, verbose)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--split", default="heldout", choices=["heldout", "train"], help="split of the sharp photos")
    ap.add_argument("--no-real", action="store_true", help="leave the real blurry photos out")
    ap.add_argument("--no-classify", action="store_true", help="leave the synthetic 5-type table out")
    ap.add_argument("--n", type=int, default=12, help="photos in the synthetic 5-type table")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per photo")
    a = ap.parse_args(argv)
    as_engine_process()
    t = time.perf_counter()
    rows = [] if a.no_real else bench_real(a.verbose)
    rows += bench_sharp(a.split, a.verbose)
    table("Diagnosis: blurry vs sharp (analyze()['blur_type']); targets: real blur >= 95% blurry, sharp >= 90% sharp",
          ["folder", "photos", "blurry", "sharp", "types", "params uncertain", "mean confidence"], rows)
    print(f"\n({time.perf_counter() - t:.0f} s)")
    if not a.no_classify:
        from bench_engine import bench_classify
        bench_classify(a.split, a.n, 0)


if __name__ == "__main__":
    main()

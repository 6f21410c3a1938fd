#!/usr/bin/env python3
"""Training cases for the blur-type network (models/blurtype-v2.onnx): TRAIN split photos only.

    .venv/bin/python training/classifier_data.py --cases 6000 --name clf-cnn   # resumable, in chunks
    .venv/bin/python training/classifier_data.py --recipe camera --cases 4000 --name clf-v2 --shard 0/2  # blurtype-v2

Each case: a random 512 or 768 px crop of a training photo, degraded by ``degrade.blur_case`` (one of
the 5 blur types with random parameters, noise 0-0.01 in linear light, JPEG 75-95; ``--recipe camera``:
``degrade.camera_case``, hand-stroke and looping shake, clipped highlights, Poisson-Gaussian noise, and the
photo first downscaled by 0.3-1 as phones' and web photos are), then the engine's
own inputs of the classifier: the feature vector (``classifier.features``) and the spectral planes
(``classifier.spectral_planes``). Chunks go to training/runs/NAME-NNN.npz (X, P, y).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tools")]
from photos import photo_paths  # noqa: E402
from deblur_core import classifier as C  # noqa: E402
from deblur_core.imageio import read_image  # noqa: E402
from training.degrade import CLASSES, blur_case, camera_case  # noqa: E402


def load_train_photos():
    out = []
    for p in sorted(photo_paths("train", fetch_missing=True)):
        img, _ = read_image(str(p))
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[..., :3]
        out.append(img)
    return out


def downscaled(img: np.ndarray, factor: float, keep: int) -> np.ndarray:
    """``img`` area-downscaled by ``factor``, never below ``keep`` px on its shorter side."""
    import cv2
    factor = max(factor, keep / min(img.shape[:2]))
    if factor >= 1:
        return img
    h, w = img.shape[:2]
    return cv2.resize(img, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=6000)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--name", default="clf-cnn")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--recipe", default="blur", choices=("blur", "camera"),
                    help="blur: degrade.blur_case (blurtype-v1); camera: degrade.camera_case on downscaled photos (v2)")
    ap.add_argument("--shard", default="0/1", metavar="I/N", help="write only chunks i, i+N, ... (N processes)")
    a = ap.parse_args(argv)
    shard, shards = (int(v) for v in a.shard.split("/"))
    make_case = camera_case if a.recipe == "camera" else blur_case
    runs = os.path.join(ROOT, "training", "runs")
    os.makedirs(runs, exist_ok=True)
    photos = load_train_photos()
    n_chunks = -(-a.cases // a.chunk)
    t0 = time.time()
    for ci in range(n_chunks):
        path = os.path.join(runs, f"{a.name}-{ci:03d}.npz")
        if os.path.exists(path) or ci % shards != shard:
            continue
        rng = np.random.default_rng([a.seed, ci])
        X, P, y = [], [], []
        for i in range(a.chunk):
            img = photos[int(rng.integers(len(photos)))]
            if a.recipe == "camera":
                img = downscaled(img, float(rng.uniform(0.3, 1.0)), 512)
            s = int(min(rng.choice([512, 768]), *img.shape[:2]))
            y0 = int(rng.integers(0, img.shape[0] - s + 1))
            x0 = int(rng.integers(0, img.shape[1] - s + 1))
            k = i % len(CLASSES)
            deg, _ = make_case(np.ascontiguousarray(img[y0:y0 + s, x0:x0 + s]), CLASSES[k], rng)
            f = C.features(deg, with_planes=True)
            X.append(f["vector"])
            P.append(f["planes"].astype(np.float16))
            y.append(k)
        np.savez(path + ".tmp.npz", X=np.array(X), P=np.array(P), y=np.array(y))
        os.replace(path + ".tmp.npz", path)
        done = len(glob.glob(os.path.join(runs, f"{a.name}-*.npz")))
        print(f"{time.strftime('%H:%M:%S')} chunk {ci} written ({done}/{n_chunks}, {time.time() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fit the blurry-vs-sharp model of ``deblur_core/sharpness.py`` (``MODEL``, ``THRESHOLD``; issue 20).

    .venv/bin/python training/fit_sharpness.py --cache /tmp/sharpness_cases.pkl

A logistic regression (Newton steps, a small L2 weight) on the cues :func:`deblur_core.sharpness.
sharpness_cues` measures, the blur-type classifier's log-odds of "sharp" and its log-noise feature.

Fitted on (labels: 1 blurry, 0 sharp):
* the train split's sharp photos (``tools/photos.py`` via ``bench/common.py``, long side <= 1600 px) three
  times: JPEG 90; gaussian noise 0.005 in sRGB then JPEG 90; noise 0.01 in linear light then JPEG 75;
* the same photos blurred by a hand-shake trajectory (11-45 px) and by a gaussian (sigma 1-2), in linear
  light, noise 0.005, JPEG 90;
* the tuning half of the real blurry photos (``../shared/data/real_blur``: Köhler Blurry1-2, Lai's even
  indices), weight 3.

The threshold leaves 92 % of the train split's sharp variants sharp. Printed beside it, never used for the
fit: Köhler Blurry3-4, Lai's odd indices and the held-out split's sharp photos (JPEG 90, and with noise).
Paste the printed ``MODEL`` and ``THRESHOLD`` into ``deblur_core/sharpness.py`` when the photos that were
not fitted on say it is better. The shipped model came from an earlier fit of the same recipe with other
random draws; this script's refit (stop 23) reads Lai odd 76 % / sharp held-out 94 %, the shipped 80 % / 94 %,
so the shipped one stays.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "bench"), os.path.join(ROOT, "tools"), os.path.join(ROOT, "training")]

import bench_diagnosis as diag  # noqa: E402
from deblur_core import classifier, sharpness  # noqa: E402
from deblur_core.imageio import read_image  # noqa: E402
from deblur_core.kernels import gaussian_kernel, hand_shake_kernel  # noqa: E402
from degrade import degrade  # noqa: E402

# The shipped model's inputs (sharpness.model_inputs transforms them); ``--with-direction`` adds the two
# cues of direction_consistency() (tried at stop 23, not shipped: docs/experiments/diagnosis.md).
NAMES = ["s1_med", "s1_max", "s2_med", "s2_max", "s4_med", "s4_max", "s1_q25", "s2_q25", "s1_q75", "s2_q75",
         "s1_conc", "s2_conc", "lp", "v9"]
DIRECTION = ["dir_cons", "dir_mag"]
FIT_WEIGHTS = {"kohler tune (Blurry1-2)": 3.0, "lai real tune (even)": 3.0, "sharp train": 1.0,
               "sharp+noise train": 1.0, "sharp noisy75 train": 1.0, "synth shake train": 1.0,
               "synth gauss train": 1.0}
SHARP_TRAIN = ("sharp train", "sharp+noise train", "sharp noisy75 train")
KEEP_SHARP = 0.92


def direction_consistency(image: np.ndarray, *, max_side: int = 1024, tiles: int = 4, clip_level: float = 0.975):
    """Whether the edges are widest in the same direction all over the photo.

    Camera shake and motion widen edges along one direction everywhere; in a sharp photo the widest
    orientation of each region is chance (texture, the odd soft background). Per tile of a
    ``tiles`` x ``tiles`` grid (at least 60 strong edges): the median edge width in 8 orientation bins,
    its second circular harmonic (the direction the widths are largest in, doubled angle) as a complex
    number. Returns (consistency, magnitude, tiles used): consistency the resultant length of the tiles'
    vectors over the sum of their lengths (1: every region agrees, ~0.3-0.5: chance), magnitude the mean
    vector's length in px (how much wider the widest direction is); NaN, NaN, n below 4 tiles."""
    y, clip = sharpness._luma_srgb(image, max_side, clip_level)
    sig, th, idx = sharpness._edge_sigmas(y, clip)
    h, w = y.shape
    row, col = (idx // w) * tiles // h, (idx % w) * tiles // w
    angles = np.arange(sharpness.BINS) * np.pi / sharpness.BINS
    vectors = []
    for a in range(tiles):
        for b in range(tiles):
            m = (row == a) & (col == b)
            if m.sum() < 60:
                continue
            s, t = sig[m], th[m] % np.pi
            bins = ((t / np.pi * sharpness.BINS + 0.5).astype(int)) % sharpness.BINS
            med = np.array([np.median(s[bins == i]) if (bins == i).sum() >= 6 else np.nan for i in range(sharpness.BINS)])
            ok = np.isfinite(med)
            if ok.sum() < 4:
                continue
            vectors.append(np.sum((med[ok] - med[ok].mean()) * np.exp(2j * angles[ok])) / ok.sum())
    if len(vectors) < 4:
        return float("nan"), float("nan"), len(vectors)
    v = np.asarray(vectors)
    return float(np.abs(v.sum()) / max(float(np.abs(v).sum()), 1e-12)), float(np.abs(v.mean())), len(vectors)


def measure(image: np.ndarray) -> dict:
    f = classifier.features(image, with_planes=True)
    proba, _ = classifier.classify(f["vector"], f["planes"])
    cues = sharpness.sharpness_cues(image)
    cues["dir_cons"], cues["dir_mag"], cues["dir_tiles"] = direction_consistency(image)
    return {"cues": cues, "p_sharp": float(proba[0]), "v9": float(f["vector"][9])}


def cases(cache: str | None, seed: int = 7):
    """Every (set, name, label, measurements), measured once and kept in ``cache``."""
    rows = pickle.load(open(cache, "rb")) if cache and os.path.exists(cache) else []
    done = {(r["set"], r["name"]) for r in rows}

    def add(group, name, image, label):
        if (group, name) in done:
            return
        rows.append({"set": group, "name": name, "label": label, **measure(image)})
        if cache:
            pickle.dump(rows, open(cache, "wb"))
        print(f"{group:28s} {name[:40]}", flush=True)

    for group, paths in diag.real_sets():
        for p in paths:
            add(group, os.path.basename(p), read_image(p)[0], 1)
    rng = np.random.default_rng(seed)
    for split in ("heldout", "train"):
        for name, img in diag.sharp_photos(split):
            add(f"sharp {split}", name, diag.jpeg(img), 0)
            noisy = np.clip(img + rng.normal(0, 0.005, img.shape).astype(np.float32), 0, 1)
            add(f"sharp+noise {split}", name, diag.jpeg(noisy), 0)
            if split == "train":
                delta = np.ones((1, 1), np.float32)
                add("sharp noisy75 train", name, degrade(img, delta, noise_sigma=0.01, rng=rng, jpeg_quality=75), 0)
                k = hand_shake_kernel(int(rng.integers(11, 46)), rng)
                add("synth shake train", name, degrade(img, k, noise_sigma=0.005, rng=rng, jpeg_quality=90), 1)
                g = gaussian_kernel(float(rng.uniform(1, 2)))
                add("synth gauss train", name, degrade(img, g, noise_sigma=0.005, rng=rng, jpeg_quality=90), 1)
    return rows


def inputs(row: dict, names) -> list:
    """The model's raw inputs for one measured photo: the engine's transforms (``sharpness.model_inputs``)
    for the shipped cues; the direction consistency as it is and log(magnitude + 0.005) for the tried ones."""
    cues = row["cues"]
    shipped = iter(sharpness.model_inputs(cues, row["p_sharp"], row["v9"], [k for k in names if k not in DIRECTION]))
    x = []
    for k in names:
        if k not in DIRECTION:
            x.append(next(shipped))
            continue
        v = cues.get(k)
        missing = v is None or not np.isfinite(v)
        x.append((0.5 if missing else float(v)) if k == "dir_cons" else np.log((0.03 if missing else float(v)) + 0.005))
    return x


def fit(X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1e-2):
    """Weighted logistic regression on standardised inputs: (mean, std, coef with the intercept last)."""
    mu, sd = X.mean(0), X.std(0) + 1e-9
    Z = np.c_[(X - mu) / sd, np.ones(len(X))]
    b = np.zeros(Z.shape[1])
    reg = l2 * np.r_[np.ones(len(b) - 1), 0.0]
    for _ in range(50):
        p = 1 / (1 + np.exp(-Z @ b))
        g = Z.T @ (w * (p - y)) + reg * b
        H = (Z * (w * p * (1 - p))[:, None]).T @ Z + np.diag(reg)
        step = np.linalg.solve(H, g)
        b -= step
        if np.abs(step).max() < 1e-9:
            break
    return mu, sd, b


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", help="keep the measurements here (a pickle) and reuse them")
    ap.add_argument("--with-direction", action="store_true",
                    help="add the direction consistency across tiles (dir_cons, dir_mag) to the inputs")
    args = ap.parse_args(argv)
    names = NAMES[:-2] + DIRECTION + NAMES[-2:] if args.with_direction else NAMES
    rows = cases(args.cache)
    X = np.array([inputs(r, names) for r in rows], float)
    y = np.array([r["label"] for r in rows], float)
    w = np.array([FIT_WEIGHTS.get(r["set"], 0.0) for r in rows])
    used = w > 0
    mu, sd, b = fit(X[used], y[used], w[used])
    model = {"names": names, "mean": [round(float(v), 5) for v in mu], "std": [round(float(v), 5) for v in sd],
             "coef": [round(float(v), 5) for v in b]}
    if args.with_direction:     # the engine does not measure these cues: the fit's own probabilities
        p = 1 / (1 + np.exp(-(((X - mu) / sd) @ b[:-1] + b[-1])))
    else:                       # the printed MODEL through the engine's own function
        p = np.array([sharpness.blur_probability(r["cues"], r["p_sharp"], r["v9"], model=model) for r in rows])
    shipped = np.array([sharpness.blur_probability(r["cues"], r["p_sharp"], r["v9"]) for r in rows])
    sharp_train = np.array([r["set"] in SHARP_TRAIN for r in rows])
    threshold = round(float(np.quantile(p[sharp_train], KEEP_SHARP)), 3)
    print("\nMODEL =", model)
    print("THRESHOLD =", threshold)
    # The shipped MODEL with its threshold re-chosen by the same rule: the check after retraining the blur-type
    # classifier, whose "sharp" probability is one of the inputs (stop 25, blurtype-v2: 0.433 with KEEP_SHARP at
    # 0.90; the shipped 0.45 kept: the train split's sharp variants stay 90 / 95 / 85 % sharp, and the refit read
    # worse on the photos it was not fitted on).
    print("the shipped MODEL's THRESHOLD by the same rule =",
          round(float(np.quantile(shipped[sharp_train], KEEP_SHARP)), 3))
    print(f"\n{'set':28s} {'fit':>4s} {'photos':>6s} {'this fit':>9s} {'shipped':>8s}")
    for group in sorted({r["set"] for r in rows}):
        m = np.array([r["set"] == group for r in rows])
        label = y[m][0]
        right = np.mean((p[m] > threshold) == label) * 100
        before = np.mean((shipped[m] > sharpness.THRESHOLD) == label) * 100
        print(f"{group:28s} {'yes' if FIT_WEIGHTS.get(group) else 'no':>4s} {m.sum():6d} {right:8.0f}% {before:7.0f}%")
    real = np.array([r["set"].startswith(("kohler", "lai")) for r in rows])
    missed = [r["name"] for r, q, is_real in zip(rows, p, real) if is_real and q <= threshold]
    print(f"real blurry photos called blurry by this model alone: {np.mean(p[real] > threshold) * 100:.1f} % "
          f"(the light trails in analyze() catch some of the rest); missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()

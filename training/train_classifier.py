#!/usr/bin/env python3
"""Fit the blur classifier's logistic model on the TRAIN split only (feature experiments).

The shipped deblur_core/classifier_model.json comes from ``training/train_blurtype.py --export``, which
refits this same model (``fit`` below) on the cases the blur-type network trains on; writing the file
from here would pair the network with a model it was not validated with.

    .venv/bin/python training/train_classifier.py [--repeats 3] [--side 512]

Features: training/runs/clf_features_v2_r6.npz holds the 1230 cases of --repeats 6 --seed 1.
Cases: every training photo x 5 blur types x repeats (random parameters, noise, JPEG; see
training/degrade.py:blur_case), several crop sizes. Model: multinomial logistic regression on
standardised features and their pairwise products, L2-regularised, fitted with L-BFGS (scipy).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from scipy.optimize import minimize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tools"), os.path.join(ROOT, "bench")]
from common import photos  # noqa: E402
from deblur_core import classifier as C  # noqa: E402
from training.degrade import CLASSES, blur_case  # noqa: E402

assert CLASSES == C.BLUR_TYPES


def build(split, repeats, side, seed):
    rng = np.random.default_rng(seed)
    X, y = [], []
    imgs = photos(split, side=int(side * 1.5), seed=seed)
    for r in range(repeats):
        for name, img in imgs:
            s = int(rng.choice([side, int(side * 1.5)]))
            y0 = int(rng.integers(0, max(1, img.shape[0] - s + 1)))
            x0 = int(rng.integers(0, max(1, img.shape[1] - s + 1)))
            crop = img[y0:y0 + s, x0:x0 + s]
            for k, kind in enumerate(CLASSES):
                deg, _ = blur_case(crop, kind, rng)
                X.append(C.features(deg)["vector"])
                y.append(k)
    return np.array(X), np.array(y)


def fit(X, y, l2=1e-2):
    mean, std = X.mean(0), X.std(0) + 1e-6
    Z = C.expand((X - mean) / std)
    n, d = Z.shape
    k = len(CLASSES)
    Y = np.eye(k)[y]

    def loss(theta):
        W = theta[:d * k].reshape(d, k)
        b = theta[d * k:]
        L = Z @ W + b
        L -= L.max(1, keepdims=True)
        P = np.exp(L)
        P /= P.sum(1, keepdims=True)
        val = -np.mean(np.sum(Y * np.log(P + 1e-12), 1)) + l2 * np.sum(W * W)
        G = (P - Y) / n
        gW = Z.T @ G + 2 * l2 * W
        gb = G.sum(0)
        return val, np.concatenate([gW.ravel(), gb])

    res = minimize(loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": 2000})
    W = res.x[:d * k].reshape(d, k)
    b = res.x[d * k:]
    return {"features": list(C.FEATURES), "classes": list(CLASSES), "mean": mean.tolist(), "std": std.tolist(),
            "weights": W.tolist(), "bias": b.tolist(), "l2": l2}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--l2", type=float, default=3e-2)
    ap.add_argument("--features", help="cache of the computed features (.npz): reused when it exists")
    a = ap.parse_args(argv)
    t = time.time()
    if a.features and os.path.exists(a.features):
        data = np.load(a.features)
        X, y = data["X"], data["y"]
    else:
        X, y = build("train", a.repeats, a.side, a.seed)
        if a.features:
            np.savez(a.features, X=X, y=y)
    print(f"{len(y)} training cases in {time.time() - t:.0f} s")
    # Hold out 20% of the training cases to pick nothing but to report an honest in-split accuracy.
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    cut = int(0.8 * len(y))
    model = fit(X[idx[:cut]], y[idx[:cut]], a.l2)
    C._model_cache["m"] = {k: np.asarray(v) if isinstance(v, list) else v for k, v in model.items()}
    pred = np.array([np.argmax(C.predict_proba(x)) for x in X[idx[cut:]]])
    print(f"validation accuracy (train split, unseen cases): {np.mean(pred == y[idx[cut:]]):.3f}")
    model = fit(X, y, a.l2)
    with open(C.MODEL_FILE, "w") as f:
        json.dump(model, f)
    print(f"wrote {C.MODEL_FILE}")


if __name__ == "__main__":
    main()

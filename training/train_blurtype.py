#!/usr/bin/env python3
"""Train the blur-type network (models/blurtype-v2.onnx) on cases from training/classifier_data.py.

    .venv-train/bin/python training/train_blurtype.py --data clf-v2 --epochs 30 --export   # blurtype-v2

A small CNN reads the spectral planes (the Welch cepstrum's centre and the log power spectrum,
``classifier.spectral_planes``) and, in its head, the classifier's hand-made feature vector
(``classifier.FEATURES``, standardised inside the network). Its logits are averaged with the logistic
model's (``classifier_model.json``) by the engine. The last 15 % of the chunks are a validation split
(train-split photos, unseen cases); the reported accuracies: logistic model refitted on the same cases,
the network, and their average. --export writes the ONNX file (opset 17), prints its sha256, and refits
the logistic model (deblur_core/classifier_model.json) on the same training cases.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tools")]
from deblur_core import classifier as C  # noqa: E402


class BlurTypeNet(nn.Module):
    def __init__(self, mean, std, n_classes=5, widths=(16, 32, 48, 64)):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        layers, cin = [], 2
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * cin + len(mean), 96), nn.ReLU(), nn.Dropout(0.3),
                                  nn.Linear(96, n_classes))

    def forward(self, planes, features):
        h = self.body(planes)
        g = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3)), (features - self.mean) / self.std], 1)
        return self.head(g)


def load(name):
    files = sorted(glob.glob(os.path.join(ROOT, "training", "runs", f"{name}-[0-9][0-9][0-9].npz")))
    if not files:
        raise SystemExit(f"no training/runs/{name}-NNN.npz: run training/classifier_data.py first")
    parts = [np.load(f) for f in files]
    return files, [(p["X"], p["P"].astype(np.float32), p["y"]) for p in parts]


def augment(P, rng):
    """Flips about the planes' centre (the origin at size // 2 stays put) and transposes: the spectra of
    flipped and transposed photos."""
    P = P.copy()
    for i in range(len(P)):
        if rng.random() < 0.5:
            P[i] = np.roll(P[i][:, ::-1, :], 1, axis=1)
        if rng.random() < 0.5:
            P[i] = np.roll(P[i][:, :, ::-1], 1, axis=2)
        if rng.random() < 0.5:
            P[i] = P[i].transpose(0, 2, 1)
    return P


def logistic_logits(model, X):
    Z = C.expand((X - np.asarray(model["mean"])) / np.asarray(model["std"]))
    return Z @ np.asarray(model["weights"]) + np.asarray(model["bias"])


def softmax(L):
    L = L - L.max(1, keepdims=True)
    E = np.exp(L)
    return E / E.sum(1, keepdims=True)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="clf-cnn")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--val", type=float, default=0.15, help="fraction of chunks held for validation")
    ap.add_argument("--all", action="store_true", help="train on every chunk (the shipped model)")
    ap.add_argument("--export", action="store_true")
    ap.add_argument("--out", default="blurtype-v2.onnx", help="file name under models/ for --export")
    ap.add_argument("--model-json", default=C.MODEL_FILE, help="where --export writes the refitted logistic model")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    files, parts = load(a.data)
    n_val = 0 if a.all else max(1, int(round(a.val * len(parts))))
    tr, va = parts[:len(parts) - n_val], parts[len(parts) - n_val:]
    cat = lambda ps, i: np.concatenate([p[i] for p in ps])  # noqa: E731
    Xt, Pt, yt = cat(tr, 0), cat(tr, 1), cat(tr, 2)
    print(f"{len(yt)} training cases ({len(tr)} chunks), {sum(len(p[2]) for p in va)} validation cases")
    mean, std = Xt.mean(0), Xt.std(0) + 1e-6
    net = BlurTypeNet(mean, std)
    opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=1e-3)
    steps = a.epochs * (len(yt) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps, pct_start=0.1)
    lossf = nn.CrossEntropyLoss(label_smoothing=0.05)
    t0 = time.time()
    Xt_t = torch.as_tensor(Xt, dtype=torch.float32)
    for ep in range(a.epochs):
        net.train()
        perm = rng.permutation(len(yt))
        tot = 0.0
        for b in range(len(yt) // a.batch):
            idx = perm[b * a.batch:(b + 1) * a.batch]
            p = torch.as_tensor(augment(Pt[idx], rng))
            out = net(p, Xt_t[idx])
            loss = lossf(out, torch.as_tensor(yt[idx], dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        msg = f"epoch {ep + 1} loss {tot / (len(yt) // a.batch):.4f} ({time.time() - t0:.0f} s)"
        if va and ((ep + 1) % 10 == 0 or ep + 1 == a.epochs):
            msg += " " + evaluate(net, va, Xt, yt)
        print(msg, flush=True)
    net.eval()
    if a.export:
        export(net, os.path.join(ROOT, "models", a.out))
        # the feature model the engine combines it with, fitted on the same cases
        import json
        from train_classifier import fit
        with open(a.model_json, "w") as fh:
            json.dump(fit(Xt, yt, 3e-2), fh)
        print(f"wrote {a.model_json} (logistic model on the same {len(yt)} cases)")


def evaluate(net, va, Xt, yt):
    from train_classifier import fit
    Xv = np.concatenate([p[0] for p in va])
    Pv = np.concatenate([p[1] for p in va])
    yv = np.concatenate([p[2] for p in va])
    net.eval()
    with torch.no_grad():
        Ln = net(torch.as_tensor(Pv), torch.as_tensor(Xv, dtype=torch.float32)).numpy()
    net.train()
    if not hasattr(evaluate, "logi"):
        evaluate.logi = fit(Xt, yt, 3e-2)
    Ll = logistic_logits(evaluate.logi, Xv)
    acc = lambda L: float(np.mean(L.argmax(1) == yv))  # noqa: E731
    pe = 0.5 * (np.log(softmax(Ln) + 1e-9) + np.log(softmax(Ll) + 1e-9))
    return f"val acc: logistic {acc(Ll):.3f} network {acc(Ln):.3f} average {acc(pe):.3f}"


def export(net, path):
    planes = torch.zeros(1, 2, C.PLANE_SIZE, C.PLANE_SIZE)
    feats = torch.zeros(1, len(C.FEATURES))
    torch.onnx.export(net, (planes, feats), path, input_names=["planes", "features"], output_names=["logits"],
                      dynamic_axes={"planes": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
                      opset_version=17, dynamo=False)
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    p = rng.normal(size=(3, 2, C.PLANE_SIZE, C.PLANE_SIZE)).astype(np.float32)
    f = rng.normal(size=(3, len(C.FEATURES))).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.as_tensor(p), torch.as_tensor(f)).numpy()
    got = sess.run(None, {"planes": p, "features": f})[0]
    print(f"onnxruntime vs torch max diff {np.abs(got - ref).max():.2e}")
    with open(path, "rb") as fh:
        print(f"wrote {path} sha256 {hashlib.sha256(fh.read()).hexdigest()} "
              f"({sum(q.numel() for q in net.parameters()):,} parameters)")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()

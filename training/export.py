"""Export a training checkpoint (its EMA weights) to ONNX and check onnxruntime against torch.

    .venv-train/bin/python training/export.py --name denoiser-v1 [--out models/denoiser-v1.onnx]

Dynamic batch, height and width (multiples of 8). The check runs a random input and a real held-out
photo crop through both and fails when the largest difference exceeds ``--tol`` (1e-4). Prints the
sha256, parameter count and MACs per pixel for ``deblur_core/network.py``'s table and the model card.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from model import Denoiser, count_parameters, load_onnx_weights, macs_per_pixel  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="denoiser-v2")
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--raw", action="store_true", help="export the raw weights instead of the EMA")
    ap.add_argument("--blend-with", default="", metavar="ONNX",
                    help="export (1 - alpha) x this file's weights + alpha x the checkpoint's (weight-space "
                         "ensemble of a fine-tuned network and its start, WiSE-FT: Wortsman et al., CVPR 2022)")
    ap.add_argument("--alpha", type=float, default=0.5, help="with --blend-with: the checkpoint's share")
    ap.add_argument("--update-table", action="store_true",
                    help="write the new sha256 into deblur_core/network.py's MODELS entry of this file")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    ckpt = a.ckpt or os.path.join(HERE, "checkpoints", f"{a.name}.pt")
    out = a.out or os.path.join(ROOT, "models", f"{a.name}.onnx")
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    model = Denoiser(tuple(cfg["widths"]), tuple(cfg["blocks"]))
    model.load_state_dict(ck["model"] if a.raw else ck["ema"])
    if a.blend_with:
        base = Denoiser(tuple(cfg["widths"]), tuple(cfg["blocks"]))
        load_onnx_weights(base, a.blend_with)
        b, f = base.state_dict(), model.state_dict()
        model.load_state_dict({k: (1 - a.alpha) * b[k] + a.alpha * f[k] for k in f})
    model.eval()

    os.makedirs(os.path.dirname(out), exist_ok=True)
    dummy = torch.rand(1, 4, 64, 96)
    torch.onnx.export(model, (dummy,), out, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(out))
    sess = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    tests = [rng.random((2, 4, 120, 200), dtype=np.float32) * np.array([1, 1, 1, 0.2], np.float32)[None, :, None, None]]
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    try:
        from photos import photo_paths
        import cv2

        p = photo_paths("heldout")[0]
        im = cv2.imread(str(p))[..., ::-1].astype(np.float32) / 255
        im = im[:256, :320]
        noisy = im + rng.standard_normal(im.shape).astype(np.float32) * 0.1
        tests.append(np.concatenate([noisy, np.full(im.shape[:2] + (1,), 0.1, np.float32)], 2)
                     .transpose(2, 0, 1)[None].copy())
    except Exception as exc:  # photos not fetched: random input only
        print(f"(no photo check: {exc})")
    worst = 0.0
    for x in tests:
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = sess.run(None, {"input": x})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    digest = hashlib.sha256(open(out, "rb").read()).hexdigest()
    info = {"file": os.path.relpath(out, ROOT), "sha256": digest, "bytes": os.path.getsize(out),
            "parameters": count_parameters(model), "macs_per_pixel": round(macs_per_pixel(model)),
            "step": ck["step"], "config": cfg, "max_abs_diff_torch_vs_onnxruntime": worst}
    if a.blend_with:
        info["blend"] = {"with": os.path.basename(a.blend_with), "alpha": a.alpha}
    print(json.dumps(info, indent=2))
    if worst > a.tol:
        print(f"FAIL: onnxruntime differs from torch by {worst:.2e} > {a.tol}")
        return 1
    print("OK: onnxruntime matches torch")
    if a.update_table:
        update_table(os.path.basename(out), digest)
    return 0


def update_table(filename: str, digest: str) -> None:
    """Replace the sha256 of the MODELS entry with ``file="<filename>"`` in deblur_core/network.py."""
    import re

    path = os.path.join(ROOT, "deblur_core", "network.py")
    src = open(path).read()
    pat = re.compile(r'(file="' + re.escape(filename) + r'",\s*sha256=")[0-9a-f]{64}(")')
    new, n = pat.subn(lambda m: m.group(1) + digest + m.group(2), src)
    if n != 1:
        raise SystemExit(f"no MODELS entry with file={filename!r} in {path}")
    open(path, "w").write(new)
    print(f"updated {path}: {filename} sha256 {digest}")


if __name__ == "__main__":
    sys.exit(main())

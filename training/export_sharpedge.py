"""Export a sharp-edge predictor checkpoint (its EMA weights) to ONNX and check onnxruntime against torch.

    .venv-train/bin/python training/export_sharpedge.py --ckpt training/checkpoints/se-ker.pt --out models/sharpedge-v1.onnx

Dynamic batch, height and width (multiples of 32). Fails when the largest difference on a random input
exceeds ``--tol``. Prints the sha256 and the parameter count for the engine's model table and the card.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_sharpedge import SharpEdgeNet, count_parameters  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    ck = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    cfg = ck["config"]
    model = SharpEdgeNet(tuple(cfg["widths"]), tuple(cfg["enc"]), tuple(cfg["dec"]))
    model.load_state_dict(ck["ema"])
    model.eval()
    dummy = torch.rand(1, 1, 64, 96)
    torch.onnx.export(model, (dummy,), a.out, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "h", 3: "w"}},
                      opset_version=17, dynamo=False)
    import onnxruntime as ort
    sess = ort.InferenceSession(a.out, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 1, 160, 224), dtype=np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = sess.run(None, {"input": x})[0]
    diff = float(np.abs(ref - got).max())
    sha = hashlib.sha256(open(a.out, "rb").read()).hexdigest()
    print(f"{a.out}: step {ck['step']}, {count_parameters(model):,} parameters, max |onnxruntime - torch| "
          f"{diff:.2e}, sha256 {sha}")
    if diff > a.tol:
        print(f"FAILED: difference above {a.tol}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

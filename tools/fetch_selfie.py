#!/usr/bin/env python3
"""Fetch MediaPipe's Selfie Segmentation network (landscape) from the ``mediapipe`` 0.10.14 wheel on PyPI.

The people mask finds people seen from behind with a person segmentation network
(``deblur_core/person_segmenter.py``, ``models/selfie-seg-v1.onnx``), converted here from the TFLite file
that ships inside the ``mediapipe`` wheel (Apache-2.0, Copyright Google LLC; later mediapipe releases no
longer ship the model files). This script is only needed to re-create the ONNX file: the product never
downloads anything.

    python tools/fetch_selfie.py                  # -> ~/.cache/ai-deblur/selfie/selfie_segmentation{_landscape,}.tflite
    python tools/fetch_selfie.py --dir DIR        # another cache folder
    python training/export_selfie.py              # then: .tflite -> models/selfie-seg-v1.onnx
    python training/export_selfie.py --tflite ~/.cache/ai-deblur/selfie/selfie_segmentation.tflite \
        --out models/selfie-seg-square-v1.onnx     # the square variant (the second opinion)

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
# the two variants and the sha256 of the files models/selfie-seg-v1.onnx and selfie-seg-square-v1.onnx came from
MEMBERS = {
    "mediapipe/modules/selfie_segmentation/selfie_segmentation_landscape.tflite":
        "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd",
    "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite":
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c",
}
DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "ai-deblur", "selfie")


def fetch(dest: str = DEFAULT_DIR, version: str = VERSION) -> list:
    """Download the wheel (if not cached, the CPython 3.11 manylinux build) and unpack both variants; their paths."""
    os.makedirs(dest, exist_ok=True)
    pattern = os.path.join(dest, f"mediapipe-{version}-*.whl")
    if not glob.glob(pattern):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
                        f"mediapipe=={version}", "-d", dest], check=True)
    wheels = glob.glob(pattern)
    if not wheels:
        raise SystemExit(f"pip did not leave a mediapipe-{version} wheel in {dest}")
    paths = []
    with zipfile.ZipFile(wheels[0]) as z:
        for member in MEMBERS:
            paths.append(os.path.join(dest, os.path.basename(member)))
            with open(paths[-1], "wb") as f:
                f.write(z.read(member))
        for lic in [n for n in z.namelist() if n.endswith(("/LICENSE", "/NOTICE", ".dist-info/LICENSE"))][:2]:
            with open(os.path.join(dest, os.path.basename(lic)), "wb") as f:
                f.write(z.read(lic))
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=DEFAULT_DIR)
    a = ap.parse_args(argv)
    bad = 0
    for member, path in zip(MEMBERS, fetch(a.dir)):
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        print(f"{path}: sha256 {digest}")
        if MEMBERS[member] and digest != MEMBERS[member]:
            print(f"warning: not the file the shipped ONNX was converted from ({MEMBERS[member][:12]}...)")
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from helpers import ROOT, blur_linear
from deblur_core import kernels


def run(*args):
    return subprocess.run([sys.executable, "-m", "deblur_core", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)


@pytest.fixture(scope="module")
def blurry_png(tmp_path_factory, photo):
    d = tmp_path_factory.mktemp("cli")
    y = blur_linear(photo, kernels.motion_kernel(11, 30), noise=0.003)
    p = str(d / "blurry.png")
    cv2.imwrite(p, (y[..., ::-1] * 255 + 0.5).astype(np.uint8))
    return p


def test_analyze_json(blurry_png):
    r = run("analyze", blurry_png, "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["blur_type"] in ("motion", "shake") and "confidence" in rep and "verdict" in rep


def test_analyze_kernel_out(blurry_png, tmp_path):
    """analyze --kernel-out writes the kernel the report describes (deblur_core.kernel_report)."""
    kout = str(tmp_path / "k.png")
    r = run("analyze", blurry_png, "--json", "--kernel-out", kout)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    k = cv2.imread(kout, cv2.IMREAD_UNCHANGED)
    assert rep["blur_type"] == "motion", rep
    from deblur_core.classifier import kernel_for
    assert k.ndim == 2 and [k.shape[1], k.shape[0]] == rep["kernel_size"] and k.shape == kernel_for(rep).shape


def test_deblur_writes_outputs(blurry_png, tmp_path):
    out, mask, rep, kout = (str(tmp_path / n) for n in ("o.png", "m.png", "r.json", "k.png"))
    r = run("deblur", blurry_png, "-o", out, "--mode", "motion", "--strength", "50", "--mask-out", mask,
            "--report", rep, "--kernel-out", kout, "--classical", "--quiet")
    assert r.returncode == 0, r.stderr
    img = cv2.imread(out, cv2.IMREAD_UNCHANGED)
    assert img.shape == (256, 320, 3) and img.dtype == np.uint8
    assert cv2.imread(mask, cv2.IMREAD_UNCHANGED).shape == (256, 320)
    assert json.load(open(rep))["mode"] == "motion"
    assert cv2.imread(kout, cv2.IMREAD_UNCHANGED).ndim == 2


def test_sixteen_bit_with_alpha_roundtrip(tmp_path, photo):
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 0.5, np.float32)], axis=2)
    u16 = (rgba * 65535).astype(np.uint16)
    src, out = str(tmp_path / "a.png"), str(tmp_path / "b.tif")
    cv2.imwrite(src, u16[..., [2, 1, 0, 3]])
    r = run("deblur", src, "-o", out, "--mode", "sharpen", "--quiet")
    assert r.returncode == 0, r.stderr
    back = cv2.imread(out, cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and back.shape[2] == 4
    assert np.abs(back[..., 3].astype(int) - u16[..., 3]).max() <= 1


def test_known_kernel_png(tmp_path, photo, blurry_png):
    kp = str(tmp_path / "k.png")
    kernels.save_kernel(kp, kernels.motion_kernel(11, 30))
    out = str(tmp_path / "o.jpg")
    r = run("deblur", blurry_png, "-o", out, "--kernel", kp, "--quiet", "--classical")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(out).shape == (256, 320, 3)


@pytest.mark.parametrize("setup,args,msg", [
    ("missing", ["deblur", "{d}/nope.png", "-o", "{d}/o.png"], "no such file"),
    ("garbage", ["deblur", "{d}/bad.png", "-o", "{d}/o.png"], "not a readable image"),
    ("empty", ["analyze", "{d}/empty.png"], "empty file"),
    ("bigkernel", ["deblur", "{d}/small.png", "-o", "{d}/o.png", "--kernel", "{d}/big.png"], "larger than the image"),
    ("badext", ["deblur", "{d}/small.png", "-o", "{d}/o.bmp"], "unsupported output format"),
    ("strength", ["deblur", "{d}/small.png", "-o", "{d}/o.png", "--strength", "300"], "strength"),
    ("regions", ["deblur", "{d}/small.png", "-o", "{d}/o.png", "--mode", "shake", "--shake-regions", "9"], "regions"),
])
def test_bad_input_one_line_error_no_output(tmp_path, setup, args, msg):
    d = str(tmp_path)
    open(os.path.join(d, "bad.png"), "wb").write(b"this is not a png")
    open(os.path.join(d, "empty.png"), "wb").close()
    cv2.imwrite(os.path.join(d, "small.png"), np.full((20, 20), 128, np.uint8))
    cv2.imwrite(os.path.join(d, "big.png"), np.full((41, 41), 255, np.uint8))
    r = run(*[a.format(d=d) for a in args])
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and msg in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not os.path.exists(os.path.join(d, "o.png"))

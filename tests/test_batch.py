"""`python -m deblur_core batch` (issue 23): folder trees, a corrupt file, resume, metadata, jobs, Dask."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from helpers import ROOT


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "deblur_core", "batch", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory, photo, gray_photo):
    """in/a.png, in/sub/b.jpg (ICC + EXIF), in/sub/deeper/c.tif (16-bit gray), in/sub/broken.jpg, notes.txt."""
    d = tmp_path_factory.mktemp("batch") / "in"
    (d / "sub" / "deeper").mkdir(parents=True)
    cv2.imwrite(str(d / "a.png"), (photo[:64, :80, ::-1] * 255 + 0.5).astype(np.uint8))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    ex = Image.Exif()
    ex[271], ex[272] = "Nikon", "Z 8"
    Image.fromarray((photo[64:128, 80:160] * 255 + 0.5).astype(np.uint8)).save(
        str(d / "sub" / "b.jpg"), quality=92, exif=ex, icc_profile=icc)
    cv2.imwrite(str(d / "sub" / "deeper" / "c.tif"), (gray_photo[:64, :64] * 65535 + 0.5).astype(np.uint16))
    (d / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    (d / "notes.txt").write_text("not a photo")
    return d, icc


GOOD = ["a.png", "sub/b.jpg", "sub/deeper/c.tif"]


def _lines(path):
    with open(path) as f:
        return [json.loads(t) for t in f]


def test_batch_tree_with_corrupt_file_then_resume(tree, tmp_path):
    src, icc = tree
    out = tmp_path / "out"
    r = run(str(src), "-o", str(out), "--mode", "sharpen", "--quiet")
    assert r.returncode == 1, r.stderr
    assert "broken.jpg" in r.stderr and "1 photo failed" in r.stderr
    for rel in GOOD:  # every good photo written, the layout kept
        assert (out / rel).is_file(), rel
    assert not (out / "sub" / "broken.jpg").exists() and not (out / "notes.txt").exists()
    assert not [p for p in out.rglob("*.part")]
    lines = {os.path.relpath(l["input"], str(src)): l for l in _lines(out / "batch-report.jsonl")}
    assert set(lines) == set(GOOD) | {"sub/broken.jpg"}
    bad = lines["sub/broken.jpg"]
    assert bad["status"] == "failed" and "broken.jpg" in bad["error"]
    for rel in GOOD:
        ln = lines[rel]
        assert ln["status"] == "done" and ln["error"] is None and ln["blur_type"] and ln["verdict"]
        assert ln["action"] and ln["seconds"] > 0 and isinstance(ln["warnings"], list) and "kernel_size" in ln
    # depth kept; metadata kept through batch
    assert cv2.imread(str(out / "sub/deeper/c.tif"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    with Image.open(out / "sub/b.jpg") as im:
        assert im.info.get("icc_profile") == icc and im.getexif().get(271) == "Nikon"

    mtimes = {rel: os.stat(out / rel).st_mtime_ns for rel in GOOD}
    r2 = run(str(src), "-o", str(out), "--mode", "sharpen", "--resume")
    assert r2.returncode == 1 and "3 already done" in r2.stderr, r2.stderr
    assert {rel: os.stat(out / rel).st_mtime_ns for rel in GOOD} == mtimes  # finished outputs untouched
    again = _lines(out / "batch-report.jsonl")
    assert len(again) == 5 and again[-1]["input"].endswith("broken.jpg")  # only the failed one retried

    os.remove(out / "a.png")  # a report line without its output file: done again
    r3 = run(str(src), "-o", str(out), "--mode", "sharpen", "--resume", "--quiet")
    assert (out / "a.png").is_file() and "1 restored, 2 already done" in r3.stderr, r3.stderr


def test_batch_help_documents_jobs_resume_scheduler():
    r = run("--help")
    assert r.returncode == 0
    for opt in ("--jobs", "--resume", "--scheduler", "--no-shared-storage", "--pattern", "--format", "--report"):
        assert opt in r.stdout, opt


def test_batch_refuses_to_overwrite_inputs(tree, tmp_path):
    src, _ = tree
    r = run(str(src), "-o", str(src), "--mode", "sharpen")
    assert r.returncode == 2 and "refusing to write over an input" in r.stderr
    # an output folder inside the input folder, in another format: allowed, and never walked as input
    inner = src / "fixed"
    try:
        r = run(str(src), "-o", str(inner), "--format", "png", "--pattern", "*.png", "--mode", "sharpen", "--quiet")
        assert r.returncode == 0, r.stderr
        r = run(str(src), "-o", str(inner), "--format", "png", "--pattern", "*.png", "--mode", "sharpen",
                "--quiet")
        assert r.returncode == 0 and "1 restored" in r.stderr, r.stderr
    finally:
        import shutil
        shutil.rmtree(inner, ignore_errors=True)


def _outputs(folder):
    return {os.path.relpath(p, folder): open(p, "rb").read()
            for p in (os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs) if not p.endswith(".jsonl")}


def test_jobs_two_same_outputs_as_one(tree, tmp_path):
    src, _ = tree
    one, two = tmp_path / "one", tmp_path / "two"
    assert run(str(src), "-o", str(one), "--mode", "sharpen", "--format", "png", "--quiet").returncode == 1
    assert run(str(src), "-o", str(two), "--mode", "sharpen", "--format", "png", "--jobs", "2",
               "--quiet").returncode == 1
    a, b = _outputs(one), _outputs(two)
    assert set(a) == {"a.png", "sub/b.png", "sub/deeper/c.png"} and a == b


def test_dask_local_cluster_bit_for_bit(tree, tmp_path, monkeypatch):
    """--scheduler on a LocalCluster of 2 worker processes: paths on shared storage, and bytes without it,
    give the local run's files bit for bit (and the same report verdicts, the corrupt file failed)."""
    import distributed  # requirements-dev.txt includes requirements-dask.txt: CI has it, no skip
    src, _ = tree
    monkeypatch.setenv("PYTHONPATH", ROOT)
    local = tmp_path / "local"
    assert run(str(src), "-o", str(local), "--mode", "sharpen", "--quiet").returncode == 1
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  host="127.0.0.1") as cluster:
        for name, extra in (("shared", []), ("bytes", ["--no-shared-storage"])):
            out = tmp_path / name
            r = run(str(src), "-o", str(out), "--mode", "sharpen", "--scheduler", cluster.scheduler_address,
                    *extra)
            assert r.returncode == 1 and "1 photo failed" in r.stderr, r.stderr
            assert _outputs(out) == _outputs(local), name
            rep = {os.path.basename(l["input"]): (l["status"], l["blur_type"], l["action"])
                   for l in _lines(out / "batch-report.jsonl")}
            ref = {os.path.basename(l["input"]): (l["status"], l["blur_type"], l["action"])
                   for l in _lines(local / "batch-report.jsonl")}
            assert rep == ref, name

"""Shared benchmark plumbing: photos, crops, metrics, tables, peak memory in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

# Not sharp references: 'clock' is a real motion-blurred photo, the others are graphics or micrographs.
NOT_SHARP = ("clock", "page", "text", "coins", "moon", "immunohistochemistry", "hubble")


def sharp_photos(split: str = "heldout"):
    """(name, image) of the sharp photos of ``split`` (tools/photos.py, the :data:`NOT_SHARP` ones left
    out) in name order, float32 sRGB, alpha dropped."""
    from photos import photo_paths
    from deblur_core.imageio import read_image
    for p in sorted(photo_paths(split, fetch_missing=True)):
        name = os.path.splitext(os.path.basename(str(p)))[0]
        if any(tag in name for tag in NOT_SHARP):
            continue
        img, _ = read_image(str(p))
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[..., :3]
        yield name, img


def photos(split: str = "heldout", *, limit: int | None = None, side: int = 512, color_only: bool = False,
           seed: int = 0):
    """Sharp photos of ``split`` as float32 sRGB crops of at most side x side (centre crops)."""
    out = []
    for name, img in sharp_photos(split):
        if color_only and img.ndim == 2:
            continue
        h, w = img.shape[:2]
        y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
        out.append((name, np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side])))
    rng = np.random.default_rng(seed)
    if limit is not None and len(out) > limit:
        idx = sorted(rng.choice(len(out), limit, replace=False))
        out = [out[i] for i in idx]
    return out


def psnr(result, reference, *, border: int = 20, max_shift: int = 2) -> float:
    """PSNR after the best integer shift within +-max_shift px, borders cropped (blind results may be
    shifted by a pixel: kernels are only defined up to a translation)."""
    a = np.asarray(result, np.float64)
    b = np.asarray(reference, np.float64)
    best = 1e9
    s = border
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            d = a[s + dy:a.shape[0] - s + dy, s + dx:a.shape[1] - s + dx] - b[s:-s, s:-s]
            best = min(best, float(np.mean(d * d)))
    return 10 * np.log10(1.0 / max(best, 1e-12))


def ssim(result, reference, *, border: int = 20) -> float:
    from skimage.metrics import structural_similarity
    a = np.asarray(result, np.float64)[border:-border, border:-border]
    b = np.asarray(reference, np.float64)[border:-border, border:-border]
    return float(structural_similarity(a, b, data_range=1.0, channel_axis=2 if a.ndim == 3 else None))


def table(title: str, header, rows) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    sys.stdout.flush()


# Every timing in bench/ runs under the memory policy of the engine's own processes (command line,
# GIMP worker) for the photo's size, ours and the peers' alike (deblur_core/memory.py).
def as_engine_process(pixels: int = 0):
    """Apply the engine processes' memory policy for photos of ``pixels`` to this benchmark process
    (the in-process benchmarks use photos of at most a few MP)."""
    from deblur_core.memory import policy_for
    return policy_for(pixels)


def run_measured(code: str, pixels: int) -> dict:
    """Run Python ``code`` in a fresh interpreter under the engine processes' memory policy for a photo
    of ``pixels``; it must print one JSON line. Adds peak RSS (MB)."""
    policy = f"from deblur_core.memory import policy_for\npolicy_for({int(pixels)})\n"
    wrapper = policy + code + "\nimport resource, json as _j\nprint('@@' + _j.dumps({'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": ROOT})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = {"wall_s": time.perf_counter() - t}
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            out.update(json.loads(line[2:]))
        elif line.startswith("{"):
            out.update(json.loads(line))
    return out

"""`batch` throughput (issue 23): photos per hour with --jobs 1 / 2 on this machine and through a Dask
LocalCluster (2 worker processes, shared storage and bytes), each against one process; the outputs are
checked to be the same bit for bit.

    .venv/bin/python bench/bench_batch.py [--photos 8] [--size 384] [--mode sharpen]

Each run is the whole command (`python -m deblur_core batch ...`, its start-up included), on photos made
from scikit-image's images (resized to --size px on the longer side, slightly blurred so `auto` has work).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # a LocalCluster's scheduler runs here and unpickles deblur_core's tasks
NAMES = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "coins", "hubble_deep_field",
         "camera"]


def make_photos(folder, n, size):
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        img = getattr(data, NAMES[i % len(NAMES)])()
        if img.ndim == 3:
            img = img[..., :3][..., ::-1]
        s = size / max(img.shape[:2])
        img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        img = cv2.GaussianBlur(img, (0, 0), 1.2)
        cv2.imwrite(os.path.join(folder, f"p{i:02d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])


def run_batch(src, out, *extra):
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "deblur_core", "batch", src, "-o", out, "--quiet", *extra],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"batch failed: {r.stderr}")
    return dt


def outputs(folder):
    return {f: open(os.path.join(folder, f), "rb").read() for f in sorted(os.listdir(folder)) if f.endswith(".jpg")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=int, default=8)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--mode", default="sharpen")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-batch-")
    try:
        src = os.path.join(work, "in")
        make_photos(src, args.photos, args.size)
        rows = []
        common = ["--mode", args.mode]
        for jobs in (1, 2):
            out = os.path.join(work, f"jobs{jobs}")
            rows.append((f"--jobs {jobs}", jobs, run_batch(src, out, *common, "--jobs", str(jobs)), out))
        try:
            from distributed import LocalCluster
        except ImportError:
            LocalCluster = None
            print("(Dask not installed: pip install -r requirements-dask.txt for the cluster rows)")
        if LocalCluster is not None:
            os.environ["PYTHONPATH"] = ROOT
            t0 = time.perf_counter()
            # Each worker process gets its share of the cores, as batch --jobs gives its own (deblur_core.threads).
            share = str(max(1, (os.cpu_count() or 1) // 2))
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                              host="127.0.0.1", env={"AI_DEBLUR_THREADS": share}) as cluster:
                start = time.perf_counter() - t0
                for label, extra in (("Dask LocalCluster 2 procs, paths", []),
                                     ("Dask LocalCluster 2 procs, bytes", ["--no-shared-storage"])):
                    out = os.path.join(work, label.split()[-1])
                    rows.append((label, 2, run_batch(src, out, *common, "--scheduler", cluster.scheduler_address,
                                                  *extra), out))
            print(f"(LocalCluster start-up, not counted: {start:.1f} s)")
        ref = outputs(rows[0][3])
        base = rows[0][2]
        print(f"\n{args.photos} photos of {args.size} px, mode {args.mode}, {os.cpu_count()} CPUs\n")
        print(f"| {'run':<34} | wall s | photos / h | vs --jobs 1 | overhead vs 1 process | same files |")
        print(f"|{'-' * 36}|-------:|-----------:|------------:|----------------------:|:----------:|")
        for label, workers, dt, out in rows:
            speed = base / dt
            overhead = dt * workers / base - 1
            print(f"| {label:<34} | {dt:6.1f} | {args.photos / dt * 3600:10.0f} | {speed:10.2f}x | "
                  f"{overhead * 100:+20.0f}% | {'yes' if outputs(out) == ref else 'NO':^10} |")
        print("\noverhead vs 1 process: (wall time x workers) / (--jobs 1 wall time) - 1, the CPU time the "
              "parallel run spends beyond one process's")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

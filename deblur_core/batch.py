"""A photographer's batch (issue 23): ``python -m deblur_core batch INPUT... -o OUT_DIR``.

One job is one photo: :func:`run_job` reads it (a path on shared storage, or its bytes), restores it
through :func:`restore_photo` (the very function ``deblur`` uses: pipeline.deblur, then the file encoded
with the input's depth, alpha and metadata) and writes the output atomically, or hands its bytes back.
Jobs run in this process (``--jobs 1``), in a pool of ``--jobs`` worker processes, or on a Dask cluster
(``--scheduler``, :mod:`deblur_core.batch_dask`). The parent walks the inputs, skips what an earlier run
finished (``--resume``: a "done" line in the report AND the output file), shows progress, and appends
one JSON line per photo to the report.
"""
from __future__ import annotations

import fnmatch
import json
import os
import sys
import time

__all__ = ["restore_photo", "run_job", "plan_jobs", "run_batch", "PHOTO_PATTERNS", "BatchError"]

PHOTO_PATTERNS = ("*.jpg", "*.jpeg", "*.png", "*.tif", "*.tiff")
FORMAT_EXT = {"png": ".png", "tif": ".tif", "jpg": ".jpg"}
REPORT_NAME = "batch-report.jsonl"


class BatchError(Exception):
    """Bad arguments or a plan that would overwrite an input: nothing was started."""


# -- the one photo code path (deblur and batch) ---------------------------------------------------------
def restore_photo(image, dtype, meta, ext: str, *, mode="auto", strength=50.0, kernel=None, progress=None,
                  **options):
    """pipeline.deblur on an upright photo, then its output file's bytes (format ``ext``, the input's bit
    depth and alpha, its EXIF / ICC / XMP). Returns (DeblurResult, bytes)."""
    from .imageio import encode_image
    from .pipeline import deblur
    res = deblur(image, mode, strength, kernel, progress=progress, **options)
    return res, encode_image(ext, res.image, dtype, meta=meta)


def run_job(job: dict) -> dict:
    """Restore one photo; never raises. ``job``: input (path), output (path), options (restore_photo's
    keywords), data (the input's bytes, when there is no shared storage), return_bytes (hand the output
    back in ``data`` instead of writing it). Returns the photo's report line (plus ``data``)."""
    t0 = time.perf_counter()
    line = {"input": job["input"], "output": job["output"], "status": "failed", "blur_type": None,
            "verdict": None, "action": None, "kernel_size": None, "seconds": None, "warnings": [],
            "error": None}
    try:
        from .imageio import ImageReadError, read_image_meta, write_atomic
        from .memory import policy_for
        try:
            image, dtype, meta = read_image_meta(job["data"] if job.get("data") is not None else job["input"])
        except ImageReadError as exc:
            raise _Failed(str(exc).replace("(bytes)", job["input"])) from None
        if job.get("own_process", True):
            policy_for(image.shape[0] * image.shape[1])  # this process is ours (deblur_core/memory.py)
        res, blob = restore_photo(image, dtype, meta, os.path.splitext(job["output"])[1], **job["options"])
        del image
        if job.get("return_bytes"):
            line["data"] = blob
        else:
            os.makedirs(os.path.dirname(job["output"]) or ".", exist_ok=True)
            write_atomic(job["output"], blob)
        rep = res.report
        line.update(status="done", blur_type=rep.get("blur_type"), verdict=rep.get("verdict"),
                    action=rep.get("action"), kernel_size=rep.get("kernel_size"),
                    warnings=list(meta.warnings) + list(rep.get("warnings", [])))
    except _Failed as exc:
        line["error"] = str(exc)
    except MemoryError:
        line["error"] = "not enough memory for this image"
    except Exception as exc:  # noqa: BLE001 - one photo's failure never stops the batch
        line["error"] = f"processing failed: {type(exc).__name__}: {exc}"
    line["seconds"] = round(time.perf_counter() - t0, 3)
    return line


class _Failed(Exception):
    pass


# -- planning ---------------------------------------------------------------------------------------------
def _matches(name: str, patterns) -> bool:
    low = name.lower()
    return any(fnmatch.fnmatch(low, p.lower()) for p in patterns)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def plan_jobs(inputs, out_dir: str, *, pattern: str | None = None, fmt: str = "same") -> list[dict]:
    """(input, output) pairs: folders walked recursively (sorted), the sub-folder layout kept under
    ``out_dir`` (under a folder named like each input folder when there are several inputs). Files named
    directly are taken whatever their name; in folders, ``pattern`` (a glob, default: the photo formats)
    picks them. Refuses (BatchError) a plan where an output would be an input or two photos one output."""
    patterns = (pattern,) if pattern else PHOTO_PATTERNS
    out_real = os.path.realpath(out_dir)
    pairs = []
    several = len(inputs) > 1
    for inp in inputs:
        if os.path.isdir(inp):
            root = os.path.normpath(inp)
            base = os.path.basename(os.path.realpath(root)) if several else ""
            root_real = os.path.realpath(root)
            for dirpath, dirnames, filenames in os.walk(root):
                # an output folder inside this input folder is not walked (its photos are our outputs)
                dirnames[:] = sorted(d for d in dirnames
                                     if not (_inside(os.path.realpath(os.path.join(dirpath, d)), out_real)
                                             and not _inside(root_real, out_real)))
                for name in sorted(filenames):
                    if name.startswith(".") or not _matches(name, patterns):
                        continue
                    src = os.path.join(dirpath, name)
                    pairs.append((src, os.path.join(base, os.path.relpath(src, root))))
        elif os.path.isfile(inp):
            pairs.append((inp, os.path.basename(inp)))
        else:
            raise BatchError(f"no such file or folder: {inp}")
    jobs, seen = [], {}
    in_real = {os.path.realpath(src) for src, _ in pairs}
    for src, rel in pairs:
        stem, ext = os.path.splitext(rel)
        out_ext = ext if fmt == "same" else FORMAT_EXT[fmt]
        if out_ext.lower() not in (".png", ".tif", ".tiff", ".jpg", ".jpeg"):
            out_ext = ".png"
        out = os.path.join(out_dir, stem + out_ext)
        real = os.path.realpath(out)
        if real in in_real:
            raise BatchError(f"refusing to write over an input: {src} -> {out} (choose another output "
                             "folder or --format)")
        if real in seen:
            raise BatchError(f"two photos would be written to {out}: {seen[real]} and {src}")
        seen[real] = src
        jobs.append({"input": src, "output": out})
    return jobs


def _done_before(report_path: str) -> dict:
    """input -> output of the photos a report says were done."""
    done = {}
    try:
        with open(report_path) as f:
            for text in f:
                try:
                    line = json.loads(text)
                except ValueError:
                    continue  # a line cut short by a crash
                if isinstance(line, dict) and line.get("status") == "done":
                    done[line.get("input")] = line.get("output")
                elif isinstance(line, dict) and line.get("input") in done:
                    done.pop(line["input"])  # a later failure of the same photo
    except FileNotFoundError:
        pass
    return done


# -- progress -----------------------------------------------------------------------------------------------
class _Progress:
    """tqdm's bar when stderr is a terminal (and tqdm is installed), else one plain line per photo with
    the elapsed time and an ETA."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.n, self.t0, self.quiet, self.bar = total, 0, time.monotonic(), quiet, None
        if not quiet and total and sys.stderr.isatty():
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, unit="photo", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, line: dict):
        self.n += 1
        if self.quiet:
            return
        name = os.path.basename(line["input"])
        if self.bar is not None:
            if line["status"] != "done":
                self.bar.write(f"failed: {line['input']}: {line['error']}", file=sys.stderr)
            self.bar.set_postfix_str(name, refresh=False)
            self.bar.update(1)
            return
        el = time.monotonic() - self.t0
        eta = el / self.n * (self.total - self.n)
        what = line.get("action") or "" if line["status"] == "done" else f"FAILED: {line['error']}"
        print(f"[{self.n}/{self.total}] {100 * self.n // self.total:3d}% elapsed {_hms(el)} eta {_hms(eta)} "
              f"{line['input']}: {what}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _hms(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


# -- running -------------------------------------------------------------------------------------------------
def _thread_env(jobs: int) -> dict:
    """The worker processes' thread budget: the cores shared out between the jobs (deblur_core.threads)."""
    from .threads import THREADS_ENV, thread_budget
    per = str(max(1, thread_budget() // max(jobs, 1)))
    return {k: per for k in (THREADS_ENV, "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def _pool_init(threads: int):
    try:
        import cv2
        cv2.setNumThreads(threads)
    except Exception:  # noqa: BLE001
        pass


def _run_local(jobs: list[dict], n: int):
    """Yield report lines as photos finish: in this process for n == 1, else in a pool of n processes
    (spawned, one photo per task, so each holds one photo's memory at a time)."""
    if n <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield run_job(job)
        return
    import multiprocessing as mp
    env = _thread_env(n)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # inherited by the workers spawned now
    try:
        pool = mp.get_context("spawn").Pool(min(n, len(jobs)), _pool_init, (int(env["OMP_NUM_THREADS"]),))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    try:
        yield from pool.imap_unordered(run_job, jobs, chunksize=1)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


def run_batch(inputs, out_dir: str, *, options: dict, jobs: int = 1, resume: bool = False,
              pattern: str | None = None, fmt: str = "same", report: str | None = None,
              scheduler: str | None = None, shared_storage: bool = True, quiet: bool = False) -> dict:
    """Plan, skip what is done (resume), run, report. Returns counts: total, done, skipped, failed."""
    if jobs < 1:
        raise BatchError("--jobs must be at least 1")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BatchError(f"output folder is a file: {out_dir}")
    plan = plan_jobs(inputs, out_dir, pattern=pattern, fmt=fmt)
    os.makedirs(out_dir, exist_ok=True)
    report = report or os.path.join(out_dir, REPORT_NAME)
    skipped = 0
    if resume:
        done = _done_before(report)
        todo = [j for j in plan if not (done.get(j["input"]) == j["output"] and os.path.isfile(j["output"]))]
        skipped = len(plan) - len(todo)
    else:
        todo = plan
    for j in todo:
        j["options"] = options
    if not quiet:
        print(f"{len(plan)} photos: {skipped} already done, {len(todo)} to do"
              + (f" on {scheduler}" if scheduler else f" with {jobs} job{'s' if jobs > 1 else ''}"),
              file=sys.stderr, flush=True)
    if scheduler:
        from .batch_dask import run_dask
        results = run_dask(todo, scheduler, shared_storage=shared_storage)
    else:
        results = _run_local(todo, jobs)
    from .imageio import write_atomic
    counts = {"total": len(plan), "done": 0, "skipped": skipped, "failed": 0, "failed_inputs": []}
    progress = _Progress(len(todo), quiet)
    with open(report, "a" if resume else "w") as rep:
        try:
            for line in results:
                if line.get("data") is not None:  # no shared storage: the output came back as bytes
                    blob = line.pop("data")
                    try:
                        os.makedirs(os.path.dirname(line["output"]) or ".", exist_ok=True)
                        write_atomic(line["output"], blob)
                    except OSError as exc:
                        line.update(status="failed", error=f"cannot write {line['output']}: {exc}")
                line.pop("data", None)
                if line.get("status") == "done":
                    counts["done"] += 1
                else:
                    counts["failed"] += 1
                    counts["failed_inputs"].append(line["input"])
                rep.write(json.dumps(line) + "\n")
                rep.flush()
                progress.update(line)
        finally:
            progress.close()
    counts["report"] = report
    return counts

"""``batch --scheduler tcp://HOST:8786``: one Dask task per photo (optional dependency, requirements-dask.txt).

Each task is :func:`deblur_core.batch.run_job`, the same function a local worker runs, so a photo comes
out bit for bit as it does locally. With shared storage the task gets the photo's path and writes the
output itself (atomically); without (``--no-shared-storage``), this process reads the photo, scatters its
bytes to the cluster, and writes the bytes that come back. At most a window of tasks (twice the cluster's
threads) is in flight, so 10,000 photos never sit in memory at once. The workers must be able to import
deblur_core (the same version), e.g. started from this repository's venv.
"""
from __future__ import annotations

import itertools
import uuid

from .batch import BatchError, run_job

__all__ = ["run_dask"]


def _run_remote(job: dict, data=None) -> dict:
    if data is not None:
        job = {**job, "data": data}
    return run_job(job)


def _failed(job: dict, error: str) -> dict:
    return {"input": job["input"], "output": job["output"], "status": "failed", "blur_type": None,
            "verdict": None, "action": None, "kernel_size": None, "seconds": None, "warnings": [],
            "error": error}


def run_dask(jobs: list[dict], scheduler, *, shared_storage: bool = True, window: int | None = None):
    """Connect to ``scheduler`` (an address, or a Client / LocalCluster) now and return an iterator of the
    photos' report lines in the order they finish."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise BatchError("--scheduler needs Dask distributed: .venv/bin/pip install -r requirements-dask.txt") \
            from None
    try:
        client = scheduler if isinstance(scheduler, Client) else Client(scheduler, timeout="20s")
    except Exception as exc:  # noqa: BLE001 - OSError / TimeoutError: a line, not a traceback
        raise BatchError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
    own = client is not scheduler
    if window is None:
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values())
        window = max(2, 2 * threads)
    return _results(client, own, jobs, shared_storage, window, as_completed)


def _results(client, own, jobs, shared_storage, window, as_completed):
    pending = {}
    todo = iter(jobs)
    done_early = []

    def submit(job):
        job = {**job, "own_process": False}  # a Dask worker's memory policy is not ours to set
        data = None
        if not shared_storage:
            try:
                with open(job["input"], "rb") as f:
                    blob = f.read()
            except OSError as exc:
                done_early.append(_failed(job, f"cannot read {job['input']}: {exc.strerror or exc}"))
                return
            data = client.scatter(blob, hash=False)
            job["return_bytes"] = True
        fut = client.submit(_run_remote, job, data, pure=False, key=f"deblur-{uuid.uuid4().hex}")
        pending[fut.key] = job
        ac.add(fut)

    ac = as_completed()
    try:
        for job in itertools.islice(todo, window):
            submit(job)
        while done_early:
            yield done_early.pop()
        for fut in ac:
            job = pending.pop(fut.key)
            try:
                line = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker lost, a task that could not run
                line = _failed(job, f"task failed on the cluster: {type(exc).__name__}: {exc}")
            fut.release()
            nxt = next(todo, None)
            if nxt is not None:
                submit(nxt)
            yield line
            while done_early:
                yield done_early.pop()
    finally:
        for fut in list(ac.futures) if hasattr(ac, "futures") else []:
            fut.cancel()
        if own:
            client.close()

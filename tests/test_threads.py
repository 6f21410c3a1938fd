"""The engine's thread budget (issue 23): batch workers share the cores instead of each taking all."""
import os
import subprocess
import sys

import pytest

from deblur_core import batch
from deblur_core.threads import THREADS_ENV, thread_budget

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_budget_reads_the_variable_and_ignores_nonsense(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    assert thread_budget() == 3
    for bad in ("0", "-2", "many", ""):
        monkeypatch.setenv(THREADS_ENV, bad)
        assert thread_budget() == max(1, os.cpu_count() or 1)


@pytest.mark.parametrize("jobs", [1, 2, 64])
def test_batch_workers_share_the_cores(monkeypatch, jobs):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    env = batch._thread_env(jobs)
    assert int(env[THREADS_ENV]) == max(1, (os.cpu_count() or 1) // jobs)
    assert env["OMP_NUM_THREADS"] == env[THREADS_ENV]


def test_a_process_started_with_one_thread_sizes_every_pool_to_it():
    """What a batch worker sees: FFT workers, the classic estimator's FFT threads and onnxruntime's
    intra-op pool all follow the budget set before the engine was imported."""
    code = ("from deblur_core import fftutils, network\n"
            "from deblur_core.classic import DEFAULT_SETTINGS\n"
            "m = network.load_model()\n"
            "print(fftutils.WORKERS, DEFAULT_SETTINGS.fft_workers, "
            "m.session.get_session_options().intra_op_num_threads)\n")
    env = dict(os.environ, **{THREADS_ENV: "1"})
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1", "1"]

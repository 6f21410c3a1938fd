"""The classic estimator's settings: a frozen record passed in, never module state."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..threads import thread_budget

__all__ = ["ClassicSettings", "DEFAULT_SETTINGS", "MIN_KERNEL", "MAX_KERNEL", "PYRAMID_RATIO", "COARSEST_KERNEL"]

MIN_KERNEL = 3
MAX_KERNEL = 101
PYRAMID_RATIO = math.sqrt(0.5)      # image and kernel scale from one pyramid level to the next finer one
COARSEST_KERNEL = 5                 # px: the kernel side the pyramid starts from


# Measured with bench/bench_shake.py; what each does and every variant tried, with its figures:
# docs/experiments/shake.md, "classic estimator".
@dataclass(frozen=True)
class ClassicSettings:
    """Knobs of the classic estimator, passed in (``estimate_kernel(..., settings=...)``), never module
    state; one line of rationale each, figures in docs/experiments/shake.md."""

    keep_frac: float = 0.005            # Cho & Lee edge selection: at least this share of the region per bin
    lam_end: float = 1e-3               # L0 weight at the finest level (the ``lam`` argument is the coarsest)
    nonneg_iters: int = 100             # FISTA refinement of the kernel with k >= 0
    thr: float = 0.08                   # clean-up: values below thr x the maximum are cut
    min_mass: float = 0.02              # clean-up: components with less of the mass are pruned
    smooth: float = 0.002               # weight of |grad k|^2: keeps thin trajectories continuous
    kappa: float = 2.0                  # HQS rate of the L0 step
    trim_mass: float = 0.99             # the returned kernel keeps the centred square with this share of the mass
    starts: int = 3                     # multi-start on the coarse levels: a cross, lines along / across the cepstrum
    switch_ks: int = 13                 # ... up to the first level with a kernel of this size
    ns_w: float = 0.03                  # Wiener weight of the sparsity score that picks among candidates
    pair_ks: int | None = 23            # size found: a window of this size competes with the generous one
    grow: tuple | None = (1.25, 4)      # size given: a grow[0] x size + grow[1] window competes with it
    fine_denoise: bool = True           # the finest level on the denoised region, consistent kernel step
    # FFT threads: arrays of up to ~0.4 M elements (the default 640 px region) gain nothing from 2 workers
    # (600^2: 2.43 against 2.35 ms a transform pair), larger ones do (1100^2, a 1 MP region: 9.0 against 4.8 ms).
    parallel_fft_min: int = 400_000     # elements from which an FFT uses fft_workers threads
    fft_workers: int = min(2, thread_budget())   # ... while no other estimate runs beside this one (classic.fft)

    def but(self, **changes) -> "ClassicSettings":
        """A copy with ``changes`` (for benches and tests)."""
        return replace(self, **changes)


DEFAULT_SETTINGS = ClassicSettings()

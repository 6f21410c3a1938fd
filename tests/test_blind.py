"""Blind camera-shake kernel estimation: the classic estimator (deblur_core.classic)."""
import os
import sys

import numpy as np
import pytest
from scipy.signal import fftconvolve

from helpers import blur_linear
from deblur_core import color, fftutils
from deblur_core.classic import DEFAULT_SETTINGS, estimate_kernel
from deblur_core.deconvolution import deconvolve
from deblur_core.kernels import kernel_from_points

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from bench_shake import mse_aligned as mse_upto_shift  # noqa: E402  Levin et al.'s comp_upto_shift


def similarity(a, b):
    """Max normalised cross-correlation over shifts (kernels are defined up to a translation)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    c = fftconvolve(a, b[::-1, ::-1], mode="full")
    return float(c.max() / np.sqrt((a * a).sum() * (b * b).sum()))


def mse_aligned(a, b, border=20, max_shift=4):
    best = np.inf
    s = border
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            d = a[s + dy:a.shape[0] - s + dy, s + dx:a.shape[1] - s + dx] - b[s:-s, s:-s]
            best = min(best, float(np.mean(d * d)))
    return best


def hook_kernel(size=15):
    """An asymmetric, curved trajectory (a 'J'), unevenly exposed: its 180-degree flip differs."""
    t = np.linspace(0, 1, 600)
    xs = np.where(t < 0.6, -5 + 10 * t / 0.6, 5 - 3 * np.sin((t - 0.6) / 0.4 * np.pi))
    ys = np.where(t < 0.6, -4 + 2 * t / 0.6, -2 + 7 * (t - 0.6) / 0.4)
    w = np.where(t < 0.6, 1.0, 2.0)                       # slower (brighter) at the end
    k = kernel_from_points(xs, ys, size, w)
    return k


def _check_kernel(psf):
    assert psf.dtype == np.float32 and psf.ndim == 2
    assert psf.shape[0] % 2 == 1 and psf.shape[1] % 2 == 1
    assert np.all(psf >= 0) and abs(float(psf.sum()) - 1) < 1e-4


@pytest.fixture(scope="module")
def case(gray_photo):
    k = hook_kernel(15)
    blurred = blur_linear(gray_photo, k, noise=0.005, seed=1)
    psf, info = estimate_kernel(blurred, 15)
    return gray_photo, blurred, k, psf, info


def test_recovers_known_kernel(case):
    sharp, blurred, k, psf, info = case
    _check_kernel(psf)
    assert similarity(k, psf) >= 0.8
    # Error ratio as in Levin et al.'s protocol: each result aligned to the sharp image up to a
    # translation, sub-pixel included (a kernel is only defined up to one; a 0.5 px offset of the true
    # kernel alone costs a ratio of 4 on this case with whole-pixel alignment).
    e_true = mse_upto_shift(deconvolve(blurred, k), sharp, 20, 1, subpixel=True)
    e_est = mse_upto_shift(deconvolve(blurred, psf), sharp, 20, 4, subpixel=True)
    assert e_est / e_true <= 3.0
    for key in ("size", "scales", "iterations", "roi", "runtime_s", "confidence"):
        assert key in info
    assert info["roi"] == [0, 0, 256, 256]
    assert 0.0 <= info["confidence"] <= 1.0


def test_orientation_not_flipped(case):
    sharp, blurred, k, psf, info = case
    lin_sharp = color.srgb_to_linear(sharp)
    lin_blur = color.srgb_to_linear(blurred)
    s = 24

    def err(p):
        return mse_aligned(fftutils.convolve(lin_sharp, p), lin_blur, border=s, max_shift=4)

    assert similarity(k, k[::-1, ::-1]) < 0.9          # the test kernel really is asymmetric
    assert err(psf) < 0.7 * err(psf[::-1, ::-1].copy())


def test_noisy_input_still_usable(gray_photo):
    k = hook_kernel(15)
    blurred = blur_linear(gray_photo, k, noise=0.015, seed=2)
    psf, info = estimate_kernel(blurred, 15)
    _check_kernel(psf)
    assert similarity(k, psf) >= 0.6


def test_saturated_highlights_are_excluded(gray_photo):
    k = hook_kernel(15)
    lin = color.srgb_to_linear(gray_photo).copy()
    yy, xx = np.mgrid[:256, :256]
    for cy, cx in ((60, 70), (180, 200), (200, 60)):
        lin[(yy - cy) ** 2 + (xx - cx) ** 2 < 8 ** 2] = 6.0        # lamps, far brighter than white
    blurred = np.clip(fftutils.convolve(lin, k), 0, 1)               # the sensor clips
    blurred = color.linear_to_srgb(blurred)
    blurred = np.clip(blurred + np.random.default_rng(3).normal(0, 0.005, blurred.shape), 0, 1).astype(np.float32)
    psf, info = estimate_kernel(blurred, 15)
    _check_kernel(psf)
    assert info["excluded_fraction"] > 0.02
    assert similarity(k, psf) >= 0.7


def test_colour_roi_and_progress(photo):
    k = hook_kernel(15)
    blurred = blur_linear(photo, k, noise=0.005, seed=4)
    calls = []
    psf, info = estimate_kernel(blurred, 15, roi=(20, 10, 200, 180), progress=lambda f, m: calls.append((f, m)))
    _check_kernel(psf)
    assert info["roi"] == [20, 10, 200, 180]
    assert calls and all(0 <= f <= 1 for f, _ in calls) and calls[-1][0] == 1.0
    assert all(b[0] >= a[0] for a, b in zip(calls, calls[1:]))
    # The two windows of the pair report as one: no alternating "level 2/4", "level 3/3".
    assert {m for _, m in calls[:-1]} == {"Estimating the shake kernel (two window sizes)"}
    assert calls[-1][1] == "Kernel estimated"


def test_auto_size(gray_photo):
    k = hook_kernel(15)
    blurred = blur_linear(gray_photo, k, noise=0.005, seed=5)
    psf, info = estimate_kernel(blurred)
    _check_kernel(psf)
    assert info["auto_size"]
    assert 9 <= psf.shape[0] <= 41
    assert similarity(k, psf) >= 0.6
    # the generous window shrank to the support found, below the moderate one: no second estimate
    assert info["window"] <= 23 and "candidates" not in info


def test_auto_size_runaway_window_is_caught(gray_photo, monkeypatch):
    """The generous window alone can end filled with streaks; the moderate window's kernel then wins."""
    from deblur_core.classic import estimator
    k = hook_kernel(15)
    blurred = blur_linear(gray_photo, k, noise=0.005, seed=5)
    real = estimator._estimate

    def runaway_first(image, kernel_size, **kw):
        psf, info = real(image, kernel_size, **kw)
        if kernel_size is None:                   # the generous window, never shrunk: a streak across it
            n = 41
            psf = np.zeros((n, n), np.float32)
            psf[n // 2, :] = 1.0 / n
            info = dict(info, size=n, window=n)
        return psf, info

    monkeypatch.setattr(estimator, "_estimate", runaway_first)
    psf, info = estimate_kernel(blurred)
    cands = info["candidates"]
    assert [c["window"] for c in cands] == [41, 23]
    assert cands[1]["sparsity"] < cands[0]["sparsity"]
    assert info["window"] == 23 and info["auto_size"] and psf.shape[0] <= 23
    assert similarity(k, psf) >= 0.6
    # The two estimates ran in two threads: the winner is the very kernel a lone estimate gives.
    alone, _ = real(blurred, 23, roi=tuple(info["roi"]), progress=None, max_region=640, iterations=5,
                    lam=0.06, gamma_rel=2e-3, linear=True, settings=DEFAULT_SETTINGS)
    assert np.array_equal(psf, alone)


def test_size_given_too_small_is_caught(gray_photo):
    """A size given competes with a larger window: a user's guess too small for the trajectory (the
    15 px hook in a 9 px window) still gets the whole kernel."""
    k = hook_kernel(15)
    blurred = blur_linear(gray_photo, k, noise=0.005, seed=6)
    psf, info = estimate_kernel(blurred, 9)
    _check_kernel(psf)
    assert [c["window"] for c in info["candidates"]] == [9, 17]
    assert info["window"] == 17 and info["requested_size"] == 9 and not info["auto_size"]
    alone, info_alone = estimate_kernel(blurred, 9, settings=DEFAULT_SETTINGS.but(grow=None))  # that window only
    assert info_alone["window"] == 9 and "candidates" not in info_alone
    assert similarity(k, psf) >= 0.9
    assert psf.shape[0] > 9 and alone.ndim == 2     # the pair's kernel outgrew the 9 px window


def test_auto_size_cancel_stops_both_estimates(gray_photo):
    """Raising from progress cancels the pair of estimates (they run in two threads) promptly."""
    import time
    calls = []

    def stop_soon(f, m):
        calls.append(f)
        if len(calls) == 3:
            raise KeyboardInterrupt

    blurred = blur_linear(gray_photo, hook_kernel(15), noise=0.005, seed=5)
    t = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        estimate_kernel(blurred, progress=stop_soon)
    assert len(calls) == 3                              # nothing reported after the cancel
    assert time.perf_counter() - t < 5


def test_parallel_ffts_give_the_same_kernel(gray_photo):
    """Large regions split their FFTs over 2 workers: the kernels must be bit for bit the same, and an
    estimate of the auto-size pair keeps to one worker while the other one runs."""
    from deblur_core.classic.fft import fft_policy, fft_workers, set_fft_sharing
    blurred = blur_linear(gray_photo, hook_kernel(15), noise=0.005, seed=5)
    every_fft = DEFAULT_SETTINGS.but(parallel_fft_min=0)          # the test photo is small
    one, _ = estimate_kernel(blurred, 15, settings=every_fft.but(fft_workers=1))
    two, _ = estimate_kernel(blurred, 15, settings=every_fft.but(fft_workers=2))
    assert np.array_equal(one, two)
    x = np.zeros((8, 8), np.float32)
    assert fft_workers(x) == 1                                   # small: one thread by default
    other_done = [False]
    with fft_policy(every_fft):
        assert fft_workers(x) == 2
        set_fft_sharing(lambda: other_done[0])
        try:
            assert fft_workers(x) == 1
            other_done[0] = True
            assert fft_workers(x) == 2
        finally:
            set_fft_sharing(None)
    assert fft_workers(x) == 1


def test_dense_normal_matrix_matches_the_fft_operator():
    """Small kernel windows use the normal matrix itself; it must be the FFT path's operator."""
    import scipy.fft as sfft
    from deblur_core.classic.steps import correlation_window, dense_normal_matrix
    rng = np.random.default_rng(0)
    for size in (3, 9, 25):
        r = size // 2
        x = rng.normal(size=(64, 64))
        R = correlation_window(np.real(np.fft.ifft2(np.abs(np.fft.fft2(x)) ** 2)), 2 * r)
        k = rng.normal(size=(size, size))
        n = sfft.next_fast_len(6 * r + 1, real=True)
        ref = sfft.irfft2(sfft.rfft2(k, s=(n, n)) * sfft.rfft2(R, s=(n, n)), s=(n, n))[2 * r:4 * r + 1, 2 * r:4 * r + 1]
        lap = 4 * k
        lap[1:] -= k[:-1]
        lap[:-1] -= k[1:]
        lap[:, 1:] -= k[:, :-1]
        lap[:, :-1] -= k[:, 1:]
        ref = ref + 0.3 * k + 0.7 * lap
        out = (dense_normal_matrix(R, size, 0.3, 0.7) @ k.ravel()).reshape(size, size)
        assert np.allclose(out, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


def test_cancel_from_progress(gray_photo):
    def stop(f, m):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        estimate_kernel(gray_photo, 9, progress=stop)


@pytest.mark.parametrize("size", [1, 2, 102, 151])
def test_kernel_size_limits(gray_photo, size):
    with pytest.raises(ValueError):
        estimate_kernel(gray_photo, size)


def test_kernel_larger_than_region(gray_photo):
    with pytest.raises(ValueError, match="too large"):
        estimate_kernel(gray_photo[:40, :40], 31)
    with pytest.raises(ValueError, match="too large"):
        estimate_kernel(gray_photo, 51, roi=(0, 0, 60, 60))
    with pytest.raises(ValueError):
        estimate_kernel(gray_photo, 9, roi=(300, 300, 50, 50))


def test_mass_extent_and_final_trim():
    from deblur_core.classic.cleanup import final_trim, mass_extent
    k = np.zeros((31, 31))
    k[15, 10:21] = 1.0                                   # an 11 px line, centred
    assert mass_extent(k, 0.999) == 11
    assert mass_extent(k, 0.5) < 11
    k2 = k.copy()
    k2[0, 0] = 1e-3                                      # a stray speck in the corner
    out = final_trim(k2 / k2.sum())
    assert out.shape[0] <= 15                            # the speck does not keep the 31 px window
    assert abs(float(out.sum()) - 1) < 1e-6


def test_clean_kernel_keeps_unevenly_exposed_trajectory():
    """A trajectory ending in a bright dot has its centre of mass far from the middle of its
    extent; re-centring between iterations must not cut its other end off a tight window."""
    from deblur_core.classic.cleanup import clean_kernel
    k = np.zeros((21, 21))
    k[10, 0:21] = 1.0                                    # a line filling the window...
    k[10, 0] = 40.0                                      # ...with a bright dot at one end
    k /= k.sum()
    out = clean_kernel(k, 0.0, 0.0)
    assert out.shape == k.shape
    assert np.allclose(out, k)                           # nothing shifted out, nothing lost


def test_multi_start_candidates():
    from deblur_core.classic.cleanup import initial_kernel
    from deblur_core.classic.pyramid import motion_starts
    luma = np.random.default_rng(0).random((96, 96)).astype(np.float32)
    starts = motion_starts(luma, 3)
    assert starts[0] is None and len(starts) == 3
    for s in starts:
        k = initial_kernel(9, s)
        assert k.shape == (9, 9) and abs(k.sum() - 1) < 1e-9 and np.all(k >= 0)


def test_finest_level_keeps_the_true_kernel(gray_photo):
    """Started from the true kernel, the finest level's alternations stay near it: that fixed point is
    the estimator's ceiling (a step that drifts from the truth caps every estimate)."""
    k, psf, _ = _finest_level_from_true_kernel(gray_photo, noise=0.005, seed=3)
    assert similarity(k, psf) >= 0.9


def _finest_level_from_true_kernel(gray_photo, noise, seed):
    """The finest level alone (refine_kernel), started from the true (21 px hook) kernel in its own
    window: (true kernel, psf, info)."""
    from deblur_core.classic import refine_kernel
    k = hook_kernel(21)
    blurred = blur_linear(gray_photo, k, noise=noise, seed=seed)
    psf, info = refine_kernel(blurred, k, 21)
    _check_kernel(psf)
    return k, psf, info


def test_refine_kernel_keeps_the_true_kernel(gray_photo):
    """refine_kernel (the finest level from a given kernel, used per region of a grid) stays near a
    right kernel, and a window larger than the kernel is fine."""
    from deblur_core.classic import refine_kernel
    k = hook_kernel(15)
    blurred = blur_linear(gray_photo, k, noise=0.005, seed=3)
    psf, info = refine_kernel(blurred, k, 19)
    _check_kernel(psf)
    assert similarity(k, psf) >= 0.9
    assert info["scales"] >= 1 and info["window"] == 19
    with pytest.raises(ValueError):
        refine_kernel(blurred, k, None)


def test_finest_level_runs_on_the_denoised_region(case):
    """The finest level works on the region after the denoiser network, told the noise it measured."""
    info = case[4]
    assert info["finest_level_denoised"] is True
    assert 0.0025 <= info["noise_sigma"] <= 0.0125           # the test photo's noise: 0.005
    assert "warnings" not in info


def test_finest_level_keeps_the_true_kernel_on_noisier_photos(gray_photo):
    """Twice the bench's noise: started from the true kernel, the denoised finest level with the
    consistent kernel step stays near it (on the noisy region its alternations drift away)."""
    k, psf, info = _finest_level_from_true_kernel(gray_photo, noise=0.01, seed=4)
    assert info["finest_level_denoised"] is True
    assert similarity(k, psf) >= 0.9


def test_denoiser_unavailable_falls_back_and_says_so(gray_photo, monkeypatch):
    """A missing or corrupt denoiser model loses nothing: the finest level runs on the photo as it is,
    and the warning reaches the report."""
    from deblur_core import deblur, network

    def broken(*args, **kwargs):
        raise network.ModelError("models/denoiser-v2.onnx is missing")
    monkeypatch.setattr(network, "denoise", broken)
    k = hook_kernel(15)
    blurred = blur_linear(gray_photo, k, noise=0.005, seed=1)
    psf, info = estimate_kernel(blurred, 15)
    _check_kernel(psf)
    assert similarity(k, psf) >= 0.7
    assert info["finest_level_denoised"] is False
    assert any("denoiser unavailable" in w and "denoiser-v2.onnx is missing" in w for w in info["warnings"])
    res = deblur(blurred, "shake", 50, use_network=False, kernel_size=15)
    assert any("denoiser unavailable" in w for w in res.report["warnings"])

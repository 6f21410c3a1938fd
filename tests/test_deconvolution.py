import numpy as np
import pytest

from helpers import blur_linear, psnr
from deblur_core import deconvolution as dc
from deblur_core import kernels
from deblur_core.fftutils import convolve, pad_for_deconvolution
from deblur_core.tiling import tile_reach


def test_pad_for_deconvolution_keeps_image_and_is_smooth_across_wrap(gray_photo):
    padded, crop = pad_for_deconvolution(gray_photo, (21, 21))
    assert np.array_equal(padded[crop], gray_photo)
    # The wrap-around seam (last row to first row) is no rougher than the image itself.
    seam = np.abs(padded[0] - padded[-1]).mean()
    inside = np.abs(np.diff(gray_photo, axis=0)).mean()
    assert seam <= 2 * inside


@pytest.mark.parametrize("psf", [kernels.motion_kernel(15, 30), kernels.defocus_kernel(4)])
def test_solvers_beat_blurry_input_gray(gray_photo, psf):
    blurred = convolve(gray_photo, psf) + np.random.default_rng(0).normal(0, 0.01, gray_photo.shape).astype(np.float32)
    base = psnr(blurred, gray_photo)
    assert psnr(dc.wiener(blurred, psf, 0.03), gray_photo) > base + 1.5
    assert psnr(dc.hyper_laplacian(blurred, psf, 7e-4), gray_photo) > base + 3.0


def test_deconvolve_colour_linear_light_quality_regression(photo):
    psf = kernels.motion_kernel(15, 20)
    blurred = blur_linear(photo, psf, noise=0.01)
    out = dc.deconvolve(blurred, psf)
    assert out.shape == photo.shape and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 1
    gain = psnr(out, photo) - psnr(blurred, photo)
    assert gain > 3.0, gain          # measured 4.5 dB on this crop


def test_deconvolve_identity_kernel_returns_input(photo):
    out = dc.deconvolve(photo, np.ones((1, 1), np.float32))
    assert np.array_equal(out, photo)


def test_no_border_ringing(gray_photo):
    psf = kernels.motion_kernel(21, 0)
    blurred = convolve(gray_photo, psf)
    out = dc.hyper_laplacian(blurred, psf, 2e-4)
    err_border = np.abs(out - gray_photo)[:, :12].mean()
    err_inner = np.abs(out - gray_photo)[:, 40:-40].mean()
    assert err_border < 3 * err_inner + 0.02


def test_clipped_highlights_no_dark_halo():
    img = np.full((96, 96), 0.5, np.float32)
    img[40:56, 40:56] = 1.0                      # a light source clipped at white
    psf = kernels.motion_kernel(9, 0)
    blurred = np.clip(convolve(img, psf) * 1.6, 0, 1)   # over-exposed: clipped after blurring
    out = dc.deconvolve(blurred, psf)
    ring = out[36:60, 30:66].copy()
    assert ring.min() > blurred[36:60, 30:66].min() - 0.05   # no black halo around the highlight


def test_noise_estimate(gray_photo):
    rng = np.random.default_rng(3)
    smooth = convolve(gray_photo, kernels.gaussian_kernel(2))
    for s in (0.005, 0.02):
        est = dc.estimate_noise(smooth + rng.normal(0, s, smooth.shape).astype(np.float32))
        assert abs(est - s) < 0.3 * s


def test_kernel_larger_than_image_raises():
    with pytest.raises(ValueError, match="larger than the image"):
        dc.wiener(np.zeros((10, 10), np.float32), kernels.motion_kernel(30, 0))


@pytest.mark.parametrize("psf", [kernels.defocus_kernel(4), kernels.shake_kernel(15, 3)])
def test_tiled_deconvolve_matches_untiled(psf):
    """Big photos run in overlapping tiles (memory); away from the seams the result is the untiled one
    and the quality is the same. (The hyper-Laplacian prior is non-convex: a few pixels in a thousand,
    where the solution is ill-determined, settle differently, so the test bounds the 99th percentile
    and the quality, not the maximum.)"""
    from skimage import data
    from deblur_core.tiling import cuts
    sharp = np.ascontiguousarray(np.tile(data.astronaut().astype(np.float32) / 255, (2, 1, 1))[:620, :480])
    blurred = blur_linear(sharp, psf, noise=0.01)
    whole = dc.deconvolve(blurred, psf, tile=0)
    tiled = dc.deconvolve(blurred, psf, tile=240)
    assert tiled.shape == whole.shape and tiled.dtype == np.float32
    d = np.abs(tiled - whole).max(axis=2)
    far = np.zeros(d.shape, bool)
    far[24:-24, 24:-24] = True          # the photo's own border depends on the FFT size: as uncertain
    for c in cuts(620, 240)[1:-1]:
        far[c - 40:c + 40] = False
    for c in cuts(480, 240)[1:-1]:
        far[:, c - 40:c + 40] = False
    assert np.median(d[far]) < 0.1 / 255
    assert np.percentile(d[far], 99) < 2.5 / 255       # measured 0.57/255 (defocus), 1.86/255 (shake)
    assert d[far].mean() < 0.2 / 255
    assert abs(psnr(tiled, sharp) - psnr(whole, sharp)) < 0.05


def test_tile_plan_is_one_policy_for_both_solvers():
    """None: tiles only above TILED_ABOVE pixels (12 MP in one piece, 24 MP in the grid of tiles of
    at most TILE_PIXELS that computes the least context: strips); 0: never; a number: tiles of that
    side whenever the photo is bigger."""
    assert dc.tile_plan((3000, 4000, 3), None) == 0
    assert dc.tile_plan((4000, 6000, 3), None) == (4000, 2000)
    assert dc.tile_plan((6000, 4000, 3), None) == (2000, 4000)
    def largest_tile(shape, plan, context):
        sides = []
        for total, part in zip(shape[:2], plan):
            n = -(-total // part)
            sides.append(part + (0 if n == 1 else context if n == 2 else 2 * context))
        return sides[0] * sides[1]

    for shape in ((4000, 6000), (5000, 8000), (9000, 9000), (2000, 15000)):
        assert largest_tile(shape, dc.tile_plan(shape, None), dc._PLAN_REACH) <= dc.TILE_PIXELS, shape
        # with a big kernel's context the tiles shrink so that they still fit the budget
        ctx = tile_reach(dc.tile_context((61, 61)))
        assert largest_tile(shape, dc.tile_plan(shape, None, (61, 61)), ctx) <= dc.TILE_PIXELS, shape
    assert dc.tile_plan((4000, 6000, 3), 0) == 0
    assert dc.tile_plan((300, 300), 240) == 240
    assert dc.tile_plan((200, 200), 240) == 0


def test_automatic_plan_runs_in_strips():
    """The automatic plan (grid_plan's (rows, columns) parts) goes through the same stitching as
    square tiles: here a small budget forces a 2 x 2 grid on a 331 x 497 photo."""
    from skimage import data
    from deblur_core.tiling import grid_plan, tile_reach
    img = data.astronaut()[:331, :497].astype(np.float32) / 255
    psf = kernels.defocus_kernel(3)
    whole = dc.deconvolve(img, psf, tile=0)
    plan = grid_plan(img.shape[:2], 90_000, tile_reach(dc.tile_context(psf.shape)))
    assert isinstance(plan, tuple) and plan[0] < 331 and plan[1] < 497
    assert dc.tile_plan(img.shape, plan, psf.shape) == plan
    tiled = dc.deconvolve(img, psf, tile=plan)
    d = np.abs(tiled - whole)[20:-20, 20:-20]
    assert np.median(d) < 0.05 / 255 and np.percentile(d, 99) < 3 / 255   # measured 0.0004 / 2.3


def test_signal_dependent_noise_is_the_rms_over_brightness():
    """Shot noise grows with the light: the plain estimate reads the darker majority, the
    signal-dependent one the root mean square a deconvolution must not amplify anywhere."""
    from deblur_core.deconvolution import estimate_noise
    rng = np.random.default_rng(0)
    x = np.full((256, 256), 0.02, np.float32)
    x[:, 192:] = 0.8                                  # a quarter of the photo is bright
    a, b = 0.003, 0.002                              # Poisson-Gaussian, linear units
    noisy = x + rng.normal(0, 1, x.shape).astype(np.float32) * np.sqrt(a * x + b * b)
    rms = float(np.sqrt(np.mean(a * x + b * b)))
    plain = estimate_noise(noisy)
    sd = estimate_noise(noisy, signal_dependent=True)
    assert plain < 0.8 * rms
    assert abs(sd - rms) < 0.15 * rms
    # on white noise both read the same
    flat = (0.5 + rng.normal(0, 0.01, (256, 256))).astype(np.float32)
    assert estimate_noise(flat, signal_dependent=True) == pytest.approx(estimate_noise(flat), rel=0.1)


def test_pnp_clipped_choice_is_checked():
    from deblur_core.pnp import pnp_deconvolve
    with pytest.raises(ValueError, match="clipped"):
        pnp_deconvolve(np.full((32, 32, 3), 0.5, np.float32), kernels.motion_kernel(5, 0), clipped="ignore")

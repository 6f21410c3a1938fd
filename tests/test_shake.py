"""The L0 shake estimator (deblur_core.shake: intensity and dark channel priors), printed text on clipped paper (issue 24) and the
do-no-harm check (deblur_core.harm, issue 19)."""
import numpy as np
import pytest

from helpers import blur_linear
from deblur_core import deblur
from deblur_core.shake import PRIORS, ShakeSettings, TooFewEdges, estimate_kernel
from deblur_core.shake.kernel_step import kernel_from_gradients, valid_gradients
from deblur_core.shake.latent import dark_channel
from deblur_core.shake.regions import check_gradients, usable_mask
from deblur_core.kernels import motion_kernel
from deblur_core.harm import MAX_RESIDUAL, reblur_residual
from test_blind import hook_kernel, similarity


def _page(white_share, seed=0, side=400, size=15):
    """A printed page photographed with camera shake: black text on overexposed white paper (radiance
    1.4, so the paper clips at 1), ``white_share`` of it plain paper; blurred in linear light."""
    import cv2
    from deblur_core.color import linear_to_srgb
    from deblur_core.fftutils import convolve
    rng = np.random.default_rng(seed)
    img = np.full((side, side), 1.4, np.float32)
    lines = max(1, int(side * (1 - white_share) / 24))
    for r in range(lines):
        txt = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz  "), 30))
        cv2.putText(img, txt, (8, 30 + r * 26), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 0.03, 2, cv2.LINE_AA)
    k = hook_kernel(size)
    out = linear_to_srgb(np.clip(convolve(img, k), 0, 1)) + rng.normal(0, 0.003, (side, side)).astype(np.float32)
    return np.repeat(np.clip(out, 0, 1)[..., None], 3, axis=2).astype(np.float32), k


def test_kernel_step_recovers_the_kernel_from_the_sharp_image(gray_photo):
    k = hook_kernel(15)
    from deblur_core.fftutils import convolve
    b = convolve(gray_photo, k)
    est = kernel_from_gradients(list(valid_gradients(gray_photo)), list(valid_gradients(b)), 15, 2.0)
    assert similarity(k, est) > 0.95
    # a rotated kernel is told apart: the step is not symmetric by accident
    assert similarity(np.rot90(k), est) < similarity(k, est) - 0.1


def test_dark_channel_is_the_patch_minimum():
    x = np.random.default_rng(0).random((40, 50)).astype(np.float32)
    d = dark_channel(x, 5)
    assert d[20, 25] == pytest.approx(x[18:23, 23:28].min())


@pytest.mark.parametrize("prior, name", [("intensity", "L0 intensity"), ("dark", "dark channel")])
def test_estimate_on_a_shaken_photo(gray_photo, prior, name):
    k = hook_kernel(15)
    blurred = blur_linear(gray_photo, k, noise=0.003, seed=2)
    psf, info = estimate_kernel(blurred, 15, settings=PRIORS[prior])
    assert psf.dtype == np.float32 and psf.shape[0] % 2 == 1 and abs(float(psf.sum()) - 1) < 1e-4
    assert similarity(k, psf) > 0.6
    assert info["method"].startswith(name) and info["scales"] >= 2 and info["window"] == 15


def test_size_found_grows_a_window_that_cuts_the_kernel_off(gray_photo):
    """Size found: a 256 px photo gets a 25 px window; a 27 px shake runs to its edge, so the estimate is
    made again in a window half as large again, where the whole trail fits."""
    k = motion_kernel(27, 30)
    blurred = blur_linear(gray_photo, k, noise=0.003, seed=2)
    psf, info = estimate_kernel(blurred)
    assert info["window_grown"] and info["window"] == 39 and max(psf.shape) >= 25
    assert similarity(k, psf) > 0.7
    small = hook_kernel(15)                 # contained in the first window: estimated once
    _, info = estimate_kernel(blur_linear(gray_photo, small, noise=0.003, seed=2))
    assert not info["window_grown"] and info["window"] == 25


def test_settings_are_passed_in_not_module_state(gray_photo):
    blurred = blur_linear(gray_photo, motion_kernel(9, 30), noise=0.003, seed=3)
    _, info = estimate_kernel(blurred, 9, settings=ShakeSettings(iterations=1, denoise=False))
    assert info["iterations"] == info["scales"] and info["denoised"] is False


def test_useful_gradient_rule_both_sides():
    rng = np.random.default_rng(4)
    sky = np.clip(0.7 + np.linspace(0, 0.1, 300)[None, :] + rng.normal(0, 0.01, (300, 300)), 0, 1).astype(np.float32)
    with pytest.raises(TooFewEdges, match="too few edges"):
        check_gradients(sky, np.ones(sky.shape, bool), 15, 0.01)
    page, _ = _page(0.85)
    gray = page[..., 0]
    usable, lights = usable_mask(page.max(axis=2), 15, 0.98)
    clipped = page.max(axis=2) >= 0.98
    assert (usable | clipped).mean() > 0.97      # the clipped paper is a flat area: the text stays usable
    assert check_gradients(gray, usable, 15, 0.003) > 150


def test_small_clipped_lights_are_left_out_with_their_trails():
    top = np.zeros((200, 200), np.float32)
    top[100, 93:108] = 1.0                      # a lamp's clipped trail
    top[150, 25] = 1.0                          # a speck beside the large area: part of it
    top[:, :20] = 1.0                           # a large clipped area (sky, paper)
    usable, lights = usable_mask(top, 15, 0.98)
    assert lights == 1
    assert not usable[100, 88] and not usable[108, 100]       # the lamp's kernel-sized margin
    assert not usable[150, 25] and usable[150, 28]            # the speck: its own pixel only
    assert not usable[50, 5] and usable[50, 25]               # the flat area: only its own pixels


@pytest.mark.parametrize("white", [0.6, 0.9])
@pytest.mark.parametrize("method", ["intensity", "dark", "classic"])
def test_printed_page_on_clipped_paper_is_restored_not_refused(white, method):
    page, k = _page(white)
    assert (page[..., 0] >= 0.99).mean() > 0.5
    res = deblur(page, mode="shake", shake_method=method, shake_regions=1)
    assert res.image.shape == page.shape and np.isfinite(res.image).all()
    assert not np.array_equal(res.image, page)


def test_a_plain_sky_is_refused_in_plain_words():
    rng = np.random.default_rng(5)
    sky = np.clip(0.6 + np.linspace(0, 0.15, 320)[:, None] + rng.normal(0, 0.004, (320, 320)), 0, 1)
    sky = np.repeat(sky[..., None], 3, axis=2).astype(np.float32)
    for method in ("intensity", "dark", "classic"):
        with pytest.raises(ValueError, match="too few edges"):
            deblur(sky, mode="shake", shake_method=method, shake_regions=1)


def test_reblur_residual_tells_a_right_kernel_from_a_wrong_one(photo):
    from deblur_core.deconvolution import deconvolve
    k = hook_kernel(15)
    blurred = blur_linear(photo, k, noise=0.005, seed=6)
    right = reblur_residual(blurred, deconvolve(blurred, k), k)
    big = np.kron(k, np.ones((2, 2)))[:29, :29]
    big = big / big.sum()
    wrong = reblur_residual(blurred, deconvolve(blurred, big), big)
    assert right < MAX_RESIDUAL < wrong


def test_an_untrusted_kernel_falls_back_and_says_so(photo):
    """A kernel that does not explain the photo is never applied: the fallback is said in the report."""
    blurred = blur_linear(photo, hook_kernel(15), noise=0.005, seed=7)
    res = deblur(blurred, mode="shake", shake_regions=1, trust_limit=0.0)     # nothing is trusted
    assert res.report["fallback"] == "sharpen" and res.kernel is None
    assert res.report["harm"]["trusted"] is False
    assert any("gentle sharpening was used instead" in w for w in res.report["warnings"])
    assert "not trusted" in res.report["title"]


def test_trust_limit_is_checked():
    img = np.zeros((64, 64, 3), np.float32)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="trust_limit"):
            deblur(img, mode="shake", trust_limit=bad)


def test_blind_kernels_are_restored_with_more_regularisation(photo):
    """A blind estimate is never exact: at the default strength its restoration assumes twice the noise
    (softer, no crunch); above 50 % the slider relaxes it as for any kernel; a given kernel is restored as given."""
    import cv2
    from deblur_core.pipeline import BLIND_KERNEL_REGULARIZATION
    blurred = blur_linear(photo, hook_kernel(15), noise=0.005, seed=8)
    blind = deblur(blurred, mode="shake", shake_regions=1, use_network=False)
    assert blind.report.get("fallback") is None and blind.kernel is not None
    assert blind.report["regularization"] == pytest.approx(BLIND_KERNEL_REGULARIZATION) and BLIND_KERNEL_REGULARIZATION > 1
    pushed = deblur(blurred, mode="shake", shake_regions=1, strength=75, use_network=False)
    from deblur_core.pipeline import strength_settings
    assert pushed.report["regularization"] == pytest.approx(strength_settings(75).regularization * BLIND_KERNEL_REGULARIZATION)
    assert pushed.report["regularization"] < blind.report["regularization"]
    given = deblur(blurred, kernel=blind.kernel, use_network=False)
    assert given.report["regularization"] == pytest.approx(1.0)

    def detail(img):
        return float(np.abs(cv2.Laplacian(img.mean(axis=2), cv2.CV_32F)).mean())
    assert detail(blurred) < detail(blind.image) < detail(given.image)


def test_blind_kernels_have_a_noise_floor_that_follows_the_slider(photo):
    """On a clean photo the measured noise would let an estimated kernel's errors ring and crunch: the
    network restoration of a blind kernel assumes at least BLIND_NOISE_FLOOR (at 50 %), a given kernel none."""
    from deblur_core.pipeline import BLIND_NOISE_FLOOR, strength_settings
    blurred = blur_linear(photo, hook_kernel(15), noise=0.001, seed=8)
    blind = deblur(blurred, mode="shake", shake_regions=1)
    assert blind.report.get("fallback") is None and blind.kernel is not None
    assert blind.report["noise_floor"] == pytest.approx(BLIND_NOISE_FLOOR)
    pushed = deblur(blurred, mode="shake", shake_regions=1, strength=75)
    assert pushed.report["noise_floor"] == pytest.approx(strength_settings(75).regularization * BLIND_NOISE_FLOOR, abs=1e-4)
    given = deblur(blurred, kernel=blind.kernel)
    assert "noise_floor" not in given.report


def test_big_clean_photo_is_checked_on_a_window_and_restored_once(monkeypatch):
    """Above CHECK_PIXELS the do-no-harm check reads a window around the estimate's region (at the measured
    noise) and the layer is restored once, with the floor (on 12 MP a second restoration costs ~25 s)."""
    import cv2
    from skimage import data
    from deblur_core import pipeline
    side = int(1.1 * pipeline.CHECK_PIXELS ** 0.5)
    big = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    blurred = blur_linear(big, hook_kernel(21), noise=0.001, seed=3)
    calls = []
    real = pipeline._restore
    monkeypatch.setattr(pipeline, "_restore", lambda color, *a, **k: calls.append(color.shape) or real(color, *a, **k))
    res = deblur(blurred, mode="shake", shake_regions=1)
    assert res.report.get("fallback") is None and res.kernel is not None
    x, y, w, h = res.report["harm"]["window"]
    assert w * h <= pipeline.CHECK_PIXELS and 0 <= x and 0 <= y and x + w <= side and y + h <= side
    assert res.report["noise_floor"] == pytest.approx(pipeline.BLIND_NOISE_FLOOR)
    assert calls == [(h, w, 3), blurred.shape]       # the window at the measured noise, then the photo once


def test_a_camera_path_is_plausible_and_a_blob_or_a_window_filling_trail_is_not():
    """The shape test of the do-no-harm check (harm.implausible_kernel): a thin trail passes; a diffuse blob
    never does; a trail that runs to the edge of the window the estimator chose does, but not when the
    user gave that size."""
    from deblur_core.harm import MAX_PATH_WIDTH, implausible_kernel, path_width
    from deblur_core.kernels import gaussian_kernel
    k = hook_kernel(15)
    assert path_width(k) < 4 and implausible_kernel(k, window=31) is None
    blob = gaussian_kernel(12.0)
    assert path_width(blob) > MAX_PATH_WIDTH and "diffuse" in implausible_kernel(blob)
    # at a working scale of 0.3 the same blob spans 3x fewer estimator pixels: a path after all
    assert implausible_kernel(blob, scale=0.3) is None
    line = motion_kernel(29, 0)
    assert "edge of the 31 px window" in implausible_kernel(line, window=31)
    assert implausible_kernel(line, window=None) is None and implausible_kernel(line, window=41) is None


def test_an_implausible_blind_kernel_is_never_restored(photo, monkeypatch):
    """A diffuse blob from the estimator (featureless scenes) passes the re-blur residual with a restoration
    full of ghosts: it is refused before restoring, the other estimator is tried, and the report says why."""
    from deblur_core import shake
    from deblur_core.kernels import gaussian_kernel
    blurred = blur_linear(photo, hook_kernel(15), noise=0.005, seed=7)
    real = shake.estimate_kernel

    def blob_first(image, kernel_size=None, **kw):
        psf, info = real(image, kernel_size, **kw)
        if kw.get("settings", shake.DEFAULT).pixel_prior == "intensity":
            psf = gaussian_kernel(12.0).astype(np.float32)
        return psf, info
    monkeypatch.setattr(shake, "estimate_kernel", blob_first)
    res = deblur(blurred, mode="shake", shake_regions=1)
    assert any("refused" in w and "diffuse blob" in w for w in res.report["warnings"])
    assert res.kernel is not None and max(res.kernel.shape) < 25       # the dark channel's estimate instead
    assert any("did not explain the blur; the dark camera-shake estimate did" in w for w in res.report["warnings"])

"""Light trails as evidence of camera shake at night (issue 20): several lights drawing one shape."""
import os

import cv2
import numpy as np
import pytest

from deblur_core import analyze, color, fftutils, kernels
from deblur_core.streaks import agreed_streak, find_streaks
from test_diagnosis import REAL


def _night_scene(psf, seed=0, lights=12, facade=False):
    """A dark street (linear light): faint texture, a few 3x3 lamps bright enough to clip once spread
    along the kernel, camera noise, sRGB. ``facade``: a lit building (clipping, 7,200 px) at the top,
    the lamps below it."""
    rng = np.random.default_rng(seed)
    h, w = 480, 720
    base = cv2.GaussianBlur(rng.uniform(0.0, 0.03, (h, w)).astype(np.float32), (0, 0), 6)
    scene = np.repeat(base[..., None], 3, axis=2)
    top = 60
    if facade:
        scene[20:80, 300:420] = 4.0
        top = 140
    for _ in range(lights):
        y, x = rng.integers(top, h - 60), rng.integers(60, w - 60)
        scene[y - 1:y + 2, x - 1:x + 2] = 8.0
    blurred = fftutils.convolve(scene, psf)
    blurred = np.clip(blurred + rng.normal(0, 0.004, blurred.shape), 0, 1)
    return color.linear_to_srgb(blurred.astype(np.float32))


@pytest.mark.parametrize("seed", [1, 4])
def test_shaken_night_scene_shows_agreeing_trails_of_the_kernels_size(seed):
    psf = kernels.hand_shake_kernel(31, seed)
    found = agreed_streak(_night_scene(psf, seed))
    assert found is not None and found["votes"] >= 2
    ys, xs = np.nonzero(psf > 0.05 * psf.max())
    extent = max(np.ptp(xs), np.ptp(ys)) + 1
    # the trail is the path widened by the lamp (3 px) and the glow above 30 % of the peak
    assert extent - 2 <= max(found["size"]) <= extent + 8


def test_sharp_night_scene_and_daylight_photo_have_no_trail(photo):
    assert agreed_streak(_night_scene(np.ones((1, 1), np.float32))) is None
    assert agreed_streak(photo) is None              # a bright scene: trails show on a dark surround only


def test_elongated_lights_of_different_shapes_do_not_agree():
    """Windows and neon bars in a sharp night photo are long, but they do not share one shape. (Three alike
    and parallel would: a limit of the cue, docs/experiments/diagnosis.md.)"""
    rng = np.random.default_rng(3)
    img = np.full((480, 720), 0.04, np.float32)
    for i in range(10):
        bar = np.zeros((41, 41), np.float32)
        cv2.ellipse(bar, (20, 20), (int(rng.integers(8, 19)), 2), 18.0 * i, 0, 360, 1.0, -1)
        y, x = 60 + 90 * (i // 5) + int(rng.integers(0, 40)), 40 + 130 * (i % 5)
        img[y:y + 41, x:x + 41] = np.maximum(img[y:y + 41, x:x + 41], bar)
    assert len(find_streaks(img)) >= 5                 # the bars are found as trail candidates...
    assert agreed_streak(img) is None                  # ...but no three agree


def test_analyze_calls_a_shaken_night_scene_shake_with_the_trail():
    psf = kernels.hand_shake_kernel(31, 1)
    rep = analyze(_night_scene(psf, 1))
    assert rep["blur_type"] == "shake", rep
    assert rep["light_trails"]["votes"] >= 2
    assert rep["params"]["extent"] == max(rep["light_trails"]["size"])
    assert rep["params_status"] == "measured"


@pytest.mark.skipif(not os.path.isdir(REAL), reason="shared/data/real_blur not found beside the checkout")
@pytest.mark.parametrize("name", ["street2", "night5", "sydney_opera"])
def test_real_night_photos_with_light_trails_are_not_called_sharp(name):
    from deblur_core.imageio import read_image
    img, _ = read_image(os.path.join(REAL, f"{name}.jpg"))    # issue 20: both were "sharp" at 0.96-0.97
    rep = analyze(img)
    assert rep["blur_type"] == "shake" and "light_trails" in rep


def test_trails_dimmer_than_a_lit_building_are_still_seeds():
    """A lit facade sets the photo's 99.5th percentile above the lamps' trails (Sydney's opera house at
    night): the lamps are found as thin structures standing above their surround."""
    img = _night_scene(kernels.hand_shake_kernel(31, 4), 4, facade=True)
    gray = cv2.GaussianBlur(img.mean(axis=2), (0, 0), 1.0)
    assert np.quantile(gray, 0.995) > gray[140:].max() > 0.8    # the percentile alone would miss every lamp
    found = agreed_streak(img)
    assert found is not None and found["votes"] >= 2

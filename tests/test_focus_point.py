"""focus_point: where the dialog's preview opens (the largest face, else the most detailed area)."""
import time

import cv2
import numpy as np
import pytest
import skimage.data

from deblur_core.focus_point import detail_point, focus_point

ASTRONAUT_FACE = (224, 117)  # the middle of her face in skimage's 512x512 astronaut (eyes to chin)


def _textured_scene(h=600, w=900, patch=(380, 650, 120, 140), seed=0):
    """A smooth gradient with sensor noise and one textured patch (y, x, h, w): a photo without people
    whose only detail is the patch."""
    rng = np.random.default_rng(seed)
    img = np.tile(np.linspace(0.2, 0.8, w, dtype=np.float32), (h, 1))
    img += rng.normal(0, 0.02, (h, w)).astype(np.float32)
    y, x, ph, pw = patch
    cells = (rng.random((ph // 4, pw // 4)) > 0.5).astype(np.float32)
    img[y:y + ph, x:x + pw] = 0.2 + 0.6 * cv2.resize(cells, (pw, ph), interpolation=cv2.INTER_NEAREST)
    return np.clip(img, 0, 1)


@pytest.mark.parametrize("kind", ["float", "u8", "rgba"])
def test_astronaut_opens_on_her_face(kind):
    img = skimage.data.astronaut()
    if kind == "float":
        img = img.astype(np.float32) / 255
    elif kind == "rgba":
        img = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    p = focus_point(img)
    assert p["source"] == "face", p
    assert abs(p["x"] - ASTRONAUT_FACE[0]) < 25 and abs(p["y"] - ASTRONAUT_FACE[1]) < 25, p
    bx, by, bw, bh = p["box"]
    assert bx <= p["x"] <= bx + bw and by <= p["y"] <= by + bh, p
    assert p["faces"] == 1 and p["score"] > 0.9, p


def test_face_in_a_large_canvas_in_image_pixels():
    """The face is found on a big photo (detection runs on a small copy) and answered in full pixels."""
    face = skimage.data.astronaut()
    canvas = np.full((1500, 2000, 3), 90, np.uint8)
    canvas[900:1412, 1400:1912] = face
    p = focus_point(canvas)
    assert p["source"] == "face", p
    assert abs(p["x"] - (1400 + ASTRONAUT_FACE[0])) < 30 and abs(p["y"] - (900 + ASTRONAUT_FACE[1])) < 30, p


def test_photo_without_people_opens_on_the_most_detailed_part():
    img = _textured_scene()
    p = focus_point(img)
    assert p["source"] == "detail", p
    assert 650 <= p["x"] < 790 and 380 <= p["y"] < 500, p
    # the same answer without looking for faces, and for colour and 16-bit copies
    assert detail_point(img) == {k: p[k] for k in ("x", "y", "box", "source")}
    rgb16 = (np.repeat(img[:, :, None], 3, axis=2) * 65535).astype(np.uint16)
    q = focus_point(rgb16, faces=False)
    assert abs(q["x"] - p["x"]) <= 4 and abs(q["y"] - p["y"]) <= 4, (p, q)


def test_detail_follows_the_texture():
    """Move the patch to the top-left: the point moves with it (not a centre bias)."""
    img = _textured_scene(patch=(40, 60, 120, 140), seed=3)
    p = focus_point(img)
    assert p["source"] == "detail" and 60 <= p["x"] < 200 and 40 <= p["y"] < 160, p


def test_flat_image_opens_in_the_middle():
    for img in (np.zeros((50, 60), np.float32), np.full((300, 400, 2), 0.5, np.float32)):
        p = focus_point(img)
        h, w = img.shape[:2]
        assert p["source"] == "detail" and abs(p["x"] - w / 2) <= 1 and abs(p["y"] - h / 2) <= 1, p


def test_bad_input_is_an_error():
    with pytest.raises(ValueError):
        focus_point(np.zeros((4, 4, 3, 2), np.float32))


def test_detail_is_fast_on_12_megapixels():
    img = cv2.resize(skimage.data.coffee(), (4000, 3000), interpolation=cv2.INTER_LINEAR)
    detail_point(img)  # first call: OpenCV's own warm-up
    best = min(_timed(detail_point, img) for _ in range(3))
    assert best < 0.3, f"detail_point took {best:.2f} s on 12 MP"


def _timed(fn, *args):
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0

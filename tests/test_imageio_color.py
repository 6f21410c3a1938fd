import numpy as np
import pytest

from deblur_core import color
from deblur_core.imageio import ImageReadError, read_image, write_image


@pytest.mark.parametrize("ext,dtype,channels", [(".png", np.uint8, 3), (".png", np.uint16, 4), (".tif", np.uint16, 1),
                                                 (".tif", np.uint8, 2), (".jpg", np.uint8, 3)])
def test_roundtrip_keeps_depth_and_alpha(tmp_path, ext, dtype, channels):
    rng = np.random.default_rng(0)
    img = rng.random((17, 23, channels)).astype(np.float32) if channels > 1 else rng.random((17, 23)).astype(np.float32)
    p = str(tmp_path / ("x" + ext))
    write_image(p, img, dtype)
    back, d = read_image(p)
    assert d == dtype
    if ext == ".jpg":
        assert back.shape == img.shape
        return
    if channels == 2:    # gray + alpha is stored as RGBA
        assert back.shape == (17, 23, 4) and np.allclose(back[..., 3], img[..., 1], atol=1 / 255)
        return
    assert back.shape == img.shape
    assert np.abs(back - img).max() <= 1 / (255 if dtype == np.uint8 else 65535)


def test_srgb_linear_roundtrip_and_known_values():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(color.linear_to_srgb(color.srgb_to_linear(x)) - x).max() < 1e-5
    assert abs(float(color.srgb_to_linear(np.float32(0.5))) - 0.21404) < 1e-4


def test_to_float_never_rescales_float():
    f = np.array([0.0, 2.0], np.float32)
    assert np.array_equal(color.to_float(f), f)
    assert color.to_float(np.array([255], np.uint8))[0] == 1.0
    with pytest.raises(TypeError):
        color.to_float(np.array([1], np.int64))


def test_opponent_transform_inverts():
    rgb = np.random.default_rng(1).random((5, 7, 3)).astype(np.float32)
    assert np.abs(color.opponent_to_rgb(color.rgb_to_opponent(rgb)) - rgb).max() < 1e-5


def test_read_errors(tmp_path):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(str(tmp_path / "missing.png"))
    p = tmp_path / "junk.jpg"
    p.write_bytes(b"\xff\xd8garbage")
    with pytest.raises(ImageReadError, match="not a readable image"):
        read_image(str(p))

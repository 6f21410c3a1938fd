import numpy as np
import pytest

from deblur_core import kernels
from deblur_core.fftutils import convolve


@pytest.mark.parametrize("make", [lambda: kernels.motion_kernel(17.3, 33), lambda: kernels.defocus_kernel(4.6),
                                  lambda: kernels.gaussian_kernel(2.2), lambda: kernels.shake_kernel(25, 3)])
def test_kernels_normalised_odd_nonnegative(make):
    k = make()
    assert k.dtype == np.float32 and k.ndim == 2
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    assert k.min() >= 0
    assert abs(float(k.sum()) - 1) < 1e-5


def _centroid(k):
    ys, xs = np.indices(k.shape)
    return (ys * k).sum() - k.shape[0] // 2, (xs * k).sum() - k.shape[1] // 2


def test_motion_kernel_centred_with_direction_and_length():
    k = kernels.motion_kernel(20, 0)
    cy, cx = _centroid(k)
    assert abs(cy) < 1e-3 and abs(cx) < 1e-3
    rows = k.sum(axis=1)
    assert rows.argmax() == k.shape[0] // 2 and rows.max() > 0.99   # horizontal line
    xs = np.arange(k.shape[1]) - k.shape[1] // 2
    spread = np.sqrt((k.sum(axis=0) * xs ** 2).sum())
    assert abs(spread - 20 / np.sqrt(12)) < 0.3                     # std of a uniform segment of length 20
    # 90 degrees points up on screen: a vertical line; 45 degrees goes to the upper right.
    assert kernels.motion_kernel(20, 90).sum(axis=0).max() > 0.99
    k45 = kernels.motion_kernel(20, 45)
    c = k45.shape[0] // 2
    assert k45[c - 5, c + 5] > 0 and k45[c - 5, c - 5] == 0


def test_motion_kernel_subpixel_length_changes_kernel():
    a, b = kernels.motion_kernel(10.0, 0), kernels.motion_kernel(10.5, 0)
    assert not np.allclose(np.pad(a, ((0, 0), (0, b.shape[1] - a.shape[1]))) if a.shape != b.shape else a, b)


def test_defocus_radius_and_antialiased_edge():
    k = kernels.defocus_kernel(5.0)
    assert k.shape == (11, 11)
    vals = np.unique(np.round(k[k > 0] / k.max(), 3))
    assert len(vals) > 2                               # partial coverage on the rim
    ys, xs = np.indices(k.shape) - 5
    assert abs(float((k * (ys ** 2 + xs ** 2)).sum()) - 5.0 ** 2 / 2) < 0.5   # E[r^2] of a disk = R^2/2


def test_center_moves_mass_to_middle():
    k = np.zeros((9, 9), np.float32)
    k[1, 1] = k[1, 2] = 1
    c = kernels.center(k)
    cy, cx = _centroid(c)
    assert abs(cy) <= 0.5 and abs(cx) <= 0.5


def test_convolution_orientation_matches_scipy():
    from scipy.signal import fftconvolve
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    k = kernels.shake_kernel(15, 1)
    ours = convolve(img, k, boundary="wrap")
    ref = fftconvolve(np.pad(img, 15, mode="wrap"), k, mode="same")[15:-15, 15:-15]
    assert np.abs(ours - ref).max() < 1e-4
    flipped = fftconvolve(np.pad(img, 15, mode="wrap"), k[::-1, ::-1], mode="same")[15:-15, 15:-15]
    assert np.abs(ours - flipped).max() > 1e-2        # the asymmetric kernel is not mistaken for its flip


def test_convolution_preserves_energy():
    img = np.random.default_rng(1).random((50, 70)).astype(np.float32)
    out = convolve(img, kernels.motion_kernel(9, 20), boundary="wrap")
    assert abs(out.mean() - img.mean()) < 1e-5


def test_kernel_png_roundtrip(tmp_path):
    k = kernels.shake_kernel(21, 5)
    p = str(tmp_path / "k.png")
    kernels.save_kernel(p, k)
    back = kernels.load_kernel(p)
    assert back.shape == k.shape
    assert np.abs(back - k).max() < 1e-4


@pytest.mark.parametrize("bad", [lambda: kernels.motion_kernel(float("nan"), 0), lambda: kernels.defocus_kernel(-1),
                                 lambda: kernels.normalize(np.zeros((3, 3)))])
def test_bad_kernel_arguments(bad):
    with pytest.raises(ValueError):
        bad()


def test_hand_shake_kernels_are_single_strokes_like_measured_ones():
    """Random hand-shake kernels: normalised, reproducible from a seed, spanning the size asked, and as
    sparse as kernels measured on real photos (their share of the bounding square, median 0.15 on the
    published estimates; Boracchi & Foi's whole trajectories fill about half of it)."""
    rng = np.random.default_rng(0)
    fills, loop_fills = [], []
    for _ in range(20):
        size = int(rng.integers(13, 28)) | 1
        k = kernels.hand_shake_kernel(size, rng)
        assert abs(float(k.sum()) - 1) < 1e-5 and k.min() >= 0
        ys, xs = np.nonzero(k > 0.05 * k.max())
        side = max(np.ptp(ys), np.ptp(xs)) + 1
        assert size - 6 <= side <= size
        fills.append((k > 0.05 * k.max()).sum() / side ** 2)
        loops = kernels.shake_kernel(size, rng)
        ys, xs = np.nonzero(loops > 0.05 * loops.max())
        loop_fills.append((loops > 0.05 * loops.max()).sum() / (max(np.ptp(ys), np.ptp(xs)) + 1) ** 2)
    assert 0.08 < np.median(fills) < 0.25 < np.median(loop_fills)
    np.testing.assert_array_equal(kernels.hand_shake_kernel(21, 7), kernels.hand_shake_kernel(21, 7))

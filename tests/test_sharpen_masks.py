import cv2
import numpy as np
import pytest

from deblur_core import masks, sharpen
from deblur_core.fftutils import convolve
from deblur_core.kernels import gaussian_kernel


def _edge():
    img = np.full((64, 64), 0.2, np.float32)
    img[:, 32:] = 0.8
    return convolve(img, gaussian_kernel(2.0))


def test_unsharp_mask_steepens_without_halo():
    soft = _edge()
    out = sharpen.unsharp_mask(soft, radius=2.0, amount=2.0)
    assert np.abs(np.diff(out[32])).max() > 1.3 * np.abs(np.diff(soft[32])).max()
    assert out.min() >= soft.min() - 0.005 and out.max() <= soft.max() + 0.005   # no overshoot
    classic = sharpen.unsharp_mask(soft, radius=2.0, amount=2.0, halo_free=False)
    assert classic.max() > soft.max() + 0.05                                     # the classic one has halos


def test_unsharp_threshold_protects_small_detail():
    rng = np.random.default_rng(0)
    flat = np.clip(0.5 + rng.normal(0, 0.005, (64, 64)), 0, 1).astype(np.float32)
    out = sharpen.unsharp_mask(flat, 1.0, 2.0, threshold=0.03)
    assert np.abs(out - flat).max() < 1e-6


def test_unsharp_colour_keeps_hue_and_mask():
    soft = _edge()
    rgb = np.stack([soft, soft * 0.5, soft * 0.25], axis=2)
    m = np.zeros((64, 64), np.float32)
    m[:, :16] = 1
    out = sharpen.unsharp_mask(rgb, 2.0, 1.5, mask=m)
    assert out.shape == rgb.shape
    assert np.allclose(out[:, 20:], rgb[:, 20:])     # masked out: untouched


def test_smart_sharpen_improves_soft_photo(photo):
    from helpers import blur_linear, psnr
    soft = blur_linear(photo, gaussian_kernel(1.2), noise=0.003)
    out = sharpen.smart_sharpen(soft, sigma=1.2)
    assert psnr(out, photo) > psnr(soft, photo) + 1.0


def test_masks_ranges_and_kinds():
    bm = np.zeros((40, 60), np.float32)
    bm[:, 30:] = 3.0
    gray = np.random.default_rng(0).random((40, 60)).astype(np.float32)
    for kind in ("auto", "full", "none", "subject"):
        m = masks.make_mask(kind, (40, 60, 3), blur_map=bm, gray=gray, noise_sigma=0.01)
        assert m.shape == (40, 60) and m.dtype == np.float32
        assert 0 <= m.min() and m.max() <= 1
    assert masks.make_mask("full", (4, 4)).min() == 1 and masks.make_mask("none", (4, 4)).max() == 0
    s = masks.subject_mask(bm)
    assert s[:, :20].mean() > 0.9 and s[:, 45:].mean() < 0.1          # sharp part = subject
    assert masks.blur_mask(bm)[:, 45:].min() == 1
    with pytest.raises(ValueError):
        masks.make_mask("bogus", (4, 4))


def test_flat_area_guard_lower_on_flat():
    rng = np.random.default_rng(1)
    g = np.clip(0.5 + rng.normal(0, 0.01, (64, 64)), 0, 1).astype(np.float32)
    g[:, 32:] = (np.indices((64, 32))[0] % 8 < 4) * 0.6 + 0.2
    m = masks.flat_area_guard(g, 0.01)
    assert m[:, 4:28].mean() < 0.5 < m[:, 36:60].mean()


def test_smart_sharpen_estimates_its_own_sigma(photo):
    from helpers import blur_linear, psnr
    soft = blur_linear(photo, gaussian_kernel(1.2), noise=0.003)
    out = sharpen.smart_sharpen(soft)          # sigma measured from the photo's edges
    assert psnr(out, photo) > psnr(soft, photo) + 0.5


def test_unsharp_noise_gate_leaves_grain_but_sharpens_edges():
    from deblur_core.guard import noise_gain
    rng = np.random.default_rng(3)
    img = np.full((96, 96), 0.3, np.float32)
    img[:, 48:] = 0.7
    soft = convolve(img, gaussian_kernel(1.5))
    noisy = np.clip(soft + rng.normal(0, 0.01, soft.shape), 0, 1).astype(np.float32)
    gated = sharpen.unsharp_mask(noisy, 1.5, 2.0)                   # noise estimated from the image
    classic = sharpen.unsharp_mask(noisy, 1.5, 2.0, noise_sigma=0)  # gate off
    flat = (slice(8, 88), slice(4, 36))
    gain = lambda out: np.std(out[flat] - cv2.GaussianBlur(out, (0, 0), 1.0)[flat]) / \
        np.std(noisy[flat] - cv2.GaussianBlur(noisy, (0, 0), 1.0)[flat])  # noqa: E731
    assert gain(gated) < 1.15 < 1.6 < gain(classic)                  # grain left (nearly) alone
    assert noise_gain(gated, noisy) < 1.15
    slope = lambda out: np.abs(np.diff(out[8:88], axis=1))[:, 44:52].max(axis=1).mean()  # noqa: E731
    assert slope(gated) > 1.3 * slope(noisy)                         # the edge still gets steeper
    assert slope(gated) > 0.9 * slope(classic)


def test_smart_sharpen_does_not_amplify_flat_grain():
    from deblur_core.guard import noise_gain
    rng = np.random.default_rng(4)
    img = np.full((96, 96, 3), 0.45, np.float32)
    img[:, 48:] = 0.6
    noisy = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1).astype(np.float32)
    assert noise_gain(sharpen.smart_sharpen(noisy, sigma=1.2), noisy) < 1.0   # its prior smooths grain


def test_noise_gate_and_detail_noise_std():
    assert abs(sharpen.detail_noise_std(1.5, 1.0) - np.sqrt(1 - 3 / (4 * np.pi * 1.5 ** 2))) < 1e-3
    d = np.zeros((32, 32), np.float32)
    d[:, 16] = 1.0
    w = sharpen.noise_gate(d, 0.01, 1.5)
    assert w.dtype == np.float32 and w.min() >= 0 and w.max() <= 1
    assert w[:, 16].min() == 1.0 and w[:, 2].max() == 0.0
    assert sharpen.noise_gate(d, 0.0, 1.5).min() == 1.0

"""Spatially varying camera shake: a kernel per grid cell, restorations blended (deblur_core.spatial)."""
import numpy as np
import pytest

from helpers import blur_linear
from deblur_core import deblur
from deblur_core.kernels import motion_kernel
from deblur_core.spatial import GRID_MIN_SIDE, auto_regions, cell_weight, estimate_kernel_grid, grid_centres, restore_grid


@pytest.mark.parametrize("length,n", [(100, 2), (257, 3), (64, 4)])
def test_blend_weights_are_a_partition_of_unity(length, n):
    tents = np.stack([cell_weight(length, n, i) for i in range(n)])
    assert np.allclose(tents.sum(axis=0), 1.0)
    assert np.all(tents >= 0)
    for i, c in enumerate(grid_centres(length, n)):   # each cell has full weight at its centre
        assert tents[i, int(c)] == pytest.approx(1.0, abs=1.5 / (length / n))


def test_restore_grid_blends_each_cells_own_restoration():
    image = np.random.default_rng(0).random((90, 120, 3)).astype(np.float32)
    # identity restorations give the photo back: the weights sum to 1 and no crop edge shows
    same = restore_grid(image, 3, [np.full((5, 5), i + 1.0) for i in range(9)], lambda part, k: part)
    assert np.allclose(same, image, atol=1e-6)
    # each cell's restoration reaches its own cell: at a cell's centre only its kernel counts
    tags = [np.full((3, 3), i + 1.0) for i in range(4)]
    out = restore_grid(image, 2, tags, lambda part, k: np.full(part.shape, k[0, 0], np.float32))
    for i, cy in enumerate(grid_centres(90, 2)):
        for j, cx in enumerate(grid_centres(120, 2)):
            assert out[int(cy), int(cx), 0] == pytest.approx(2 * i + j + 1, abs=0.05)
    with pytest.raises(ValueError):
        restore_grid(image, 2, tags[:3], lambda part, k: part)


def test_restore_grid_restores_once_when_the_cells_share_a_kernel():
    """Cells that all fell back to the photo's kernel cost one restoration of the whole photo."""
    image = np.random.default_rng(1).random((90, 120)).astype(np.float32)
    calls = []

    def restore(part, k):
        calls.append(part.shape)
        return part * 0.5

    out = restore_grid(image, 2, [np.ones((5, 5)) / 25] * 4, restore)
    assert calls == [image.shape]
    assert np.allclose(out, image * 0.5)


def test_kernel_grid_varying_blur(photo):
    """Left half blurred along x, right half along y: the grid's cells say so (each cell keeps its own
    kernel only where it deconvolves its window more sharply than the whole-photo kernel)."""
    left = blur_linear(photo, motion_kernel(9, 0), noise=0.003, seed=1)
    right = blur_linear(photo, motion_kernel(9, 90), noise=0.003, seed=2)
    mixed = np.concatenate([left[:, :160], right[:, 160:]], axis=1)
    psf, info, cells = estimate_kernel_grid(mixed, 2, 9)
    assert len(cells) == 4
    assert sum(c["roi"][2] * c["roi"][3] for c in cells) == mixed.shape[0] * mixed.shape[1]
    for c in cells:
        k = c["psf"]
        assert abs(float(k.sum()) - 1) < 1e-4 and np.all(k >= 0)
        assert c["source"] in ("own", "whole photo")
        x0, y0, w, h = c["roi"]
        wx, wy, ww, wh = c["window"]
        assert x0 <= wx and wx + ww <= x0 + w and y0 <= wy and wy + wh <= y0 + h
    own = [c for c in cells if c["source"] == "own"]
    assert own, "no cell kept its own kernel although the blur differs across the photo"
    for c in own:   # a kept kernel is spread along its half's blur direction
        k = c["psf"]
        ys, xs = np.nonzero(k > 0.1 * k.max())
        along_x = np.ptp(xs) >= np.ptp(ys)
        assert along_x == (c["roi"][0] < 160)


def test_cells_refined_side_by_side_give_the_same_kernels(photo):
    """Two cells at a time (threads) or one at a time: the same kernels, bit for bit."""
    blurred = blur_linear(photo, motion_kernel(7, 20), noise=0.003)
    runs = [estimate_kernel_grid(blurred, 2, 9, workers=n)[2] for n in (1, 2)]
    for a, b in zip(*runs):
        assert a["source"] == b["source"] and a["window"] == b["window"]
        assert ("own_psf" in a) == ("own_psf" in b)
        if "own_psf" in a:
            assert np.array_equal(a["own_psf"], b["own_psf"])


def test_cancelling_during_the_cells_stops_them(photo):
    """Raising from the progress callback while the cells are refined (two threads) cancels the grid:
    the caller gets the user's exception, not the other thread's echo of it."""
    class UserCancelled(Exception):
        pass

    messages = []

    def progress(fraction, message):
        messages.append(message)
        if message.startswith("Refining the kernel per region"):
            raise UserCancelled()

    blurred = blur_linear(photo, motion_kernel(7, 20), noise=0.003)
    with pytest.raises(UserCancelled):
        estimate_kernel_grid(blurred, 2, 9, progress=progress)
    assert sum(m.startswith("Refining") for m in messages) == 1


def test_one_region_is_the_plain_estimate(gray_photo):
    blurred = blur_linear(gray_photo, motion_kernel(7, 30), noise=0.003)
    psf, info, cells = estimate_kernel_grid(blurred, 1, 9)
    assert len(cells) == 1 and cells[0]["psf"] is psf and cells[0]["source"] == "whole photo"
    with pytest.raises(ValueError):
        estimate_kernel_grid(blurred, 5, 9)


def test_deblur_with_shake_regions(photo):
    blurred = blur_linear(photo, motion_kernel(7, 20), noise=0.003)
    res = deblur(blurred, "shake", 50, mask="full", use_network=False, shake_regions=2, kernel_size=9)
    assert res.image.shape == blurred.shape and np.isfinite(res.image).all()
    harm = res.report["harm"]
    if res.report.get("fallback") == "sharpen":      # no kernel explained this small crop: said, not applied
        assert res.kernel is None and not harm["trusted"]
        assert any("gentle sharpening was used instead" in w for w in res.report["warnings"])
    elif "regions" in harm:                           # the grid stood: every region's kernel explains its part
        assert len(res.report["shake"]["regions"]) == 4 and "2x2 regions" in res.report["title"]
        assert len(harm["regions"]) == 4 and harm["trusted"] and max(harm["regions"]) <= harm["limit"]
    else:                                           # it gave way to one kernel for the photo, and said so
        assert any("regions did not explain their part" in w for w in res.report["warnings"])
        assert "whole photo" in res.report["title"] and harm["trusted"]
    for bad in (0, 5, 1.5):
        with pytest.raises(ValueError):
            deblur(blurred, "shake", 50, shake_regions=bad)


def test_auto_regions_by_photo_size():
    assert GRID_MIN_SIDE == 1024
    assert auto_regions(GRID_MIN_SIDE, 4000) == 2 and auto_regions(4000, GRID_MIN_SIDE) == 2
    assert auto_regions(GRID_MIN_SIDE - 1, 4000) == 1 and auto_regions(512, 512) == 1
    assert auto_regions(3000, 4000) == 1            # 12 MP: one kernel (a grid restores 2.25x the area)


def test_deblur_picks_the_grid_on_large_photos():
    """Not told, deblur() estimates a 2 x 2 grid on a photo 1024 px on its shorter side, one kernel on a
    smaller one, and one kernel on a selection (the region the user chose to estimate on)."""
    from skimage import data
    big = np.tile(data.coffee().astype(np.float32) / 255, (3, 2, 1))[:1024, :1024]
    blurred = blur_linear(big, motion_kernel(7, 20), noise=0.003)
    res = deblur(blurred, "shake", 50, mask="full", use_network=False, kernel_size=9)
    assert len(res.report["shake"]["regions"]) == 4 and "2x2 regions" in res.report["title"]
    small = deblur(blurred[:512, :512], "shake", 50, mask="full", use_network=False, kernel_size=9)
    assert "regions" not in small.report["shake"] and "regions" not in small.report["title"]
    picked = deblur(blurred, "shake", 50, mask="full", use_network=False, kernel_size=9, roi=(100, 100, 400, 400))
    assert "regions" not in picked.report["shake"]
    one = deblur(blurred, "shake", 50, mask="full", use_network=False, kernel_size=9, shake_regions=1)
    assert "regions" not in one.report["shake"]


def test_worker_passes_shake_regions():
    """The plug-ins' worker protocol carries the grid size ("shake_regions"); 0 means auto (not passed:
    the engine decides), 1 one kernel."""
    from deblur_core.worker import _deblur_kwargs
    *_, extra = _deblur_kwargs({"mode": "shake", "shake_regions": 2.0, "kernel_size": 0})
    assert extra == {"shake_regions": 2}
    *_, extra = _deblur_kwargs({"mode": "shake", "shake_regions": 0})
    assert "shake_regions" not in extra
    *_, extra = _deblur_kwargs({"mode": "shake", "shake_regions": 1})
    assert extra == {"shake_regions": 1}


def test_a_grid_whose_kernels_are_not_trusted_is_not_applied(photo):
    """Do no harm on a grid too: regions whose kernels do not explain the photo give way to one kernel for
    the whole photo, and when that is not trusted either, to gentle sharpening; the report says so."""
    blurred = blur_linear(photo, motion_kernel(7, 20), noise=0.003)
    res = deblur(blurred, "shake", 50, mask="full", use_network=False, shake_regions=2, kernel_size=9,
                 trust_limit=0.0)                           # nothing is trusted
    assert "regions" not in res.report["title"] and res.report["fallback"] == "sharpen"
    assert any("regions did not explain their part" in w for w in res.report["warnings"])
    assert any("gentle sharpening was used instead" in w for w in res.report["warnings"])

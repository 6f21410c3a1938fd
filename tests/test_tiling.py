import numpy as np
import pytest

from deblur_core.network import _layout
from deblur_core.tiling import blend_weights, cuts, process_tiled


@pytest.mark.parametrize("total", [300, 768, 776, 1104, 2000, 6104])
def test_network_layout_is_balanced_and_covers(total):
    side, starts = _layout(total, 768, 64, 8)
    assert side <= max(768, total) and (side % 8 == 0 or side == total)
    assert starts[0] == 0 and starts[-1] + side == total
    assert all(side - (b - a) >= 64 for a, b in zip(starts, starts[1:]))
    # as few tiles as the maximum side allows: never a whole extra tile of waste
    assert len(starts) * side - total <= (len(starts) - 1) * (64 + 16)


def test_blend_weights_sum_to_one():
    c = cuts(1000, 300)
    total = np.zeros(1000)
    for i in range(len(c) - 1):
        lead = c[i] if i else None
        trail = c[i + 1] if i + 2 < len(c) else None
        a = c[i] - 17 if lead is not None else 0
        b = c[i + 1] + 17 if trail is not None else 1000
        total[a:b] += blend_weights(a, b, lead, trail, 32)
    assert np.allclose(total, 1, atol=1e-6)


@pytest.mark.parametrize("shape", [(257, 391), (300, 200, 3)])
def test_process_tiled_identity_is_exact(shape):
    img = np.random.default_rng(0).random(shape, dtype=np.float32)
    seen = []
    out = process_tiled(lambda t, i, n: seen.append(t.shape) or t, img, tile=100, context=20)
    assert out.shape == img.shape and out.dtype == np.float32
    assert np.abs(out - img).max() < 1e-6
    assert len(seen) > 4 and max(s[0] for s in seen) <= 100 + 2 * (20 + 17)


def test_process_tiled_strips_are_exact():
    """(rows, columns) tiles: strips across the photo, stitched exactly."""
    img = np.random.default_rng(1).random((120, 400, 3), dtype=np.float32)
    seen = []
    out = process_tiled(lambda t, i, n: seen.append(t.shape) or t, img, tile=(120, 100), context=20)
    assert np.abs(out - img).max() < 1e-6
    assert len(seen) == 4 and all(s[0] == 120 for s in seen)


def test_grid_plan_prefers_less_context():
    from deblur_core.tiling import grid_plan
    # 24 MP landscape: 3 full-height strips compute less context than 2 x 2 tiles
    assert grid_plan((4000, 6000), 9_500_000, 128) == (4000, 2000)
    # a budget that holds the photo: one piece
    assert grid_plan((1000, 1000), 2_000_000, 128) == (1000, 1000)

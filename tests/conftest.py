import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture(scope="session")
def photo():
    """A real photo (scikit-image's 'coffee', 400x600 RGB), float32 sRGB in [0, 1], cropped to 256x320."""
    from skimage import data
    return (data.coffee()[64:320, 100:420].astype(np.float32) / 255).copy()


@pytest.fixture(scope="session")
def gray_photo():
    from skimage import data
    return (data.camera()[96:352, 96:352].astype(np.float32) / 255).copy()

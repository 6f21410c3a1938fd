"""Shared by tests/gimp: repo path, GIMP lookup, procedure names."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools import gimp_batch  # noqa: E402

PROCEDURES = ("plug-in-ai-deblur-auto", "plug-in-ai-deblur-motion", "plug-in-ai-deblur-focus",
              "plug-in-ai-deblur-shake", "plug-in-ai-deblur-smart-sharpen", "plug-in-ai-deblur-old-photo",
              "plug-in-ai-deblur-analyze", "plug-in-ai-deblur-hybrid")


def require_gimp():
    gimp = gimp_batch.find_gimp_console()
    if not gimp:
        pytest.fail("gimp-console-3.0 not found: GIMP 3 is required for tests/gimp "
                    "(python3 install.py --install-gimp)", pytrace=False)
    if not gimp_batch.find_gi_python():
        pytest.fail("no system Python with GIMP 3's gi bindings (python3-gi, gir1.2-gimp-3.0)", pytrace=False)
    return gimp

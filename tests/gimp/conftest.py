"""Fixtures for tests that run the real GIMP 3 (gimp-console-3.0) in an isolated profile.

These tests FAIL (never skip) when GIMP 3 is missing: install it with `python3 install.py --install-gimp`.
The engine under test is the repo's (deblur_core); AI_DEBLUR_ENGINE / AI_DEBLUR_PYTHONPATH in the
environment substitute another module with the same API (development only).
"""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gimp_env import REPO, require_gimp  # noqa: E402


@pytest.fixture(scope="session")
def gimp():
    return require_gimp()


@pytest.fixture(scope="session")
def gimp_profile(tmp_path_factory, gimp):
    """An isolated GIMP profile with the plug-ins installed by install.py --profile."""
    profile = tmp_path_factory.mktemp("gimp-profile")
    p = subprocess.run([sys.executable, os.path.join(REPO, "install.py"), "--profile", str(profile), "--skip-venv"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"install.py failed:\n{p.stdout}\n{p.stderr}"
    return profile

"""deblur_core.kernel_report.kernel_for_report: the one way the command line and the GIMP worker get
the kernel an analysis describes."""
import numpy as np

from helpers import blur_linear
from deblur_core import kernels, shake
from deblur_core.classifier import analyze, kernel_for
from deblur_core.kernel_report import kernel_for_report


def test_parametric_reports_get_their_parametric_kernel():
    for report, expected in (
            ({"blur_type": "motion", "params": {"length": 11.0, "angle": 30.0}}, kernels.motion_kernel(11.0, 30.0)),
            ({"blur_type": "defocus", "params": {"radius": 3.5}}, kernels.defocus_kernel(3.5)),
            ({"blur_type": "gaussian", "params": {"sigma": 1.6}}, kernels.gaussian_kernel(1.6))):
        k = kernel_for_report(np.zeros((64, 64, 3), np.float32), report)
        assert k.dtype == np.float32
        np.testing.assert_allclose(k, expected, atol=1e-7)


def test_sharp_report_gets_the_identity():
    k = kernel_for_report(np.zeros((64, 64), np.float32), {"blur_type": "sharp", "params": {}})
    assert k.shape == (1, 1) and k[0, 0] == 1


def test_shake_report_gets_the_blind_estimate(monkeypatch):
    """Camera shake: the blind estimate of the photo's colour (alpha left out), with the caller's
    progress, not a whole deblur."""
    seen = {}
    psf = kernels.shake_kernel(9, 2)

    def fake_estimate(image, kernel_size=None, *, progress=None, **kw):
        seen["shape"], seen["progress"] = image.shape, progress
        return psf, {"size": 9}

    monkeypatch.setattr(shake, "estimate_kernel", fake_estimate)   # the default estimator
    report = {"blur_type": "shake", "params": {}, "kernel": None}
    progress = lambda f, m="": None  # noqa: E731
    k = kernel_for_report(np.full((40, 50, 4), 0.5, np.float32), report, progress=progress)
    assert k is psf
    assert seen == {"shape": (40, 50, 3), "progress": progress}


def test_real_motion_analysis(photo):
    y = blur_linear(photo, kernels.motion_kernel(13, 25), noise=0.005)
    report = analyze(y)
    assert report["blur_type"] == "motion", report
    np.testing.assert_array_equal(kernel_for_report(y, report), kernel_for(report))

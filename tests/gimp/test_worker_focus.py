"""The worker's "focus" op (where the dialog's preview opens), over the same stdin/stdout protocol as
tests/gimp/test_worker_protocol.py, and through the plug-in's client module."""
import os
import sys

import cv2
import numpy as np
import pytest
import skimage.data

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_worker_protocol import REPO, call, client  # noqa: E402

ASTRONAUT_FACE = (224, 117)


def _near(report, xy, tol):
    return abs(report["x"] - xy[0]) <= tol and abs(report["y"] - xy[1]) <= tol


@pytest.mark.parametrize("engine", ["engine_doubles", None], ids=["engine-without-focus_point", "real-engine"])
def test_focus_finds_the_face(engine):
    """An engine module without focus_point (a test double) gets deblur_core's; the answer is the
    face's centre and box, with no outputs."""
    img = skimage.data.astronaut()
    h, w = img.shape[:2]
    lines, rest, p = call({"op": "focus", "width": w, "height": h, "channels": 3, "dtype": "u8"},
                          img.tobytes(), engine=engine)
    final = lines[-1]
    assert final["ok"], (final, p.stderr[-2000:])
    assert final["outputs"] == [] and rest == b""
    rep = final["report"]
    assert rep["source"] == "face" and _near(rep, ASTRONAUT_FACE, 25), rep
    assert len(rep["box"]) == 4 and isinstance(rep["x"], int)


def test_focus_on_a_shrunk_copy_answers_in_image_pixels():
    """The plug-in sends a shrunk copy of the previewed area: scale and origin put the answer back in
    the image's pixels (here a 2x shrunk astronaut that sits at (300, 200) in the image)."""
    img = skimage.data.astronaut()
    small = cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)
    rgba = np.dstack([small, np.full((256, 256), 255, np.uint8)]).astype(np.float32) / 255
    lines, _, p = call({"op": "focus", "width": 256, "height": 256, "channels": 4,
                        "options": {"scale": 2.0, "origin": [300, 200]}}, rgba.astype("<f4").tobytes(),
                       engine=None)
    rep = lines[-1]["report"] if lines[-1]["ok"] else lines[-1]
    assert lines[-1]["ok"], (rep, p.stderr[-2000:])
    assert rep["source"] == "face" and _near(rep, (300 + ASTRONAUT_FACE[0], 200 + ASTRONAUT_FACE[1]), 30), rep
    bx, by, bw, bh = rep["box"]
    assert bx >= 300 and by >= 200 and 70 <= bw <= 120, rep  # her face is 88 px wide


def test_focus_without_people_is_the_detail():
    rng = np.random.default_rng(0)
    h, w = 240, 320
    img = np.full((h, w), 0.5, np.float32) + rng.normal(0, 0.01, (h, w)).astype(np.float32)
    cells = (rng.random((15, 20)) > 0.5).astype(np.float32)
    img[150:210, 30:110] = cv2.resize(cells, (80, 60), interpolation=cv2.INTER_NEAREST)
    u16 = (np.clip(img, 0, 1) * 65535).astype("<u2")
    lines, _, _ = call({"op": "focus", "width": w, "height": h, "channels": 1, "dtype": "u16"}, u16.tobytes(),
                       engine=None)
    rep = lines[-1]["report"]
    assert rep["source"] == "detail" and 30 <= rep["x"] < 110 and 150 <= rep["y"] < 210, rep


@pytest.mark.parametrize("options,needle", [({"scale": -1}, "scale must be a positive number"),
                                            ({"origin": "corner"}, "origin a pair of numbers")])
def test_focus_bad_options_are_one_sentence(options, needle):
    img = np.zeros((8, 8, 3), np.uint8)
    lines, _, p = call({"op": "focus", "width": 8, "height": 8, "channels": 3, "dtype": "u8", "options": options},
                       img.tobytes())
    assert lines[-1]["ok"] is False and needle in lines[-1]["error"], lines[-1]
    assert p.returncode != 0


def test_client_focus_round_trip(monkeypatch):
    """What the plug-in does: client.run("focus", ...) with u8 pixels."""
    monkeypatch.setenv("AI_DEBLUR_ENGINE", "engine_doubles")
    monkeypatch.setenv("AI_DEBLUR_PYTHONPATH", HERE)
    monkeypatch.setenv("AI_DEBLUR_DOUBLE", "ok")
    img = skimage.data.astronaut()
    report, outputs = client.run("focus", 512, 512, 3, img.tobytes(), {"scale": 1.0},
                                 config={"python": sys.executable, "repo": REPO}, dtype="u8")
    assert outputs == {} and report["source"] == "face" and _near(report, ASTRONAUT_FACE, 25), report

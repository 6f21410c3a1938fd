"""Interactive runs: the GimpUi.ProcedureDialog (with its live preview) on a virtual X display.

Needs Xvfb, which scripts/install-gimp.sh installs with GIMP; without it the test fails (never skips). The dialog is answered "OK" by AI_DEBLUR_DIALOG_AUTO_OK_MS, a hook for tests: after
that many milliseconds and once the preview has shown its first result (at most 2 minutes).
"""
import json
import shutil
import tempfile

import pytest

from gimp_env import gimp_batch

CODE = r'''
import array
w, h = 300, 200
img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
lay = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGBA_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(lay, None, 0)
px = array.array("f", [((i * 7) % 13) / 13.0 if i % 4 != 3 else 1.0 for i in range(w * h * 4)])
b = lay.get_buffer(); b.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B'A float", px.tobytes()); b.flush()
for name in ("plug-in-ai-deblur-focus", "plug-in-ai-deblur-analyze"):
    proc = Gimp.get_pdb().lookup_procedure(name)
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
    config.set_property("image", img)
    config.set_core_object_array("drawables", [lay])
    res = proc.run(config)
    RESULT[name] = res.index(0).value_nick
RESULT["layers"] = [l.get_name() for l in img.get_layers()]
img.delete()
'''


@pytest.fixture(scope="module")
def display():
    proc, name = gimp_batch.start_xvfb()  # fails (never skips) without Xvfb
    yield name
    proc.terminate()
    proc.wait(timeout=10)


@pytest.mark.parametrize("zoom", [1, 4])
def test_dialog_with_preview_runs_interactively(gimp_profile, display, zoom):
    res = gimp_batch.run_python(CODE, profile=str(gimp_profile), timeout=300, check=False,
                                extra_env={"DISPLAY": display, "AI_DEBLUR_DIALOG_AUTO_OK_MS": "1500",
                                           "AI_DEBLUR_DEBUG": "1", "AI_DEBLUR_PREVIEW_ZOOM": str(zoom)})
    log = res.get("_log", "")
    assert "error" not in res, res.get("traceback", "") + log[-3000:]
    assert res["plug-in-ai-deblur-focus"] == "success", log[-3000:]
    assert res["plug-in-ai-deblur-analyze"] == "success", log[-3000:]
    assert res["layers"][0].startswith("AI Deblur"), res["layers"]
    assert "ai-deblur preview: drew" in log, "the preview never showed a result:\n" + log[-3000:]
    assert f"zoom {100 * zoom}%" in log, log[-3000:]
    assert "no preview" not in log


ANALYZE_FIRST = r'''
import json
w, h = 320, 240
img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
lay = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(lay, None, 0)
status, values = call_procedure("plug-in-ai-deblur-analyze", img, [lay], run_mode=Gimp.RunMode.INTERACTIVE)
RESULT["status"] = status
RESULT["report"] = json.loads(values[1]) if status == "success" else None
img.delete()
'''


def test_dialog_warms_the_engine_while_open(gimp_profile, display):
    """The first call of a GIMP session, made from the dialog, finds the engine already started:
    the dialog starts a standby worker as it opens (here a dialog without a preview, which would
    otherwise start one itself), so OK skips the process start and the imports."""
    runtime = tempfile.mkdtemp(prefix="aid-")  # short: a Unix socket path has at most 107 bytes
    try:
        res = gimp_batch.run_python(gimp_batch.HELPERS + ANALYZE_FIRST, profile=str(gimp_profile), timeout=300, check=False,
                                    extra_env={"DISPLAY": display, "AI_DEBLUR_DIALOG_AUTO_OK_MS": "4000",
                                               "AI_DEBLUR_DEBUG": "1", "AI_DEBLUR_RUNTIME_DIR": runtime,
                                               "AI_DEBLUR_PRELOAD": "never"})  # no worker started with GIMP
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    log = res.get("_log", "")
    assert "error" not in res, res.get("traceback", "") + log[-3000:]
    assert res["status"] == "success", log[-3000:]
    assert "standby started at dialog open: True" in log, log[-3000:]
    assert res["report"]["plugin_timing"]["worker"] == "standby", res["report"]["plugin_timing"]


FOCUS_ONLY = r'''
import array
w, h = 300, 200
img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
lay = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(lay, None, 0)
px = array.array("f", [((i * 7) % 13) / 13.0 for i in range(w * h * 3)])
b = lay.get_buffer(); b.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' float", px.tobytes()); b.flush()
status, values = call_procedure("plug-in-ai-deblur-focus", img, [lay], run_mode=Gimp.RunMode.INTERACTIVE)
RESULT["status"] = status
RESULT["report"] = json.loads(values[1]) if status == "success" else None
RESULT["layers"] = [l.get_name() for l in img.get_layers()]
img.delete()
'''


def test_interactive_correction_shows_the_warnings(gimp_profile, display, tmp_path):
    """No silent fallback: with the networks missing, the interactive correction still makes its layer,
    and the report's warnings (classical deconvolution used instead) reach the screen as a message,
    not only the JSON report that scripts read."""
    empty = tmp_path / "no-models"
    empty.mkdir()
    res = gimp_batch.run_python("import json\n" + gimp_batch.HELPERS + FOCUS_ONLY, profile=str(gimp_profile),
                                timeout=300, check=False,
                                extra_env={"DISPLAY": display, "AI_DEBLUR_DIALOG_AUTO_OK_MS": "1500",
                                           "AI_DEBLUR_NO_PREVIEW": "1", "AI_DEBLUR_MODELS": str(empty),
                                           "AI_DEBLUR_DEBUG": "1"})
    log = res.get("_log", "")
    assert "error" not in res, res.get("traceback", "") + log[-3000:]
    assert res["status"] == "success", log[-3000:]
    assert res["layers"][0].startswith("AI Deblur"), res["layers"]
    warnings = res["report"]["warnings"]
    assert any("neural network unavailable" in w for w in warnings), warnings
    assert "Please note:" in log and "neural network unavailable" in log, log[-3000:]
    # shown as information (the plug-in's message box with the info icon), not GIMP's warning message
    assert "ai-deblur message (info): " + res["layers"][0] in log, log[-3000:]
    assert "message box unavailable" not in log, log[-3000:]


DIALOGS = r'''
import array
w, h = 200, 150
img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
lay = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(lay, None, 0)
# shapes with edges (a camera-shake estimate needs some; a per-pixel pattern is refused as edgeless)
px = array.array("f", [0.2 + 0.6 * ((((i // 3) % w) // 11 + ((i // 3) // w) // 7 + ((i // 3) % w) * ((i // 3) // w) // 900) % 2)
                       for i in range(w * h * 3)])
b = lay.get_buffer(); b.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' float", px.tobytes()); b.flush()
for name in PROCS:
    status, values = call_procedure(name, img, img.get_selected_drawables(), run_mode=Gimp.RunMode.INTERACTIVE)
    RESULT[name] = status
RESULT["layers"] = [l.get_name() for l in img.get_layers()]
img.delete()
'''

AUTO_ROWS = {"motion": ["length", "angle"], "smart-sharpen": ["radius", "amount", "threshold"],
             "shake": ["kernel-size", "regions"]}


def test_dialog_words_auto_boxes_and_mnemonics(gimp_profile, display, tmp_path):
    """What the dialogs say: an Auto tick box beside every value where 0 means auto, the value then
    reading "auto" (Smart Sharpen no longer opens on Amount 0.00), plain words for the shake regions,
    and no mnemonic letter used twice. Each dialog is answered OK: the correction runs with the
    automatic values and the next dialog opens on the new layer."""
    procs = ["plug-in-ai-deblur-" + p for p in AUTO_ROWS]
    dump = str(tmp_path / "dialog")
    res = gimp_batch.run_python("import json\n" + gimp_batch.HELPERS + "PROCS = %r\n" % procs + DIALOGS,
                                profile=str(gimp_profile), timeout=300, check=False,
                                extra_env={"DISPLAY": display, "AI_DEBLUR_DIALOG_AUTO_OK_MS": "800",
                                           "AI_DEBLUR_NO_PREVIEW": "1", "AI_DEBLUR_DIALOG_DUMP": dump})
    log = res.get("_log", "")
    assert "error" not in res, res.get("traceback", "") + log[-3000:]
    assert "duplicate mnemonic" not in log, log[-3000:]  # GIMP's own check of the procedure dialog
    for proc, rows in AUTO_ROWS.items():
        name = "plug-in-ai-deblur-" + proc
        assert res[name] == "success", (name, log[-3000:])
        with open(dump + "." + name + ".json") as fh:
            info = json.load(fh)
        keys = [k for k, _text in info["mnemonics"]]
        assert len(keys) == len(set(keys)), f"{proc}: a mnemonic letter is used twice: {info['mnemonics']}"
        autos = {c["row"]: c for c in info["checks"] if c["label"] == "Auto"}
        assert sorted(autos) == sorted("ai-deblur-auto-" + r for r in rows), info["checks"]
        assert all(c["active"] for c in autos.values()), autos
        auto_spins = [sp for sp in info["spins"] if sp["text"] == "auto"]
        assert len(auto_spins) == len(rows) and not any(sp["sensitive"] for sp in auto_spins), info["spins"]
        assert not any(sp["text"] in ("0", "0.0", "0.00", "0.000") for sp in info["spins"]), info["spins"]
        labels = " ".join(info["labels"])
        assert "Blur traces" not in labels
        if proc == "shake":
            assert "Regions per side (shake varies across the photo)" in labels, labels
    assert len(res["layers"]) == 1 + len(AUTO_ROWS), res["layers"]


def test_unticking_auto_sets_a_value_the_correction_uses(gimp_profile, display, tmp_path):
    """Unticking Auto gives the slider a typical hand-set value (Motion: 10 px, 180 degrees), the
    slider becomes editable, and the correction uses that value (its layer says so)."""
    name = "plug-in-ai-deblur-motion"
    dump = str(tmp_path / "dialog")
    res = gimp_batch.run_python("import json\n" + gimp_batch.HELPERS + "PROCS = %r\n" % [name] + DIALOGS,
                                profile=str(gimp_profile), timeout=300, check=False,
                                extra_env={"DISPLAY": display, "AI_DEBLUR_DIALOG_AUTO_OK_MS": "800",
                                           "AI_DEBLUR_NO_PREVIEW": "1", "AI_DEBLUR_DIALOG_DUMP": dump,
                                           "AI_DEBLUR_DIALOG_UNTICK": "length,angle"})
    log = res.get("_log", "")
    assert "error" not in res, res.get("traceback", "") + log[-3000:]
    assert res[name] == "success", log[-3000:]
    with open(dump + "." + name + ".json") as fh:
        info = json.load(fh)
    assert not any(c["active"] for c in info["checks"] if c["label"] == "Auto"), info["checks"]
    texts = [sp["text"] for sp in info["spins"]]
    assert "auto" not in texts and all(sp["sensitive"] for sp in info["spins"]), info["spins"]
    assert res["layers"][0] == "AI Deblur - motion 10 px at 0\u00b0, 50%", res["layers"]


PREVIEW = r'''
import array
w, h = 900, 700
img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
lay = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(lay, None, 0)
px = array.array("f", [((i * 7) % 13) / 13.0 for i in range(w * h * 3)])
b = lay.get_buffer(); b.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' float", px.tobytes()); b.flush()
status, values = call_procedure("plug-in-ai-deblur-focus", img, [lay], run_mode=Gimp.RunMode.INTERACTIVE,
                                radius=2.0)
RESULT["status"] = status
img.delete()
'''


def test_preview_is_large_shows_busy_and_compares(gimp_profile, display, tmp_path):
    """The preview is large (on a big photo 800x600 where the screen has room, most of the dialog), says it is computing while
    the engine works, and "Show original" puts the original at the same zoom and place, then the
    result back, without computing again."""
    dump = str(tmp_path / "dialog")
    res = gimp_batch.run_python(gimp_batch.HELPERS + PREVIEW, profile=str(gimp_profile), timeout=300, check=False,
                                extra_env={"DISPLAY": display, "AI_DEBLUR_DIALOG_AUTO_OK_MS": "1000",
                                           "AI_DEBLUR_DEBUG": "1", "AI_DEBLUR_DIALOG_DUMP": dump,
                                           "AI_DEBLUR_PREVIEW_COMPARE": "1"})
    log = res.get("_log", "")
    assert "error" not in res, res.get("traceback", "") + log[-3000:]
    assert res["status"] == "success", log[-3000:]
    with open(dump + ".plug-in-ai-deblur-focus.json") as fh:
        info = json.load(fh)
    pw, ph = info["preview_size"]
    dw, dh = info["dialog_size"]
    assert pw >= 600 and ph >= 440, info
    assert pw * ph >= 0.6 * dw * dh, info
    assert not info["preview_busy"], info
    lines = [ln for ln in log.splitlines() if ln.startswith("ai-deblur preview:")]
    assert "ai-deblur preview: busy" in lines and "ai-deblur preview: idle" in lines, lines
    assert lines.index("ai-deblur preview: busy") < lines.index("ai-deblur preview: idle"), lines
    shown = [ln for ln in lines if "showing the" in ln]
    # result drawn, then the original at the same size, then the result again
    assert [ln.split("showing the ")[1].split()[0] for ln in shown[-3:]] == ["result", "original", "result"], lines
    assert len({ln.split("(")[1] for ln in shown[-3:]}) == 1, shown


FACE_PHOTO = r'''
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(PHOTO))
lay = image.get_layers()[0]
status, values = call_procedure(PROC, image, [lay], run_mode=Gimp.RunMode.INTERACTIVE)
RESULT["status"] = status
image.delete()
'''


def _face_photo(path, size=(1800, 1300), at=(1200, 700)):
    """skimage's astronaut pasted near the bottom-right corner of a larger, quietly textured photo:
    neither the top-left corner (where GIMP's preview opens by default) nor the middle shows her face.
    Returns the face's centre in the photo's pixels, as an independent detector (the Haar cascade's
    box on the astronaut alone) would put it: her face spans x 180-268, y 61-173 of the 512 px original."""
    import cv2
    import numpy as np
    import skimage.data
    w, h = size
    rng = np.random.default_rng(1)
    bg = cv2.resize(rng.integers(90, 150, (h // 40, w // 40, 3)).astype(np.uint8), (w, h),
                    interpolation=cv2.INTER_CUBIC)
    x, y = at
    bg[y:y + 512, x:x + 512] = skimage.data.astronaut()
    cv2.imwrite(str(path), cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))
    return x + 224, y + 117


def _focus_dialog_on_face(gimp_profile, display, tmp_path, env):
    """Open the Focus Correction dialog on a photo of a face in a room (under Xvfb, OK pressed after 1 s,
    its state dumped); returns (the face's centre, the dialog's dump, GIMP's log)."""
    photo = tmp_path / "astronaut-in-a-room.png"
    face = _face_photo(photo)
    name = "plug-in-ai-deblur-focus"
    dump = str(tmp_path / "dialog")
    env = {"DISPLAY": display, "AI_DEBLUR_DIALOG_AUTO_OK_MS": "1000", "AI_DEBLUR_DEBUG": "1",
           "AI_DEBLUR_DIALOG_DUMP": dump, **env}
    code = gimp_batch.HELPERS + "PHOTO = %r\nPROC = %r\n" % (str(photo), name) + FACE_PHOTO
    res = gimp_batch.run_python(code, profile=str(gimp_profile), timeout=300, check=False, extra_env=env)
    log = res.get("_log", "")
    assert "error" not in res, res.get("traceback", "") + log[-3000:]
    assert res["status"] == "success", log[-3000:]
    with open(dump + "." + name + ".json") as fh:
        return face, json.load(fh), log


@pytest.mark.parametrize("resize", [None, "1250x980"], ids=["as-opened", "enlarged"])
def test_preview_opens_on_the_face_and_grows(gimp_profile, display, tmp_path, resize):
    """Issue 21: the preview takes most of the dialog (at least 60 % of its area as it opens), opens
    centred on the largest face (the engine's focus op), and grows with the dialog, keeping the face in
    view, when the user enlarges it."""
    face, info, log = _focus_dialog_on_face(gimp_profile, display, tmp_path,
                                            {"AI_DEBLUR_DIALOG_RESIZE": resize} if resize else {})
    opened = info["opened"]
    pw, ph = opened["preview_size"]
    dw, dh = opened["dialog_size"]
    assert pw * ph >= 0.6 * dw * dh, f"the preview is {pw}x{ph} in a {dw}x{dh} dialog: {info}"
    focus = info["preview_focus"]
    assert focus and focus["source"] == "face", (focus, log[-3000:])
    assert abs(focus["x"] - face[0]) < 40 and abs(focus["y"] - face[1]) < 40, (focus, face)
    x, y, w, h = info["preview_view"]
    assert x <= face[0] < x + w and y <= face[1] < y + h, f"face {face} not in the view {info['preview_view']}"
    # centred on the face, as far as the photo's edges allow (1800x1300)
    centred = (min(max(face[0] - w // 2, 0), 1800 - w), min(max(face[1] - h // 2, 0), 1300 - h))
    assert abs(x - centred[0]) < 40 and abs(y - centred[1]) < 40, (face, info["preview_view"], centred)
    assert "ai-deblur preview: opens on the face" in log, log[-3000:]
    assert "ai-deblur preview: drew" in log, log[-3000:]
    if resize:
        rw, rh = (int(v) for v in resize.split("x"))
        fw, fh = info["preview_size"]
        dw2, dh2 = info["dialog_size"]
        assert dw2 >= rw - 10 and dh2 >= rh - 10, info
        assert fw >= pw + 0.8 * (dw2 - dw) and fh >= ph + 0.8 * (dh2 - dh), (
            f"the preview grew from {pw}x{ph} to {fw}x{fh} when the dialog went from {dw}x{dh} to {dw2}x{dh2}")


def test_preview_spot_picked_by_clicks(gimp_profile, display, tmp_path):
    """Issue 21: the spot the preview shows is picked by clicking. GIMP gives plug-ins no clicks on the
    image window's canvas, so the dialog shows the whole photo small (the navigator, the previewed area
    framed): a click there centres the preview on that part of the photo; a click (without a drag) in the
    preview itself centres it on the clicked point; dragging in the preview (GIMP's own) moves it. The
    clicks are real button events through the X server (GDK's test API), and each pick is previewed."""
    _, info, log = _focus_dialog_on_face(gimp_profile, display, tmp_path,
                                         {"AI_DEBLUR_DIALOG_CLICK": "navigator:0.5,0.3;preview:0.25,0.75"})
    nw, nh = info["navigator_size"]
    assert nw >= 60 and nh >= 40, info["navigator_size"]
    pw, ph = info["opened"]["preview_size"]
    dw, dh = info["opened"]["dialog_size"]
    assert pw * ph >= 0.6 * dw * dh, f"the preview is {pw}x{ph} in a {dw}x{dh} dialog"
    nav, click = info["clicks"]
    assert nav["where"] == "navigator" and click["where"] == "preview", info["clicks"]
    # 1. the navigator click: the preview was on the face (bottom right), now on the photo's point
    #    at half its width and 30 % of its height (1800 x 1300)
    x, y, w, h = nav["view_before"]
    assert x > 700, nav                       # opened on the face, far from the middle top
    x, y, w, h = click["view_before"]
    cx, cy = x + w / 2, y + h / 2
    assert abs(cx - 900) <= 12 and abs(cy - 390) <= 12, (click["view_before"], nav)
    # 2. the click in the preview: the point under the pointer comes to the middle
    px, py = click["at"]
    aw, ah = click["size"]
    expect = (x + (px - (aw - w) / 2), y + (py - (ah - h) / 2))
    assert info["preview_picked"]["how"] == "click"
    assert abs(info["preview_picked"]["x"] - expect[0]) <= 3 and abs(info["preview_picked"]["y"] - expect[1]) <= 3
    fx, fy, fw, fh = info["preview_view"]
    assert abs(fx + fw / 2 - expect[0]) <= 12 and abs(fy + fh / 2 - expect[1]) <= 12, (info["preview_view"], expect)
    picks = [ln for ln in log.splitlines() if "picked" in ln and ln.startswith("ai-deblur preview:")]
    assert len(picks) == 2 and "navigator picked" in picks[0] and "click picked" in picks[1], picks
    after = log[log.index(picks[1]):]
    assert "ai-deblur preview: drew" in after, "the picked spot was never previewed:\n" + log[-3000:]


def test_old_photo_and_hybrid_dialogs_show_their_controls(gimp_profile, display, tmp_path):
    """Old Photo Clarity's dialog has the grain and background-softening controls (the guide's), the
    hybrid's (AI Deblur + Sharpen Layer) its unsharp-mask controls at the guide's values; no mnemonic
    letter twice; OK makes the layers, one dialog after the other on the new layer."""
    procs = ["plug-in-ai-deblur-old-photo", "plug-in-ai-deblur-hybrid"]
    dump = str(tmp_path / "dialog")
    res = gimp_batch.run_python("import json\n" + gimp_batch.HELPERS + "PROCS = %r\n" % procs + DIALOGS,
                                profile=str(gimp_profile), timeout=300, check=False,
                                extra_env={"DISPLAY": display, "AI_DEBLUR_DIALOG_AUTO_OK_MS": "800",
                                           "AI_DEBLUR_NO_PREVIEW": "1", "AI_DEBLUR_DIALOG_DUMP": dump})
    log = res.get("_log", "")
    assert "error" not in res, res.get("traceback", "") + log[-3000:]
    assert "duplicate mnemonic" not in log, log[-3000:]
    expect = {"plug-in-ai-deblur-old-photo": (["Grain removal", "Background softening (px)"], ["50.0", "0.50"]),
              "plug-in-ai-deblur-hybrid": (["Sharpen layer amount (%)", "Sharpen layer radius (px)",
                                            "Sharpen layer threshold"], ["120.0", "1.50", "5"])}
    for name, (labels, values) in expect.items():
        assert res[name] == "success", (name, log[-3000:])
        with open(dump + "." + name + ".json") as fh:
            info = json.load(fh)
        keys = [k for k, _text in info["mnemonics"]]
        assert len(keys) == len(set(keys)), f"{name}: a mnemonic letter is used twice: {info['mnemonics']}"
        for label in labels:
            assert label in info["labels"], (label, info["labels"])
        texts = [sp["text"] for sp in info["spins"]]
        for value in values:
            assert value in texts, (name, value, texts)
    assert res["layers"][0].startswith("Sharpen - paint in (120%"), res["layers"]
    assert "Old Photo Clarity - subjects, 50%" in res["layers"], res["layers"]

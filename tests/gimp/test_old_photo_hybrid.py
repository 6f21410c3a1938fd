"""Issue 21 in the real GIMP 3 (batch mode, one GIMP launch): Old Photo Clarity as the guide describes
it, with its grain and background-softening controls as typed procedure arguments, its people mask
on a photo with a person, and the guide's hybrid workflow as one action (AI Deblur + Sharpen Layer:
the correction and an unsharp-mask layer with a black mask above it). Each is followed by another
procedure on what GIMP then has selected, which must succeed too.
"""
import json
import shutil
import tempfile

import pytest

from gimp_env import gimp_batch

CODE = r'''
import array, json, math, zlib


def make(w, h, blur=5):
    """Texture and shapes, softened by a horizontal box blur of ``blur`` px."""
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    lay = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
    img.insert_layer(lay, None, 0)
    def g(x, y):
        return 0.5 + 0.3 * (1 if ((x // 9) + (y // 13)) % 2 else -1) * math.cos(0.05 * x * y / 40.0)
    vals = array.array("f")
    for y in range(h):
        for x in range(w):
            v = sum(g(min(w - 1, max(0, x + d - blur // 2)), y) for d in range(blur)) / blur
            vals.extend((v, v * 0.9 + 0.05, v * 0.8 + 0.1))
    buf = lay.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' float", vals.tobytes())
    buf.flush()
    return img, lay


def pixels(drawable, fmt="R'G'B' float"):
    w, h = drawable.get_width(), drawable.get_height()
    data = drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt, Gegl.AbyssPolicy.CLAMP)
    return array.array("f", bytes(data))


def detail(drawable):
    """Mean absolute difference between horizontal neighbours of the gray: edge detail."""
    p = pixels(drawable, "Y' float")
    w = drawable.get_width()
    return sum(abs(p[i + 1] - p[i]) for i in range(len(p) - 1) if (i + 1) % w) / len(p)


# 1. the hybrid workflow, then another procedure on what is selected
img, src = make(200, 150)
before = zlib.crc32(pixels(src).tobytes())
img.clean_all()
rec, top = run_ai_deblur(img, "hybrid", [src], strength=50.0, mask="auto")
RESULT["hybrid"] = rec
if top is not None:
    layers = img.get_layers()
    ai = layers[1]
    mask = pixels(top.get_mask(), "Y float")
    rec["sharpen_mask_max"] = max(mask)
    rec["ai_has_mask"] = ai.get_mask() is not None
    rec["detail"] = {"source": detail(src), "ai": detail(ai), "sharpen": detail(top)}
    rec["source_unchanged"] = zlib.crc32(pixels(src).tobytes()) == before
    rec["dirty"] = img.is_dirty()
    rec2, _ = run_ai_deblur(img, "focus", img.get_selected_drawables(), strength=50.0, mask="full", radius=2.0)
    RESULT["after_hybrid"] = rec2
rec, top = run_ai_deblur(img, "hybrid", [src], strength=40.0, mask="full", sharpen_amount=200.0, sharpen_radius=2.5,
                sharpen_threshold=0)
RESULT["hybrid_args"] = rec
img.delete()

# 2. Old Photo Clarity: the controls as typed arguments, then another procedure
img, src = make(200, 150, blur=3)
rec, layer = run_ai_deblur(img, "old-photo", [src], strength=50.0, mask="auto", grain=0.0, background_soften=2.0)
RESULT["old_keep_grain"] = rec
rec, layer = run_ai_deblur(img, "old-photo", img.get_selected_drawables(), strength=50.0, mask="auto")
RESULT["old_defaults"] = rec
rec, layer = run_ai_deblur(img, "auto", img.get_selected_drawables(), strength=50.0, mask="auto")
RESULT["after_old"] = rec
img.delete()

# 3. the people mask in GIMP: a person on a photo
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(PHOTO))
lay = image.get_layers()[0]
rec, layer = run_ai_deblur(image, "old-photo", [lay], strength=50.0, mask="auto")
RESULT["old_person"] = rec
if layer is not None:
    m = pixels(layer.get_mask(), "Y float")
    w, h = layer.get_width(), layer.get_height()
    x0, y0, x1, y1 = PERSON
    inside = [m[y * w + x] for y in range(y0, y1, 2) for x in range(x0, x1, 2)]
    rest = [m[y * w + x] for y in range(0, h, 2) for x in range(0, w, 2) if not (x0 <= x < x1 and y0 <= y < y1)]
    rec["mask_inside"] = sum(inside) / len(inside)
    rec["mask_rest"] = sum(rest) / len(rest)
    rec["mask_step"] = max(max(abs(m[y * w + x + 1] - m[y * w + x]) for x in range(w - 1)) for y in range(0, h, 3))
image.delete()
'''


def _person_photo(path):
    """skimage's astronaut on a quiet background (a person, her face visible); returns her box
    (x0, y0, x1, y1) in the photo: head to the bottom of the frame, shoulder to shoulder."""
    import cv2
    import numpy as np
    import skimage.data
    rng = np.random.default_rng(4)
    bg = cv2.resize(rng.integers(90, 160, (20, 24, 3)).astype(np.uint8), (960, 800), interpolation=cv2.INTER_CUBIC)
    bg[288:800, 300:812] = skimage.data.astronaut()
    cv2.imwrite(str(path), cv2.cvtColor(bg, cv2.COLOR_RGB2BGR))
    return (300 + 40, 288 + 20, 300 + 360, 800)


@pytest.fixture(scope="module")
def runs(gimp_profile, tmp_path_factory):
    photo = tmp_path_factory.mktemp("photo") / "person.png"
    person = _person_photo(photo)
    runtime = tempfile.mkdtemp(prefix="aid-")  # short: a Unix socket path has at most 107 bytes
    try:
        code = gimp_batch.HELPERS + "PHOTO = %r\nPERSON = %r\n" % (str(photo), person) + CODE
        res = gimp_batch.run_python(code, profile=str(gimp_profile), timeout=600, check=False,
                                    extra_env={"AI_DEBLUR_RUNTIME_DIR": runtime})
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert "error" not in res, f"{res.get('error')}\n{res.get('traceback')}\n{res.get('_log', '')[-3000:]}"
    return res


def test_hybrid_adds_a_black_masked_sharpen_layer(runs):
    """One action: the AI layer with its mask and, above it, the unsharp-mask layer (120 %, 1.5 px,
    threshold 5) with a black mask; the source is untouched; the sharpening layer is selected (not its
    mask), and a second procedure on it succeeds."""
    rec = runs["hybrid"]
    assert rec["status"] == "success", rec
    assert rec["layers"][0] == "Sharpen - paint in (120%, 1.5 px, threshold 5)", rec["layers"]
    assert rec["layers"][1].startswith("AI Deblur - ") and rec["layers"][2] == "source", rec["layers"]
    assert len(rec["layers"]) == 3
    assert rec["report"]["sharpen_layer"] == {"amount": 120.0, "radius": 1.5, "threshold": 5.0}
    assert rec["report"]["layer_names"][-1] == rec["layers"][0]
    assert rec["sharpen_mask_max"] == 0.0, "the sharpening layer's mask is not black"
    assert rec["ai_has_mask"]
    d = rec["detail"]
    assert d["sharpen"] > 1.05 * d["ai"], d       # the sharpening layer is sharper than the AI layer
    assert rec["source_unchanged"] and rec["dirty"]
    assert rec["selected"] == [{"id": rec["new"]["id"], "type": "Layer", "name": rec["new"]["name"]}] \
        and not rec["new"]["edit_mask"], rec
    after = runs["after_hybrid"]
    assert after["status"] == "success", after
    assert after["layers"][0].startswith("AI Deblur - focus"), after["layers"]


def test_hybrid_arguments_reach_the_engine(runs):
    rec = runs["hybrid_args"]
    assert rec["status"] == "success", rec
    assert rec["report"]["sharpen_layer"] == {"amount": 200.0, "radius": 2.5, "threshold": 0.0}
    # made on the source again: directly above it, the AI layer, then the sharpening layer
    assert rec["layers"][-3] == "Sharpen - paint in (200%, 2.5 px, threshold 0)", rec["layers"]
    assert rec["layers"][-2].startswith("AI Deblur - ") and rec["layers"][-2].endswith(", 40%"), rec["layers"]


def test_old_photo_controls_are_procedure_arguments(runs):
    """Grain and background softening are typed arguments a script sets; the engine uses them (its
    report says what it did); the defaults are the guide's (the measured grain, 0.5 px); the stack is
    the background (the AI pass, softened outside the people) under the subjects' sharpening."""
    keep = runs["old_keep_grain"]
    assert keep["status"] == "success", keep
    op = keep["report"]["old_photo"]
    assert op["grain_removal"] == 0.0 and op["background_soften"] == 2.0, op
    assert op["denoiser"] == "none (grain kept)"
    assert keep["report"]["layer_names"] == ["Old Photo Clarity - background", "Old Photo Clarity - subjects, 50%"]
    default = runs["old_defaults"]
    assert default["status"] == "success", default
    op = default["report"]["old_photo"]
    assert op["grain_removal"] == 50.0 and op["background_soften"] == 0.5, op
    assert op["people_sharpening"]["amount"] == pytest.approx(0.5)
    after = runs["after_old"]
    assert after["status"] == "success", after
    assert after["selected"] == [{"id": after["new"]["id"], "type": "Layer", "name": after["new"]["name"]}]


def test_old_photo_people_mask_in_gimp(runs):
    """On a photo with a person, the subjects layer's mask holds her at least 2x stronger than the rest
    of the photo, and its edge is feathered (no step a line would show)."""
    rec = runs["old_person"]
    assert rec["status"] == "success", rec
    assert rec["report"]["old_photo"]["subject"] == "people", rec["report"]["old_photo"]
    assert rec["mask_inside"] >= 2 * max(rec["mask_rest"], 1e-3), rec
    assert rec["mask_step"] < 0.08, rec["mask_step"]

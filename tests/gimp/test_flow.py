"""The flow a photographer follows in the real GIMP 3 (batch mode, one GIMP launch): corrections one
after another on the same image, each leaving its new layer (not its mask) as the selected drawable;
a layer mask given as the drawable stands for its layer; short layer names; Analyze Blur makes no
undo step when it adds nothing; images too small to measure are refused with a message.
"""
import json
import re
import shutil
import tempfile

import pytest

from gimp_env import gimp_batch

CODE = r'''
import array, json, math


def pattern(w, h, blur=0, noise=False):
    """Sharp texture on the left, smooth on the right; blur > 0: horizontal motion blur."""
    import random
    rnd = random.Random(3)
    def g(x, y):
        if noise:
            return rnd.random()
        if x < w // 2:
            return 0.5 + 0.35 * math.sin(x * 1.3 + y * 0.7) * (1 if (x // 4 + y // 4) % 2 else -1)
        return 0.35 + 0.3 * math.sin(x * 0.05) * math.cos(y * 0.04)
    vals = array.array("f")
    for y in range(h):
        for x in range(w):
            if blur:
                v = sum(g(min(w - 1, max(0, x + d - blur // 2)), y) for d in range(blur)) / blur
            else:
                v = g(x, y)
            vals.extend((v, v * 0.9 + 0.05, v * 0.8 + 0.1))
    return vals.tobytes()


def make(w, h, **kw):
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    lay = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
    img.insert_layer(lay, None, 0)
    buf = lay.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' float", pattern(w, h, **kw))
    buf.flush()
    return img, lay


img, src = make(160, 120, blur=7)
RESULT["steps"] = []
rec, first = run_ai_deblur(img, "auto", [src], strength=50.0, mask="auto")
RESULT["steps"].append(rec)
# the next call takes what GIMP has selected now, as the menu would
rec, second = run_ai_deblur(img, "focus", img.get_selected_drawables(), strength=50.0, mask="full", radius=2.0)
RESULT["steps"].append(rec)
# a layer mask as the drawable: works on that mask's layer
target = second if second is not None else src
RESULT["mask_owner"] = {"id": target.get_id(), "position": img.get_item_position(target)}
rec, third = run_ai_deblur(img, "motion", [target.get_mask()] if target.get_mask() else [target],
                  strength=50.0, mask="hidden", length=7.0, angle=180.0)
RESULT["steps"].append(rec)
rec, fourth = run_ai_deblur(img, "smart-sharpen", img.get_selected_drawables(), strength=50.0, mask="subject")
RESULT["steps"].append(rec)
rec, fifth = run_ai_deblur(img, "shake", img.get_selected_drawables(), strength=50.0, mask="full", kernel_size=9)
RESULT["steps"].append(rec)
img.delete()

# Analyze Blur: no undo step (the image stays clean) when it adds nothing
img, src = make(128, 96, noise=True)
img.clean_all()
rec, layer = run_ai_deblur(img, "analyze", [src], show_kernel=True)
rec["dirty"] = img.is_dirty()
RESULT["analyze_sharp"] = rec
img.clean_all()
rec, layer = run_ai_deblur(img, "analyze", [src], show_kernel=False)
rec["dirty"] = img.is_dirty()
RESULT["analyze_no_kernel"] = rec
img.delete()
# ... and one undo step with its kernel layer, which is then the selected layer
img, src = make(160, 120, blur=9)
img.clean_all()
rec, layer = run_ai_deblur(img, "analyze", [src], show_kernel=True)
rec["dirty"] = img.is_dirty()
RESULT["analyze_blurred"] = rec
img.delete()

# too small to measure: refused, nothing added
img, src = make(8, 8)
RESULT["tiny"] = {}
for proc, args in (("auto", {"strength": 50.0, "mask": "auto"}), ("analyze", {"show_kernel": True})):
    rec, layer = run_ai_deblur(img, proc, [src], **args)
    rec["layers_after"] = [l.get_name() for l in img.get_layers()]
    RESULT["tiny"][proc] = rec
img.delete()
'''

# GIMP itself appends " #N" to a name already taken in the image (two steps can end in the same action)
NAME = re.compile(r"^(AI Deblur - [^:]+|Old Photo Clarity), \d+%( #\d+)?$")


@pytest.fixture(scope="module")
def flow(gimp_profile):
    runtime = tempfile.mkdtemp(prefix="aid-")  # short: a Unix socket path has at most 107 bytes
    try:
        res = gimp_batch.run_python(gimp_batch.HELPERS + CODE, profile=str(gimp_profile), timeout=600, check=False,
                                    extra_env={"AI_DEBLUR_RUNTIME_DIR": runtime})
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert "error" not in res, f"{res.get('error')}\n{res.get('traceback')}\n{res.get('_log', '')[-3000:]}"
    return res


def test_corrections_in_a_row_leave_the_new_layer_selected(flow):
    steps = flow["steps"]
    assert [s["proc"] for s in steps] == ["auto", "focus", "motion", "smart-sharpen", "shake"]
    for s in steps:
        assert s["status"] == "success", s
        new = s["new"]
        assert not new["edit_mask"], s
        assert s["selected"] == [{"id": new["id"], "type": "Layer", "name": new["name"]}], s
        assert s["selected_layers"] == [new["id"]], s


def test_a_layer_mask_given_works_on_its_layer(flow):
    motion = flow["steps"][2]
    assert motion["status"] == "success", motion
    owner = flow["mask_owner"]
    # the new layer is inserted directly above the mask's layer (which moved down by one)
    assert motion["new"]["position"] == owner["position"]
    assert motion["report"]["mode"] == "motion"


def test_layer_names_are_short_and_human(flow):
    names = {s["proc"]: s["new"]["name"] for s in flow["steps"]}
    for proc, name in names.items():
        assert NAME.match(name) and len(name) <= 60, (proc, name)
    assert names["motion"] == "AI Deblur - motion 7 px at 180\u00b0, 50%" or \
        names["motion"] == "AI Deblur - motion 7 px at 0\u00b0, 50%", names["motion"]
    assert names["focus"] == "AI Deblur - focus 2 px, 50%", names["focus"]
    shake = flow["steps"][4]["report"]
    if shake.get("fallback") == "sharpen":      # no kernel explained this (sharpened) layer: do no harm
        assert re.match(r"^AI Deblur - gentle sharpening, 50%( #\d+)?$", names["shake"]), names["shake"]
    else:
        assert re.match(r"^AI Deblur - shake \d+x\d+ px, 50%$", names["shake"]), names["shake"]
    assert names["smart-sharpen"].startswith("AI Deblur - sharpen "), names["smart-sharpen"]
    sharpen = flow["steps"][3]
    assert sharpen["report"]["layer_names"][0] == "AI Deblur - background smoothing"
    assert sharpen["report"]["layer_names"][-1] == names["smart-sharpen"]


def test_analyze_without_a_kernel_layer_makes_no_undo_step(flow):
    rec = flow["analyze_no_kernel"]
    assert rec["status"] == "success", rec
    assert rec["layers"] == ["source"], rec
    assert rec["dirty"] is False, "the image was marked changed (an undo step was added)"
    # Show kernel ticked on noise: no kernel is estimated (the engine says why), so nothing is added
    # and no undo step is made either (before, an empty undo group was)
    rec = flow["analyze_sharp"]
    assert rec["status"] == "success", rec
    if "new" in rec:   # the engine found a kernel after all: then it is one undo step
        assert rec["dirty"] is True
    else:
        assert rec["layers"] == ["source"], rec
        assert rec["dirty"] is False, "the image was marked changed (an empty undo step was added)"


def test_analyze_kernel_layer_is_one_step_and_selected(flow):
    rec = flow["analyze_blurred"]
    assert rec["status"] == "success", rec
    assert "new" in rec, rec.get("report")
    assert rec["dirty"] is True
    assert rec["new"]["name"].startswith("AI Deblur - kernel ("), rec["new"]["name"]
    assert rec["selected_layers"] == [rec["new"]["id"]]


@pytest.mark.parametrize("proc", ["auto", "analyze"])
def test_tiny_images_are_refused_with_a_message(flow, proc):
    rec = flow["tiny"][proc]
    assert rec["status"] == "execution-error", rec
    assert "8x8 px" in rec["message"] and "at least 32 px" in rec["message"], rec["message"]
    assert rec["layers_after"] == ["source"]

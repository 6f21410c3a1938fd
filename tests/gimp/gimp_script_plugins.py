# Runs INSIDE GIMP (python-fu-eval) through tools.gimp_batch.run_python, with PARAMS (dict),
# RESULT (dict), call_procedure() and Gimp / Gegl / Gio in scope. Builds every test case, calls the
# AI Deblur procedures non-interactively, saves / reopens XCFs and records what the tests assert on.
import array
import hashlib
import json
import math
import os

OUT = PARAMS["out_dir"]
PREC = {
    "u8": Gimp.Precision.U8_NON_LINEAR,
    "u16": Gimp.Precision.U16_NON_LINEAR,
    "u16lin": Gimp.Precision.U16_LINEAR,
    "f32": Gimp.Precision.FLOAT_NON_LINEAR,
    "f32lin": Gimp.Precision.FLOAT_LINEAR,
}


def fmt_of(drawable):
    if drawable.is_gray():
        return ("Y'A float", 2) if drawable.has_alpha() else ("Y' float", 1)
    return ("R'G'B'A float", 4) if drawable.has_alpha() else ("R'G'B' float", 3)


def read(drawable, fmt=None):
    fmt = fmt or fmt_of(drawable)[0]
    w, h = drawable.get_width(), drawable.get_height()
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt, Gegl.AbyssPolicy.CLAMP))


def digest(drawable):
    return hashlib.sha256(read(drawable)).hexdigest()


def _gray(x, y, w):
    if x < w // 2:
        return 0.5 + 0.35 * math.sin(x * 1.3 + y * 0.7) * (1 if (x // 4 + y // 4) % 2 else -1)
    return 0.35 + 0.3 * math.sin(x * 0.05) * math.cos(y * 0.04)


def pattern(w, h, c, alpha, blur=0):
    """Left half: sharp texture; right half: smooth; blur > 0: horizontal motion blur of that length.
    Alpha (if any): a horizontal ramp."""
    vals = array.array("f")
    nc = c - 1 if alpha else c
    for y in range(h):
        for x in range(w):
            if blur:
                xs = [min(w - 1, max(0, x + d - blur // 2)) for d in range(blur)]
                v = sum(_gray(xx, y, w) for xx in xs) / blur
            else:
                v = _gray(x, y, w)
            for ch in range(nc):
                vals.append(min(1.0, max(0.0, v * (1.0 - 0.15 * ch) + 0.05 * ch)))
            if alpha:
                vals.append(0.25 + 0.75 * x / max(1, w - 1))
    return vals.tobytes()


def make_image(case):
    w, h = case.get("size", (128, 96))
    rgb = case["base"] == "rgb"
    image = Gimp.Image.new_with_precision(w, h, Gimp.ImageBaseType.RGB if rgb else Gimp.ImageBaseType.GRAY,
                                          PREC[case["precision"]])
    alpha = case.get("alpha", False)
    if rgb:
        ltype = Gimp.ImageType.RGBA_IMAGE if alpha else Gimp.ImageType.RGB_IMAGE
    else:
        ltype = Gimp.ImageType.GRAYA_IMAGE if alpha else Gimp.ImageType.GRAY_IMAGE
    bg = Gimp.Layer.new(image, "background", w, h, ltype, 100, Gimp.LayerMode.NORMAL)
    image.insert_layer(bg, None, 0)
    lw, lh = case.get("layer_size", (w, h))
    src = Gimp.Layer.new(image, "source", lw, lh, ltype, 100, Gimp.LayerMode.NORMAL)
    image.insert_layer(src, None, 0)
    ox, oy = case.get("offsets", (0, 0))
    src.set_offsets(ox, oy)
    fmt, c = fmt_of(src)
    buf = src.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, lw, lh), fmt, pattern(lw, lh, c, alpha, case.get("blur", 0)))
    buf.flush()
    src.update(0, 0, lw, lh)
    top = Gimp.Layer.new(image, "top", 16, 16, ltype, 100, Gimp.LayerMode.NORMAL)
    image.insert_layer(top, None, 0)
    if case.get("selection"):
        x, y, sw, sh = case["selection"]
        image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, sw, sh)
    if case.get("ellipse"):
        x, y, sw, sh = case["ellipse"]
        image.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, sw, sh)
    return image, src


def floats(data):
    a = array.array("f")
    a.frombytes(data)
    return a


def mask_stats(layer):
    mask = layer.get_mask()
    if mask is None:
        return None
    v = floats(read(mask, "Y float"))
    w, h = mask.get_width(), mask.get_height()
    return {"min": min(v), "max": max(v), "mean": sum(v) / len(v), "distinct": len({round(x, 3) for x in v}),
            "n": len(v), "corners": [v[0], v[w - 1], v[(h - 1) * w], v[h * w - 1]],
            "center_max": max(v[(h // 2) * w + w // 4: (h // 2) * w + 3 * w // 4])}


def layer_info(layer):
    ok, ox, oy = layer.get_offsets()
    v = floats(read(layer))
    return {"name": layer.get_name(), "size": [layer.get_width(), layer.get_height()], "offsets": [ox, oy],
            "alpha": layer.has_alpha(), "gray": layer.is_gray(), "mask": mask_stats(layer),
            "finite": all(math.isfinite(x) for x in v), "min": min(v), "max": max(v)}


def alpha_of(layer, x, y, w, h):
    """Alpha values of a rectangle (drawable coordinates)."""
    fmt, c = fmt_of(layer)
    data = bytes(layer.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, fmt, Gegl.AbyssPolicy.CLAMP))
    v = floats(data)
    return [round(v[i], 4) for i in range(c - 1, len(v), c)]


def names(image):
    return [l.get_name() for l in image.get_layers()]


def run_case(case):
    rec = {"id": case["id"]}
    image, src = make_image(case)
    before = digest(src)
    nonempty, sx, sy, sw, sh = src.mask_intersect()
    rec["region"] = [sx, sy, sw, sh]
    ok, sox, soy = src.get_offsets()
    rec["source_offsets"] = [sox, soy]
    rec["layers_before"] = names(image)
    sel_before = Gimp.Selection.bounds(image)
    status, values = call_procedure("plug-in-ai-deblur-" + case["proc"], image, [src], **case.get("args", {}))
    rec["selection_kept"] = list(Gimp.Selection.bounds(image)) == list(sel_before)
    rec["status"] = status
    if status != "success":
        rec["message"] = values
        rec["layers_after"] = names(image)
        image.delete()
        return rec
    new, report = values[0], values[1]
    rec["report"] = json.loads(report) if report else {}
    rec["layers_after"] = names(image)
    rec["source_unchanged"] = digest(src) == before
    if new is not None:
        rec["new"] = layer_info(new)
        rec["new_is_returned_layer"] = new.get_name() in rec["layers_after"]
        if case.get("alpha") and case["proc"] != "analyze":
            rec["alpha_kept"] = alpha_of(new, 0, 0, sw, sh) == alpha_of(src, sx, sy, sw, sh)
    path = os.path.join(OUT, case["id"] + ".xcf")
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path), None)
    image.delete()
    # reopen
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    layers = image.get_layers()
    rec["reopened_layers"] = [l.get_name() for l in layers]
    by_name = {l.get_name(): l for l in layers}
    if "new" in rec and rec["new"]["name"] in by_name:
        rec["reopened_new"] = layer_info(by_name[rec["new"]["name"]])
    # The engine's layer stack (old photo, subject mask): every layer's mask, from the reopened XCF.
    rec["stack_masks"] = {n: mask_stats(by_name[n]) for n in rec.get("report", {}).get("layer_names", []) if n in by_name}
    rec["stack_mask_sum"] = None
    stack = [by_name[n] for n in rec.get("report", {}).get("layer_names", []) if n in by_name]
    if len(stack) == 2 and all(l.get_mask() is not None for l in stack):
        a, b = (floats(read(l.get_mask(), "Y float")) for l in stack)
        sums = [x + y for x, y in zip(a, b)]
        rec["stack_mask_sum"] = [min(sums), max(sums)]
    rec["reopened_source_unchanged"] = digest(by_name["source"]) == before
    image.delete()
    return rec


def run_error_case(case):
    """Errors: the procedure must fail with a message and leave no layer behind."""
    rec = {"id": case["id"]}
    cfg_path = PARAMS["config_path"]
    with open(cfg_path) as fh:
        saved = fh.read()
    try:
        if case.get("python"):
            cfg = json.loads(saved)
            cfg["python"] = case["python"]
            with open(cfg_path, "w") as fh:
                json.dump(cfg, fh)
        if case.get("indexed"):
            image, src = make_image(dict(case, base="rgb", precision="u8"))
            image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16,
                                  False, False, "")
            target = src
        elif case.get("group"):
            image, src = make_image(dict(case, base="rgb", precision="u8"))
            group = Gimp.GroupLayer.new(image, "group") if hasattr(Gimp, "GroupLayer") else Gimp.Layer.group_new(image)
            image.insert_layer(group, None, 0)
            target = group
        else:
            image, src = make_image(case)
            target = src
        rec["layers_before"] = names(image)
        before = digest(src) if not case.get("indexed") else None
        status, values = call_procedure("plug-in-ai-deblur-" + case["proc"], image, [target],
                                        **case.get("args", {}))
        rec["status"] = status
        rec["message"] = values if isinstance(values, str) else None
        rec["layers_after"] = names(image)
        rec["undo_enabled"] = image.undo_is_enabled()
        if before is not None:
            rec["source_unchanged"] = digest(src) == before
        image.delete()
    finally:
        with open(cfg_path, "w") as fh:
            fh.write(saved)
    return rec


RESULT["cases"] = {}
for case in PARAMS["cases"]:
    try:
        RESULT["cases"][case["id"]] = run_case(case)
    except Exception as exc:  # noqa: BLE001
        import traceback
        RESULT["cases"][case["id"]] = {"id": case["id"], "status": "script-error",
                                       "message": traceback.format_exc()}
for case in PARAMS["error_cases"]:
    try:
        RESULT["cases"][case["id"]] = run_error_case(case)
    except Exception as exc:  # noqa: BLE001
        import traceback
        RESULT["cases"][case["id"]] = {"id": case["id"], "status": "script-error",
                                       "message": traceback.format_exc()}
RESULT["registered"] = {}
for n in PARAMS["procedures"]:
    proc = Gimp.get_pdb().lookup_procedure(n)
    RESULT["registered"][n] = None if proc is None else {
        "label": proc.get_menu_label(), "paths": list(proc.get_menu_paths() or []),
        "args": [a.name for a in proc.get_arguments()]}

#!/usr/bin/env python3
# AI Deblur for GIMP 3: motion / focus / camera-shake deblurring, smart sharpening, old-photo clarity
# and blur analysis. The pixel maths runs in a separate engine process (deblur_core.worker, in the
# venv install.py created); this file only talks to GIMP (standard library + gi).
# install.py rewrites the shebang above to a system Python that has GIMP's gi bindings.

import gettext
import json
import os
import re
import sys
import threading
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
gi.require_version("Pango", "1.0")
from gi.repository import Gdk, Gimp, GimpUi, Gegl, GLib, GObject, Gtk, Pango  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import ai_deblur_client as client  # noqa: E402

PLUG_IN_BINARY = "ai-deblur"
# Translations, as GIMP's own Python plug-ins do it (their domain is "gimp30-python"): the plug-in's
# gettext domain, its compiled catalogs in locale/<lang>/LC_MESSAGES/ai-deblur.mo inside the plug-in's
# folder (a folder GIMP requires to exist: install.py makes it). Without a catalog for the user's
# language the English strings show, and nothing is printed.
TEXT_DOMAIN = "ai-deblur"
LOCALE_DIR = "locale"  # relative to the plug-in's folder, as Gimp.PlugIn.do_set_i18n wants it
gettext.bindtextdomain(TEXT_DOMAIN, os.path.join(os.path.dirname(os.path.realpath(__file__)), LOCALE_DIR))
gettext.textdomain(TEXT_DOMAIN)
_ = gettext.gettext


def N_(message):
    """Marks a string for translation where it is defined; _() translates it where it is shown."""
    return message


MENU_PATH = "<Image>/Filters/Enhance/AI Deblur"
AUTHOR = "AI Deblur for GIMP contributors"

# procedure name -> (engine mode or None for analyze, menu label, blurb)
PROCEDURES = {
    "plug-in-ai-deblur-auto": ("auto", N_("Auto Deblur..."),
                               N_("Detect the kind of blur and remove it")),
    "plug-in-ai-deblur-motion": ("motion", N_("Motion Deblur..."),
                                 N_("Remove linear motion blur (length and angle estimated or given)")),
    "plug-in-ai-deblur-focus": ("focus", N_("Focus Correction..."),
                                N_("Correct out-of-focus (defocus) blur")),
    "plug-in-ai-deblur-shake": ("shake", N_("Camera Shake..."),
                                N_("Remove camera-shake blur with a blindly estimated kernel")),
    "plug-in-ai-deblur-smart-sharpen": ("sharpen", N_("Smart Sharpen..."),
                                        N_("Halo-free sharpening for slight softness")),
    "plug-in-ai-deblur-old-photo": ("old-photo", N_("Old Photo Clarity..."),
                                    N_("Restore clarity to soft scanned or old photographs")),
    "plug-in-ai-deblur-analyze": (None, N_("Analyze Blur..."),
                                  N_("Report the kind and amount of blur and whether it can be fixed")),
}

# The guide's hybrid workflow (README: "AI pass + sharpen layer"): a mode's correction plus a sharpening
# layer with a black mask above it (PROCEDURES keeps one procedure per engine mode).
HYBRID = {
    "plug-in-ai-deblur-hybrid": ("auto", N_("AI Deblur + Sharpen Layer..."),
                                 N_("Auto deblur, plus an unsharp-mask layer with a black mask above it: paint it in "
                                    "with a soft white brush where more crispness should show (eyes, hair)")),
}
SHARPEN_LAYER = {"sharpen-amount": 120.0, "sharpen-radius": 1.5, "sharpen-threshold": 5}  # 120 %, 1.5 px, 5

MASK_CHOICES = [
    # nick, label, help
    ("auto", N_("Auto (blur map)"), N_("Apply where the image is blurred, computed by the engine")),
    ("full", N_("Full (white)"), N_("Apply everywhere")),
    ("hidden", N_("Hidden (black)"), N_("Add a black mask: paint white where the correction should show")),
    ("selection", N_("Selection"), N_("Apply inside the current selection")),
    ("faces", N_("Faces"), N_("Apply on detected faces")),
    ("subject", N_("Subject"), N_("Apply on the main subject")),
]
# The engine cannot measure blur on less than this (deblur_core.classifier.analyze): smaller layers
# and selections are refused with a message instead of getting a meaningless "already sharp" layer.
MIN_SIDE = 32

ENGINE_MASK = {"auto": "auto", "faces": "faces", "subject": "subject",
               "full": "full", "hidden": "full", "selection": "full"}


# ---------------------------------------------------------------------------------------------------
class PlugInError(Exception):
    """Failure reported to GIMP as an execution error with this message."""


def _error(procedure, message, status=Gimp.PDBStatusType.EXECUTION_ERROR):
    err = GLib.Error.new_literal(GLib.quark_from_string("ai-deblur"), str(message), 0) \
        if hasattr(GLib.Error, "new_literal") else GLib.Error(str(message))
    return procedure.new_return_values(status, err)


def _success(layer, report):
    return Gimp.ValueArray.new_from_values([
        GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS),
        GObject.Value(Gimp.Layer, layer),
        GObject.Value(GObject.TYPE_STRING, json.dumps(report, default=str)),
    ])


def _float_format(drawable):
    """Babl format (sRGB-encoded float) and channel count for reading/writing the drawable."""
    alpha = drawable.has_alpha()
    if drawable.is_gray():
        return ("Y'A float", 2) if alpha else ("Y' float", 1)
    if drawable.is_rgb():
        return ("R'G'B'A float", 4) if alpha else ("R'G'B' float", 3)
    raise PlugInError(_("Indexed layers cannot be deblurred: convert the image with Image > Mode > RGB first."))


# 8- and 16-bit sRGB-encoded layers travel to the engine as integers (a quarter / half of the float
# bytes, and GIMP copies them without a conversion); linear and float images travel as float so
# nothing is lost.
_INTEGER_WIRE = {Gimp.Precision.U8_NON_LINEAR: (" u8", "u8"), Gimp.Precision.U16_NON_LINEAR: (" u16", "u16")}
_MASK_FORMAT = {"f32": "Y float", "u16": "Y u16", "u8": "Y u8"}  # masks are coverage: linear


def _pixel_format(image, drawable):
    """(Babl format, channels, wire type) for sending the drawable to the engine and writing back."""
    fmt, channels = _float_format(drawable)
    suffix, dtype = _INTEGER_WIRE.get(image.get_precision(), (" float", "f32"))
    return fmt.replace(" float", suffix), channels, dtype


def _layer_type(image, has_alpha):
    if image.get_base_type() == Gimp.ImageBaseType.GRAY:
        return Gimp.ImageType.GRAYA_IMAGE if has_alpha else Gimp.ImageType.GRAY_IMAGE
    return Gimp.ImageType.RGBA_IMAGE if has_alpha else Gimp.ImageType.RGB_IMAGE


def _check_alive(image, drawable):
    """The image and layer still exist (the user can close the image while a dialog or the engine
    works): asking GIMP about a closed image only logs criticals, so say it plainly instead."""
    if image is None or not image.is_valid() or drawable is None or not drawable.is_valid():
        raise PlugInError(_("The image or layer was closed while AI Deblur was working: nothing was changed."))


def _check_input(image, drawables):
    """The one layer to work on: a layer mask stands for its layer (after a correction GIMP leaves
    the mask selected in some versions and workflows); channels and groups are refused."""
    if not drawables or len(drawables) != 1:
        raise PlugInError(_("Select exactly one layer to deblur."))
    drawable = drawables[0]
    if isinstance(drawable, Gimp.LayerMask):
        drawable = Gimp.Layer.from_mask(drawable)
    if drawable is not None and drawable.is_valid() and (image is None or not image.is_valid()):
        image = drawable.get_image()
    _check_alive(image, drawable)
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PlugInError(_("Indexed images cannot be deblurred: convert the image with Image > Mode > RGB first."))
    if not isinstance(drawable, Gimp.Layer):
        raise PlugInError(_("AI Deblur works on layers: select a layer, not a channel."))
    if drawable.is_group():
        raise PlugInError(_("Layer groups cannot be deblurred: select a single layer inside the group."))
    nonempty, x, y, w, h = drawable.mask_intersect()
    if nonempty and min(w, h) < MIN_SIDE:
        what = _("The selected part of the layer") if not Gimp.Selection.is_empty(image) else _("The layer")
        raise PlugInError(_("%s is only %dx%d px: AI Deblur needs at least %d px on each side to measure "
                            "the blur.") % (what, w, h, MIN_SIDE))
    return image, drawable


def _read_region(image, drawable):
    """Pixels of the selection's bounds on the drawable: (x, y, w, h, format, channels, wire type, bytes)."""
    _check_alive(image, drawable)
    nonempty, x, y, w, h = drawable.mask_intersect()
    if not nonempty or w <= 0 or h <= 0:
        raise PlugInError(_("The selection does not touch the active layer: nothing to deblur."))
    fmt, channels, dtype = _pixel_format(image, drawable)
    buf = drawable.get_buffer()
    data = buf.get(Gegl.Rectangle.new(x, y, w, h), 1.0, fmt, Gegl.AbyssPolicy.CLAMP)
    return x, y, w, h, fmt, channels, dtype, data


def _engine_call(op, image, drawable, options, progress):
    """Reach the engine (the standby worker, or a new one that imports while GIMP reads the layer's
    region), send the request.

    Returns ((x, y, w, h, fmt, channels, dtype), report, outputs, timing {connect_s, read_s, worker_s, worker});
    engine failures come back as PlugInError. Afterwards the worker is either gone or waiting, idle,
    as the standby for the next call."""
    worker = client.Worker(standby=True)
    try:
        t0 = time.monotonic()
        worker.start()  # a waiting standby worker, or a new one that imports while GIMP reads the layer
        t_connect = time.monotonic() - t0
        t0 = time.monotonic()
        x, y, w, h, fmt, channels, dtype, data = _read_region(image, drawable)
        t_read = time.monotonic() - t0
        t0 = time.monotonic()
        report, outputs = worker.request(op, w, h, channels, data, options, progress=progress, dtype=dtype)
    except client.WorkerError as exc:
        raise PlugInError(str(exc)) from None
    finally:
        worker.close()
    timing = {"connect_s": round(t_connect, 3), "read_s": round(t_read, 3),
              "worker_s": round(time.monotonic() - t0, 3), "worker": worker.source}
    return (x, y, w, h, fmt, channels, dtype), report, outputs, timing


def _progress(base=0.0, span=1.0):
    def cb(fraction, message):
        if message:
            Gimp.progress_set_text(message)
        Gimp.progress_update(base + span * max(0.0, min(1.0, fraction)))
    return cb


def _num(text):
    """'19.0' -> '19', '1.25' -> '1.2': numbers as a photographer reads them in a layer name."""
    try:
        val = float(text)
    except (TypeError, ValueError):
        return str(text)
    return "%.0f" % val if abs(val - round(val)) < 0.05 or abs(val) >= 10 else "%.1f" % val


def _what_was_done(report, mode):
    """A few plain words for what the engine did, from its report's fields (blur_type, action,
    kernel_size): 'shake 19x13 px', 'motion 12 px at 30°', 'focus 3.5 px', 'sharpen 1.5 px'."""
    action = str(report.get("action") or "").strip()
    btype = str(report.get("blur_type") or "").strip()
    ks = report.get("kernel_size")
    size = ("%dx%d px" % (int(ks[0]), int(ks[1]))) if isinstance(ks, (list, tuple)) and len(ks) == 2 else ""
    low = action.lower()
    m = re.match(r"motion ([\d.]+) px at (-?[\d.]+) degrees", low)
    if m:
        return "motion %s px at %s\u00b0" % (_num(m.group(1)), _num(m.group(2)))
    if low.startswith("camera shake"):
        m = re.search(r"(\d+)x\1 regions \((\d+) with their own", low)
        grid = ", %sx%s regions" % (m.group(1), m.group(1)) if m and int(m.group(2)) > 0 else ""
        return ("shake " + size).strip() + grid
    m = re.match(r"(soft )?focus (?:radius|sigma) ([\d.]+) px", low)
    if m:
        return "%sfocus %s px" % ("soft " if m.group(1) else "", _num(m.group(2)))
    m = re.match(r"smart sharpen radius ([\d.]+) px, amount ([\d.]+)", low)
    if m:
        return "sharpen %s px, amount %s" % (_num(m.group(1)), _num(m.group(2)))
    if "already sharp" in low:
        return "looks sharp: gentle sharpening"
    if low.startswith("gentle sharpening"):     # the estimated blur was not trusted (do no harm)
        return "gentle sharpening"
    if low.startswith("custom kernel"):
        return ("own kernel " + size).strip()
    if low.startswith("old photo"):
        return "old photo clarity"
    words = {"defocus": "focus", "gaussian": "soft focus", "shake": "shake", "motion": "motion"}
    base = words.get(btype) or action or btype or mode or "correction"
    if size and base in ("shake", "motion", "focus", "soft focus"):
        base += " " + size
    return base[:60]


def _layer_name(report, mode, strength):
    """The new layer's name: short and human, e.g. 'AI Deblur - shake 19x13 px, 50%'."""
    try:
        pct = float(report.get("strength", strength))
    except (TypeError, ValueError):
        pct = float(strength)
    what = _what_was_done(report, mode)
    prefix = "Old Photo Clarity" if what == "old photo clarity" else "AI Deblur - " + what
    return "%s, %.0f%%" % (prefix, pct)


def _stack_names(report, title):
    """Names for the engine's layer stack (bottom to top): its own names in the same short style
    ('Old Photo Clarity - subjects'); the layer that carries the correction itself gets ``title``."""
    names = []
    engine_names = [str(n) for n in report.get("layers") or []]
    for i, name in enumerate(engine_names):
        if name == report.get("title"):
            names.append(title)
        else:
            name = name.replace(": ", " - ", 1)[:100]
            if i == len(engine_names) - 1:   # the top layer carries the correction: say its strength
                name += title[title.rfind(","):] if "," in title else ""
            names.append(name)
    return names


def _mode_options(mode, config):
    """Engine options from the procedure's typed arguments (0 = auto, not sent)."""
    opts = {}

    def get(name):
        try:
            return config.get_property(name)
        except TypeError:
            return None

    if mode == "motion":
        length, angle = get("length"), get("angle")
        if length:
            opts["length"] = float(length)
        if angle:
            opts["angle"] = float(angle) % 180.0
            opts["angle_set"] = True
    elif mode == "focus":
        radius = get("radius")
        if radius:
            opts["radius"] = float(radius)
    elif mode == "shake":
        size = get("kernel-size")
        if size:
            opts["kernel_size"] = int(size)
        regions = get("regions")
        if regions and int(regions) >= 1:     # 0 = auto: the engine's choice
            opts["shake_regions"] = int(regions)
    elif mode == "old-photo":
        for arg, key in (("grain", "grain"), ("background-soften", "background_soften")):
            val = get(arg)
            if val is not None:      # 0 is a value here (keep the grain, no softening), not auto
                opts[key] = float(val)
    elif mode == "sharpen":
        for arg, key in (("radius", "sharpen_radius"), ("amount", "amount"), ("threshold", "threshold")):
            val = get(arg)
            if val:
                opts[key] = float(val)
    return opts


def _write_layer_pixels(layer, fmt, w, h, data):
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), fmt, data)
    buf.flush()
    layer.update(0, 0, w, h)


def _add_mask(image, layer, choice, w, h, mask_bytes, mask_dtype="f32"):
    if choice == "hidden":
        mask = layer.create_mask(Gimp.AddMaskType.BLACK)
        layer.add_mask(mask)
    elif choice == "full":
        mask = layer.create_mask(Gimp.AddMaskType.WHITE)
        layer.add_mask(mask)
    elif choice == "selection":
        kind = Gimp.AddMaskType.WHITE if Gimp.Selection.is_empty(image) else Gimp.AddMaskType.SELECTION
        mask = layer.create_mask(kind)
        layer.add_mask(mask)
    else:
        mask = layer.create_mask(Gimp.AddMaskType.WHITE)
        layer.add_mask(mask)
        if mask_bytes is not None and mask_dtype in _MASK_FORMAT \
                and len(mask_bytes) == w * h * client.ITEMSIZE[mask_dtype]:
            mbuf = mask.get_buffer()
            # Masks are coverage: a linear "Y" format writes the engine's values as they are.
            mbuf.set(Gegl.Rectangle.new(0, 0, w, h), _MASK_FORMAT[mask_dtype], mask_bytes)
            mbuf.flush()
            mask.update(0, 0, w, h)
        _limit_to_selection(image, mask)
    return mask


def _limit_to_selection(image, mask):
    """mask *= selection: fill black through the inverted selection (a partly selected pixel gets
    black in proportion, which multiplies), then put the user's selection back."""
    if Gimp.Selection.is_empty(image):
        return
    saved = Gimp.Selection.save(image)
    try:
        Gimp.Selection.invert(image)
        if not Gimp.Selection.is_empty(image):
            Gimp.context_set_foreground(_black())
            mask.edit_fill(Gimp.FillType.FOREGROUND)
    finally:
        image.select_item(Gimp.ChannelOps.REPLACE, saved)
        image.remove_channel(saved)


def _black():
    color = Gegl.Color.new("black")
    return color


# ---------------------------------------------------------------------------------------------------
def _run_correction(mode, image, drawable, config):
    strength = float(config.get_property("strength"))
    mask_choice = config.get_property("mask") or "auto"
    if mask_choice not in ENGINE_MASK:
        raise PlugInError(_("Unknown mask choice '%s'.") % mask_choice)
    options = {"mode": mode, "strength": strength, "mask": ENGINE_MASK[mask_choice]}
    options.update(_mode_options(mode, config))
    sharpen = _sharpen_layer_options(config)
    if sharpen is not None:
        options["sharpen_layer"] = sharpen
    Gimp.progress_init(_("AI Deblur: %s") % mode)
    Gimp.progress_update(0.02)
    region, report, outputs, timing = _engine_call("deblur", image, drawable, options, _progress(0.05, 0.85))
    x, y, w, h, fmt, channels, dtype = region
    img_shape, img_bytes, img_dtype = outputs.get("image", (None, None, None))
    if img_bytes is None or list(img_shape) != [h, w, channels] or img_dtype != dtype:
        raise PlugInError(_("The AI Deblur engine returned an image of the wrong size or type (%s %s).")
                          % (img_shape, img_dtype))
    _mshape, mask_bytes, mask_dtype = outputs.get("mask", (None, None, None))

    Gimp.progress_set_text(_("Writing the new layer"))
    Gimp.progress_update(0.92)
    title = _layer_name(report, mode, strength)
    layer = None
    created = []
    t0 = time.monotonic()
    image.undo_group_start()
    Gimp.context_push()
    try:
        ok, ox, oy = drawable.get_offsets()
        parent = drawable.get_parent()
        position = image.get_item_position(drawable)
        # One layer with the chosen mask, or the engine's layer stack (bottom to top, each with its
        # own mask): each insert at the source's position lands just above the previous one.
        names = _stack_names(report, title)
        none = (None, None, None)
        stack = [(n, outputs.get("layer%d" % i, none)[1], outputs.get("layer%d-mask" % i, none)[1:], "auto")
                 for i, n in enumerate(names)] or [(title, img_bytes, (mask_bytes, mask_dtype), mask_choice)]
        report["layer_names"] = [entry[0] for entry in stack]  # what the new layers are called, bottom to top
        for name, pixels, (mbytes, mdtype), choice in stack:
            if pixels is None or len(pixels) != w * h * channels * client.ITEMSIZE[dtype]:
                raise PlugInError(_("The AI Deblur engine returned no pixels for the layer '%s'.") % name)
            layer = Gimp.Layer.new(image, name, w, h, _layer_type(image, drawable.has_alpha()),
                                   100.0, Gimp.LayerMode.NORMAL)
            if layer is None:
                raise PlugInError(_("GIMP could not create the new layer."))
            if not image.insert_layer(layer, parent, position):
                raise PlugInError(_("GIMP could not insert the new layer."))
            created.append(layer)
            layer.set_offsets(ox + x, oy + y)
            _write_layer_pixels(layer, fmt, w, h, pixels)
            _add_mask(image, layer, choice, w, h, mbytes, mdtype)
            layer.set_edit_mask(False)  # add_mask leaves the mask selected: the layer is what is edited next
            layer.set_visible(True)
        if sharpen is not None:
            # the guide's hybrid workflow: the correction sharpened once more, hidden by a black mask,
            # above it; the user paints it in with a soft white brush where it should show
            pixels = outputs.get("sharpen", (None, None, None))[1]
            if pixels is None or len(pixels) != w * h * channels * client.ITEMSIZE[dtype]:
                raise PlugInError(_("The AI Deblur engine returned no sharpening layer."))
            name = _sharpen_layer_name(report.get("sharpen_layer") or sharpen)
            layer = Gimp.Layer.new(image, name, w, h, _layer_type(image, drawable.has_alpha()),
                                   100.0, Gimp.LayerMode.NORMAL)
            if layer is None or not image.insert_layer(layer, parent, image.get_item_position(created[-1])):
                raise PlugInError(_("GIMP could not insert the sharpening layer."))
            created.append(layer)
            layer.set_offsets(ox + x, oy + y)
            _write_layer_pixels(layer, fmt, w, h, pixels)
            _add_mask(image, layer, "hidden", w, h, None)
            layer.set_edit_mask(False)
            report["layer_names"].append(name)
        # GIMP's own filters leave the layer active: so the next AI Deblur call (or any filter) works
        # on the new layer, not on its mask.
        image.set_selected_layers([layer])
    except Exception as exc:
        for done in created:
            _discard(image, done, True)
        if layer is not None and layer not in created:
            _discard(image, layer, False)
        if isinstance(exc, PlugInError):
            raise
        raise PlugInError(_("Writing the deblurred layer failed: %s") % exc) from None
    finally:
        Gimp.context_pop()
        image.undo_group_end()
    Gimp.progress_update(1.0)
    Gimp.displays_flush()
    report["plugin_timing"] = dict(timing, write_s=round(time.monotonic() - t0, 3))
    return layer, report


def _sharpen_layer_options(config):
    """The hybrid procedures' sharpening layer ({"amount": %, "radius": px, "threshold": 0-255}), or
    None for the other procedures (they have no such arguments)."""
    out = {}
    for arg, key in (("sharpen-amount", "amount"), ("sharpen-radius", "radius"), ("sharpen-threshold", "threshold")):
        try:
            out[key] = float(config.get_property(arg))
        except TypeError:
            return None
    return out


def _sharpen_layer_name(spec):
    """'Sharpen - paint in (120%, 1.5 px, threshold 5)'."""
    return "Sharpen - paint in (%s%%, %s px, threshold %s)" % (
        _num(spec.get("amount")), _num(spec.get("radius")), _num(spec.get("threshold")))


def _discard(image, layer, inserted):
    if layer is None:
        return
    try:
        if inserted:
            image.remove_layer(layer)
        else:
            layer.delete()
    except Exception:  # noqa: BLE001 - best effort clean-up
        pass


def _summary(report):
    """A few readable lines from the analysis report."""
    def fmt(val):
        return ("%.3g" % val) if isinstance(val, float) else str(val)

    lines = []
    if report.get("summary"):      # the engine's plain sentence: blur, size in px, how sure, verdict
        lines.append(str(report["summary"]))
    else:
        btype = report.get("blur_type")
        if btype:
            conf = report.get("confidence")
            lines.append(_("Blur: %s") % btype
                         + (_(" (confidence %.0f%%)") % (100 * conf) if isinstance(conf, (int, float)) else ""))
        params = report.get("params")
        if isinstance(params, dict) and params:
            lines.append(_("Parameters: ") + ", ".join("%s %s" % (k, fmt(v)) for k, v in params.items()))
        if report.get("verdict"):
            lines.append(_("Verdict: %s") % report["verdict"])
    if isinstance(report.get("noise_sigma"), (int, float)):
        lines.append(_("Noise: %.3g") % report["noise_sigma"])
    for key in ("warnings", "advice", "message"):
        val = report.get(key)
        if isinstance(val, list):
            lines.extend("- " + str(v) for v in val)
        elif val:
            lines.append(str(val))
    return "\n".join(lines) or json.dumps(report)[:500]


def _tell_user(layer, report):
    """After an interactive correction: what the user must know but cannot see in the new layer (the
    photo is beyond repair, a model was missing, the halo guard capped the strength) goes on screen.
    Scripts get the same sentences in the JSON report."""
    notes = [str(w) for w in report.get("warnings") or [] if w]
    if report.get("verdict") == "beyond repair" and not any("limited benefit" in n for n in notes):
        notes.insert(0, _("The blur looks beyond repair: expect limited benefit."))
    if not notes:
        return
    try:    # the layer is made: failing to say so must not turn the run into an error
        name = layer.get_name() if layer is not None else _("AI Deblur")
        _info(name, _("Please note:\n") + "\n".join("- " + n for n in notes))
    except Exception as exc:  # noqa: BLE001
        print("ai-deblur: could not show the warnings: %s" % exc, file=sys.stderr)


def _info(title, text):
    """Show an informational message (interactive runs): a message box with the information icon.

    Gimp.message() always reaches GIMP as a warning (the PDB's gimp-message has no severity), so
    notes about a layer that was made well would wear the warning icon; this dialog is the plug-in's
    own, modal to GIMP's window like GIMP's own filters' notes. Falls back to Gimp.message() where no
    display can be opened."""
    if os.environ.get("AI_DEBLUR_DEBUG"):
        print("ai-deblur message (info): %s\n%s" % (title, text), file=sys.stderr)
    try:
        GimpUi.init(PLUG_IN_BINARY)
        box = Gtk.MessageDialog(message_type=Gtk.MessageType.INFO, buttons=Gtk.ButtonsType.CLOSE,
                                text=title)
        box.format_secondary_text(text)
        box.set_title(_("AI Deblur"))
        try:
            GimpUi.window_set_transient(box)
        except Exception:  # noqa: BLE001 - a free-standing window is fine too
            pass
        auto_ok = os.environ.get("AI_DEBLUR_DIALOG_AUTO_OK_MS")  # automated tests of the dialogs only
        if auto_ok:
            GLib.timeout_add(int(auto_ok), lambda: box.response(Gtk.ResponseType.CLOSE) and False)
        box.run()
        box.destroy()
    except Exception as exc:  # noqa: BLE001 - no display: GIMP's message (with its warning icon)
        print("ai-deblur: message box unavailable (%s)" % exc, file=sys.stderr)
        Gimp.message("%s\n\n%s" % (title, text))


def _kernel_layer(image, drawable, report, view):
    """A small gray layer showing the kernel picture the worker made (scaled to its peak), above the
    source."""
    if view is None or view[1] is None:
        return None  # nothing estimated (e.g. a sharp photo): the report says so
    shape, data, kind = view
    if len(shape) != 2 or kind != "f32" or len(data) != shape[0] * shape[1] * 4:
        raise PlugInError(_("The analysis returned a malformed kernel."))
    h, w = shape
    kernel = report.get("kernel")
    size = ""
    if isinstance(kernel, list) and kernel and isinstance(kernel[0], list):
        size = " %dx%d px" % (len(kernel[0]), len(kernel))
    words = {"defocus": "focus", "gaussian": "soft focus"}
    btype = report.get("blur_type") or "estimated"
    name = "AI Deblur - kernel (%s%s)" % (words.get(btype, btype), size)
    layer = Gimp.Layer.new(image, name, w, h, _layer_type(image, False), 100.0, Gimp.LayerMode.NORMAL)
    inserted = False
    try:
        image.insert_layer(layer, drawable.get_parent(), image.get_item_position(drawable))
        inserted = True
        ok, ox, oy = drawable.get_offsets()
        layer.set_offsets(ox, oy)
        buf = layer.get_buffer()
        buf.set(Gegl.Rectangle.new(0, 0, w, h), "Y float", data)
        buf.flush()
        layer.update(0, 0, w, h)
    except Exception as exc:
        _discard(image, layer, inserted)
        raise PlugInError(_("Adding the kernel layer failed: %s") % exc) from None
    return layer


def _run_analyze(run_mode, image, drawable, config):
    Gimp.progress_init(_("AI Deblur: analyzing blur"))
    _region, report, outputs, timing = _engine_call(
        "analyze", image, drawable, {"want_kernel": bool(config.get_property("show-kernel"))},
        _progress(0.05, 0.9))
    report["plugin_timing"] = timing
    layer = None
    view = outputs.get("kernel")
    # Only a kernel layer changes the image: without one, no undo step is made (an empty undo group
    # would still be a step in Edit > Undo and mark the image as changed).
    if config.get_property("show-kernel") and view is not None and view[1] is not None:
        _check_alive(image, drawable)
        image.undo_group_start()
        Gimp.context_push()
        try:
            layer = _kernel_layer(image, drawable, report, view)
            if layer is not None:
                image.set_selected_layers([layer])
        finally:
            Gimp.context_pop()
            image.undo_group_end()
        Gimp.displays_flush()
    Gimp.progress_update(1.0)
    if run_mode == Gimp.RunMode.INTERACTIVE:
        extra = ""
        if config.get_property("show-kernel") and layer is None:
            extra = _("\n\nNo blur kernel was estimated, so no kernel layer was added.")
        _info(_("AI Deblur analysis"), _summary(report) + extra)
    return layer, report


# ---------------------------------------------------------------------------------------------------
PREVIEW_W, PREVIEW_H = 640, 480  # the preview's initial size when the screen's size is unknown
PREVIEW_MAX_H, PREVIEW_MIN_H = 600, 360  # ... else as tall as the screen leaves room for, within these
DIALOG_CONTROLS_H = 360  # what the dialog's controls, title bar and panels take of the screen's height


def _preview_size(drawable):
    """The preview's size as the dialog opens: 4:3, as tall as the screen allows with the dialog's
    controls below it (600 px on a 1080p screen, about 400 on a 768 px laptop screen), never larger
    than the layer."""
    w, h = PREVIEW_W, PREVIEW_H
    try:
        display = Gdk.Display.get_default()
        monitor = display.get_primary_monitor() or display.get_monitor(0)
        room = monitor.get_workarea().height - DIALOG_CONTROLS_H
        h = max(PREVIEW_MIN_H, min(PREVIEW_MAX_H, room))
        w = h * 4 // 3
    except Exception:  # noqa: BLE001 - no display information: the default size
        pass
    return min(w, drawable.get_width()), min(h, drawable.get_height())
FOCUS_SIDE = 1024      # the engine looks for the preview's opening spot on a copy this many px at most
FOCUS_WAIT_MS = 12000  # the first preview waits this long at most for that spot (a cold engine start)


class PreviewController:
    """Live preview in the dialog: the visible region (plus a margin for the kernel) goes to a worker
    in a background thread; the result, blended with the layer mask it would get, is drawn in the
    preview. Only the main thread calls GIMP; a new request kills the previous worker.

    Zoom (100-800 %) magnifies the middle of the visible area by pixel repetition (GEGL's scaled
    read): the deblurring itself always runs on full-resolution pixels, so what the user inspects
    (the eyes of a portrait) is exactly what the new layer will hold.

    The preview opens centred on the subject: when the dialog opens, a shrunk copy of the layer goes
    to the engine's "focus" op (deblur_core.focus_point: the largest face, else the most detailed
    area), and the first result is computed there; on any failure the preview opens on the middle of
    the layer. Until the user moves the preview (dragging, scroll bars, wheel), enlarging the dialog
    keeps that spot in the middle."""

    MARGIN = 48
    ZOOMS = (1, 2, 4, 8)

    def __init__(self, config, drawable, mode):
        self.config = config
        self.drawable = drawable
        self.mode = mode
        self.fmt, self.channels = _float_format(drawable)
        self.u8 = self.fmt.replace(" float", " u8")
        self.bpp = self.channels
        self.generation = 0
        self.worker = None
        self.lock = threading.Lock()
        self.preview = GimpUi.DrawablePreview.new_from_drawable(drawable)
        self.preview.connect("invalidated", self._on_invalidated)
        self._notify = config.connect("notify", self._on_config_changed)
        self.timeout = None
        self.settled = False  # a result (or an error) has come back at least once
        self.drawn_gen = 0    # the generation of the last result drawn
        try:  # AI_DEBLUR_PREVIEW_ZOOM: the initial zoom factor (automated dialog tests)
            zoom = int(os.environ.get("AI_DEBLUR_PREVIEW_ZOOM") or 1)
        except ValueError:
            zoom = 1
        self.zoom = zoom if zoom in self.ZOOMS else 1
        self.busy = False        # a preview is being computed (shown by the spinner)
        self.last = None         # (gen, original u8 bytes, result u8 bytes or None, w, h) last drawn
        self.zoom_box = self._zoom_widget()
        self.navigator = self._navigator_widget()
        self.press = None          # where a button went down in the preview (a click re-centres there)
        # where the preview opens (start_focus): the engine's answer, the spot kept in the middle, and
        # whether the first preview waits for it
        self.focus = None          # {"x", "y", "source": "face" | "detail" | "middle", ...}
        self.focus_target = None   # (x, y) in layer pixels, kept centred until the user moves the view
        self.focus_pending = False
        self.focus_timeout = None
        self.focus_worker = None   # the engine call in flight (killed if the dialog closes first)
        self.user_moved = False
        self.picked = None         # the last spot the user picked (navigator or click), for tests
        self.closed = False
        self._watch_user_moves()

    def _zoom_widget(self):
        box = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
        label = Gtk.Label(label=_("Preview zoom:"))
        combo = Gtk.ComboBoxText()
        for z in self.ZOOMS:
            combo.append(str(z), "%d %%" % (100 * z))
        combo.set_active_id(str(self.zoom))
        combo.set_tooltip_text(_("Magnify the middle of the preview to check fine detail such as eyes"))
        combo.connect("changed", self._on_zoom_changed)
        combo.set_valign(Gtk.Align.CENTER)   # the row is as tall as the navigator beside them
        box.pack_start(label, False, False, 0)
        box.pack_start(combo, False, False, 0)
        # before / after at the same zoom and framing: the original is kept beside the result
        self.before = Gtk.ToggleButton(label=_("Show original"))
        self.before.set_tooltip_text(_("Hold the original in view at the same zoom and place, to compare "
                                       "with the correction"))
        self.before.connect("toggled", self._on_before_toggled)
        self.before.set_valign(Gtk.Align.CENTER)
        box.pack_start(self.before, False, False, 0)
        # busy state: the engine takes seconds on some modes (camera shake)
        self.spinner = Gtk.Spinner()
        self.status = Gtk.Label(label="")
        self.status.set_ellipsize(Pango.EllipsizeMode.END)  # a long message never widens the dialog
        self.status.set_width_chars(8)
        self.status.set_max_width_chars(28)
        box.pack_end(self.status, False, False, 0)
        box.pack_end(self.spinner, False, False, 0)
        return box

    # the whole photo, small: click (or drag) to pick the spot the preview shows -----------------
    NAV_MAX = (128, 80)   # the navigator's largest size in px (it keeps the layer's aspect ratio)

    def _navigator_widget(self):
        """A thumbnail of the whole layer with the previewed area framed; a click (or a drag) in it
        centres the preview there. GIMP gives plug-ins no clicks on the image window's canvas (the
        canvas belongs to GIMP's own process), so this is where the spot is picked. Built from plain
        widgets (an image and a frame laid over it), so no cairo bindings are needed."""
        dw, dh = self.drawable.get_width(), self.drawable.get_height()
        s = min(self.NAV_MAX[0] / float(dw), self.NAV_MAX[1] / float(dh))
        self.nav_size = (max(8, int(dw * s)), max(8, int(dh * s)))
        thumb = Gtk.Image()
        try:
            pixbuf = self.drawable.get_thumbnail(self.nav_size[0], self.nav_size[1],
                                                 Gimp.PixbufTransparency.SMALL_CHECKS)
            thumb.set_from_pixbuf(pixbuf)
            self.nav_size = (pixbuf.get_width(), pixbuf.get_height())
        except Exception as exc:  # noqa: BLE001 - the frame still shows where the preview is
            print("ai-deblur preview: no thumbnail for the navigator:", exc, file=sys.stderr)
        thumb.set_size_request(*self.nav_size)
        self.nav_frame = Gtk.Frame()
        self.nav_frame.set_name("ai-deblur-view")
        self.nav_frame.set_shadow_type(Gtk.ShadowType.NONE)
        self.nav_frame.set_halign(Gtk.Align.START)
        self.nav_frame.set_valign(Gtk.Align.START)
        try:  # a white line with a dark edge: visible on light and dark photos
            css = Gtk.CssProvider()
            css.load_from_data(b"#ai-deblur-view { border: 2px solid white; box-shadow: 0 0 0 1px black; }"
                               b"#ai-deblur-view > border { border: none; }")
            self.nav_frame.get_style_context().add_provider(css, Gtk.STYLE_PROVIDER_PRIORITY_APPLICATION)
        except Exception:  # noqa: BLE001 - the theme's frame will do
            self.nav_frame.set_shadow_type(Gtk.ShadowType.ETCHED_IN)
        overlay = Gtk.Overlay()
        overlay.add(thumb)
        overlay.add_overlay(self.nav_frame)
        overlay.set_overlay_pass_through(self.nav_frame, True)
        area = Gtk.EventBox()
        area.set_name("ai-deblur-navigator")
        area.set_tooltip_text(_("The whole photo: click or drag here to choose the part the preview shows"))
        area.add_events(Gdk.EventMask.BUTTON_PRESS_MASK | Gdk.EventMask.BUTTON1_MOTION_MASK)
        area.connect("button-press-event", self._navigator_pick)
        area.connect("motion-notify-event", self._navigator_pick)
        area.add(overlay)
        self.nav_area = area
        frame = Gtk.Frame()
        frame.set_shadow_type(Gtk.ShadowType.IN)
        frame.set_valign(Gtk.Align.CENTER)
        frame.add(area)
        GLib.idle_add(self._frame_view)
        return frame

    def _view(self):
        """(x, y, w, h): the part of the layer the preview shows, in layer pixels (at zoom: its middle)."""
        x, y = self.preview.get_position()
        w, h = self.preview.get_size()
        z = max(1, self.zoom)
        vw, vh = max(1, -(-w // z)), max(1, -(-h // z))
        return x + (w - vw) // 2, y + (h - vh) // 2, vw, vh

    def _frame_view(self):
        """Place the navigator's frame over the previewed area."""
        nw, nh = self.nav_size
        try:
            x, y, w, h = self._view()
        except Exception:  # noqa: BLE001 - nothing framed before the preview is laid out
            return False
        sx, sy = nw / float(self.drawable.get_width()), nh / float(self.drawable.get_height())
        rx, ry = int(round(x * sx)), int(round(y * sy))
        rw, rh = max(6, int(round(w * sx))), max(6, int(round(h * sy)))
        rx, ry = max(0, min(rx, nw - rw)), max(0, min(ry, nh - rh))
        self.nav_frame.set_margin_start(rx)
        self.nav_frame.set_margin_top(ry)
        self.nav_frame.set_size_request(min(rw, nw), min(rh, nh))
        self.nav_rect = (rx, ry, rw, rh)
        return False

    def _navigator_pick(self, widget, event):
        if event.type == Gdk.EventType.BUTTON_PRESS and event.button != 1:
            return False
        nw, nh = self.nav_size
        x = int(min(max(event.x, 0), nw) / nw * self.drawable.get_width())
        y = int(min(max(event.y, 0), nh) / nh * self.drawable.get_height())
        self.look_at(x, y, "navigator")
        return True

    def look_at(self, x, y, how):
        """Centre the preview on layer pixel (x, y), chosen by the user (``how``: "navigator" or
        "click"); the preview then stays there when the dialog is resized."""
        self.user_moved = True
        self.focus_target = (int(x), int(y))
        self._centre()
        self.focus_target = None
        if os.environ.get("AI_DEBLUR_DEBUG"):
            print("ai-deblur preview: %s picked %d,%d" % (how, x, y), file=sys.stderr)
        self.picked = {"x": int(x), "y": int(y), "how": how}
        self._frame_view()
        self.preview.invalidate()

    def _on_area_released(self, _gesture, _n_press, ex, ey):
        press, self.press = self.press, None
        if os.environ.get("AI_DEBLUR_DEBUG"):
            print("ai-deblur preview: button released at %d,%d" % (ex, ey), file=sys.stderr)
        GLib.idle_add(self._on_area_click, press, ex, ey)   # after the preview's own drag has ended

    def _on_area_click(self, press, ex, ey):
        """A click without a drag in the preview centres it on the clicked point (a drag moves it)."""
        if press is None or abs(ex - press[0]) > 3 or abs(ey - press[1]) > 3 or self.closed:
            return False
        x, y, w, h = self._view()
        a = self.area.get_allocation()
        z = max(1, self.zoom)
        # the drawn buffer (the preview's size) sits in the middle of the area
        pw, ph = self.preview.get_size()
        px = ex - max(0, (a.width - pw) / 2.0)
        py = ey - max(0, (a.height - ph) / 2.0)
        self.look_at(x + px / z, y + py / z, "click")
        return False

    def _set_busy(self, busy, text=None):
        self.busy = busy
        if os.environ.get("AI_DEBLUR_DEBUG"):
            print("ai-deblur preview: %s" % ("busy" if busy else "idle"), file=sys.stderr)
        if busy:
            self.spinner.start()
            self.spinner.show()
        else:
            self.spinner.stop()
            self.spinner.hide()
        self.status.set_text(text if text is not None else (_("Computing the preview...") if busy else ""))

    def _on_before_toggled(self, button):
        self._redraw()

    def _redraw(self):
        """Draw the original or the last result (whichever the toggle asks) at the same framing."""
        if self.last is None:
            return
        _gen, src8, out8, w, _h = self.last
        data = src8 if (self.before.get_active() or out8 is None) else out8
        if os.environ.get("AI_DEBLUR_DEBUG"):
            print("ai-deblur preview: showing the %s (%dx%d)" % ("original" if data is src8 else "result", w, _h),
                  file=sys.stderr)
        try:
            self.preview.draw_buffer(data, w * self.bpp)
        except Exception as exc:  # noqa: BLE001 - a preview must never break the dialog
            print("ai-deblur preview:", exc, file=sys.stderr)

    def _on_zoom_changed(self, combo):
        try:
            self.zoom = int(combo.get_active_id() or 1)
        except ValueError:
            self.zoom = 1
        self.preview.invalidate()

    # main thread -------------------------------------------------------------------------------
    def _on_config_changed(self, *args):
        self.preview.invalidate()

    def _on_invalidated(self, preview):
        try:
            self._frame_view()   # the framed area follows drags, scroll bars, zoom and picks
        except Exception:  # noqa: BLE001
            pass
        if self.timeout:
            GLib.source_remove(self.timeout)
            self.timeout = None
        if self.focus_pending:
            return  # the first preview is computed where the preview opens, once that is known
        self.timeout = GLib.timeout_add(250, self._start)  # debounce slider drags

    # where the preview opens ------------------------------------------------------------------------
    def _bounds(self):
        """(x0, y0, x1, y1): the part of the layer the preview can show (the selection's bounds)."""
        try:
            x0, y0, x1, y1 = self.preview.get_bounds()
            if x1 > x0 and y1 > y0:
                return x0, y0, x1, y1
        except Exception:  # noqa: BLE001
            pass
        return 0, 0, self.drawable.get_width(), self.drawable.get_height()

    def start_focus(self):
        """Ask the engine, in a thread, where the preview should open (a shrunk copy of the previewed
        area, read here in the main thread); the first preview waits for the answer (FOCUS_WAIT_MS at
        most). Called once, as the dialog opens."""
        if self.closed:
            return False
        if self.timeout:  # a preview of the spot the dialog opened on: not needed
            GLib.source_remove(self.timeout)
            self.timeout = None
        x0, y0, x1, y1 = self._bounds()
        bw, bh = x1 - x0, y1 - y0
        s = min(1.0, FOCUS_SIDE / float(max(bw, bh)))
        sw, sh = max(1, int(bw * s)), max(1, int(bh * s))
        try:
            buf = self.drawable.get_buffer()
            data = bytes(buf.get(Gegl.Rectangle.new(int(round(x0 * s)), int(round(y0 * s)), sw, sh), s,
                                 self.u8, Gegl.AbyssPolicy.CLAMP))
        except Exception as exc:  # noqa: BLE001 - a preview must never break the dialog
            print("ai-deblur preview: cannot read the layer for its focus point:", exc, file=sys.stderr)
            self._focus_done(None)
            return False
        self.focus_pending = True
        self._set_busy(True, _("Finding the subject..."))
        self.focus_timeout = GLib.timeout_add(FOCUS_WAIT_MS, self._focus_waited)
        options = {"scale": bw / float(sw), "origin": [x0, y0]}
        threading.Thread(target=self._focus_work, args=(data, sw, sh, options), daemon=True).start()
        return False

    def _focus_work(self, data, sw, sh, options):  # worker thread
        report = None
        try:
            worker = client.Worker(standby=True)
            with self.lock:
                if self.closed:
                    return
                self.focus_worker = worker
            report, _outputs = worker.request("focus", sw, sh, self.channels, data, options, dtype="u8")
        except Exception as exc:  # noqa: BLE001 - WorkerError, unreadable settings: open on the middle
            print("ai-deblur preview: no focus point:", exc, file=sys.stderr)
        with self.lock:
            self.focus_worker = None
        GLib.idle_add(self._focus_done, report)

    def _focus_waited(self):
        """The engine took too long: open on the middle (its answer, if it comes, still moves the view
        unless the user has moved it)."""
        self.focus_timeout = None
        if self.focus_pending:
            print("ai-deblur preview: the focus point took longer than %d ms" % FOCUS_WAIT_MS, file=sys.stderr)
            self._open_on(None)
        return False

    def _focus_done(self, report):
        if self.closed:
            return False
        if self.focus_timeout:
            GLib.source_remove(self.focus_timeout)
            self.focus_timeout = None
        late = not self.focus_pending and self.focus is not None
        if late and self.user_moved:
            return False
        self._open_on(report, late=late)
        return False

    def _open_on(self, report, late=False):
        x0, y0, x1, y1 = self._bounds()
        try:
            x, y = int(report["x"]), int(report["y"])
            if not (x0 <= x < x1 and y0 <= y < y1):
                raise ValueError("the focus point (%d, %d) is outside the layer" % (x, y))
            focus = dict(report)
        except (TypeError, KeyError, ValueError) as exc:
            if report is not None:
                print("ai-deblur preview: focus point ignored:", exc, file=sys.stderr)
            x, y = (x0 + x1) // 2, (y0 + y1) // 2
            focus = {"x": x, "y": y, "source": "middle"}
        if late and focus["source"] == "middle":
            return
        self.focus = focus
        self.focus_target = (x, y)
        was_pending, self.focus_pending = self.focus_pending, False
        if was_pending:
            self._set_busy(False)
        if os.environ.get("AI_DEBLUR_DEBUG"):
            print("ai-deblur preview: opens on the %s at %d,%d" % (focus["source"], x, y), file=sys.stderr)
        self._centre()
        self._on_invalidated(self.preview)

    def _centre(self):
        """Scroll so that focus_target is in the middle of the visible area (as far as the layer's
        edges allow)."""
        if self.focus_target is None:
            return False
        w, h = self.preview.get_size()
        if w <= 0 or h <= 0:
            return False
        x, y = self.focus_target
        try:
            self.preview.set_position(int(x - w // 2), int(y - h // 2))
        except Exception as exc:  # noqa: BLE001 - a preview must never break the dialog
            print("ai-deblur preview: cannot scroll:", exc, file=sys.stderr)
        return False

    def _watch_user_moves(self):
        """Note when the user moves the view (drag, wheel, scroll bars, the navigation button): then
        the preview stops re-centring on the subject when the dialog is resized."""
        def moved(*_args):
            self.user_moved = True
            self.focus_target = None
            return False

        def walk(widget):
            if (isinstance(widget, (Gtk.DrawingArea, Gtk.Scrollbar, Gtk.Button, Gtk.EventBox))
                    and not isinstance(widget, Gtk.ToggleButton)):  # the Preview tick box moves nothing
                widget.connect("button-press-event", moved)
                widget.connect("scroll-event", moved)
            if isinstance(widget, Gtk.Container):
                widget.forall(walk)

        try:
            walk(self.preview)
            self.preview.get_area().connect_after("size-allocate", self._on_area_resized)
            # The preview drags itself on button 1 (its own gesture); a gesture of ours in the capture
            # phase sees the press and the release first and claims nothing, so a drag still drags
            self.area = self.preview.get_area()
            self.click_gesture = Gtk.GestureMultiPress.new(self.area)
            self.click_gesture.set_button(1)
            self.click_gesture.set_propagation_phase(Gtk.PropagationPhase.CAPTURE)
            self.click_gesture.connect("pressed", lambda _g, _n, ex, ey: setattr(self, "press", (ex, ey)))
            self.click_gesture.connect("released", self._on_area_released)
        except Exception as exc:  # noqa: BLE001
            print("ai-deblur preview:", exc, file=sys.stderr)

    def _on_area_resized(self, *_args):
        if self.focus_target is not None and not self.user_moved and not self.closed:
            GLib.idle_add(self._centre)  # not while GTK allocates: the preview updates its scroll bars then

    def _start(self):
        self.timeout = None
        self.generation += 1
        gen = self.generation
        self._kill()
        x, y = self.preview.get_position()
        w, h = self.preview.get_size()
        if w <= 0 or h <= 0:
            return False
        z = self.zoom
        # the drawable area shown: the middle 1/z of the visible area, magnified z times
        vw, vh = max(1, -(-w // z)), max(1, -(-h // z))
        vx, vy = x + (w - vw) // 2, y + (h - vh) // 2
        dw, dh = self.drawable.get_width(), self.drawable.get_height()
        rx0, ry0 = max(0, vx - self.MARGIN), max(0, vy - self.MARGIN)
        rx1, ry1 = min(dw, vx + vw + self.MARGIN), min(dh, vy + vh + self.MARGIN)
        rw, rh = rx1 - rx0, ry1 - ry0
        buf = self.drawable.get_buffer()
        # show the source at once, the result when it is ready
        src8 = bytes(buf.get(Gegl.Rectangle.new(vx * z, vy * z, w, h), float(z), self.u8, Gegl.AbyssPolicy.CLAMP))
        self.last = (gen, src8, None, w, h)
        self.preview.draw_buffer(src8, w * self.bpp)
        self._set_busy(True)
        data = bytes(buf.get(Gegl.Rectangle.new(rx0, ry0, rw, rh), 1.0, self.fmt, Gegl.AbyssPolicy.CLAMP))
        choice = self.config.get_property("mask") or "auto"
        options = {"mode": self.mode, "strength": float(self.config.get_property("strength")),
                   "mask": ENGINE_MASK.get(choice, "auto"),
                   "preview_blend": "original" if choice == "hidden" else
                                    ("mask" if choice in ("auto", "faces", "subject") else None)}
        options.update(_mode_options(self.mode, self.config))
        geometry = (vx - rx0, vy - ry0, w, h, rw, rh, z)
        t = threading.Thread(target=self._work, args=(gen, data, rw, rh, options, geometry), daemon=True)
        t.start()
        return False

    def _draw(self, gen, data, geometry):
        if gen != self.generation:
            return False
        self.settled = True
        self.drawn_gen = gen
        if data is None:
            self._set_busy(False, _("No preview (see the error console)"))
            return False
        cx, cy, w, h, rw, rh, z = geometry
        try:
            tmp = Gegl.Buffer.new(self.fmt, 0, 0, rw, rh)
            tmp.set(Gegl.Rectangle.new(0, 0, rw, rh), self.fmt, data)
            out8 = bytes(tmp.get(Gegl.Rectangle.new(cx * z, cy * z, w, h), float(z), self.u8, Gegl.AbyssPolicy.CLAMP))
            if self.last is not None and self.last[0] == gen:
                self.last = (gen, self.last[1], out8, w, h)
            self._set_busy(False, _("Showing the original") if self.before.get_active() else "")
            self._redraw()
            if os.environ.get("AI_DEBLUR_DEBUG"):
                print("ai-deblur preview: drew %dx%d result at %d,%d zoom %d%%" % (w, h, cx, cy, 100 * z),
                      file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - a preview must never break the dialog
            print("ai-deblur preview:", exc, file=sys.stderr)
        return False

    # worker thread ------------------------------------------------------------------------------
    def _work(self, gen, data, rw, rh, options, geometry):
        worker = client.Worker(standby=True)
        with self.lock:
            if gen != self.generation:
                return
            self.worker = worker
        try:
            report, outputs = worker.request("deblur", rw, rh, self.channels, data, options)
            result = outputs.get("image", (None, None))[1]
        except client.WorkerError as exc:
            if gen == self.generation:
                print("ai-deblur preview:", exc, file=sys.stderr)
                GLib.idle_add(self._draw, gen, None, geometry)
            return
        GLib.idle_add(self._draw, gen, result, geometry)

    def _kill(self):
        with self.lock:
            worker, self.worker = self.worker, None
        if worker is not None:
            worker.kill()

    def close(self):
        self.generation += 1
        if self.timeout:
            GLib.source_remove(self.timeout)
            self.timeout = None
        if self.focus_timeout:
            GLib.source_remove(self.focus_timeout)
            self.focus_timeout = None
        self.focus_pending = False
        with self.lock:
            self.closed = True
            focus_worker, self.focus_worker = self.focus_worker, None

        if focus_worker is not None:
            focus_worker.kill()
        try:
            self.config.disconnect(self._notify)
        except Exception:  # noqa: BLE001
            pass
        self._kill()


# Arguments where 0 means "estimated from the photo": the dialog shows an Auto tick box beside their
# slider; unticking it sets the value given here (a typical hand-set value) for the user to adjust.
AUTO_ARGS = {
    "motion": {"length": 10.0, "angle": 180.0},
    "focus": {"radius": 3.0},
    "shake": {"kernel-size": 25, "regions": 2},
    "sharpen": {"radius": 1.5, "amount": 1.0, "threshold": 0.02},
}


def _auto_row(dialog, config, name, manual):
    """[slider] [x] Auto, kept in step with the argument: Auto ticked <=> the value is 0 (the
    procedure's contract: 0 = auto), and the slider's number then reads "auto", not 0.00."""
    try:
        entry = dialog.get_scale_entry(name, 1.0)
    except Exception:  # noqa: BLE001
        return None
    check = Gtk.CheckButton(label=_("Auto"))
    check.set_tooltip_text(_("Estimate this from the photo (the argument's value 0)"))
    row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=6)
    row.set_name("ai-deblur-auto-%s" % name)
    row.pack_start(entry, True, True, 0)
    row.pack_start(check, False, False, 0)
    remembered = {"value": manual}

    try:
        spin = entry.get_spin_button()

        def on_output(spin_button):
            if spin_button.get_adjustment().get_value() == 0:
                spin_button.set_text(_("auto"))
                return True
            return False

        spin.set_numeric(False)  # a numeric spin button would drop the letters of "auto"
        spin.connect("output", on_output)
        GLib.idle_add(lambda: spin.emit("output") and False)  # show "auto" from the start
    except Exception:  # noqa: BLE001 - the number then shows 0
        pass

    def sync(*_args):
        auto = config.get_property(name) == 0
        if check.get_active() != auto:
            check.set_active(auto)
        entry.set_sensitive(not auto)

    def on_toggled(button):
        value = config.get_property(name)
        if button.get_active():
            if value != 0:
                remembered["value"] = value
                config.set_property(name, 0)
        elif value == 0:
            config.set_property(name, remembered["value"])
        entry.set_sensitive(not button.get_active())

    handler = config.connect("notify::" + name, sync)
    check.connect("toggled", on_toggled)
    row.connect("destroy", lambda *_a: config.disconnect(handler))
    sync()
    return row


def _simulate_click(widget, x, y):
    """Automated tests only: a button-1 click at (x, y) of ``widget``, as GTK would get it from the
    pointer (press and release events with the seat's pointer as device, through gtk_main_do_event:
    gestures and handlers see it as a user's click)."""
    win = widget.get_window()
    pointer = Gdk.Display.get_default().get_default_seat().get_pointer()
    ox, oy = 0, 0
    if not widget.get_has_window():          # a windowless widget: its allocation within the window
        a = widget.get_allocation()
        ox, oy = a.x, a.y
    for kind in (Gdk.EventType.BUTTON_PRESS, Gdk.EventType.BUTTON_RELEASE):
        ev = Gdk.Event.new(kind)
        ev.button.window = win
        ev.button.x, ev.button.y = float(x + ox), float(y + oy)
        ev.button.button = 1
        ev.button.time = Gtk.get_current_event_time()
        ev.button.state = Gdk.ModifierType.BUTTON1_MASK if kind == Gdk.EventType.BUTTON_RELEASE else 0
        ev.set_device(pointer)
        ev.set_source_device(pointer)
        Gtk.main_do_event(ev)


def _describe_dialog(dialog, preview=None):
    """What a user would see in the dialog (automated tests): mnemonic letters of the shown labels and
    buttons, the tick boxes, the numbers the sliders show, and the sizes of the dialog and preview."""
    info = {"mnemonics": [], "checks": [], "spins": [], "labels": []}

    def walk(widget):
        if not widget.get_mapped():
            return
        if isinstance(widget, Gtk.Label):
            text = widget.get_label() or ""
            info["labels"].append(widget.get_text())
            if widget.get_use_underline() and "_" in text:
                key = Gdk.keyval_name(Gdk.keyval_to_lower(widget.get_mnemonic_keyval()))
                if key and key != "VoidSymbol":
                    info["mnemonics"].append([key, text])
        if isinstance(widget, Gtk.CheckButton):
            info["checks"].append({"label": widget.get_label(), "active": widget.get_active(),
                                   "row": (widget.get_parent().get_name() or "")})
        if isinstance(widget, Gtk.SpinButton):
            info["spins"].append({"text": widget.get_text(), "sensitive": widget.is_sensitive()})
        if isinstance(widget, Gtk.Container):
            widget.forall(walk)

    walk(dialog)
    tree = []

    def layout(widget, depth):
        if not widget.get_visible():
            return
        a = widget.get_allocation()
        tree.append("%s%s %dx%d+%d+%d%s%s" % ("  " * depth, type(widget).__name__, a.width, a.height, a.x, a.y,
                                              " hexpand" if widget.compute_expand(Gtk.Orientation.HORIZONTAL) else "",
                                              " vexpand" if widget.compute_expand(Gtk.Orientation.VERTICAL) else ""))
        if isinstance(widget, Gtk.Container):
            widget.forall(lambda child: layout(child, depth + 1))

    layout(dialog, 0)
    info["layout"] = tree  # the widget tree with sizes (to see where the room goes)
    alloc = dialog.get_allocation()
    info["dialog_size"] = [alloc.width, alloc.height]
    if preview is not None:
        area = preview.preview.get_area().get_allocation()
        info["preview_size"] = [area.width, area.height]
        info["preview_busy"] = preview.busy
        info["preview_status"] = preview.status.get_text()
        # the part of the layer in view: (x, y) of its top-left corner and its size, in layer pixels
        x, y = preview.preview.get_position()
        w, h = preview.preview.get_size()
        info["preview_view"] = [x, y, w, h]
        info["preview_zoom"] = preview.zoom
        info["preview_focus"] = preview.focus
        info["preview_picked"] = preview.picked
        nav = preview.nav_area.get_allocation()
        info["navigator_size"] = [nav.width, nav.height] if preview.nav_area.get_mapped() else None
    return info


def _give_the_room_to(box, preview):
    """When the dialog is enlarged, the room goes to the preview: the dialog's other rows keep their
    height, and the preview's frame takes the shape of the room it is given (GimpPreview keeps the
    aspect ratio of its first size otherwise, so a wider dialog would not make it wider)."""
    for child in box.get_children():
        if child is not preview:
            try:
                box.child_set_property(child, "expand", False)
                child.set_vexpand(False)
            except Exception:  # noqa: BLE001 - a row that grows a little is no failure
                pass
    try:
        frame = preview.get_frame()
    except Exception:  # noqa: BLE001
        return
    if not isinstance(frame, Gtk.AspectFrame):
        return

    def reshape():
        a = preview.get_allocation()
        if a.width > 1 and a.height > 1:
            ratio = a.width / float(a.height)
            if frame.props.obey_child or abs(frame.props.ratio - ratio) > 0.005:
                frame.set(0.5, 0.5, ratio, False)
        return False

    # not while GTK allocates: the new ratio asks for a new layout, done on the next frame
    preview.connect_after("size-allocate", lambda *_a: GLib.idle_add(reshape))


def _dialog(procedure, config, drawable, mode):
    GimpUi.init(PLUG_IN_BINARY)
    started = client.spawn_standby()  # the engine warms up while the user chooses
    if os.environ.get("AI_DEBLUR_DEBUG"):
        print("ai-deblur: standby started at dialog open: %s" % started, file=sys.stderr)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config)
    preview = None
    try:
        # sliders (GimpScaleEntry) for the numeric arguments; fill() reuses these widgets
        auto_args = AUTO_ARGS.get(mode, {})
        listed = []
        for prop in procedure.get_arguments():
            if prop.name in ("run-mode", "image", "drawables"):
                continue
            if prop.value_type in (GObject.TYPE_DOUBLE, GObject.TYPE_INT):
                try:
                    dialog.get_scale_entry(prop.name, 1.0)
                except Exception:  # noqa: BLE001 - the default widget is fine too
                    pass
            if prop.name not in auto_args:
                listed.append(prop.name)
        dialog.fill(listed)
        # "0 = auto" arguments: the slider with an explicit Auto tick box beside it (below the others,
        # in the arguments' order)
        box = dialog.get_content_area()
        auto_checks = {}
        for name, manual in auto_args.items():
            row = _auto_row(dialog, config, name, manual)
            if row is not None:
                box.pack_start(row, False, False, 0)
                row.show_all()
                auto_checks[name] = row.get_children()[-1]
        if mode is not None and os.environ.get("AI_DEBLUR_NO_PREVIEW") != "1":
            try:
                preview = PreviewController(config, drawable, mode)
                try:
                    # large enough to judge detail (the dialog's controls take a strip below it);
                    # the preview is packed to expand, so enlarging the dialog enlarges it
                    # (GimpDrawablePreview sets its area to its 200 px style size whenever the style
                    # is updated, which happens as it is shown: ours is set after that)
                    size = _preview_size(drawable)
                    area = preview.preview.get_area()
                    area.set_size_request(*size)
                    preview.preview.connect_after("style-updated",
                                                  lambda *_a: area.set_size_request(*size))
                except Exception:  # noqa: BLE001
                    pass
                box = dialog.get_content_area()
                box.pack_start(preview.preview, True, True, 0)
                box.reorder_child(preview.preview, 0)
                try:  # zoom, before / after and the busy state beside the preview's own Preview tick box
                    controls = preview.preview.get_controls()
                    if not isinstance(controls, Gtk.Box):
                        raise TypeError("the preview's controls are a %s" % type(controls).__name__)
                    controls.pack_start(preview.zoom_box, True, True, 0)
                except Exception as exc:  # noqa: BLE001 - then in a row of their own
                    print("ai-deblur: preview controls in their own row:", exc, file=sys.stderr)
                    box.pack_start(preview.zoom_box, False, False, 0)
                    box.reorder_child(preview.zoom_box, 1)
                preview.zoom_box.pack_start(preview.navigator, False, False, 0)
                preview.zoom_box.reorder_child(preview.navigator, 0)
                preview.preview.show()
                preview.zoom_box.show_all()
                preview.spinner.hide()
                _give_the_room_to(box, preview.preview)
                # where the preview opens, asked once the dialog is drawn (idle: after the first paint)
                GLib.idle_add(preview.start_focus)
            except Exception as exc:  # noqa: BLE001 - the dialog works without a preview
                print("ai-deblur: no preview:", exc, file=sys.stderr)
                preview = None
        auto_ok = os.environ.get("AI_DEBLUR_DIALOG_AUTO_OK_MS")  # automated tests of the dialog only
        if auto_ok:
            start = time.monotonic()
            dump = os.environ.get("AI_DEBLUR_DIALOG_DUMP")  # automated tests only
            opened = {}
            clicks = [c for c in (os.environ.get("AI_DEBLUR_DIALOG_CLICK") or "").split(";") if c]
            done = []

            def press_ok():
                waited = time.monotonic() - start
                if not opened and dialog.get_mapped() and (preview is None or preview.preview.get_area().get_mapped()):
                    # automated tests only: the sizes as the dialog opens, then (optionally) the user
                    # enlarges it (AI_DEBLUR_DIALOG_RESIZE=WxH)
                    opened.update(_describe_dialog(dialog, preview))
                    resize = os.environ.get("AI_DEBLUR_DIALOG_RESIZE")
                    if resize:
                        rw, rh = (int(v) for v in resize.lower().split("x"))
                        dialog.resize(rw, rh)
                if waited * 1000 < int(auto_ok) or (preview is not None and not preview.settled and waited < 120):
                    return True  # keep waiting for the preview's first result
                if preview is not None and clicks and waited < 120:
                    # automated tests only (AI_DEBLUR_DIALOG_CLICK="navigator:FX,FY;preview:FX,FY"): the
                    # user clicks there (real X button events through GDK), one click per preview result
                    if done and preview.drawn_gen <= done[-1]["gen"] or preview.drawn_gen < preview.generation \
                            or preview.timeout:
                        return True
                    where, spot = clicks.pop(0).split(":")
                    fx, fy = (float(v) for v in spot.split(","))
                    widget = preview.nav_area if where == "navigator" else preview.preview.get_area()
                    before = _describe_dialog(dialog, preview)
                    a = widget.get_allocation()
                    cx, cy = int(fx * a.width), int(fy * a.height)
                    _simulate_click(widget, cx, cy)
                    done.append({"where": where, "at": [cx, cy], "size": [a.width, a.height],
                                 "view_before": before.get("preview_view"), "gen": preview.generation})
                    return True
                if preview is not None and done and (preview.drawn_gen <= done[-1]["gen"] or preview.timeout
                                                     or preview.drawn_gen < preview.generation) and waited < 120:
                    return True  # the preview of the picked spot
                if preview is not None and os.environ.get("AI_DEBLUR_PREVIEW_COMPARE") == "1":
                    preview.before.set_active(True)    # automated tests only: before / after
                    preview.before.set_active(False)
                for name in filter(None, (os.environ.get("AI_DEBLUR_DIALOG_UNTICK") or "").split(",")):
                    if name in auto_checks:     # automated tests only: the user unticks Auto
                        auto_checks[name].set_active(False)
                if dump:
                    try:
                        info = _describe_dialog(dialog, preview)
                        info["opened"] = opened
                        info["clicks"] = done
                        shot = os.environ.get("AI_DEBLUR_DIALOG_SHOT")   # a screenshot of the dialog
                        if shot:
                            win = dialog.get_window()
                            Gdk.pixbuf_get_from_window(win, 0, 0, win.get_width(), win.get_height()) \
                                .savev(shot, "png", [], [])
                        with open(dump + "." + procedure.get_name() + ".json", "w") as fh:
                            json.dump(info, fh)
                    except Exception as exc:  # noqa: BLE001
                        print("ai-deblur: dialog dump failed: %s" % exc, file=sys.stderr)
                dialog.response(-5)  # GTK_RESPONSE_OK
                return False

            GLib.timeout_add(200, press_ok)
        return dialog.run()
    finally:
        if preview is not None:
            preview.close()
        dialog.destroy()


def _since_process_start():
    """Seconds since this plug-in process started (Linux /proc; None elsewhere): how long GIMP's
    launch of the plug-in took (Python, gi and GEGL start-up, registration) before the run."""
    try:
        with open("/proc/self/stat") as fh:
            started = int(fh.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as fh:
            return round(float(fh.read().split()[0]) - started, 3)
    except (OSError, ValueError, IndexError):
        return None


def run_procedure(procedure, run_mode, image, drawables, config, data):
    start_s = _since_process_start()
    name = procedure.get_name()
    mode = (PROCEDURES.get(name) or HYBRID[name])[0]
    try:
        image, drawable = _check_input(image, drawables)
        _float_format(drawable)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            if not _dialog(procedure, config, drawable, mode):
                return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
            _check_alive(image, drawable)  # the image may have been closed while the dialog was open
        if mode is None:
            layer, report = _run_analyze(run_mode, image, drawable, config)
        else:
            layer, report = _run_correction(mode, image, drawable, config)
            if run_mode == Gimp.RunMode.INTERACTIVE:
                _tell_user(layer, report)
        report.setdefault("plugin_timing", {})["start_s"] = start_s
    except PlugInError as exc:
        return _error(procedure, str(exc))
    except Exception as exc:  # noqa: BLE001 - never leave GIMP with a Python traceback only
        import traceback
        traceback.print_exc()
        return _error(procedure, _("AI Deblur failed: %s: %s") % (type(exc).__name__, exc))
    finally:
        try:
            Gimp.progress_end()
        except Exception:  # noqa: BLE001
            pass
    return _success(layer, report)


class AIDeblur(Gimp.PlugIn):
    def do_set_i18n(self, procname):
        return True, TEXT_DOMAIN, LOCALE_DIR

    def do_query_procedures(self):
        return list(PROCEDURES) + list(HYBRID)

    if client.preload_installed():
        # GIMP runs this at every start (only when installed with a preload other than "never": the
        # start-up pass costs GIMP ~0.1-0.2 s); it registers nothing. In batch mode no dialog opens to
        # warm the engine up while the user chooses, so the standby worker starts here.
        def do_init_procedures(self):
            try:
                client.preload_at_start(os.getppid())
            except Exception:  # noqa: BLE001 - never break GIMP's start-up
                pass
            return []

    def do_create_procedure(self, name):
        mode, label, blurb = PROCEDURES.get(name) or HYBRID[name]
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_procedure, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(_(label))
        procedure.add_menu_path(MENU_PATH)
        help_text = _(blurb) + _(". The result is a new layer above the source (the source is not changed), "
                                 "with a layer mask; the engine runs in a separate process.")
        procedure.set_documentation(_(blurb), help_text, name)
        procedure.set_attribution(AUTHOR, AUTHOR, "2026")
        rw = GObject.ParamFlags.READWRITE

        if mode is None:
            procedure.add_boolean_argument("show-kernel", _("Show _kernel"),
                                           _("Add a small layer showing the estimated blur kernel"), False, rw)
        else:
            procedure.add_double_argument("strength", _("Stre_ngth"), _("Correction strength (0-100)"),
                                          0.0, 100.0, 50.0, rw)
            choice = Gimp.Choice.new()
            for i, (nick, clabel, chelp) in enumerate(MASK_CHOICES):
                choice.add(nick, i, _(clabel), _(chelp))
            procedure.add_choice_argument("mask", _("_Mask"), _("Layer mask of the new layer"),
                                          choice, "auto", rw)
            if mode == "motion":
                procedure.add_double_argument("length", _("L_ength (px)"), _("Blur length in pixels, 0 = auto"),
                                              0.0, 500.0, 0.0, rw)
                procedure.add_double_argument("angle", _("An_gle (degrees)"),
                                              _("Blur direction in degrees (180 = horizontal), 0 = auto"),
                                              0.0, 180.0, 0.0, rw)
            elif mode == "focus":
                procedure.add_double_argument("radius", _("Ra_dius (px)"), _("Defocus radius in pixels, 0 = auto"),
                                              0.0, 100.0, 0.0, rw)
            elif mode == "shake":
                procedure.add_int_argument("kernel-size", _("_Kernel size (px)"),
                                           _("Largest shake extent in pixels, 0 = auto (a guess will do: a window "
                                             "a quarter larger competes with it)"), 0, 301, 0, rw)
                procedure.add_int_argument("regions", _("Re_gions per side (shake varies across the photo)"),
                                           _("For shake that differs across the photo (the camera turned): the "
                                             "photo is split into N x N regions, each with its own blur estimate "
                                             "(1 = the same blur everywhere; 0 = auto: 2 on photos at least 1024 "
                                             "px on the shorter side; ignored with a selection)"), 0, 4, 0, rw)
            elif mode == "old-photo":
                procedure.add_double_argument("grain", _("_Grain removal"),
                                              _("How much film grain to remove: 0 keeps it, 50 the grain measured "
                                                "in the photo, 100 twice that"), 0.0, 100.0, 50.0, rw)
                procedure.add_double_argument("background-soften", _("_Background softening (px)"),
                                              _("Blur of the background (outside the people) against grain, in "
                                                "pixels; 0 = none"), 0.0, 3.0, 0.5, rw)
            elif mode == "sharpen":
                procedure.add_double_argument("radius", _("Ra_dius (px)"), _("Sharpening radius, 0 = auto"),
                                              0.0, 50.0, 0.0, rw)
                procedure.add_double_argument("amount", _("_Amount"), _("Sharpening amount, 0 = auto"),
                                              0.0, 10.0, 0.0, rw)
                procedure.add_double_argument("threshold", _("_Threshold"),
                                              _("Leave contrasts below this alone (0-1), 0 = auto"),
                                              0.0, 1.0, 0.0, rw)
            if name in HYBRID:
                procedure.add_double_argument("sharpen-amount", _("Sharpen layer _amount (%)"),
                                              _("Unsharp mask amount of the sharpening layer, in percent"),
                                              0.0, 500.0, SHARPEN_LAYER["sharpen-amount"], rw)
                procedure.add_double_argument("sharpen-radius", _("Sharpen layer ra_dius (px)"),
                                              _("Unsharp mask radius of the sharpening layer, in pixels"),
                                              0.1, 20.0, SHARPEN_LAYER["sharpen-radius"], rw)
                procedure.add_int_argument("sharpen-threshold", _("Sharpen layer _threshold"),
                                           _("Leave contrasts below this many levels (of 255) alone"),
                                           0, 255, SHARPEN_LAYER["sharpen-threshold"], rw)
            procedure.add_layer_return_value("layer", _("Layer"), _("The new layer (the top one)"), True, rw)
        if mode is None:
            procedure.add_layer_return_value("layer", _("Layer"), _("The kernel layer (if shown)"), True, rw)
        procedure.add_string_return_value("report", _("Report"), _("The engine's report as JSON"), "", rw)
        return procedure


Gimp.main(AIDeblur.__gtype__, sys.argv)

# GIMP 3 batch-mode script: deblur every photo of a folder with AI Deblur (auto mode).
#
#   AI_DEBLUR_IN=~/Pictures/blurry AI_DEBLUR_OUT=~/Pictures/fixed AI_DEBLUR_STRENGTH=50 \
#     gimp-console-3.0 -i --batch-interpreter python-fu-eval -b - --quit < examples/batch_deblur_folder.py
#
# For each photo it writes NAME.xcf (original layer + the "AI Deblur" layer with its mask, to refine
# later in GIMP) and NAME.png (the visible result, mask applied).
import glob
import os

from gi.repository import Gimp, Gio

src = os.path.expanduser(os.environ.get("AI_DEBLUR_IN", "."))
dst = os.path.expanduser(os.environ.get("AI_DEBLUR_OUT", os.path.join(src, "deblurred")))
strength = float(os.environ.get("AI_DEBLUR_STRENGTH", "50"))
mode = os.environ.get("AI_DEBLUR_MODE", "auto")          # auto, motion, focus, shake, smart-sharpen, old-photo
os.makedirs(dst, exist_ok=True)
pdb = Gimp.get_pdb()
failed = 0
files = sorted(f for ext in ("jpg", "jpeg", "png", "tif", "tiff", "JPG", "JPEG", "PNG", "TIF")
               for f in glob.glob(os.path.join(src, "*." + ext)))
for path in files:
    name = os.path.splitext(os.path.basename(path))[0]
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    layer = image.get_layers()[0]
    proc = pdb.lookup_procedure("plug-in-ai-deblur-" + mode)
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    config.set_property("strength", strength)
    result = proc.run(config)
    if result.index(0) != Gimp.PDBStatusType.SUCCESS:
        failed += 1
        print("FAILED %s: %s" % (path, result.index(1) if result.length() > 1 else "unknown error"))
        image.delete()
        continue
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(os.path.join(dst, name + ".xcf")), None)
    flat = image.duplicate()
    flat.flatten()
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, flat, Gio.File.new_for_path(os.path.join(dst, name + ".png")), None)
    flat.delete()
    image.delete()
    print("deblurred %s -> %s" % (path, os.path.join(dst, name + ".png")))
print("%d photos, %d failed" % (len(files), failed))

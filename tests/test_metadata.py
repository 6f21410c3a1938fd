"""Metadata through the command line (issue 23): EXIF, ICC profile and XMP kept; EXIF orientation respected."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from helpers import ROOT
from deblur_core.imageio import read_image, read_image_meta, write_image

XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>')


def run(*args):
    return subprocess.run([sys.executable, "-m", "deblur_core", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=300)


@pytest.fixture(scope="module")
def icc():
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif(orientation=1):
    ex = Image.Exif()
    ex[271], ex[272] = "Canon", "EOS R5"
    if orientation != 1:
        ex[274] = orientation
    ex.get_ifd(0x8769)[0x9003] = "2024:05:06 07:08:09"  # DateTimeOriginal
    return ex


def _camera_jpeg(path, photo, icc, orientation=1, xmp=None):
    rgb = (photo[:96, :128] * 255 + 0.5).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=95, exif=_exif(orientation), icc_profile=icc,
                              **({"xmp": xmp} if xmp else {}))
    return rgb


def _meta_of(path):
    with Image.open(path) as im:
        ex = im.getexif()
        return {"icc": im.info.get("icc_profile"), "make": ex.get(271), "model": ex.get(272),
                "orientation": ex.get(274, 1), "date": ex.get_ifd(0x8769).get(0x9003), "size": im.size}


@pytest.mark.parametrize("ext", ["jpg", "png", "tif"])
def test_deblur_keeps_icc_and_exif(tmp_path, photo, icc, ext):
    """The issue's target: a camera JPEG with an ICC profile and EXIF keeps both through `deblur`."""
    src = str(tmp_path / "camera.jpg")
    _camera_jpeg(src, photo, icc)
    out = str(tmp_path / f"out.{ext}")
    r = run("deblur", src, "-o", out, "--mode", "sharpen", "--quiet")
    assert r.returncode == 0, r.stderr
    m = _meta_of(out)
    assert m["icc"] == icc
    assert (m["make"], m["model"], m["date"]) == ("Canon", "EOS R5", "2024:05:06 07:08:09")


def test_orientation_respected_and_reset(tmp_path, photo, icc):
    """A portrait shot stored sideways (orientation 6): the engine sees it upright, the output is
    upright and says orientation 1, in EXIF and XMP."""
    src = str(tmp_path / "portrait.jpg")
    _camera_jpeg(src, photo, icc, orientation=6, xmp=XMP)
    img, dtype, meta = read_image_meta(src)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src)))
    assert img.shape == upright.shape == (128, 96, 3) and meta.orientation == 6
    assert np.abs((img * 255 + 0.5).astype(int) - upright.astype(int)).max() == 0
    out = str(tmp_path / "out.jpg")
    r = run("deblur", src, "-o", out, "--mode", "sharpen", "--quiet")
    assert r.returncode == 0, r.stderr
    m = _meta_of(out)
    assert m["size"] == (96, 128) and m["orientation"] == 1 and m["make"] == "Canon" and m["icc"] == icc
    with Image.open(out) as im:
        xmp = im.info.get("xmp")
    assert xmp and b'tiff:Orientation="1"' in xmp


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_orientations_match_pillow(orientation, photo):
    b = io.BytesIO()
    ex = Image.Exif()
    ex[274] = orientation
    Image.fromarray((photo[:20, :30] * 255 + 0.5).astype(np.uint8)).save(b, "PNG", exif=ex)
    img, _, meta = read_image_meta(b.getvalue())
    ref = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(b.getvalue()))))
    assert meta.orientation == orientation
    assert np.array_equal((img * 255 + 0.5).astype(np.uint8), ref)


@pytest.mark.parametrize("ext", ["png", "tif"])
def test_sixteen_bit_alpha_with_metadata(tmp_path, photo, icc, ext):
    """Bit depth and alpha are kept, the pixels are exactly those written without metadata, and XMP
    travels too."""
    src = str(tmp_path / "camera.jpg")
    _camera_jpeg(src, photo, icc, xmp=XMP)
    _, _, meta = read_image_meta(src)
    rgba = np.concatenate([photo[:40, :50], np.full((40, 50, 1), 0.25, np.float32)], axis=2)
    plain, with_meta = str(tmp_path / f"a.{ext}"), str(tmp_path / f"b.{ext}")
    write_image(plain, rgba, np.uint16)
    write_image(with_meta, rgba, np.uint16, meta=meta)
    a, da = read_image(plain)
    b, db, mb = read_image_meta(with_meta)
    assert da == db == np.uint16 and b.shape == (40, 50, 4) and np.array_equal(a, b)
    assert mb.icc == icc and mb.xmp and b"tiff:Orientation" in mb.xmp
    m = _meta_of(with_meta)
    assert (m["make"], m["model"], m["date"]) == ("Canon", "EOS R5", "2024:05:06 07:08:09")


def test_damaged_exif_does_not_fail_a_read(tmp_path, photo):
    p = str(tmp_path / "bad.jpg")
    Image.fromarray((photo[:20, :30] * 255 + 0.5).astype(np.uint8)).save(p, exif=b"Exif\0\0garbage!!")
    img, _, meta = read_image_meta(p)
    assert img.shape == (20, 30, 3) and meta.exif is None
    write_image(str(tmp_path / "o.jpg"), img, meta=meta)


def test_gray_output_drops_an_rgb_profile(tmp_path, gray_photo, icc):
    from deblur_core.imageio import ImageMeta
    p = str(tmp_path / "g.png")
    write_image(p, gray_photo[:20, :20], meta=ImageMeta(icc=icc, exif=None))
    with Image.open(p) as im:
        assert "icc_profile" not in im.info

"""Read and write PNG, TIFF and JPEG (8/16-bit, gray or colour, with alpha) for the command line.

Pixels come back as float32 in [0, 1] in RGB(A) channel order together with the file's bit depth, so a
written result keeps the input's depth and alpha. OpenCV decodes and encodes the pixels.

Metadata (issue 23): :func:`read_image_meta` also returns an :class:`ImageMeta` with the file's EXIF,
ICC profile and XMP, read by Pillow; the pixels are turned upright by the EXIF orientation (the engine
sees the photo as it is meant to be seen), and the kept EXIF / XMP then say orientation 1.
:func:`write_image` with ``meta=`` puts them back into the output: JPEG (APP1 Exif, APP1 XMP, APP2
ICC_PROFILE segments), PNG (eXIf, iCCP, iTXt XML:com.adobe.xmp chunks) and TIFF (the image directory
rewritten by Pillow with the EXIF tags, the Exif and GPS sub-directories, ICC and XMP tags). The
metadata are spliced into OpenCV's encoded file, so the pixels are exactly those written without them.
Damaged metadata are dropped, never a reason to fail a read.
"""
from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from .color import from_float, to_float

__all__ = ["read_image", "read_image_meta", "write_image", "encode_image", "ImageMeta", "ImageReadError",
           "FORMATS"]

FORMATS = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_ICC_TAG, _XMP_TAG = 34675, 700
# TIFF tags that describe the pixels of a file, never copied from one file's EXIF into another file
_STRUCTURAL = {254, 255, 256, 257, 258, 259, 262, 263, 266, 269, 273, 277, 278, 279, 280, 281, 284, 292, 293,
               317, 320, 322, 323, 324, 325, 330, 338, 339, 340, 341, 347, 513, 514, 530, 531, 532,
               _ICC_TAG, _XMP_TAG, 33723, 34377, 37724}


class ImageReadError(ValueError):
    """A file that is missing, unreadable or not an image."""


@dataclass
class ImageMeta:
    """What a photo file says besides its pixels. ``exif`` is the TIFF structure of the EXIF block (no
    ``Exif\\0\\0`` prefix) already saying orientation 1; ``orientation`` is what the file said (1..8), and
    the pixels :func:`read_image_meta` returns are already turned by it."""
    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None
    orientation: int = 1
    warnings: list = field(default_factory=list)

    def __bool__(self):
        return bool(self.exif or self.icc or self.xmp)


# -- reading -------------------------------------------------------------------------------------------
def _decode(data: np.ndarray, name: str):
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)  # UNCHANGED: OpenCV does not apply the orientation
    if raw is None:
        raise ImageReadError(f"not a readable image (PNG, TIFF or JPEG expected): {name}")
    dtype = raw.dtype
    if dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageReadError(f"unsupported sample type {dtype} in {name}")
    if raw.ndim == 3 and raw.shape[2] == 3:
        raw = raw[..., ::-1]
    elif raw.ndim == 3 and raw.shape[2] == 4:
        raw = raw[..., [2, 1, 0, 3]]
    elif raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    image = to_float(np.ascontiguousarray(raw))
    if image.size == 0:
        raise ImageReadError(f"empty image: {name}")
    return image, dtype


def _load_bytes(source) -> tuple[bytes | np.ndarray, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = np.frombuffer(bytes(source), dtype=np.uint8)
        name = "(bytes)"
    else:
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise ImageReadError(f"no such file: {path}")
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            raise ImageReadError(f"cannot read {path}: {exc.strerror or exc}") from None
        name = path
    if data.size == 0:
        raise ImageReadError(f"empty file: {name}")
    return data, name


def read_image(path: str):
    """Read an image file, upright (EXIF orientation applied).

    Returns
    -------
    image : ndarray, float32, (H, W) or (H, W, C) with C in {2, 3, 4}, values in [0, 1], RGB order.
    dtype : numpy dtype of the file's samples (uint8 or uint16; float32 for float TIFF).
    """
    image, dtype, _ = read_image_meta(path)
    return image, dtype


def read_image_meta(source):
    """Like :func:`read_image` (``source``: a path, or the file's bytes), also returning its
    :class:`ImageMeta`."""
    data, name = _load_bytes(source)
    image, dtype = _decode(data, name)
    meta = read_meta(data.tobytes())
    image = apply_orientation(image, meta.orientation)
    return image, dtype, meta


def read_meta(blob: bytes) -> ImageMeta:
    """The EXIF, ICC profile, XMP and orientation of an encoded image (Pillow reads them; no pixels are
    decoded). Never raises: damaged metadata are left out with a warning."""
    meta = ImageMeta()
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is in requirements.txt
        meta.warnings.append("Pillow is not installed: metadata not kept")
        return meta
    try:
        with Image.open(io.BytesIO(blob)) as im:
            info = im.info
            fmt = im.format
            meta.icc = info.get("icc_profile") or None
            xmp = info.get("xmp") or info.get("XML:com.adobe.xmp")
            if fmt == "TIFF" and not xmp:
                xmp = im.tag_v2.get(_XMP_TAG)
            if isinstance(xmp, str):
                xmp = xmp.encode("utf-8")
            meta.xmp = bytes(xmp) if xmp else None
            exif = im.getexif()
            try:
                orientation = int(exif.get(ORIENTATION, 1))
            except (TypeError, ValueError):
                orientation = 1
            meta.orientation = orientation if 1 <= orientation <= 8 else 1
            if fmt == "TIFF":
                meta.exif = _exif_from_tiff(exif)
            else:
                raw = info.get("exif")
                if raw:
                    raw = bytes(raw)
                    if raw.startswith(b"Exif\0\0"):
                        raw = raw[6:]
                    meta.exif = raw if raw[:4] in (b"II*\0", b"MM\0*") else None
    except Exception as exc:  # noqa: BLE001 - metadata must never fail a read
        meta.warnings.append(f"metadata not readable, not kept: {type(exc).__name__}: {exc}")
        return meta
    if meta.exif:
        meta.exif = _exif_upright(meta.exif)
    if meta.xmp:
        meta.xmp = _xmp_upright(meta.xmp)
    return meta


def _exif_from_tiff(ifd0) -> bytes | None:
    """A TIFF file's EXIF: its IFD0 tags that are not about its pixels, and its Exif / GPS directories."""
    from PIL import Image
    exif = Image.Exif()
    for tag, value in ifd0.items():
        if tag not in _STRUCTURAL and tag not in (_EXIF_IFD, _GPS_IFD):
            exif[tag] = value
    for sub in (_EXIF_IFD, _GPS_IFD):
        d = ifd0.get_ifd(sub)
        if d:
            exif.get_ifd(sub).update(d)
    if not len(exif) and not any(exif.get_ifd(s) for s in (_EXIF_IFD, _GPS_IFD)):
        return None
    raw = exif.tobytes()
    return raw[6:] if raw.startswith(b"Exif\0\0") else raw


def _exif_upright(tiff: bytes) -> bytes | None:
    """The EXIF block with its IFD0 orientation set to 1, patched in place (maker notes and their private
    offsets stay exactly as the camera wrote them). None when the block is not a TIFF structure."""
    buf = bytearray(tiff)
    if buf[:2] == b"II":
        e = "<"
    elif buf[:2] == b"MM":
        e = ">"
    else:
        return None
    try:
        (ifd,) = struct.unpack_from(e + "I", buf, 4)
        (n,) = struct.unpack_from(e + "H", buf, ifd)
        for i in range(n):
            pos = ifd + 2 + 12 * i
            tag, typ, count = struct.unpack_from(e + "HHI", buf, pos)
            if tag == ORIENTATION and typ == 3 and count == 1:  # SHORT, in the entry itself
                struct.pack_into(e + "H", buf, pos + 8, 1)
    except struct.error:
        return None
    return bytes(buf)


_XMP_ORIENTATION = (re.compile(rb'(tiff:Orientation\s*=\s*["\'])[1-8](["\'])'),
                    re.compile(rb'(<tiff:Orientation>\s*)[1-8](\s*</tiff:Orientation>)'))


def _xmp_upright(xmp: bytes) -> bytes:
    for pat in _XMP_ORIENTATION:
        xmp = pat.sub(rb"\g<1>1\g<2>", xmp)
    return xmp


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF orientation 1..8 upright (as Pillow's ImageOps.exif_transpose)."""
    if orientation == 2:
        out = image[:, ::-1]
    elif orientation == 3:
        out = image[::-1, ::-1]
    elif orientation == 4:
        out = image[::-1]
    elif orientation == 5:
        out = image.swapaxes(0, 1)
    elif orientation == 6:
        out = image.swapaxes(0, 1)[:, ::-1]
    elif orientation == 7:
        out = image.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        out = image.swapaxes(0, 1)[::-1]
    else:
        return image
    return np.ascontiguousarray(out)


# -- writing -------------------------------------------------------------------------------------------
def encode_image(ext: str, image: np.ndarray, dtype=np.uint8, *, quality: int = 95,
                 meta: ImageMeta | None = None) -> bytes:
    """The file's bytes for float [0, 1] pixels in format ``ext`` (".png", ".tif", ".jpg"; 8-bit for JPEG),
    with ``meta``'s EXIF, ICC profile and XMP when given. Raises OSError on failure."""
    ext = ext.lower()
    if ext in (".jpg", ".jpeg"):
        dtype = np.uint8
        if image.ndim == 3 and image.shape[2] in (2, 4):  # JPEG has no alpha
            image = image[..., :-1] if image.shape[2] == 4 else image[..., 0]
    if ext not in FORMATS:
        raise OSError(f"unsupported output format {ext!r} (use .png, .tif or .jpg)")
    if image.ndim == 3 and image.shape[2] == 2:
        # OpenCV cannot write gray+alpha: store as RGBA, which every reader understands.
        image = np.concatenate([np.repeat(image[..., :1], 3, axis=2), image[..., 1:]], axis=2)
    out = from_float(image, dtype if np.dtype(dtype).kind != "f" else np.uint16)
    if out.ndim == 3 and out.shape[2] == 3:
        out = out[..., ::-1]
    elif out.ndim == 3 and out.shape[2] == 4:
        out = out[..., [2, 1, 0, 3]]
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(out), params)
    if not ok:
        raise OSError(f"could not encode {ext} image")
    blob = buf.tobytes()
    if meta and meta.icc and not _icc_fits(meta.icc, out.ndim == 3):
        meta = ImageMeta(exif=meta.exif, xmp=meta.xmp, orientation=meta.orientation)
    if meta:
        if ext in (".jpg", ".jpeg"):
            blob = _jpeg_with_meta(blob, meta)
        elif ext == ".png":
            blob = _png_with_meta(blob, meta)
        else:
            blob = _tiff_with_meta(blob, meta)
    return blob


def _icc_fits(icc: bytes, colour: bool) -> bool:
    """Whether an ICC profile's data colour space suits the written pixels (an RGB profile on a gray file
    is refused by readers)."""
    space = icc[16:20]
    return space == b"RGB " if colour else space == b"GRAY"


def write_image(path: str, image: np.ndarray, dtype=np.uint8, *, quality: int = 95,
                meta: ImageMeta | None = None) -> None:
    """Write float [0, 1] pixels with the given sample type (8-bit for JPEG), and ``meta``'s EXIF / ICC /
    XMP when given. Atomic: a temporary file in the same folder, then renamed. Raises OSError on failure."""
    blob = encode_image(os.path.splitext(path)[1], image, dtype, quality=quality, meta=meta)
    write_atomic(path, blob)


def write_atomic(path: str, blob: bytes) -> None:
    """Write ``blob`` to a temporary file next to ``path``, then rename it: never a half-written file under
    the real name."""
    folder, base = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _jpeg_with_meta(blob: bytes, meta: ImageMeta) -> bytes:
    if blob[:2] != b"\xff\xd8":
        raise OSError("not a JPEG stream")
    pos = 2
    while blob[pos:pos + 2] in (b"\xff\xe0",):  # keep JFIF APP0 first
        (n,) = struct.unpack(">H", blob[pos + 2:pos + 4])
        pos += 2 + n
    segs = []

    def seg(marker, payload):
        if len(payload) + 2 > 0xFFFF:
            return
        segs.append(struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload)

    if meta.exif:
        seg(0xE1, b"Exif\0\0" + meta.exif)
    if meta.xmp:
        seg(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + meta.xmp)
    if meta.icc:
        size = 65519 - 14
        chunks = [meta.icc[i:i + size] for i in range(0, len(meta.icc), size)]
        if len(chunks) < 256:
            for i, c in enumerate(chunks):
                seg(0xE2, b"ICC_PROFILE\0" + bytes([i + 1, len(chunks)]) + c)
    return blob[:pos] + b"".join(segs) + blob[pos:]


def _png_with_meta(blob: bytes, meta: ImageMeta) -> bytes:
    from PIL.PngImagePlugin import putchunk
    if blob[:8] != b"\x89PNG\r\n\x1a\n":
        raise OSError("not a PNG stream")
    (n,) = struct.unpack(">I", blob[8:12])
    pos = 8 + 12 + n  # after IHDR: iCCP must come before PLTE and IDAT
    f = io.BytesIO()
    if meta.icc:
        putchunk(f, b"iCCP", b"ICC Profile\0\0" + zlib.compress(meta.icc))
    if meta.exif:
        putchunk(f, b"eXIf", meta.exif)
    if meta.xmp:
        putchunk(f, b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + meta.xmp)
    return blob[:pos] + f.getvalue() + blob[pos:]


def _tiff_with_meta(blob: bytes, meta: ImageMeta) -> bytes:
    """OpenCV's TIFF with its image directory rewritten by Pillow, metadata tags added; the pixel strips
    are copied unchanged."""
    from PIL import Image, TiffTags
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    with Image.open(io.BytesIO(blob)) as im:
        src = im.tag_v2
        prefix = src.prefix
        tags = {tag: src[tag] for tag in src}
        types = dict(src.tagtype)
    offs, counts = tags.get(273), tags.get(279)
    offs = offs if isinstance(offs, tuple) else (offs,)
    counts = counts if isinstance(counts, tuple) else (counts,)
    start, end = min(offs), max(o + c for o, c in zip(offs, counts))
    ifd = ImageFileDirectory_v2(prefix=prefix)
    for tag, value in tags.items():
        ifd[tag] = value
        if tag in types:
            ifd.tagtype[tag] = types[tag]
    ifd[273] = tuple(o - start for o in offs) if len(offs) > 1 else offs[0] - start
    ifd.tagtype[273] = TiffTags.LONG
    if meta.exif:
        exif = Image.Exif()
        exif.load(b"Exif\0\0" + meta.exif)
        for tag, value in exif.items():
            if tag not in _STRUCTURAL and tag not in (_EXIF_IFD, _GPS_IFD):
                try:
                    ifd[tag] = value
                except Exception:  # noqa: BLE001 - a tag Pillow cannot write is left out
                    continue
        for sub in (_EXIF_IFD, _GPS_IFD):
            d = exif.get_ifd(sub)
            if d:
                ifd[sub] = dict(d)
                ifd.tagtype[sub] = TiffTags.LONG
        ifd[ORIENTATION] = 1
    if meta.icc:
        ifd[_ICC_TAG] = meta.icc
        ifd.tagtype[_ICC_TAG] = TiffTags.UNDEFINED
    if meta.xmp:
        ifd[_XMP_TAG] = meta.xmp
        ifd.tagtype[_XMP_TAG] = TiffTags.BYTE
    head = prefix + (b"\x2a\x00" if prefix == b"II" else b"\x00\x2a") + struct.pack(
        "<I" if prefix == b"II" else ">I", 8)
    directory = ifd.tobytes(8)
    return head + directory + blob[start:end]

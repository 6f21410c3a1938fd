#!/usr/bin/env python3
"""The project's photo set: sharp photographs from packages, nothing from model or data hubs.

Sources
-------
* scikit-image's bundled sample images (``skimage.data``; no download).
* Photographs shipped in Debian wallpaper packages (trixie suite), fetched with
  ``apt-get download PKG/trixie`` and unpacked with ``dpkg-deb -x``. Only the files listed in
  ``WALLPAPER_PHOTOS`` are used: each was looked at and is a real photograph (the vector/graphic
  wallpapers of the same packages are left out).

Split (deterministic)
---------------------
* ``heldout``: every scikit-image image + ~20% of the wallpapers, chosen by a stable hash of the
  cached file name. Used by every benchmark and for validation; never trained on.
* ``train``: the other wallpapers.

Wallpapers are downscaled (area filter, which also averages away JPEG blocking and sensor noise)
to about ``TARGET_PIXELS`` and stored as PNG under the cache folder, default
``~/.cache/ai-deblur/photos``, overridable with the environment variable ``AI_DEBLUR_PHOTOS``.

Command line: ``python tools/photos.py --fetch`` downloads/extracts/downscales what is missing
and prints counts; ``python tools/photos.py --list heldout`` prints the paths.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_PIXELS = 1_000_000
HELDOUT_PERCENT = 20

# package -> glob patterns (relative to the unpacked package root) of files that are photographs.
WALLPAPER_PHOTOS: dict[str, list[str]] = {
    "budgie-backgrounds": [
        f"usr/share/backgrounds/budgie/{n}.jpg"
        for n in (
            "abstract-spiral", "beacon-street-sunset", "blue-periwinkle", "canyon-wren", "casa-mila",
            "extreme-desert-hike", "high-trestle-trail", "lake-sherburne", "oakland-zoo-otters",
            "perched-osprey", "piazza-gae-aulenti", "roman-colosseum", "singaporean-cityscape",
            "tea-gardens",
        )
    ],
    "lomiri-wallpapers-16.04": [
        f"usr/share/backgrounds/{n}.jpg"
        for n in (
            "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace",
            "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi",
            "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
            "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
            "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
        )
    ],
    "mate-backgrounds": [
        f"usr/share/backgrounds/mate/nature/{n}.jpg"
        for n in (
            "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
            "Storm", "TwoWings", "Wood", "YellowFlower",
        )
    ],
    "plasma-workspace-wallpapers": [
        f"usr/share/wallpapers/{n}/contents/images/*.jpg"
        for n in (
            "BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "OneStandsOut",
            "Path", "summer_1am",
        )
    ] + ["usr/share/wallpapers/Mountain/contents/images/*.png"],
}

# scikit-image sample images that ship inside the wheel (no pooch download needed).
SKIMAGE_IMAGES = (
    "astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field", "brick", "grass",
    "gravel", "text", "coins", "moon", "page", "clock", "immunohistochemistry",
)


def cache_dir() -> Path:
    env = os.environ.get("AI_DEBLUR_PHOTOS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ai-deblur" / "photos"


def _photo_dir() -> Path:
    return cache_dir() / "photos"


def is_heldout(name: str) -> bool:
    """Stable split by the file name (not the path, so moving the cache changes nothing)."""
    h = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")
    return h % 100 < HELDOUT_PERCENT


def _downscale(img, target=TARGET_PIXELS):
    import cv2

    h, w = img.shape[:2]
    if h * w <= target:
        return img
    s = (target / (h * w)) ** 0.5
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def _write_skimage(out: Path) -> int:
    import cv2
    import numpy as np
    import skimage.data

    n = 0
    for name in SKIMAGE_IMAGES:
        dst = out / f"skimage__{name}.png"
        if dst.exists():
            n += 1
            continue
        try:
            img = getattr(skimage.data, name)()
        except Exception as exc:  # pragma: no cover - depends on the installed scikit-image
            print(f"  skip skimage.data.{name}: {exc}", file=sys.stderr)
            continue
        img = np.asarray(img)
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        if img.ndim == 3:
            img = cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(dst), img)
        n += 1
    return n


def _fetch_package(pkg: str, patterns: list[str], out: Path, debs: Path) -> int:
    import cv2

    expected_prefix = f"{pkg}__"
    have = [p for p in out.glob(expected_prefix + "*.png")]
    if len(have) >= len(patterns):
        return len(have)
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if not found:
        for spec in (f"{pkg}/trixie", pkg):
            r = subprocess.run(["apt-get", "download", spec], cwd=debs, capture_output=True, text=True)
            found = sorted(debs.glob(f"{pkg}_*.deb"))
            if found:
                break
        if not found:
            print(f"  could not download {pkg}: {r.stderr.strip()[-300:]}", file=sys.stderr)
            return 0
    n = 0
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        subprocess.run(["dpkg-deb", "-x", str(found[-1]), tmp], check=True)
        root = Path(tmp)
        files = [p for p in root.rglob("*") if p.is_file()]
        for pat in patterns:
            matches = [p for p in files if fnmatch.fnmatch(str(p.relative_to(root)), pat)]
            if not matches:
                print(f"  {pkg}: nothing matches {pat}", file=sys.stderr)
                continue
            # several resolutions of one wallpaper: take the largest landscape one
            best = max(matches, key=lambda p: p.stat().st_size)
            rel = best.relative_to(root)
            stem = rel.parts[-4] if "wallpapers" in rel.parts and "contents" in rel.parts else rel.stem
            dst = out / f"{pkg}__{stem}.png"
            if not dst.exists():
                img = cv2.imread(str(best), cv2.IMREAD_COLOR)
                if img is None:
                    print(f"  {pkg}: cannot read {rel}", file=sys.stderr)
                    continue
                cv2.imwrite(str(dst), _downscale(img))
            n += 1
    return n


def fetch(verbose: bool = True) -> dict[str, int]:
    """Make sure the photo cache is filled; returns counts per source."""
    out = _photo_dir()
    out.mkdir(parents=True, exist_ok=True)
    counts = {"skimage": _write_skimage(out)}
    for pkg, pats in WALLPAPER_PHOTOS.items():
        if shutil.which("apt-get") is None and not any(out.glob(f"{pkg}__*.png")):
            counts[pkg] = 0
            continue
        counts[pkg] = _fetch_package(pkg, pats, out, cache_dir() / "debs")
        if verbose:
            print(f"  {pkg}: {counts[pkg]} photos", file=sys.stderr)
    return counts


def photo_paths(split: str, *, fetch_missing: bool = False) -> list[Path]:
    """Sorted paths of the cached photos of one split ("train" or "heldout").

    Held-out = every scikit-image image + ~20% of the wallpapers (stable hash of the file name).
    With ``fetch_missing`` the cache is filled first (needs apt-get for the wallpapers); without
    it, only what is already cached is returned, plus the scikit-image images (always writable).
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', not {split!r}")
    out = _photo_dir()
    if fetch_missing:
        fetch(verbose=False)
    else:
        out.mkdir(parents=True, exist_ok=True)
        if not any(out.glob("skimage__*.png")):
            _write_skimage(out)
    paths = sorted(out.glob("*.png"))
    res = []
    for p in paths:
        held = p.name.startswith("skimage__") or is_heldout(p.name)
        if (split == "heldout") == held:
            res.append(p)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fetch", action="store_true", help="download/extract/downscale missing photos, print counts")
    ap.add_argument("--list", choices=("train", "heldout"), help="print the paths of one split")
    a = ap.parse_args(argv)
    if a.fetch:
        counts = fetch()
        for k, v in counts.items():
            print(f"{k:32s} {v:4d}")
        print(f"{'train':32s} {len(photo_paths('train')):4d}")
        print(f"{'heldout':32s} {len(photo_paths('heldout')):4d}")
        print(f"cache: {cache_dir()}")
    if a.list:
        for p in photo_paths(a.list):
            print(p)
    if not (a.fetch or a.list):
        ap.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())

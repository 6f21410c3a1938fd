"""Selective deblurring benchmark (issue 6): face detection, halos and noise vs GIMP, a before/after sheet.

    .venv/bin/python bench/bench_faces.py              # all parts (GIMP part needs gimp-console-3.0)
    .venv/bin/python bench/bench_faces.py --parts am   # face detection and masks only
    .venv/bin/python bench/bench_faces.py --no-gimp    # skip (b)
    .venv/bin/python bench/bench_faces.py --quick      # fewer photos

(a) Face detection: recall and precision of face boxes of deblur_core.faces' MTCNN (ONNX), its Haar
    cascade fallback and a peer, scikit-image's LBP frontal-face cascade (skimage.feature.Cascade with
    the lbpcascade_frontalface file inside scikit-image), all in the same run. Labels in
    bench/faces_labels.json (boxes read off by hand over a 50 px grid); a hit is a detection with
    IoU >= 0.4, matched one to one; precision = hits / all detections, negatives included:
      * held-out: skimage ``astronaut`` and ``camera`` (one face each), sharp, gaussian 3 px and
        motion 15 px (faces must be found *before* deblurring); every other photo of the project's
        set (tools/photos.py, train + held-out: Debian wallpapers and scikit-image images; looked
        through by hand, none shows a person; the hikers of ``extreme-desert-hike`` are < 10 px
        silhouettes, ``friends`` are two dogs) is a negative.
      * skimage ``lfw_subset``: the 100 face crops (25 x 25 px, Labeled Faces in the Wild) upscaled to
        100 px and padded by 30 px (replicated border); a hit is a detection whose centre lies in the
        central 60 x 60 px; also blurred (gaussian sigma 2 px). Its 100 non-face crops count false
        detections.
      * real blurred photos (development set, when /work/shared/data/real_blur/lai2016_real is there;
        never committed): 20 faces in 5 photos with people, 35 photos without faces.
    Detection runs at the engine's default 1024 px long side.
(m) Masks on the real photos with people: faces mask and people mask (masks.people_mask), mean inside
    each labelled face / person over the mean elsewhere (the target is >= 2 for every one).
(p) People (issue 21): person recall / precision of faces.detect_people (faces, a finer face pass on
    large photos, OpenCV's HOG people detector for people seen from behind or too small for a face)
    against faces alone, and the people mask's per-person ratio; held-out cases built from astronaut and
    cameraman (face painted over as a head seen from behind, small in a large frame, a sepia two-person
    snapshot), the lai2016 photos with people as a development set, photos without people as negatives.
(b) Halo overshoot and flat-area noise gain of deblur_core.sharpen.unsharp_mask (halo-free) vs GIMP
    3's own unsharp mask (GEGL ``gegl:unsharp-mask`` applied through ``Gimp.DrawableFilter`` in a
    gimp-console batch run; GIMP 3 has no ``plug-in-unsharp-mask`` PDB procedure any more) at the
    SAME edge acutance: for each GIMP amount, our amount is bisected until the mean gradient over the
    input's strong edges (top 5 %) is equal. Input: held-out photos, 512 px centre crops, softened by
    a gaussian of 1 px and given gaussian noise of 0.01 (a slightly soft, slightly noisy photo).
    Measures from deblur_core.guard (radius 3: halo = 99th percentile of the overshoot beyond the
    input's local 7 x 7 range at strong edges, [0, 1] units; noise gain = flat-area high-pass std,
    result / input), and PSNR of each against the sharp, noise-free crop. Where even our amount 16
    cannot reach GIMP's acutance (GIMP's halos steepen edges too, a halo-free filter saturates) the
    row is marked "(max)" and left out of the MEAN rows, which are over equal-acutance rows only.
(c) out/bench-faces-sheet.png: before/after rows (astronaut softened and grainy): input, face mask,
    deblur with the faces mask composited, Old Photo Clarity (both layers composited), subject mask on
    a photo with intended bokeh.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (ROOT, os.path.join(ROOT, "tools"), os.path.join(ROOT, "bench")):
    if p not in sys.path:
        sys.path.insert(0, p)

import cv2  # noqa: E402

from deblur_core import faces as fc  # noqa: E402
from deblur_core import guard as gd  # noqa: E402

HAND_BOXES = {"astronaut": [(168, 58, 110, 118)], "camera": [(180, 95, 95, 110)]}


def _iou(a, b):
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / float(a[2] * a[3] + b[2] * b[3] - ix * iy)


def table(rows, header):
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"  # noqa: E731
    print(line(header))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for r in rows:
        print(line(r))


# (a) ---------------------------------------------------------------------------------------------
LABELS = os.path.join(ROOT, "bench", "faces_labels.json")
LAI = os.path.join("/work/shared/data/real_blur/lai2016_real")


class Ours:
    name = "ours: MTCNN (ONNX)"

    def boxes(self, img):
        return [f.box for f in fc.detect_faces(img, features=False, detector="mtcnn")]


class Haar:
    name = "Haar cascades (fallback)"

    def boxes(self, img):
        return [f.box for f in fc.detect_faces(img, features=False, detector="haar")]


class SkimageLBP:
    name = "peer: skimage LBP cascade"

    def __init__(self):
        from skimage.data import lbp_frontal_face_cascade_filename
        from skimage.feature import Cascade
        self.det = Cascade(lbp_frontal_face_cascade_filename())

    def boxes(self, img, max_side=1024):
        gray_u8 = fc.to_gray_u8(img)
        h, w = gray_u8.shape
        s = min(1.0, max_side / max(h, w))
        g = gray_u8 if s == 1 else cv2.resize(gray_u8, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
        ms = max(20, int(min(g.shape) * 0.03))
        found = self.det.detect_multi_scale(img=g.astype(np.float64) / 255, scale_factor=1.2, step_ratio=1,
                                            min_size=(ms, ms), max_size=g.shape, min_neighbor_number=4)
        return [tuple(int(round(v / s)) for v in (d["c"], d["r"], d["width"], d["height"])) for d in found]


def _lfw(blur=0.0):
    from skimage.data import lfw_subset
    x = lfw_subset()
    out = []
    for i in range(200):
        im = cv2.resize((x[i] * 255).astype(np.uint8), (100, 100), interpolation=cv2.INTER_CUBIC)
        if blur:
            im = cv2.GaussianBlur(im, (0, 0), blur)
        out.append((i < 100, cv2.copyMakeBorder(im, 30, 30, 30, 30, cv2.BORDER_REPLICATE)))
    return out


def _match(labels, found, iou):
    """(true positives, false positives, missed) by greedy one-to-one matching at IoU >= iou."""
    used, tp = set(), 0
    for gt in labels:
        best, bi = 0.0, None
        for i, b in enumerate(found):
            if i not in used and _iou(gt, b) > best:
                best, bi = _iou(gt, b), i
        if bi is not None and best >= iou:
            used.add(bi)
            tp += 1
    return tp, len(found) - len(used), len(labels) - tp


def _pr(tp, fp, fn):
    rec = tp / max(1, tp + fn)
    prec = tp / max(1, tp + fp) if tp + fp else float("nan")
    return f"{rec:.2f} ({tp}/{tp + fn})", f"{prec:.2f} ({tp}/{tp + fp})"


def part_a(quick=False):
    """Recall and precision of face boxes, MTCNN against the Haar fallback and a peer, on the labelled
    sets of bench/faces_labels.json."""
    import json

    import skimage.data
    from photos import photo_paths
    labels = json.load(open(LABELS))
    iou = labels["iou"]
    print("\n## (a) Face detection: recall and precision (labels: bench/faces_labels.json, IoU >= %.1f)\n" % iou)
    dets = [Ours(), Haar()]
    try:
        dets.append(SkimageLBP())
    except Exception as exc:  # noqa: BLE001
        print(f"(peer unavailable: {exc})")
    rgb = lambda p: cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1].copy()  # noqa: E731
    # held-out: the two portraits, sharp and blurred; every other photo of the set is a negative
    motion = np.zeros((15, 15), np.float32)
    motion[7, :] = 1 / 15
    variants = {"sharp": lambda g: g, "gauss 3": lambda g: cv2.GaussianBlur(g, (0, 0), 3.0),
                "motion 15": lambda g: cv2.filter2D(g, -1, motion)}
    portraits = {n: getattr(skimage.data, n)() for n in labels["heldout"]}
    negatives = []
    for split in ("heldout", "train"):
        for p in photo_paths(split):
            name = os.path.splitext(os.path.basename(str(p)))[0]
            if any(n in name for n in labels["heldout"]):
                continue
            im = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if im is not None:
                negatives.append((name, im[..., ::-1].copy()))
    if quick:
        negatives = negatives[::4]
    lfw = {0.0: _lfw(0.0), 2.0: _lfw(2.0)}
    lai = labels["lai2016_real"]
    have_lai = os.path.isdir(LAI)
    rows, rows2 = [], []
    for det in dets:
        t0, n_img = time.perf_counter(), 0
        tp = fp = fn = 0
        for fn_ in variants.values():
            for n, im in portraits.items():
                a, b, c = _match([tuple(x) for x in labels["heldout"][n]], det.boxes(fn_(im)), iou)
                tp, fp, fn, n_img = tp + a, fp + b, fn + c, n_img + 1
        neg_fp, worst = 0, []
        for name, im in negatives:
            k = len(det.boxes(im))
            n_img += 1
            neg_fp += k
            if k:
                worst.append(f"{name.split('__')[-1]}:{k}")
        r, p = _pr(tp, fp + neg_fp, fn)
        lf = []
        lfw_fp = 0
        for blur in (0.0, 2.0):
            h = 0
            for is_face, im in lfw[blur]:
                b = det.boxes(im)
                n_img += 1
                if is_face:
                    h += any(60 <= x + w / 2 <= 120 and 60 <= y + hh / 2 <= 120 for x, y, w, hh in b)
                elif blur == 0.0:
                    lfw_fp += len(b)
            lf.append(f"{h}/100")
        rows.append([det.name, r, p, f"{neg_fp} in {len(negatives)}" + (f" ({', '.join(worst[:3])})" if worst else ""),
                     lf[0], lf[1], str(lfw_fp), f"{1000 * (time.perf_counter() - t0) / n_img:.0f}"])
        if have_lai:
            tp = fp = fn = nfp = 0
            t1 = time.perf_counter()
            for name, boxes in lai["faces"].items():
                a, b, c = _match([tuple(x) for x in boxes], det.boxes(rgb(os.path.join(LAI, name))), iou)
                tp, fp, fn = tp + a, fp + b, fn + c
            for name in lai["negative"]:
                nfp += len(det.boxes(rgb(os.path.join(LAI, name))))
            r2, p2 = _pr(tp, fp + nfp, fn)
            n2 = len(lai["faces"]) + len(lai["negative"])
            rows2.append([det.name, r2, p2, f"{fp}", f"{nfp} in {len(lai['negative'])}",
                          f"{1000 * (time.perf_counter() - t1) / n2:.0f}"])
    print("Held-out (astronaut + camera, each sharp / gaussian 3 px / motion 15 px: 6 faces; the photo set's "
          f"{len(negatives)} photos without people as negatives) and LFW crops:\n")
    table(rows, ["detector", "recall", "precision", "false faces in no-people photos", "LFW 100 faces",
                 "LFW blurred s2", "false on LFW non-faces", "ms / image"])
    if have_lai:
        nf = sum(len(v) for v in lai["faces"].values())
        print(f"\nReal blurred photos, lai2016_real (development set): {nf} faces in {len(lai['faces'])} photos, "
              f"{len(lai['negative'])} photos without faces, {len(lai['ignore'])} ignored:\n")
        table(rows2, ["detector", "recall", "precision", "false faces in photos with people",
                      "false faces in no-face photos", "ms / photo"])
    else:
        print(f"\n({LAI} not present: the real-photo rows are skipped)")


def part_m():
    """Masks on the real photos with people: the faces mask and the people mask, mean inside each
    labelled face (or person: the face box widened by half its width each side and 4 face heights
    down) against the mean over the rest of the photo (outside every labelled face / person)."""
    import json

    from deblur_core import masks
    labels = json.load(open(LABELS))["lai2016_real"]["faces"]
    if not os.path.isdir(LAI):
        print(f"\n({LAI} not present: mask check skipped)")
        return
    print("\n## (m) Masks on real photos with people: inside / rest (target >= 2 for each face)\n")
    rows = []
    for name, boxes in labels.items():
        im = cv2.imread(os.path.join(LAI, name))[..., ::-1].astype(np.float32) / 255
        faces = fc.detect_faces(im)
        fm = fc.face_mask(im.shape, faces)
        pm = masks.people_mask(im.shape, faces)
        H, W = fm.shape
        fr, pr = [], []
        bodies, anyface, anybody = [], np.zeros((H, W), bool), np.zeros((H, W), bool)
        for x, y, w, h in boxes:
            body = np.zeros((H, W), bool)
            body[y:min(H, y + 4 * h), max(0, x - w // 2):x + w + w // 2] = True
            bodies.append(body)
            anyface[y:y + h, x:x + w] = True
            anybody |= body
        rest_f = max(fm[~anyface].mean(), 1e-3)   # the rest: outside every labelled face / person
        rest_p = max(pm[~anybody].mean(), 1e-3) if (~anybody).any() else 1e-3
        for (x, y, w, h), body in zip(boxes, bodies):
            fr.append(fm[y:y + h, x:x + w].mean() / rest_f)
            pr.append(pm[body].mean() / rest_p)
        rows.append([name, len(boxes), len(faces), f"{min(fr):.1f}", sum(r >= 2 for r in fr),
                     f"{min(pr):.1f}", sum(r >= 2 for r in pr)])
    table(rows, ["photo", "faces labelled", "found", "faces mask: worst face", "faces >= 2x",
                 "people mask: worst person", "people >= 2x"])


# (p) ---------------------------------------------------------------------------------------------
def _paint_head(img, face, hair_at):
    """The face box painted over with the colour of the hair above it and a little texture: the back
    of a head, as a person seen from behind shows it."""
    out = img.copy()
    x, y, w, h = face
    hx, hy, hw, hh = hair_at
    hair = np.median(img[hy:hy + hh, hx:hx + hw].reshape(-1, img.shape[2]), axis=0)
    rng = np.random.default_rng(5)
    tex = cv2.GaussianBlur(rng.normal(0, 18, img.shape[:2]).astype(np.float32), (0, 0), 2.0)
    m = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(m, (x + w // 2, y + h // 2), (int(w * 0.6), int(h * 0.62)), 0, 0, 360, 1.0, -1)
    m = cv2.GaussianBlur(m, (0, 0), 3)[..., None]
    return np.clip(out * (1 - m) + (hair + tex[..., None]) * m, 0, 255).astype(np.uint8)


def _canvas(w, h, seed, tint=(128, 120, 110)):
    rng = np.random.default_rng(seed)
    low = rng.integers(-25, 25, (h // 50 + 1, w // 50 + 1, 3)).astype(np.float32)
    return np.clip(cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC) + np.array(tint, np.float32), 0, 255)


def _paste(canvas, img, scale, at, box):
    """``img`` scaled into ``canvas`` at ``at``; returns the labelled ``box`` in canvas pixels."""
    sm = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    x, y = at
    canvas[y:y + sm.shape[0], x:x + sm.shape[1]] = sm
    return [round(x + box[0] * scale), round(y + box[1] * scale), round(box[2] * scale), round(box[3] * scale)]


def _old_look(img, seed=2):
    """Sepia, a little soft, with film grain: a scanned snapshot."""
    g = img.astype(np.float32).mean(axis=2, keepdims=True)
    sep = g * np.array([1.07, 0.95, 0.78], np.float32)
    sep = cv2.GaussianBlur(sep, (0, 0), 1.2)
    rng = np.random.default_rng(seed)
    grain = cv2.GaussianBlur(rng.normal(0, 9, img.shape[:2]).astype(np.float32), (0, 0), 0.8)
    return np.clip(sep + grain[..., None], 0, 255).astype(np.uint8)


def people_cases(labels):
    """Held-out people photos built from scikit-image's astronaut and cameraman: (name, RGB uint8, boxes)."""
    import skimage.data
    ppl = labels["people"]["heldout"]
    faces = labels["heldout"]
    ast = skimage.data.astronaut()
    cam = cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2RGB)
    ast_back = _paint_head(ast, faces["astronaut"][0], (190, 25, 70, 30))
    cam_back = _paint_head(cam, faces["camera"][0], (200, 72, 60, 20))
    cases = [("astronaut", ast, [ppl["astronaut"][0]]), ("camera", cam, [ppl["camera"][0]]),
             ("astronaut, head from behind", ast_back, [ppl["astronaut"][0]]),
             ("camera, head from behind", cam_back, [ppl["camera"][0]])]
    for name, img, box in (("astronaut", ast, ppl["astronaut"][0]), ("camera", cam, ppl["camera"][0])):
        c = _canvas(2400, 1600, 3)
        b = _paste(c, img, 0.32, (1500, 700), box)   # the face: ~35 px of 2400, 15 px at the 1024 px pass
        cases.append((f"{name}, small in a 2400 px frame", c.astype(np.uint8), [b]))
    c = _canvas(1600, 1100, 4, tint=(150, 140, 120))
    b1 = _paste(c, ast, 0.9, (120, 560), ppl["astronaut"][0])
    b2 = _paste(c, cam_back, 0.9, (900, 600), ppl["camera"][0])
    cases.append(("two-person snapshot (sepia, grain; one seen from behind)", _old_look(c), [b1, b2]))
    return cases


def _person_point(f):
    """Where a detection says a person is: the face's centre, or the upper middle of a body box."""
    x, y, w, h = f.box
    return (x + w / 2, y + h / 2) if f.kind != "body" else (x + w / 2, y + h / 3)


def _match_people(boxes, people):
    """(matched, detections, labelled): a detection matches the labelled person whose box holds its
    point (one to one, nearest box centre first)."""
    used, tp = set(), 0
    for bx, by, bw, bh in boxes:
        best, bi = None, None
        for i, f in enumerate(people):
            px, py = _person_point(f)
            if i in used or not (bx <= px <= bx + bw and by <= py <= by + bh):
                continue
            d = (px - bx - bw / 2) ** 2 + (py - by - bh / 2) ** 2
            if best is None or d < best:
                best, bi = d, i
        if bi is not None:
            used.add(bi)
            tp += 1
    return tp, len(people), len(boxes)


def _mask_ratios(shape, boxes, people):
    from deblur_core import masks
    pm = masks.people_mask(shape, people)
    H, W = pm.shape
    anybody = np.zeros((H, W), bool)
    for x, y, w, h in boxes:
        anybody[max(0, y):y + h, max(0, x):x + w] = True
    rest = max(float(pm[~anybody].mean()), 1e-3) if (~anybody).any() else 1e-3
    return [float(pm[max(0, y):y + h, max(0, x):x + w].mean()) / rest for x, y, w, h in boxes]


PEOPLE_CONFIGS = {"faces only": dict(bodies=False, fine=False),
                  "faces + fine pass (before)": dict(bodies=False, fine=True),
                  "faces + fine + person segmentation in photos with faces (ours, the default)":
                      dict(bodies="segment", fine=True),
                  "faces + fine + person segmentation everywhere": dict(bodies="segment-everywhere", fine=True),
                  "faces + fine + HOG bodies everywhere": dict(bodies=True, fine=True),
                  "faces + fine + HOG bodies in photos with faces": dict(bodies="with-faces", fine=True)}


def part_p(quick=False):
    """People (issue 21): every person found, seen from behind or too small for the face detector too.
    Recall and precision of people (deblur_core.faces.detect_people) and the people mask's per-person
    ratio (mean inside the person's box / mean outside every person; target >= 2), on the held-out
    cases (people_cases) and the lai2016 development photos; every photo without people of the project's
    photo set and of lai2016 is a negative (each person found there is false)."""
    import json

    from photos import photo_paths
    labels = json.load(open(LABELS))
    print("\n## (p) People: recall, precision and the people mask (labels: bench/faces_labels.json 'people')\n")
    held = people_cases(labels)
    dev = []
    if os.path.isdir(LAI):
        lai_faces = labels["lai2016_real"]["faces"]
        for name, spec in labels["people"]["lai2016_real"].items():
            boxes = [list(b) for b in spec.get("boxes", [])]
            im = cv2.imread(os.path.join(LAI, name))[..., ::-1].copy()
            if spec.get("from_faces"):
                H, W = im.shape[:2]
                for fb in lai_faces.get(name, []):
                    x, y, w, h = (int(round(v)) for v in fc.person_box(fb))
                    x0, y0 = max(0, x), max(0, y)
                    boxes.append([x0, y0, min(W, x + w) - x0, min(H, y + h) - y0])
            dev.append((name, im, boxes))
    negatives = []
    for split in ("heldout", "train"):
        for p in photo_paths(split):
            n = os.path.splitext(os.path.basename(str(p)))[0]
            if "astronaut" in n or "camera" in n:
                continue
            im = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if im is not None:
                negatives.append((n.split("__")[-1], im[..., ::-1].copy()))
    if os.path.isdir(LAI):
        for n in labels["lai2016_real"]["negative"]:
            negatives.append((n, cv2.imread(os.path.join(LAI, n))[..., ::-1].copy()))
    if quick:
        negatives = negatives[::3]
    rows, detail = [], []
    for cname, kw in PEOPLE_CONFIGS.items():
        t0, n_img = time.perf_counter(), 0
        agg = {}
        for split, cases in (("held-out", held), ("lai2016 (dev)", dev)):
            tp = lab = det = ok2 = 0
            worst = []
            for name, im, boxes in cases:
                people = fc.detect_people(im, **kw)
                n_img += 1
                a, b, _c = _match_people(boxes, people)
                tp, lab, det = tp + a, lab + len(boxes), det + b
                ratios = _mask_ratios(im.shape, boxes, people)
                ok2 += sum(r >= 2 for r in ratios)
                worst.append(min(ratios))
                if "(ours" in cname:
                    detail.append([split, name, len(boxes), a, b - a,
                                   f"{sum(f.kind == 'body' for f in people)}", f"{min(ratios):.1f}",
                                   f"{sum(r >= 2 for r in ratios)}/{len(boxes)}"])
            agg[split] = (tp, lab, det, ok2)
        neg_fp, where = 0, []
        for name, im in negatives:
            k = len(fc.detect_people(im, **kw))
            n_img += 1
            neg_fp += k
            if k:
                where.append(f"{name[:18]}:{k}")
        for split, (tp, lab, det, ok2) in agg.items():
            fp = det - tp + neg_fp
            rows.append([cname, split, f"{tp / max(1, lab):.2f} ({tp}/{lab})",
                         f"{tp / max(1, tp + fp):.2f} ({tp}/{tp + fp})", f"{ok2}/{lab}"])
        rows.append([cname, f"negatives: {len(negatives)} photos", "", f"{neg_fp} false people",
                     ", ".join(where[:4])])
        rows.append([cname, "ms / photo", f"{1000 * (time.perf_counter() - t0) / n_img:.0f}", "", ""])
    table(rows, ["detector", "set", "person recall", "precision (negatives' false people included)",
                 "people mask >= 2x"])
    print()
    table(detail, ["set", "photo", "people", "found", "false", "of them bodies", "mask: worst person",
                   "people >= 2x"])


# (b) ---------------------------------------------------------------------------------------------
GIMP_CODE = r'''
import json
jobs = json.load(open(JOBS))
for src, dst, sd, amount in jobs:
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(src))
    layer = img.get_layers()[0]
    f = Gimp.DrawableFilter.new(layer, "gegl:unsharp-mask", "usm")
    cfg = f.get_config()
    cfg.set_property("std-dev", float(sd))
    cfg.set_property("scale", float(amount))
    cfg.set_property("threshold", 0.0)
    f.update()
    layer.merge_filter(f)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(dst), None)
    img.delete()
RESULT["done"] = len(jobs)
RESULT["precision"] = "done"
'''


def acutance(result, original):
    y0, y1 = gd._luma(original), gd._luma(result)
    gx = cv2.Sobel(y0, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(y0, cv2.CV_32F, 0, 1, ksize=3) / 8
    g0 = np.hypot(gx, gy)
    zone = g0 >= np.percentile(g0, 95)
    g1 = np.hypot(cv2.Sobel(y1, cv2.CV_32F, 1, 0, ksize=3) / 8, cv2.Sobel(y1, cv2.CV_32F, 0, 1, ksize=3) / 8)
    return float(g1[zone].mean())


def part_b(quick=False):
    from common import photos, psnr
    from deblur_core.sharpen import unsharp_mask
    from tools.gimp_batch import GimpNotFound, run_python
    print("\n## (b) Halo and noise at equal edge acutance: ours vs GIMP 3 unsharp mask\n")
    sd = 1.5
    amounts = (0.5, 1.0, 2.0)
    crops = photos("heldout", limit=3 if quick else 6, side=512, color_only=True, seed=3)
    rng = np.random.default_rng(0)
    tmp = tempfile.mkdtemp(prefix="bench-faces-")
    jobs, soft = [], {}
    for name, img in crops:
        s = cv2.GaussianBlur(img, (0, 0), 1.0) + rng.normal(0, 0.01, img.shape).astype(np.float32)
        s = np.clip(s, 0, 1).astype(np.float32)
        soft[name] = s
        src = os.path.join(tmp, f"{name}.png")
        cv2.imwrite(src, np.round(s[..., ::-1] * 65535).astype(np.uint16))
        for a in amounts:
            jobs.append((src, os.path.join(tmp, f"{name}__{a}.png"), sd, a))
    import json
    with open(os.path.join(tmp, "jobs.json"), "w") as fh:
        json.dump(jobs, fh)
    t0 = time.perf_counter()
    try:
        run_python(f"JOBS = {os.path.join(tmp, 'jobs.json')!r}\n" + GIMP_CODE, profile=os.path.join(tmp, "profile"),
                   timeout=900)
    except GimpNotFound as exc:
        print(f"skipped: {exc}")
        return
    print(f"GIMP batch: {len(jobs)} filter runs in {time.perf_counter() - t0:.0f} s (incl. start-up)\n")
    rows = []
    agg = {a: [] for a in amounts}
    for name, sharp in crops:
        s = soft[name]
        for a in amounts:
            g = cv2.imread(os.path.join(tmp, f"{name}__{a}.png"), cv2.IMREAD_UNCHANGED)
            if g is None:
                rows.append([name, a, "GIMP output missing"] + [""] * 5)
                continue
            g = (g[..., ::-1].astype(np.float32) / (65535.0 if g.dtype == np.uint16 else 255.0))[..., :3]
            target = acutance(g, s)
            lo, hi = 0.0, 16.0
            reach = acutance(unsharp_mask(s, sd, hi), s)
            if reach < target:
                ours_a, ours = hi, unsharp_mask(s, sd, hi)
            else:
                for _ in range(14):
                    mid = 0.5 * (lo + hi)
                    if acutance(unsharp_mask(s, sd, mid), s) < target:
                        lo = mid
                    else:
                        hi = mid
                ours_a, ours = hi, unsharp_mask(s, sd, hi)
            r = [gd.halo_overshoot(g, s), gd.halo_overshoot(ours, s), gd.noise_gain(g, s), gd.noise_gain(ours, s),
                 psnr(g, sharp), psnr(ours, sharp)]
            if reach >= target:
                agg[a].append(r)
            rows.append([name.split("__")[-1][:24], a, f"{target:.4f}", f"{acutance(ours, s):.4f}",
                         f"{ours_a:.2f}" + ("" if reach >= target else " (max)"),
                         f"{r[0]:.3f}", f"{r[1]:.3f}", f"{r[2]:.2f}", f"{r[3]:.2f}", f"{r[4]:.2f}", f"{r[5]:.2f}"])
    for a in amounts:
        if agg[a]:
            m = np.mean(agg[a], axis=0)
            rows.append([f"MEAN ({len(agg[a])}/{len(crops)} equal)", a, "", "", "", f"{m[0]:.3f}", f"{m[1]:.3f}",
                         f"{m[2]:.2f}", f"{m[3]:.2f}", f"{m[4]:.2f}", f"{m[5]:.2f}"])
        else:
            rows.append([f"MEAN (0/{len(crops)} equal)", a] + [""] * 9)
    table(rows, ["photo", "GIMP amount", "acutance GIMP", "acutance ours", "our amount", "halo GIMP", "halo ours",
                 "noise gain GIMP", "noise gain ours", "PSNR GIMP", "PSNR ours"])
    print(f"\n(std-dev / radius {sd} px, threshold 0 for both; ours with its default noise gate; halo in [0, 1] "
          f"units; PSNR in dB against the sharp crop; MEAN over the rows at equal acutance only; the guard's "
          f"limits: halo {gd.MAX_HALO}, noise gain {gd.MAX_NOISE_GAIN})")


# (c) ---------------------------------------------------------------------------------------------
def part_c(path):
    import skimage.data
    from deblur_core import estimate as est
    from deblur_core import masks
    from deblur_core.oldphoto import old_photo
    from deblur_core.pipeline import deblur
    print("\n## (c) Before/after sheet\n")
    rng = np.random.default_rng(0)
    img = skimage.data.astronaut().astype(np.float32) / 255
    soft = cv2.GaussianBlur(img, (0, 0), 1.6)
    grain = cv2.GaussianBlur(rng.normal(0, 0.05, img.shape[:2]).astype(np.float32), (0, 0), 0.7)
    old = np.clip(soft + grain[..., None], 0, 1).astype(np.float32)
    res = deblur(old, "focus", 50, mask="faces", use_network=False)
    comp_faces = old + res.mask[..., None] * (res.image - old)
    op = old_photo(old, 50)
    comp_old = op["image"]
    fm = np.repeat(res.mask[..., None], 3, 2)
    # bokeh example: a held-out photo with intended background blur, if cached
    from photos import photo_paths
    bokeh = None
    cands = photo_paths("heldout") + photo_paths("train")
    for p in sorted(cands, key=lambda q: [k in str(q) for k in ("LadyBird", "FreshFlower", "Dragonfly")].index(True)
                    if any(k in str(q) for k in ("LadyBird", "FreshFlower", "Dragonfly")) else 9):
        if any(k in str(p) for k in ("LadyBird", "FreshFlower", "Dragonfly")):
            b = cv2.imread(str(p))[..., ::-1].astype(np.float32) / 255
            h, w = b.shape[:2]
            s = 512 / max(h, w)
            bokeh = cv2.resize(b, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
            bname = os.path.basename(str(p))
            break
    tiles = [old, fm * 0.6 + old * 0.4, comp_faces, comp_old]
    labels = ["input (soft + grain)", "faces mask", "focus, faces mask", "Old Photo Clarity"]
    if bokeh is not None:
        g = est.working_luma(bokeh)
        sm = masks.subject_mask(est.blur_map(g), gray=g)
        vis = bokeh * (0.35 + 0.65 * sm[..., None])
        pad = np.zeros((512, 512, 3), np.float32)
        pad[:vis.shape[0], :vis.shape[1]] = vis
        tiles.append(pad)
        labels.append(f"subject mask: {bname[:28]}")
    row = []
    for t, lab in zip(tiles, labels):
        u8 = np.ascontiguousarray(np.clip(t[..., ::-1] * 255 + 0.5, 0, 255).astype(np.uint8))
        cv2.rectangle(u8, (0, 0), (511, 22), (0, 0, 0), -1)
        cv2.putText(u8, lab, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        row.append(u8)
    # zoomed eye crops: before / focus+faces / Old Photo Clarity
    f = res.report.get("faces") or []
    crops = []
    x, y, w, h = (f[0]["box"] if f else (168, 58, 110, 118))
    for t in (old, comp_faces, comp_old):
        c = t[y:y + h, x:x + w]
        crops.append(cv2.resize(np.clip(c[..., ::-1] * 255, 0, 255).astype(np.uint8), (340, 340),
                                interpolation=cv2.INTER_NEAREST))
    zoom = np.zeros((340, len(row) * 512, 3), np.uint8)
    for i, c in enumerate(crops):
        zoom[:, i * 345:i * 345 + 340] = c
    sheet = np.vstack([np.hstack(row), zoom])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, sheet)
    print(f"wrote {path} ({sheet.shape[1]} x {sheet.shape[0]}); deblur report: guard {res.report.get('guard')}, "
          f"faces {len(f)}; old photo: {op['report']['denoiser']}, grain {op['report']['grain']}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-gimp", action="store_true")
    ap.add_argument("--parts", default="ampbc",
                    help="a: detection, m: masks on real photos, p: people, b: GIMP, c: sheet")
    ap.add_argument("--sheet", default=os.path.join(ROOT, "out", "bench-faces-sheet.png"))
    args = ap.parse_args(argv)
    if "a" in args.parts:
        part_a(args.quick)
    if "m" in args.parts:
        part_m()
    if "p" in args.parts:
        part_p(args.quick)
    if "b" in args.parts and not args.no_gimp:
        part_b(args.quick)
    if "c" in args.parts:
        part_c(args.sheet)


if __name__ == "__main__":
    main()

"""GIMP round trip vs the engine alone, same photo, same mode and options.

    .venv/bin/python bench/bench_gimp.py                  # 12 MP (4000 x 3000), motion mode
    .venv/bin/python bench/bench_gimp.py --mp 2 --mode focus
    .venv/bin/python bench/bench_gimp.py --mode sharpen --dialog-first 4   # first call from its dialog

Prints a table: the engine alone (deblur() in this process, best of --repeat, and as the first call of a
fresh process, which the first GIMP call is compared with), the worker protocol alone (a worker
process fed 8-bit pixels through pipes, as the plug-in does for an 8-bit layer), and the plug-in called
in GIMP batch mode (read the layer, worker, write the new layer and its mask), with the overheads in
seconds. Engine and worker timings are the best of --repeat runs (the machine is shared: the minimum is
the least disturbed run). The GIMP calls repeat inside one GIMP session, on the same layer, --pause
seconds apart. In batch mode the plug-in starts the engine's worker when GIMP starts (install.py
--preload, default "batch"), so the first call finds it waiting; with --preload never the first call
starts a new worker process instead (the cold start). Either way a worker that answered stays as the
standby (engine imported and warm) for the later calls; first and later calls are shown apart.
The temporary profile is started once, untimed, before the timed session, as a user's GIMP has been
(GIMP's first start with a new profile queries and registers all of its ~100 plug-ins, and a first
call made then was 0.4-1.3 s slower); --fresh-profile times that very first start instead.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

from deblur_core.worker import DTYPES  # noqa: E402
from tools import gimp_batch  # noqa: E402

PROCEDURE = {"auto": "auto", "motion": "motion", "focus": "focus", "shake": "shake",
             "sharpen": "smart-sharpen", "old-photo": "old-photo"}
# (engine kwargs, plug-in arguments) per mode: fixed parameters so both sides do the same work
OPTIONS = {
    "motion": ({"length": 15.0, "angle": 30.0}, {"length": 15.0, "angle": 30.0}),
    "focus": ({"radius": 4.0}, {"radius": 4.0}),
    "sharpen": ({"sharpen_radius": 1.5, "amount": 1.0}, {"radius": 1.5, "amount": 1.0}),
    "shake": ({"kernel_size": 15}, {"kernel_size": 15}),
    "auto": ({}, {}),
    "old-photo": ({}, {}),
}


def make_photo(path, width, height, mode):
    """A natural photo (scikit-image's astronaut / coffee) scaled to width x height and blurred."""
    import cv2
    try:
        from skimage import data
        base = np.concatenate([data.astronaut(), data.coffee()[:512, :512]], axis=1)
    except Exception:  # noqa: BLE001 - scikit-image missing: a synthetic scene
        yy, xx = np.mgrid[0:512, 0:1024]
        base = (np.stack([np.sin(xx / 7.0), np.cos(yy / 5.0), np.sin((xx + yy) / 11.0)], -1) * 127 + 128)
        base = base.astype(np.uint8)
    img = cv2.resize(base, (width, height), interpolation=cv2.INTER_CUBIC)
    k = np.zeros((15, 15), np.float32)
    c = 7
    a = math.radians(30.0)
    for t in np.linspace(-7, 7, 57):
        k[int(round(c - t * math.sin(a))), int(round(c + t * math.cos(a)))] = 1
    k /= k.sum()
    img = cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT)
    cv2.imwrite(path, img[:, :, ::-1])
    return img


GIMP_CODE = r'''
import json, time
t0 = time.monotonic()
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(%(path)r))
layer = image.get_layers()[0]
RESULT["load_s"] = time.monotonic() - t0
RESULT["procedure_runs"] = []
time.sleep(%(settle)r)  # --settle: GIMP and the standby worker finish starting first
for i in range(%(repeat)d):
    if i:
        time.sleep(%(pause)r)  # a user between two calls; the standby worker gets ready meanwhile
    t0 = time.monotonic()
    # the first call from its dialog: answered OK by the test hook (AI_DEBLUR_DIALOG_AUTO_OK_MS)
    mode = Gimp.RunMode.INTERACTIVE if (i == 0 and %(dialog_first)r) else Gimp.RunMode.NONINTERACTIVE
    status, values = call_procedure(%(proc)r, image, [layer], run_mode=mode, **%(args)r)
    if status != "success":
        break
    rep = json.loads(values[1] or "{}") or {}
    timing = dict(rep.get("plugin_timing") or {}, engine_s=rep.get("engine_s"), worker_timing=rep.get("worker_timing"))
    RESULT["procedure_runs"].append([time.monotonic() - t0, timing])
    RESULT["new_layer"] = image.get_layers()[0].get_name()
    for extra in image.get_layers()[:-1]:  # keep only the source (at the bottom) for the next run
        image.remove_layer(extra)
RESULT["status"] = status
RESULT["message"] = values if isinstance(values, str) else None
RESULT["layers"] = [RESULT.get("new_layer", "")]
image.delete()
'''


def engine_first_call(path, mode, options, pixels):
    """deblur() timed as the first call of a fresh process (cold heap, first-call set-up), the photo
    read beforehand: what the first GIMP call of a session is compared with."""
    code = (f"from deblur_core.memory import policy_for\npolicy_for({pixels})\n"
            "import time, cv2, numpy as np\nfrom deblur_core import deblur\n"
            f"img = cv2.imread({path!r})[:, :, ::-1].astype(np.float32) / 255\n"
            f"t = time.perf_counter(); deblur(img, mode={mode!r}, strength=50.0, mask='auto', **{options!r})\n"
            "print(time.perf_counter() - t)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def worker_round_trip(rgb8, mode, options):
    """Feed the worker like the plug-in does for an 8-bit layer; returns (seconds, report)."""
    h, w, c = rgb8.shape
    header = {"op": "deblur", "width": w, "height": h, "channels": c, "dtype": "u8",
              "options": dict(mode=mode, strength=50.0, mask="auto", **options)}
    env = dict(os.environ, PYTHONPATH=REPO)
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "deblur_core.worker"], cwd=REPO, env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdin.write(json.dumps(header).encode() + b"\n")
    p.stdin.write(np.ascontiguousarray(rgb8, np.uint8).tobytes())
    p.stdin.close()
    final = None
    while True:
        line = p.stdout.readline()
        if not line:
            break
        msg = json.loads(line)
        if "ok" in msg:
            final = msg
            break
    if final and final["ok"]:
        for o in final["outputs"]:
            p.stdout.read(int(np.prod(o["shape"])) * np.dtype(DTYPES[o.get("dtype", "f32")][0]).itemsize)
    p.wait()
    dt = time.perf_counter() - t0
    if not final or not final["ok"]:
        raise SystemExit(f"worker failed: {final}")
    return dt, final["report"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="motion", choices=sorted(PROCEDURE))
    ap.add_argument("--mp", type=float, default=12.0, help="megapixels (4:3), default 12")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each timing; the best is shown (default 3; in GIMP: 1 first call + 2 later ones)")
    ap.add_argument("--pause", type=float, default=3.0,
                    help="seconds between two GIMP calls, as a user would take (default 3)")
    ap.add_argument("--fresh-profile", action="store_true",
                    help="time the very first start of GIMP with a new profile (GIMP then registers all its "
                         "plug-ins during the session); default: GIMP is started once, untimed, beforehand")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds to wait after loading the photo before the first call (default 0: at once, "
                         "as a script does; a user opening a dialog takes seconds)")
    ap.add_argument("--dialog-first", type=float, default=0.0, metavar="SECONDS",
                    help="run the first call from its dialog (on a virtual X display, Xvfb), answered OK after "
                         "SECONDS, as a user choosing options; its row then counts from OK (read + worker + write)")
    ap.add_argument("--preload", choices=("batch", "always", "never"),
                    help="when the plug-in starts the engine's worker with GIMP (default: the installed "
                         "setting, batch); never: the first call pays the cold start")
    ap.add_argument("--profile", help="GIMP profile with the plug-in installed (default: a temporary one)")
    args = ap.parse_args()

    width = int(round(math.sqrt(args.mp * 1e6 * 4 / 3)))
    height = int(round(width * 3 / 4))
    gimp = gimp_batch.find_gimp_console()
    if not gimp:
        raise SystemExit("GIMP 3 not found (python3 install.py --install-gimp)")
    eng_opts, plug_opts = OPTIONS[args.mode]

    with tempfile.TemporaryDirectory(prefix="bench-gimp-") as tmp:
        path = os.path.join(tmp, "photo.png")
        rgb8 = make_photo(path, width, height, args.mode)
        img = rgb8.astype(np.float32) / 255.0

        profile = args.profile
        if not profile:
            profile = os.path.join(tmp, "profile")
            subprocess.run([sys.executable, os.path.join(REPO, "install.py"), "--profile", profile,
                            "--skip-venv"], check=True, capture_output=True)
            if not args.fresh_profile:
                # A user's GIMP has been started before: its first start with a new profile queries and
                # registers every plug-in (some 100 processes), a one-off that is GIMP's, not ours.
                gimp_batch.run_python("RESULT['ok'] = True", profile=profile, gimp=gimp, timeout=600,
                                      extra_env={"AI_DEBLUR_PRELOAD": "never"})

        from deblur_core import deblur
        from deblur_core.memory import policy_for
        policy_for(width * height)  # the engine alone runs under the worker's memory policy
        engine_s = worker_s = first_s = float("inf")
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            res = deblur(img, mode=args.mode, strength=50.0, mask="auto", **eng_opts)
            engine_s = min(engine_s, time.perf_counter() - t0)
            del res
            worker_s = min(worker_s, worker_round_trip(rgb8, args.mode, eng_opts)[0])
            first_s = min(first_s, engine_first_call(path, args.mode, eng_opts, width * height))

        code = gimp_batch.HELPERS + GIMP_CODE % {
            "path": path, "proc": "plug-in-ai-deblur-" + PROCEDURE[args.mode],
            "args": dict(strength=50.0, mask="auto", **plug_opts), "repeat": max(2, args.repeat),
            "pause": float(args.pause), "settle": float(args.settle), "dialog_first": bool(args.dialog_first)}
        # a private socket folder: no standby worker of another GIMP session can answer
        extra_env, xvfb = {"AI_DEBLUR_RUNTIME_DIR": tempfile.mkdtemp(prefix="aid-")}, None
        if args.preload:
            extra_env["AI_DEBLUR_PRELOAD"] = args.preload
        if args.dialog_first:
            try:
                xvfb, extra_env["DISPLAY"] = gimp_batch.start_xvfb(140)
            except RuntimeError as exc:
                raise SystemExit(f"--dialog-first: {exc}") from None
            extra_env.update(AI_DEBLUR_DIALOG_AUTO_OK_MS=str(int(args.dialog_first * 1000)), AI_DEBLUR_NO_PREVIEW="1")
        t0 = time.perf_counter()
        try:
            res = gimp_batch.run_python(code, profile=profile, gimp=gimp, timeout=3600, check=True,
                                        extra_env=extra_env)
        finally:
            if xvfb is not None:
                xvfb.terminate()
            shutil.rmtree(extra_env["AI_DEBLUR_RUNTIME_DIR"], ignore_errors=True)
        gimp_total = time.perf_counter() - t0
        if res.get("status") != "success":
            raise SystemExit(f"the plug-in failed: {res.get('message')}\n{res.get('_log', '')[-2000:]}")

    runs = res.get("procedure_runs") or []
    if args.dialog_first and runs:
        # From OK on: what the user waits for (the plug-in started, and the dialog opened, before)
        t = runs[0][1]
        runs[0][0] = t.get("read_s", 0) + t.get("worker_s", 0) + t.get("write_s", 0)
    first = runs[0]
    later = [r for r in runs[1:] if r[1].get("worker") == "standby"] or runs[1:]
    best = min(later, key=lambda r: r[0])
    rows = [
        ("engine alone: deblur() in-process", engine_s, None),
        ("engine alone: deblur(), first call of a fresh process", first_s, None),
        ("worker round trip (process start, imports, pipes)", worker_s, worker_s - engine_s),
        (f"GIMP call, first of the session ({first[1].get('worker', '?')}"
         + (f"; from its dialog, from OK after {args.dialog_first:g} s" if args.dialog_first else "") + ")",
         first[0], first[0] - first_s),
        (f"GIMP call, later ones ({best[1].get('worker', '?')}, best of {len(later)})", best[0], best[0] - engine_s),
        ("GIMP batch total (launch, PNG load, all calls, quit)", gimp_total, None),
    ]
    print(f"\nAI Deblur GIMP round trip, mode={args.mode}, {width}x{height} RGB ({width * height / 1e6:.1f} MP), "
          f"GIMP {gimp_batch.gimp_version(gimp)}, {os.cpu_count()} CPU(s); profile: "
          + ("given" if args.profile else "new, first GIMP start timed" if args.fresh_profile
             else "new, GIMP started once before"))
    print(f"{'step':<62} {'seconds':>9} {'overhead s':>11}")
    print("-" * 84)
    for name, sec, over in rows:
        print(f"{name:<62} {sec:>9.2f} {'' if over is None else f'{over:>+11.2f}'}")
    print("\ninside each GIMP call (read layer / worker: engine + transfer / write new layer + mask), and the"
          "\noverhead over deblur() timed inside that call's worker (immune to the machine's drift between")
    print("the engine-alone runs above and the GIMP session):")
    for i, (sec, t) in enumerate(runs):
        eng = t.get("engine_s") or float("nan")
        if i == 0 and args.dialog_first:
            print(f"  call 1 (dialog, from OK): {sec:.2f} s = read {t.get('read_s', 0):.2f} + worker "
                  f"{t.get('worker_s', 0):.2f} ({t.get('worker', '?')}; its deblur() {eng:.2f}) + write "
                  f"{t.get('write_s', 0):.2f} -> {sec - eng:+.2f} s over its deblur()")
            continue
        print(f"  call {i + 1}: {sec:.2f} s = read {t.get('read_s', 0):.2f} + worker {t.get('worker_s', 0):.2f} "
              f"({t.get('worker', '?')}; its deblur() {eng:.2f}) + write {t.get('write_s', 0):.2f}"
              f" + GIMP's call {sec - t.get('read_s', 0) - t.get('worker_s', 0) - t.get('write_s', 0):.2f}"
              f" (plug-in start {t.get('start_s') if t.get('start_s') is not None else float('nan'):.2f},"
              f" reaching the worker {t.get('connect_s', float('nan')):.2f})"
              f" -> {sec - eng:+.2f} s over its deblur()")
    wt = (runs[0][1].get("worker_timing") or {}) if runs else {}
    if wt:
        print("  call 1's worker, seconds after its start: request came {request_at}, engine imported {imported_at}, "
              "warm-up over {warm_at}, heap warmed {heap_at} ({heap_mb} MB); the request waited {engine_wait_s} s "
              "for the engine".format(**{k: wt.get(k) for k in ("request_at", "imported_at", "warm_at", "heap_at",
                                                               "heap_mb", "engine_wait_s")}))
    print(f"PNG load in GIMP: {res['load_s']:.2f} s; new layer: {res['layers'][0]}")


if __name__ == "__main__":
    main()

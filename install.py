#!/usr/bin/env python3
"""Install AI Deblur for GIMP 3 (standard library only).

    python3 install.py                 venv (.venv) + plug-ins into the GIMP 3 profile
    python3 install.py --dev           ... plus test / benchmark requirements
    python3 install.py --check         diagnose: GIMP, venv, engine, model files, registered plug-ins
    python3 install.py --uninstall     remove the plug-ins from the profile (the venv stays)
    python3 install.py --install-gimp  install GIMP 3 first (scripts/install-gimp.sh, uses apt-get)
    python3 install.py --demo          deblur samples/sample-shake.jpg through GIMP into out/
    --profile DIR                      GIMP profile folder (default: $GIMP3_DIRECTORY or ~/.config/GIMP/3.x)

The plug-in runs in GIMP's Python (a system Python with gi); the engine runs in .venv. The plug-in's
shebang is rewritten to that system Python's absolute path, so another python3 first on PATH (pyenv,
conda) cannot break it, and a JSON file beside the plug-in tells it where .venv and this folder are.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, REPO)
from tools import gimp_batch  # noqa: E402

PLUGIN_NAME = "ai-deblur"
PLUGIN_SRC = os.path.join(REPO, "plugins", PLUGIN_NAME)
CONFIG_NAME = "ai-deblur.json"
LOCALE_DIR = "locale"  # the plug-in's translations (its do_set_i18n names this folder)
VENV = os.path.join(REPO, ".venv")
REQUIREMENTS = os.path.join(REPO, "requirements.txt")
REQUIREMENTS_DEV = os.path.join(REPO, "requirements-dev.txt")
REQUIREMENTS_DASK = os.path.join(REPO, "requirements-dask.txt")  # included by requirements-dev.txt
STAMP = ".ai-deblur-requirements"
SAMPLE_PHOTO = os.path.join(REPO, "samples", "sample-shake.jpg")
OUT_DIR = os.path.join(REPO, "out")
INSTALL_GIMP_SCRIPT = os.path.join(REPO, "scripts", "install-gimp.sh")
PROCEDURES = ("plug-in-ai-deblur-auto", "plug-in-ai-deblur-motion", "plug-in-ai-deblur-focus",
              "plug-in-ai-deblur-shake", "plug-in-ai-deblur-smart-sharpen", "plug-in-ai-deblur-old-photo",
              "plug-in-ai-deblur-analyze", "plug-in-ai-deblur-hybrid")


def say(msg=""):
    print(msg, flush=True)


def fail(msg, code=1):
    print(f"error: {msg}", file=sys.stderr, flush=True)
    sys.exit(code)


# -- locations ----------------------------------------------------------------------------------------
def venv_python(venv=VENV):
    if os.name == "nt":
        return os.path.join(venv, "Scripts", "python.exe")
    return os.path.join(venv, "bin", "python")


def profile_base():
    home = os.path.expanduser("~")
    system = platform.system()
    if system == "Windows":
        return os.path.join(os.environ.get("APPDATA", os.path.join(home, "AppData", "Roaming")), "GIMP")
    if system == "Darwin":
        return os.path.join(home, "Library", "Application Support", "GIMP")
    return os.path.join(os.environ.get("XDG_CONFIG_HOME", os.path.join(home, ".config")), "GIMP")


def find_profile(explicit=None, gimp=None):
    """The GIMP profile folder to install into (it need not exist yet)."""
    if explicit:
        return os.path.abspath(os.path.expanduser(explicit))
    if os.environ.get("GIMP3_DIRECTORY"):
        return os.path.abspath(os.environ["GIMP3_DIRECTORY"])
    base = profile_base()
    version = gimp_batch.gimp_version(gimp) if gimp else None
    if version:
        return os.path.join(base, ".".join(version.split(".")[:2]))
    for minor in ("3.2", "3.0"):
        if os.path.isdir(os.path.join(base, minor)):
            return os.path.join(base, minor)
    return os.path.join(base, "3.0")


def gimp_missing_help():
    return ("GIMP 3 was not found (looked for gimp-console-3.0 / -3.2 / gimp-3.0 on PATH).\n"
            "  - Debian / Ubuntu: python3 install.py --install-gimp   (runs scripts/install-gimp.sh with apt-get;\n"
            "    on Debian 12 it takes GIMP 3 from Debian 13 'trixie')\n"
            "  - other systems: install GIMP 3 from your distribution or https://www.gimp.org/downloads/\n"
            "    (Flatpak GIMP cannot run this plug-in's engine)\n"
            "  - or point AI_DEBLUR_GIMP at the binary.")


# -- venv ------------------------------------------------------------------------------------------------
def _requirements_digest(dev):
    h = hashlib.sha256()
    for path in (REQUIREMENTS, REQUIREMENTS_DEV, REQUIREMENTS_DASK) if dev else (REQUIREMENTS,):
        with open(path, "rb") as fh:
            h.update(fh.read())
    h.update(sys.version.encode())
    return h.hexdigest()


def ensure_venv(dev=False, force=False):
    """Create .venv and install requirements; skipped when the recorded requirements did not change."""
    py = venv_python()
    if not os.path.exists(py):
        say(f"Creating the engine's virtual environment in {VENV} ({sys.executable})")
        r = subprocess.run([sys.executable, "-m", "venv", VENV])
        if r.returncode != 0 or not os.path.exists(py):
            fail(f"`{sys.executable} -m venv {VENV}` failed; on Debian/Ubuntu install python3-venv")
    stamp_path = os.path.join(VENV, STAMP)
    digest = _requirements_digest(dev)
    have = ""
    if os.path.exists(stamp_path):
        with open(stamp_path) as fh:
            have = fh.read().split()
        # a dev stamp also satisfies a plain install
        if not force and (digest in have or (not dev and _requirements_digest(False) in have)):
            say(f"Virtual environment up to date: {VENV}")
            return py
    reqs = REQUIREMENTS_DEV if dev else REQUIREMENTS
    say(f"Installing {os.path.basename(reqs)} into {VENV} (this can take a few minutes)")
    r = subprocess.run([py, "-m", "pip", "install", "--disable-pip-version-check", "-r", reqs])
    if r.returncode != 0:
        fail("pip install failed (see above); fix the network / index and run install.py again")
    with open(stamp_path, "w") as fh:
        fh.write(digest + "\n" + (_requirements_digest(False) + "\n" if dev else ""))
    return py


def ping_engine(py=None, timeout=180):
    """(ok, report-or-error) from `python -m deblur_core.worker` answering a ping."""
    py = py or venv_python()
    if not os.path.exists(py):
        return False, f"{py} does not exist"
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("PYTHONHOME", None)
    try:
        p = subprocess.run([py, "-m", "deblur_core.worker"], input=b'{"op": "ping"}\n', cwd=REPO, env=env,
                           capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if isinstance(msg, dict) and "ok" in msg:
            return (True, msg.get("report")) if msg["ok"] else (False, msg.get("error"))
    tail = p.stderr.decode("utf-8", "replace").strip().splitlines()
    return False, f"exit code {p.returncode}: {tail[-1] if tail else 'no output'}"


# -- plug-in files -----------------------------------------------------------------------------------------
def plugin_dest(profile):
    return os.path.join(profile, "plug-ins", PLUGIN_NAME)


def install_plugin(profile, gi_python, engine_python, preload="batch"):
    dest = plugin_dest(profile)
    os.makedirs(dest, exist_ok=True)
    for name in sorted(os.listdir(PLUGIN_SRC)):
        src = os.path.join(PLUGIN_SRC, name)
        if not os.path.isfile(src) or not name.endswith(".py"):
            continue
        with open(src, encoding="utf-8") as fh:
            text = fh.read().replace("\r\n", "\n")
        if name == PLUGIN_NAME + ".py":
            lines = text.split("\n")
            if lines[0].startswith("#!"):
                lines[0] = "#!" + gi_python
            else:
                lines.insert(0, "#!" + gi_python)
            text = "\n".join(lines)
        target = os.path.join(dest, name)
        tmp = target + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, target)
        mode = 0o755 if name == PLUGIN_NAME + ".py" else 0o644
        os.chmod(target, mode)
    # stale helper files from older versions
    for name in os.listdir(dest):
        if name.endswith(".py") and not os.path.exists(os.path.join(PLUGIN_SRC, name)):
            os.remove(os.path.join(dest, name))
    shutil.rmtree(os.path.join(dest, "__pycache__"), ignore_errors=True)
    _install_catalogs(dest)
    cfg = {"python": os.path.abspath(engine_python), "repo": REPO, "gi_python": gi_python,
           "installed": time.strftime("%Y-%m-%d %H:%M:%S"), "installer": os.path.abspath(__file__),
           "preload": preload}
    with open(os.path.join(dest, CONFIG_NAME), "w", encoding="utf-8") as fh:
        json.dump(cfg, fh, indent=1)
    return dest


def _install_catalogs(dest):
    """The plug-in's compiled translations, ``locale/<lang>/LC_MESSAGES/ai-deblur.mo``, into ``dest``.
    The folder is made even with no catalog: the plug-in names it in ``do_set_i18n`` and GIMP warns
    about a catalog folder that does not exist."""
    src_root = os.path.join(PLUGIN_SRC, LOCALE_DIR)
    dst_root = os.path.join(dest, LOCALE_DIR)
    os.makedirs(dst_root, exist_ok=True)
    for folder, _dirs, files in os.walk(src_root):
        for name in files:
            if name.endswith(".mo"):
                target = os.path.join(dst_root, os.path.relpath(os.path.join(folder, name), src_root))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(os.path.join(folder, name), target)


def uninstall_plugin(profile):
    dest = plugin_dest(profile)
    if os.path.isdir(dest):
        shutil.rmtree(dest)
        say(f"Removed {dest}")
    else:
        say(f"Nothing to remove: {dest} does not exist")
    say(f"The engine's virtual environment stays in {VENV} (delete it by hand if you want).")


# -- checks ------------------------------------------------------------------------------------------------
def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# The engine's model table (deblur_core.network.MODELS) holds each shipped file and its sha256.
_SPEC_PROBE = r'''
import json
try:
    from deblur_core.network import MODELS
except Exception as exc:
    print(json.dumps({"error": str(exc)}))
else:
    print(json.dumps({"specs": {spec.file: spec.sha256 for spec in MODELS.values()}}))
'''


def model_checks(py):
    """[(ok, message)] for models/*.onnx against models/*.sha256 or the engine's spec table."""
    models_dir = os.path.join(REPO, "models")
    onnx = sorted(f for f in os.listdir(models_dir) if f.endswith(".onnx")) if os.path.isdir(models_dir) else []
    if not onnx:
        return [(True, "no model files in models/ (the engine works without the network)")]
    specs = {}
    if os.path.exists(py):
        try:
            p = subprocess.run([py, "-c", _SPEC_PROBE], cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                               capture_output=True, text=True, timeout=120)
            specs = json.loads(p.stdout.strip().splitlines()[-1]).get("specs", {}) if p.stdout.strip() else {}
        except (OSError, ValueError, subprocess.TimeoutExpired, IndexError):
            specs = {}
    results = []
    for name in onnx:
        path = os.path.join(models_dir, name)
        expected = None
        for side in (path + ".sha256", os.path.splitext(path)[0] + ".sha256"):
            if os.path.exists(side):
                with open(side) as fh:
                    tok = fh.read().split()
                expected = tok[0].lower() if tok else None
                break
        if expected is None:
            expected = (specs.get(name) or "").lower() or None
        if os.path.getsize(path) < 1024:
            with open(path, "rb") as fh:
                if fh.read(64).startswith(b"version https://git-lfs"):
                    results.append((False, f"models/{name} is a Git LFS pointer: run `git lfs pull`"))
                    continue
        actual = sha256_file(path)
        if expected is None:
            results.append((True, f"models/{name}: sha256 {actual[:12]}... (no recorded checksum to compare)"))
        elif actual == expected:
            results.append((True, f"models/{name}: sha256 ok"))
        else:
            results.append((False, f"models/{name}: sha256 {actual[:12]}... does not match {expected[:12]}... "
                                   "(corrupt or outdated file)"))
    return results


REGISTERED_CODE = r'''
pdb = Gimp.get_pdb()
RESULT["found"] = {n: pdb.lookup_procedure(n) is not None for n in %r}
RESULT["version"] = Gimp.version()
'''


def registered_procedures(profile, gimp=None):
    res = gimp_batch.run_python(REGISTERED_CODE % (list(PROCEDURES),), profile=profile, gimp=gimp,
                                timeout=300, check=False)
    return res


def check(args):
    problems = 0

    def report(ok, msg):
        nonlocal problems
        say(("  [ok]   " if ok else "  [FAIL] ") + msg)
        if not ok:
            problems += 1

    gimp = gimp_batch.find_gimp_console(args.gimp)
    say("AI Deblur installation check")
    if gimp:
        report(True, f"GIMP {gimp_batch.gimp_version(gimp) or '?'}: {gimp}")
    else:
        report(False, "GIMP 3 not found")
        say("         " + gimp_missing_help().replace("\n", "\n         "))
    if os.path.isdir(os.path.expanduser("~/.var/app/org.gimp.GIMP")):
        say("  [note] a Flatpak GIMP is installed too: it runs its own sandboxed Python and cannot start\n"
            "         this engine; use the distribution's GIMP 3 (python3 install.py --install-gimp).")
    gi_python = gimp_batch.find_gi_python()
    report(bool(gi_python), f"system Python with GIMP's gi bindings: {gi_python or 'none found'}"
           + ("" if gi_python else " (install python3-gi and gir1.2-gimp-3.0)"))
    on_path = shutil.which("python3")
    if on_path and gi_python and not gimp_batch.python_has_gimp_gi(on_path):
        say(f"  [note] python3 on PATH ({on_path}) has no gi: GIMP's own Python plug-ins fail when GIMP is\n"
            f"         started from this shell; AI Deblur is not affected (its shebang is {gi_python}).")
    py = venv_python()
    report(os.path.exists(py), f"engine virtual environment: {py}")
    ok, info = ping_engine(py)
    report(ok, "engine imports and answers the worker protocol" if ok else f"engine does not start: {info}")
    for ok, msg in model_checks(py):
        report(ok, msg)
    profile = find_profile(args.profile, gimp)
    dest = plugin_dest(profile)
    main = os.path.join(dest, PLUGIN_NAME + ".py")
    if os.path.exists(main):
        with open(main, encoding="utf-8") as fh:
            shebang = fh.readline().strip()
        interp = shebang[2:].strip().split()[0] if shebang.startswith("#!") else ""
        report(os.access(main, os.X_OK), f"plug-in installed: {main}")
        report(bool(interp) and os.path.isabs(interp) and gimp_batch.python_has_gimp_gi(interp),
               f"plug-in interpreter {interp or '(no shebang)'} can import GIMP's gi")
        cfg_path = os.path.join(dest, CONFIG_NAME)
        try:
            with open(cfg_path) as fh:
                cfg = json.load(fh)
            report(os.path.exists(cfg.get("python", "")), f"plug-in settings {cfg_path} -> {cfg.get('python')}"
                   f" (engine started with GIMP: {cfg.get('preload', 'batch')})")
        except (OSError, ValueError) as exc:
            report(False, f"plug-in settings {cfg_path}: {exc}")
    else:
        report(False, f"plug-in not installed in {dest} (run python3 install.py)")
    if gimp and os.path.exists(main):
        try:
            res = registered_procedures(profile, gimp)
        except gimp_batch.BatchError as exc:
            res = {"error": str(exc)}
        found = res.get("found")
        if not found:
            report(False, f"could not ask GIMP for its procedures: {res.get('error') or res.get('_log', '')[-500:]}")
        else:
            missing = [n for n, ok in found.items() if not ok]
            report(not missing, f"GIMP {res.get('version')} registered {len(found) - len(missing)}/{len(found)} "
                                f"AI Deblur procedures" + (f"; missing: {', '.join(missing)}" if missing else ""))
    say("All checks passed." if not problems else f"{problems} problem(s) found.")
    return 0 if not problems else 1


# -- demo -------------------------------------------------------------------------------------------------
DEMO_CODE = r'''
import os
src, xcf, png = %(src)r, %(xcf)r, %(png)r
image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(src))
layer = image.get_layers()[0]
status, values = call_procedure("plug-in-ai-deblur-auto", image, [layer], strength=%(strength)r, mask="auto")
RESULT["status"] = status
if status != "success":
    RESULT["message"] = values
else:
    RESULT["report"] = values[1]
    RESULT["layers"] = [l.get_name() for l in image.get_layers()]
    RESULT["has_mask"] = image.get_layers()[0].get_mask() is not None
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(xcf), None)
    flat = image.duplicate()
    flat.flatten()
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, flat, Gio.File.new_for_path(png), None)
    flat.delete()
image.delete()
'''


def demo(args):
    gimp = gimp_batch.find_gimp_console(args.gimp)
    if not gimp:
        say(gimp_missing_help())
        return 2
    sample = os.path.abspath(args.sample or SAMPLE_PHOTO)
    if not os.path.exists(sample):
        fail(f"the sample photo {sample} is missing")
    profile = find_profile(args.profile, gimp)
    if not os.path.exists(os.path.join(plugin_dest(profile), PLUGIN_NAME + ".py")):
        fail(f"the plug-in is not installed in {profile}; run python3 install.py first")
    out_dir = os.path.abspath(args.out or OUT_DIR)
    os.makedirs(out_dir, exist_ok=True)
    xcf = os.path.join(out_dir, "sample-deblurred.xcf")
    png = os.path.join(out_dir, "sample-deblurred.png")
    say(f"Deblurring {sample} in GIMP batch mode ...")
    code = gimp_batch.HELPERS + DEMO_CODE % {"src": sample, "xcf": xcf, "png": png, "strength": 50.0}
    try:
        res = gimp_batch.run_python(code, profile=profile, gimp=gimp, timeout=1800, check=False)
    except gimp_batch.BatchError as exc:
        fail(str(exc))
    if res.get("error") or res.get("status") != "success":
        fail(f"the demo failed: {res.get('message') or res.get('error')}\n{res.get('_log', '')[-2000:]}")
    try:
        title = json.loads(res.get("report") or "{}").get("title")
    except ValueError:
        title = None
    say(f"New layer: {title or res.get('layers', ['?'])[0]}"
        f"{' (with its layer mask)' if res.get('has_mask') else ''}  ({res['_seconds']:.1f} s in GIMP)")
    say(f"Wrote {xcf}\n      {png}")
    return 0


# -- main ---------------------------------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description="Install AI Deblur for GIMP 3.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--profile", help="GIMP profile folder (default: $GIMP3_DIRECTORY or ~/.config/GIMP/3.x)")
    ap.add_argument("--gimp", help="GIMP binary to use (default: gimp-console-3.x on PATH)")
    ap.add_argument("--dev", action="store_true", help="also install requirements-dev.txt (tests, benchmarks)")
    ap.add_argument("--skip-venv", action="store_true", help="do not create or update .venv")
    ap.add_argument("--force", action="store_true", help="re-run pip even when requirements did not change")
    ap.add_argument("--check", action="store_true", help="diagnose the installation")
    ap.add_argument("--uninstall", action="store_true", help="remove the plug-ins from the profile")
    ap.add_argument("--install-gimp", action="store_true",
                    help="install GIMP 3 with scripts/install-gimp.sh (apt-get, needs root or sudo)")
    ap.add_argument("--preload", choices=("batch", "always", "never"), default="batch",
                    help="start the engine's worker when GIMP starts: only in batch mode (default; a dialog "
                         "warms it up otherwise), at every start, or never")
    ap.add_argument("--demo", action="store_true", help="deblur samples/sample-shake.jpg through GIMP into out/")
    ap.add_argument("--sample", help="photo for --demo (default: samples/sample-shake.jpg)")
    ap.add_argument("--out", help="folder for --demo's results (default: out/)")
    args = ap.parse_args(argv)

    if args.check:
        return check(args)
    gimp = gimp_batch.find_gimp_console(args.gimp)
    if args.uninstall:
        uninstall_plugin(find_profile(args.profile, gimp))
        return 0
    if args.demo and not args.install_gimp and os.path.exists(os.path.join(
            plugin_dest(find_profile(args.profile, gimp)), PLUGIN_NAME + ".py")):
        return demo(args)

    if not gimp:
        if not args.install_gimp:
            say(gimp_missing_help())
            return 2
        if platform.system() != "Linux" or not shutil.which("apt-get"):
            fail("--install-gimp only knows apt-get (Debian / Ubuntu); install GIMP 3 by hand")
        say(f"Installing GIMP 3 with {INSTALL_GIMP_SCRIPT} ...")
        r = subprocess.run(["bash", INSTALL_GIMP_SCRIPT])
        gimp_batch._cache.clear()
        gimp = gimp_batch.find_gimp_console(args.gimp)
        if r.returncode != 0 or not gimp:
            fail("installing GIMP 3 failed (see above)")
    elif args.install_gimp:
        say(f"GIMP 3 already installed: {gimp}")
    say(f"GIMP: {gimp} ({gimp_batch.gimp_version(gimp) or 'version unknown'})")

    gi_python = gimp_batch.find_gi_python()
    if not gi_python:
        fail("no system Python can import GIMP 3's gi bindings (tried /usr/bin/python3 and python3 on PATH); "
             "install python3-gi and gir1.2-gimp-3.0 (Debian/Ubuntu), or set AI_DEBLUR_GI_PYTHON")
    say(f"Plug-in interpreter: {gi_python}")

    py = venv_python() if args.skip_venv else ensure_venv(dev=args.dev, force=args.force)
    if args.skip_venv and not os.path.exists(py):
        say(f"warning: {py} does not exist yet (--skip-venv)")
    profile = find_profile(args.profile, gimp)
    dest = install_plugin(profile, gi_python, py, preload=args.preload)
    say(f"Installed the plug-ins into {dest}")
    if not args.skip_venv:
        ok, info = ping_engine(py)
        say("Engine: ok" if ok else f"warning: the engine does not start yet: {info}")
    say("Restart GIMP; the filters are in Filters > Enhance > AI Deblur. "
        "`python3 install.py --check` diagnoses problems.")
    if args.demo:
        return demo(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run Python code inside GIMP 3 in batch mode (standard library only).

Used by install.py (--check, --demo), tests/gimp and bench/bench_gimp.py:

    from tools.gimp_batch import run_python
    result = run_python("RESULT['n'] = len(Gimp.get_images())", profile="/tmp/profile")

The code runs in GIMP's python-fu-eval interpreter with `Gimp`, `Gegl`, `GLib`, `GObject`, `Gio`
imported, and a dict `RESULT` that comes back (JSON-serialisable values only). An exception in the
code is caught and returned as RESULT["error"] / RESULT["traceback"].
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

GIMP_CONSOLE_NAMES = ("gimp-console-3.2", "gimp-console-3.0", "gimp-console", "gimp-3.2", "gimp-3.0")
GI_PYTHON_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3", "/opt/homebrew/bin/python3",
                        "/usr/bin/python3.13", "/usr/bin/python3.12", "/usr/bin/python3.11")
GI_PROBE = "import gi; gi.require_version('Gimp', '3.0'); from gi.repository import Gimp"
_NOISE = re.compile(r"CRITICAL|Gtk-WARNING|cannot open display|gimp_wire_read|GLib-GObject-WARNING|"
                    r"LibGimpBase-WARNING|gimp_flush\(\)|^\s*$")

_cache: dict = {}


class GimpNotFound(RuntimeError):
    pass


class BatchError(RuntimeError):
    def __init__(self, message, log=""):
        super().__init__(message)
        self.log = log


def find_gimp_console(explicit=None):
    """Path of a GIMP 3 console (or GUI, run with -i) binary, or None."""
    for cand in (explicit, os.environ.get("AI_DEBLUR_GIMP")):
        if cand:
            path = shutil.which(cand) or (cand if os.path.exists(cand) else None)
            if path:
                return path
    for name in GIMP_CONSOLE_NAMES:
        path = shutil.which(name)
        if path:
            return path
    for base in ("/opt/gimp/bin", "/Applications/GIMP.app/Contents/MacOS"):  # usual places not on PATH
        for name in GIMP_CONSOLE_NAMES:
            path = os.path.join(base, name)
            if os.access(path, os.X_OK):
                return path
    return None


def gimp_version(gimp):
    """'3.0.4' from `gimp --version`, or None."""
    key = ("version", gimp)
    if key not in _cache:
        try:
            out = subprocess.run([gimp, "--version"], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired):
            out = ""
        m = re.search(r"version\s+(\d+\.\d+(?:\.\d+)?)", out)
        _cache[key] = m.group(1) if m else None
    return _cache[key]


def python_has_gimp_gi(python):
    key = ("gi", python)
    if key not in _cache:
        try:
            ok = subprocess.run([python, "-c", GI_PROBE], capture_output=True, timeout=60,
                                env=_clean_python_env(dict(os.environ))).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        _cache[key] = ok
    return _cache[key]


def find_gi_python():
    """Absolute path of a system Python that can import GIMP 3's gi bindings, or None.

    A foreign python3 first on PATH (pyenv, conda, a venv) usually lacks gi; GIMP's own Python
    plug-ins (python-fu-eval included) then fail, so we look for the system one explicitly."""
    cands = list(GI_PYTHON_CANDIDATES)
    env_py = os.environ.get("AI_DEBLUR_GI_PYTHON")
    if env_py:
        cands.insert(0, env_py)
    on_path = shutil.which("python3")
    if on_path:
        cands.append(on_path)
    seen = set()
    for cand in cands:
        if not cand or not os.path.exists(cand):
            continue
        real = os.path.realpath(cand)
        if real in seen:
            continue
        seen.add(real)
        if python_has_gimp_gi(cand):
            return cand
    return None


def _clean_python_env(env):
    for key in ("PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONSTARTUP", "PYENV_VERSION"):
        env.pop(key, None)
    return env


def batch_env(profile=None, extra=None):
    """Environment for a GIMP batch run: isolated profile, the gi Python first on PATH."""
    env = _clean_python_env(dict(os.environ))
    gi_python = find_gi_python()
    if gi_python:
        env["PATH"] = os.path.dirname(gi_python) + os.pathsep + env.get("PATH", "")
    if profile:
        env["GIMP3_DIRECTORY"] = os.path.abspath(profile)
    env.setdefault("GEGL_USE_OPENCL", "no")
    if extra:
        env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def batch_command(gimp=None, quick=True):
    """argv for `gimp -i --batch-interpreter python-fu-eval -b - --quit` (code on stdin)."""
    gimp = gimp or find_gimp_console()
    if not gimp:
        raise GimpNotFound("GIMP 3 (gimp-console-3.0) was not found; run `python3 install.py --install-gimp` "
                           "or install GIMP 3 from your distribution or https://www.gimp.org/downloads/")
    argv = [gimp, "-i"]
    if quick:
        argv += ["--no-fonts"]
    return argv + ["--batch-interpreter", "python-fu-eval", "-b", "-", "--quit"]


_PRELUDE = r'''
import json as _json, sys as _sys, traceback as _tb
import gi
gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gimp, Gegl, GLib, GObject, Gio
RESULT = {}
_RESULT_PATH = %(result_path)r
try:
    exec(compile(%(code)r, %(name)r, "exec"), globals())
except BaseException as _exc:
    RESULT["error"] = "%%s: %%s" %% (type(_exc).__name__, _exc)
    RESULT["traceback"] = _tb.format_exc()
finally:
    with open(_RESULT_PATH, "w") as _fh:
        _json.dump(RESULT, _fh, default=str)
'''


def filter_log(text):
    return "\n".join(line for line in text.splitlines() if not _NOISE.search(line))


def start_xvfb(first=97):
    """A virtual X display for dialogs (interactive runs in tests and benchmarks): (process, DISPLAY).
    Raises RuntimeError when Xvfb is missing (install-gimp.sh installs it with GIMP)."""
    exe = shutil.which("Xvfb")
    if not exe:
        raise RuntimeError("Xvfb is not installed: run scripts/install-gimp.sh (python3 install.py --install-gimp)")
    for num in range(first, first + 40):
        if not os.path.exists(f"/tmp/.X11-unix/X{num}") and not os.path.exists(f"/tmp/.X{num}-lock"):
            break
    proc = subprocess.Popen([exe, f":{num}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        if os.path.exists(f"/tmp/.X11-unix/X{num}"):
            break
        time.sleep(0.1)
    return proc, f":{num}"


def run_python(code, profile=None, timeout=900, extra_env=None, gimp=None, name="<batch>", check=True):
    """Run `code` inside GIMP; return RESULT (dict) with '_log' (filtered output) and '_seconds'."""
    fd, result_path = tempfile.mkstemp(prefix="gimp-batch-", suffix=".json")
    os.close(fd)
    os.unlink(result_path)
    script = _PRELUDE % {"result_path": result_path, "code": code, "name": name}
    argv = batch_command(gimp)
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, input=script, text=True, capture_output=True, timeout=timeout,
                              env=batch_env(profile, extra_env))
    except subprocess.TimeoutExpired as exc:
        raise BatchError(f"GIMP batch run timed out after {timeout} s",
                         filter_log((exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else ""))
    seconds = time.monotonic() - t0
    log = filter_log(proc.stdout + "\n" + proc.stderr)
    try:
        with open(result_path) as fh:
            result = json.load(fh)
        os.unlink(result_path)
    except (OSError, ValueError):
        if check:
            raise BatchError(f"GIMP batch run (exit code {proc.returncode}) produced no result; "
                             f"is python-fu-eval available?\n{log[-4000:]}", log)
        result = {}
    result["_log"] = log
    result["_returncode"] = proc.returncode
    result["_seconds"] = seconds
    if check and "error" in result:
        raise BatchError(f"batch code failed: {result['error']}\n{result.get('traceback', '')}", log)
    return result


# Snippets shared by scripts run through run_python -------------------------------------------------
HELPERS = r'''
def call_procedure(name, image, drawables, **args):
    """Run a PDB procedure, non-interactively unless args hold run_mode (every arg sets the config
    property of its name); return (status name, [values...] or error message)."""
    proc = Gimp.get_pdb().lookup_procedure(name)
    if proc is None:
        return "MISSING", "procedure %s is not registered" % name
    config = proc.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    if image is not None:
        config.set_property("image", image)
    if drawables is not None:
        config.set_core_object_array("drawables", list(drawables))
    for key, val in args.items():
        config.set_property(key.replace("_", "-"), val)
    res = proc.run(config)
    status = res.index(0)
    values = [res.index(i) for i in range(1, res.length())]
    if status != Gimp.PDBStatusType.SUCCESS:
        msg = values[0] if values and isinstance(values[0], str) else ""
        return status.value_nick, msg
    return "success", values


def run_ai_deblur(img, proc, drawables, **args):
    """Run plug-in-ai-deblur-<proc> and record what a photographer would see after it: (record, new layer).
    The record holds the status (and message), the report, the image's layers, the selected drawables
    and layers, and the new layer's id, name, mask editing, position and mask."""
    import json
    status, values = call_procedure("plug-in-ai-deblur-" + proc, img, drawables, **args)
    rec = {"proc": proc, "status": status}
    if status != "success":
        rec["message"] = values
        return rec, None
    layer = values[0]
    rec["report"] = json.loads(values[1]) if values[1] else {}
    rec["layers"] = [l.get_name() for l in img.get_layers()]
    rec["selected"] = [{"id": d.get_id(), "type": type(d).__name__, "name": d.get_name()}
                       for d in img.get_selected_drawables()]
    rec["selected_layers"] = [l.get_id() for l in img.get_selected_layers()]
    if layer is not None:
        rec["new"] = {"id": layer.get_id(), "name": layer.get_name(), "edit_mask": layer.get_edit_mask(),
                      "position": img.get_item_position(layer),
                      "mask_id": layer.get_mask().get_id() if layer.get_mask() else None}
    return rec, layer
'''


if __name__ == "__main__":  # python3 tools/gimp_batch.py [profile] < code.py
    res = run_python(sys.stdin.read(), profile=sys.argv[1] if len(sys.argv) > 1 else None, check=False)
    print(res.pop("_log"), file=sys.stderr)
    print(json.dumps(res, indent=1, default=str))

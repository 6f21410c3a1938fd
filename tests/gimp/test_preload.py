"""The engine's worker started with GIMP ("preload"): in batch mode no dialog opens to warm the engine
up while the user chooses, so the plug-in's start-up ("init") pass starts the standby worker and the
first call of the session finds it imported and warm. Real GIMP in batch mode; each session gets its
own socket folder, so no other session's standby worker can answer."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from gimp_env import gimp_batch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "ai-deblur"))
import ai_deblur_client as client  # noqa: E402

TWO_CALLS = r'''
import json
w, h = 96, 64
img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
lay = Gimp.Layer.new(img, "source", w, h, Gimp.ImageType.RGB_IMAGE, 100, Gimp.LayerMode.NORMAL)
img.insert_layer(lay, None, 0)
RESULT["workers"] = []
for i in range(2):
    status, values = call_procedure("plug-in-ai-deblur-smart-sharpen", img, [lay], strength=50.0, mask="full")
    assert status == "success", values
    RESULT["workers"].append(json.loads(values[1])["plugin_timing"]["worker"])
img.delete()
'''


def _session(profile, preload):
    runtime = tempfile.mkdtemp(prefix="aid-")  # short: a Unix socket path has at most 107 bytes
    env = {"AI_DEBLUR_RUNTIME_DIR": runtime, "AI_DEBLUR_PRELOAD": preload}
    try:
        res = gimp_batch.run_python(gimp_batch.HELPERS + TWO_CALLS, profile=str(profile), timeout=300,
                                    check=False, extra_env=env)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert "error" not in res, res.get("traceback", "") + res.get("_log", "")[-3000:]
    return res["workers"]


@pytest.mark.parametrize("preload, expected", [
    ("batch", ["standby", "standby"]),   # the default: gimp-console -i is batch mode
    ("never", ["new process", "standby"]),
])
def test_batch_session_first_call(gimp_profile, preload, expected):
    assert _session(gimp_profile, preload) == expected


def _cmdline_of(argv0, *args):
    code = "import time; time.sleep(30)"
    return subprocess.Popen(["bash", "-c", 'exec -a "$0" "$@"', argv0, sys.executable, "-c", code, *args])


@pytest.mark.parametrize("argv0, args, headless", [
    ("gimp-console-3.0", (), True),
    ("/usr/bin/gimp-3.0", ("-i", "--batch-interpreter", "python-fu-eval"), True),
    ("gimp-3.0", ("--no-interface",), True),
    ("gimp-3.0", ("-nidf",), True),
    ("gimp-3.0", ("photo.png",), False),
    ("gimp-3.0", ("--", "-i"), False),  # after "--" it is a file name
])
def test_gimp_is_headless_reads_the_command_line(argv0, args, headless):
    proc = _cmdline_of(argv0, *args)
    try:
        # wait for the exec: then argv[0] is argv0 (python's "-c CODE" and the arguments follow)
        for _ in range(200):
            with open("/proc/%d/cmdline" % proc.pid, "rb") as fh:
                if fh.read().split(b"\0")[0] == argv0.encode():
                    break
            time.sleep(0.01)
        else:
            pytest.fail("the stand-in process never showed its command line")
        assert client.gimp_is_headless(proc.pid) is headless
    finally:
        proc.kill()
        proc.wait()
    assert client.gimp_is_headless(proc.pid) is False  # gone: no /proc entry


def _our_pluginrc_entry(profile):
    with open(os.path.join(str(profile), "pluginrc"), encoding="utf-8", errors="replace") as fh:  # holds icons
        text = fh.read()
    start = text.index('(plug-in-def "${gimp_dir}/plug-ins/ai-deblur/ai-deblur.py"')
    end = text.find("(plug-in-def ", start + 1)
    return text[start:end if end > 0 else len(text)]


def test_installed_with_preload_never_has_no_start_up_pass(gimp_profile, tmp_path):
    """install.py --preload never: GIMP does not even start the plug-in at its start-up (no init
    procedures registered), and the first call starts the worker."""
    gimp_batch.run_python("pass", profile=str(gimp_profile), timeout=300)  # GIMP writes its pluginrc
    assert "(has-init)" in _our_pluginrc_entry(gimp_profile)   # the default install (batch)
    profile = tmp_path / "profile"
    subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "..", "install.py"),
                    "--profile", str(profile), "--skip-venv", "--preload", "never"], check=True,
                   capture_output=True)
    runtime = tempfile.mkdtemp(prefix="aid-")
    try:
        res = gimp_batch.run_python(gimp_batch.HELPERS + TWO_CALLS, profile=str(profile), timeout=300,
                                    check=False, extra_env={"AI_DEBLUR_RUNTIME_DIR": runtime})
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert "error" not in res, res.get("traceback", "") + res.get("_log", "")[-3000:]
    assert res["workers"] == ["new process", "standby"]
    assert "(has-init)" not in _our_pluginrc_entry(profile)

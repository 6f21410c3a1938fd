"""install.py: plug-in files into a profile (idempotent, shebang pinned to a gi-capable Python),
--uninstall, the message when GIMP is missing, and --check against the real GIMP."""
import json
import os
import subprocess
import sys

from gimp_env import REPO, gimp_batch

INSTALL = os.path.join(REPO, "install.py")


def run_install(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, INSTALL, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def test_install_is_idempotent_and_pins_the_shebang(tmp_path, gimp):
    profile = tmp_path / "profile"
    for _ in range(2):
        p = run_install("--profile", str(profile), "--skip-venv")
        assert p.returncode == 0, p.stdout + p.stderr
    dest = profile / "plug-ins" / "ai-deblur"
    main = dest / "ai-deblur.py"
    assert sorted(os.listdir(dest)) == ["ai-deblur.json", "ai-deblur.py", "ai_deblur_client.py", "locale"]
    assert os.path.isdir(dest / "locale")  # the translations' folder the plug-in names (do_set_i18n)
    assert os.access(main, os.X_OK)
    raw = main.read_bytes()
    assert b"\r\n" not in raw
    shebang = raw.split(b"\n", 1)[0].decode()
    interp = shebang[2:]
    assert shebang.startswith("#!/") and "env" not in shebang, shebang
    assert gimp_batch.python_has_gimp_gi(interp)
    cfg = json.loads((dest / "ai-deblur.json").read_text())
    assert cfg["repo"] == REPO
    assert cfg["python"] == os.path.join(REPO, ".venv", "bin", "python")
    # the rest of the file is the plug-in source, unchanged
    src = open(os.path.join(REPO, "plugins", "ai-deblur", "ai-deblur.py"), "rb").read()
    assert raw.split(b"\n", 1)[1] == src.split(b"\n", 1)[1]

    p = run_install("--profile", str(profile), "--uninstall")
    assert p.returncode == 0
    assert not dest.exists()


def test_missing_gimp_is_reported_not_installed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("AI_DEBLUR_GIMP",)}
    env["PATH"] = str(tmp_path)  # no GIMP anywhere on PATH
    p = run_install("--profile", str(tmp_path / "profile"), "--skip-venv", env=env)
    assert p.returncode != 0
    assert "GIMP 3 was not found" in p.stdout
    assert "--install-gimp" in p.stdout
    assert not (tmp_path / "profile").exists()


def test_check_finds_registered_procedures(gimp_profile):
    p = run_install("--check", "--profile", str(gimp_profile))
    out = p.stdout
    assert "[ok]   GIMP 3." in out, out
    n = 8      # a procedure per mode (6), Analyze Blur, the hybrid
    assert f"registered {n}/{n} AI Deblur procedures" in out, out + p.stderr
    assert "[ok]   plug-in interpreter" in out, out
    assert "engine virtual environment" in out


def test_demo_writes_xcf_and_png(gimp_profile, tmp_path):
    import numpy as np
    import cv2
    sample = os.path.join(REPO, "samples", "sample-shake.jpg")
    if not os.path.exists(sample):  # until the bundled photo exists: a shaken synthetic scene
        yy, xx = np.mgrid[0:240, 0:320]
        img = ((np.sin(xx / 5.0) * np.cos(yy / 7.0) > 0) * 200 + 30).astype(np.uint8)
        img = cv2.filter2D(np.dstack([img, img[::-1], img[:, ::-1]]), -1, np.eye(9, dtype=np.float32) / 9)
        sample = str(tmp_path / "sample.jpg")
        cv2.imwrite(sample, img)
    out = tmp_path / "out"
    p = run_install("--demo", "--profile", str(gimp_profile), "--sample", sample, "--out", str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "(with its layer mask)" in p.stdout
    assert (out / "sample-deblurred.xcf").stat().st_size > 0
    png = cv2.imread(str(out / "sample-deblurred.png"))
    assert png is not None and png.shape[:2] == cv2.imread(sample).shape[:2]


def test_plugin_survives_a_foreign_python3_first_on_path(tmp_path, gimp):
    """pyenv / conda put a python3 without gi first on PATH: GIMP's own `#!/usr/bin/env python3`
    plug-ins then die, ours (shebang pinned by install.py) must still register. Script-Fu asks."""
    profile = tmp_path / "profile"
    p = run_install("--profile", str(profile), "--skip-venv")
    assert p.returncode == 0, p.stdout + p.stderr
    foreign = tmp_path / "foreign-bin"
    foreign.mkdir()
    fake = foreign / "python3"
    fake.write_text("#!/bin/sh\necho 'foreign python3 without gi' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, GIMP3_DIRECTORY=str(profile), PATH=f"{foreign}{os.pathsep}{os.environ['PATH']}")
    code = ('(display (list "AIDEBLUR" (gimp-pdb-procedure-exists "plug-in-ai-deblur-auto") '
            '(gimp-pdb-procedure-exists "plug-in-ai-deblur-analyze")))')
    r = subprocess.run([gimp, "-i", "--no-fonts", "--batch-interpreter", "plug-in-script-fu-eval", "-b", code,
                        "--quit"], env=env, capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert "(AIDEBLUR (1) (1))" in out, gimp_batch.filter_log(out)[-3000:]

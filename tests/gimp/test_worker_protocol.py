"""deblur_core.worker's stdin/stdout protocol, with engine doubles (no GIMP needed), and the plug-in's
client module (standard library only) talking to it."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "plugins", "ai-deblur"))
import ai_deblur_client as client  # noqa: E402
from deblur_core.worker import DTYPES  # noqa: E402


def _env(behaviour="ok", engine="engine_doubles"):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + HERE, AI_DEBLUR_DOUBLE=behaviour)
    if engine:
        env["AI_DEBLUR_ENGINE"] = engine
    else:
        env.pop("AI_DEBLUR_ENGINE", None)
    return env


def call(header, pixels=b"", behaviour="ok", engine="engine_doubles", timeout=120):
    p = subprocess.run([sys.executable, "-m", "deblur_core.worker"], cwd=REPO, env=_env(behaviour, engine),
                       input=json.dumps(header).encode() + b"\n" + pixels, capture_output=True, timeout=timeout)
    out = p.stdout
    lines, pos = [], 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        msg = json.loads(out[pos:end])
        pos = end + 1
        lines.append(msg)
        if "ok" in msg:
            break
    return lines, out[pos:], p


def decode(final, rest):
    arrays, pos = {}, 0
    for o in final["outputs"]:
        dt = np.dtype(DTYPES[o.get("dtype", "f32")][0])
        n = int(np.prod(o["shape"])) * dt.itemsize
        arrays[o["name"]] = np.frombuffer(rest[pos:pos + n], dt).reshape(o["shape"])
        pos += n
    assert pos == len(rest), "extra bytes after the outputs"
    return arrays


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_deblur_round_trip_keeps_alpha(channels):
    rng = np.random.default_rng(channels)
    img = rng.random((17, 23, channels), dtype=np.float32)
    lines, rest, p = call({"op": "deblur", "width": 23, "height": 17, "channels": channels,
                           "options": {"mode": "motion", "strength": 70, "length": 9, "angle": 0}},
                          img.astype("<f4").tobytes())
    final = lines[-1]
    assert final["ok"], final
    assert any("progress" in m for m in lines[:-1])
    assert [o["name"] for o in final["outputs"]] == ["image", "mask"]
    out = decode(final, rest)
    assert out["image"].shape == (17, 23, channels)
    assert out["mask"].shape == (17, 23)
    if channels in (2, 4):
        np.testing.assert_array_equal(out["image"][..., -1], img[..., -1])
    rep = final["report"]
    assert rep["mode"] == "motion" and rep["strength"] == 70
    assert rep["opts"] == {"length": 9.0}  # angle 0 = auto, not passed
    assert rep["np_value"] == 1.5


@pytest.mark.parametrize("dtype,wire,scale", [("u8", "u1", 255), ("u16", "<u2", 65535)])
def test_integer_pixels_travel_as_integers(dtype, wire, scale):
    """8/16-bit layers are sent and answered as integers; alpha comes back bit-exact; the mask is u16."""
    rng = np.random.default_rng(3)
    img = rng.integers(0, scale + 1, size=(13, 19, 4)).astype(wire)
    lines, rest, p = call({"op": "deblur", "width": 19, "height": 13, "channels": 4, "dtype": dtype,
                           "options": {"mode": "focus", "strength": 0}}, img.tobytes())
    final = lines[-1]
    assert final["ok"], final
    kinds = {o["name"]: o["dtype"] for o in final["outputs"]}
    assert kinds == {"image": dtype, "mask": "u16"}
    out = decode(final, rest)
    assert out["image"].dtype == np.dtype(wire)
    np.testing.assert_array_equal(out["image"][..., 3], img[..., 3])
    assert out["mask"].shape == (13, 19)


def test_integer_round_trip_is_exact_for_identity():
    """An engine that returns its input: u8 -> float -> u8 and u16 -> float -> u16 are lossless."""
    img = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    lines, rest, p = call({"op": "deblur", "width": 16, "height": 16, "channels": 3, "dtype": "u8",
                           "options": {"mode": "focus"}}, img.tobytes(), behaviour="identity")
    assert lines[-1]["ok"], lines[-1]
    np.testing.assert_array_equal(decode(lines[-1], rest)["image"], img)
    img16 = (np.arange(4096, dtype=np.uint32) * 16 + 7).astype("<u2").reshape(64, 64, 1)
    lines, rest, p = call({"op": "deblur", "width": 64, "height": 64, "channels": 1, "dtype": "u16",
                           "options": {"mode": "focus"}}, img16.tobytes(), behaviour="identity")
    assert lines[-1]["ok"], lines[-1]
    np.testing.assert_array_equal(decode(lines[-1], rest)["image"], img16)


def test_unknown_dtype_is_refused():
    lines, rest, p = call({"op": "deblur", "width": 2, "height": 2, "channels": 3, "dtype": "f64",
                           "options": {}}, b"\0" * 96)
    assert lines[-1]["ok"] is False and "pixel type" in lines[-1]["error"]


def test_stray_stdout_does_not_corrupt_the_stream():
    img = np.full((8, 8, 3), 0.5, np.float32)
    lines, rest, p = call({"op": "deblur", "width": 8, "height": 8, "channels": 3, "options": {}},
                          img.tobytes(), behaviour="noisy")
    assert lines[-1]["ok"], lines
    decode(lines[-1], rest)
    assert b"stray print" in p.stderr and b"stray bytes" in p.stderr


def test_nan_output_is_cleaned():
    img = np.full((4, 5, 3), 0.5, np.float32)
    lines, rest, _ = call({"op": "deblur", "width": 5, "height": 4, "channels": 3, "options": {}},
                          img.tobytes(), behaviour="nan")
    out = decode(lines[-1], rest)["image"]
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_analyze_report_is_json():
    img = np.zeros((10, 12), np.float32)
    lines, rest, _ = call({"op": "analyze", "width": 12, "height": 10, "channels": 1, "options": {}}, img.tobytes())
    final = lines[-1]
    assert final["ok"] and final["outputs"] == [] and rest == b""
    rep = final["report"]
    assert rep["blur_type"] == "motion" and rep["params"] == {"length": 7.0, "angle": 0.0}
    assert "kernel" not in rep  # not asked for
    assert rep["confidence"] is None  # NaN is not JSON
    assert rep["size"] == [12, 10] and rep["noise_sigma"] == pytest.approx(0.004)


def test_analyze_with_kernel():
    """want_kernel: the engine's kernel_for_report gives the report's kernel, and its picture (scaled to
    the peak, enlarged) is the one output; the estimate's progress comes through in the second half."""
    img = np.zeros((10, 12, 4), np.float32)
    lines, rest, _ = call({"op": "analyze", "width": 12, "height": 10, "channels": 4,
                           "options": {"want_kernel": True}}, img.tobytes())
    final = lines[-1]
    assert final["ok"], final
    rep = final["report"]
    assert np.asarray(rep["kernel"]).shape == (7, 7) and rep["kernel"][3][0] == pytest.approx(1 / 7)
    assert [o["name"] for o in final["outputs"]] == ["kernel"]
    view = decode(final, rest)["kernel"]
    assert view.shape == (7 * 16, 7 * 16) and view.max() == 1.0 and view[3 * 16, 0] == 1.0 and view[0, 0] == 0.0
    assert {"progress": 0.75, "message": "estimating"} in lines[:-1]


def test_analyze_sharp_photo_has_no_kernel():
    """A sharp photo's kernel is the identity: no kernel and no kernel picture (no layer to add)."""
    img = np.zeros((10, 12, 3), np.float32)
    lines, rest, _ = call({"op": "analyze", "width": 12, "height": 10, "channels": 3,
                           "options": {"want_kernel": True}}, img.tobytes(), behaviour="sharp")
    final = lines[-1]
    assert final["ok"] and final["outputs"] == [] and rest == b""
    assert final["report"]["blur_type"] == "sharp" and "kernel" not in final["report"]


@pytest.mark.parametrize("header,pixels,needle", [
    ({"op": "deblur", "width": 4, "height": 4, "channels": 3}, b"\0" * 10, "input ended"),
    ({"op": "explode"}, b"", "unknown op"),
    ({"op": "deblur", "width": 0, "height": 4, "channels": 3}, b"", "bad image size"),
    ({"op": "deblur", "width": 2, "height": 2, "channels": 3, "options": {"mode": "wobble"}},
     b"\0" * 48, "unknown mode"),
    ({"op": "deblur", "width": 2, "height": 2, "channels": 3, "options": {"mask": "everything"}},
     b"\0" * 48, "unknown mask"),
    ({"op": "deblur", "width": 2, "height": 2, "channels": 3, "options": {"strength": 150}},
     b"\0" * 48, "strength must be between 0 and 100"),
    ({"op": "deblur", "width": 2, "height": 2, "channels": 3, "options": {"strength": -1}},
     b"\0" * 48, "strength must be between 0 and 100"),
    ({"op": "deblur", "width": 2, "height": 2, "channels": 3, "options": {"strength": "strong"}},
     b"\0" * 48, "strength must be a number"),
], ids=["short-input", "unknown-op", "bad-size", "unknown-mode", "unknown-mask", "strength-high", "strength-low",
        "strength-text"])
def test_bad_requests_get_one_clear_sentence(header, pixels, needle):
    lines, rest, p = call(header, pixels)
    assert lines and lines[-1]["ok"] is False
    assert needle in lines[-1]["error"]
    assert "\n" not in lines[-1]["error"]
    assert p.returncode != 0


def test_not_json_header():
    p = subprocess.run([sys.executable, "-m", "deblur_core.worker"], cwd=REPO, env=_env(),
                       input=b"hello\n", capture_output=True, timeout=60)
    msg = json.loads(p.stdout.splitlines()[0])
    assert msg["ok"] is False and "not valid JSON" in msg["error"]


def test_engine_exception_becomes_error_line():
    img = np.zeros((4, 4, 3), np.float32)
    lines, _, p = call({"op": "deblur", "width": 4, "height": 4, "channels": 3, "options": {}}, img.tobytes(),
                       behaviour="raise")
    assert lines[-1] == {"ok": False, "error": "deconvolution diverged"}
    assert b"Traceback" in p.stderr  # details go to stderr


def test_analyze_kernel_from_the_real_engine():
    """Analyze Blur's kernel layer: the worker asks the engine (kernel_for_report) for the kernel the
    report describes and sends its picture."""
    from helpers import blur_linear  # tests/helpers.py
    from skimage import data
    from deblur_core import kernels
    from deblur_core.classifier import kernel_for
    photo = (data.coffee()[64:320, 100:420].astype(np.float32) / 255).copy()
    img = blur_linear(photo, kernels.motion_kernel(13, 25), noise=0.005)
    h, w = img.shape[:2]
    lines, rest, _ = call({"op": "analyze", "width": w, "height": h, "channels": 3,
                           "options": {"want_kernel": True}}, img.astype("<f4").tobytes(), engine=None)
    final = lines[-1]
    assert final["ok"], final
    rep = final["report"]
    assert rep["blur_type"] == "motion", rep
    np.testing.assert_allclose(np.asarray(rep["kernel"]), kernel_for(rep), atol=1e-6)
    view = decode(final, rest)["kernel"]
    assert view.max() == pytest.approx(1.0) and view.shape[0] >= np.asarray(rep["kernel"]).shape[0]


def test_ping_real_engine():
    lines, _, _ = call({"op": "ping"}, engine=None)
    assert lines[-1]["ok"], lines[-1]
    assert lines[-1]["report"]["protocol"] == 2


# -- the plug-in's client (what runs inside GIMP) -------------------------------------------------------
@pytest.fixture
def client_env(monkeypatch):
    monkeypatch.setenv("AI_DEBLUR_ENGINE", "engine_doubles")
    monkeypatch.setenv("AI_DEBLUR_PYTHONPATH", HERE)
    monkeypatch.setenv("AI_DEBLUR_DOUBLE", "ok")
    return {"python": sys.executable, "repo": REPO}


def test_client_round_trip(client_env):
    img = np.random.default_rng(0).random((9, 11, 4), dtype=np.float32)
    seen = []
    report, outputs = client.run("deblur", 11, 9, 4, img.astype("<f4").tobytes(), {"mode": "focus"},
                                 progress=lambda f, m: seen.append((f, m)), config=client_env)
    assert report["mode"] == "focus" and seen
    shape, data, kind = outputs["image"]
    assert shape == [9, 11, 4] and len(data) == 9 * 11 * 4 * 4 and kind == "f32"
    out = np.frombuffer(data, "<f4").reshape(shape)
    np.testing.assert_array_equal(out[..., 3], img[..., 3])


def test_client_cancel_kills_worker(client_env, monkeypatch):
    monkeypatch.setenv("AI_DEBLUR_DOUBLE", "slow")
    img = np.zeros((6, 6, 3), np.float32)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 2

    t0 = time.monotonic()
    with pytest.raises(client.Cancelled):
        client.run("deblur", 6, 6, 3, img.tobytes(), {}, cancelled=cancelled, config=client_env)
    assert time.monotonic() - t0 < 10


def test_client_reports_worker_crash(client_env, tmp_path):
    script = tmp_path / "crash.sh"
    script.write_text("#!/bin/sh\necho 'Segmentation fault (core dumped)' >&2\nkill -SEGV $$\n")
    script.chmod(0o755)
    with pytest.raises(client.WorkerError) as ei:
        client.run("deblur", 2, 2, 3, b"\0" * 48, {}, config={"python": str(script), "repo": REPO})
    msg = str(ei.value)
    assert "stopped without an answer" in msg and "signal 11" in msg and "Segmentation" in msg


def test_client_config_fallback(tmp_path):
    d = tmp_path / "plug-ins" / "ai-deblur"
    d.mkdir(parents=True)
    cfg = client.load_config(str(d))
    assert cfg["repo"] == str(tmp_path)
    (d / "ai-deblur.json").write_text(json.dumps({"python": "/x/python", "repo": "/x"}))
    assert client.load_config(str(d))["python"] == "/x/python"
    (d / "ai-deblur.json").write_text("{broken")
    with pytest.raises(client.WorkerError):
        client.load_config(str(d))


# ----------------------------------------------------------------------------- standby workers
@pytest.fixture
def standby_env(client_env, monkeypatch):
    """Engine doubles, standby sockets in a short private folder (AF_UNIX paths are short), and a
    stand-in for GIMP whose end must end the standby workers."""
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="adb-", dir="/tmp")
    monkeypatch.setenv("AI_DEBLUR_RUNTIME_DIR", folder)
    monkeypatch.delenv("AI_DEBLUR_STANDBY", raising=False)
    gimp = subprocess.Popen(["sleep", "600"])
    yield client_env, gimp
    gimp.kill()
    gimp.wait()
    _wait_for(lambda: not _standby_pids(folder), 10)
    shutil.rmtree(folder, ignore_errors=True)


def _wait_for(cond, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _standby_pids(folder):
    out = subprocess.run(["pgrep", "-f", "--", "--standby " + folder], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _ready_standby(cfg, gimp):
    path = client.standby_path(cfg)
    assert path and client.spawn_standby(cfg, watch_pid=gimp.pid)
    assert _wait_for(lambda: os.path.exists(path), 30), "the standby worker never listened"
    return path


pytestmark_posix = pytest.mark.skipif(os.name != "posix", reason="standby workers are POSIX-only")


@pytestmark_posix
def test_worker_stays_warm_between_requests(standby_env, monkeypatch):
    """The first request starts a worker; having answered, it waits as the standby worker and answers
    the next requests itself (same process, engine already imported)."""
    cfg, gimp = standby_env
    monkeypatch.setenv("AI_DEBLUR_DOUBLE", "identity")
    folder = os.environ["AI_DEBLUR_RUNTIME_DIR"]
    path = client.standby_path(cfg)
    img = np.random.default_rng(1).integers(0, 256, (9, 11, 3)).astype(np.uint8)
    pids = []
    for i in range(3):
        w = client.Worker(cfg, standby=True, watch_pid=gimp.pid)
        report, outputs = w.request("deblur", 11, 9, 3, img.tobytes(), {"mode": "focus"}, dtype="u8")
        assert report["mode"] == "focus"
        np.testing.assert_array_equal(np.frombuffer(outputs["image"][1], np.uint8).reshape(9, 11, 3), img)
        assert w.source == ("new process" if i == 0 else "standby")
        pids.append(w.proc.pid if w.proc else w.pid)
        # listening by the time the answer is back: the next call, however soon, finds it
        assert os.path.exists(path), "the worker did not stay (or not yet)"
    assert len(set(pids)) == 1 and _standby_pids(folder) == pids[:1]
    # another request while none waits (the standby is busy or gone): a new process does the work
    os.kill(pids[0], 9)
    assert _wait_for(lambda: not _standby_pids(folder), 5)
    w = client.Worker(cfg, standby=True, watch_pid=gimp.pid)
    assert w.request("ping")[0]["protocol"] == 2 and w.source == "new process"


@pytestmark_posix
def test_standby_ends_with_gimp(standby_env):
    cfg, gimp = standby_env
    path = _ready_standby(cfg, gimp)
    gimp.kill()
    gimp.wait()
    assert _wait_for(lambda: not os.path.exists(path) and not _standby_pids(os.environ["AI_DEBLUR_RUNTIME_DIR"]), 10)


@pytestmark_posix
def test_standby_is_not_shared_across_engine_settings(standby_env, monkeypatch):
    """A standby started under other engine settings, or before the engine's files changed, is not used."""
    cfg, gimp = standby_env
    _ready_standby(cfg, gimp)
    monkeypatch.setenv("AI_DEBLUR_DOUBLE", "identity")  # another behaviour: another socket
    w = client.Worker(cfg, standby=True, watch_pid=gimp.pid)
    w.request("ping")
    assert w.source == "new process"


@pytestmark_posix
def test_stale_standby_is_refused(standby_env, tmp_path, monkeypatch):
    import shutil
    cfg, gimp = standby_env
    engine_dir = tmp_path / "engine"
    engine_dir.mkdir()
    shutil.copy(os.path.join(HERE, "engine_doubles.py"), engine_dir / "engine_doubles.py")
    monkeypatch.setenv("AI_DEBLUR_PYTHONPATH", str(engine_dir))
    _ready_standby(cfg, gimp)
    later = time.time() + 5
    os.utime(engine_dir / "engine_doubles.py", (later, later))  # the engine was updated
    w = client.Worker(cfg, standby=True, watch_pid=gimp.pid)
    report, _ = w.request("ping")
    assert w.source == "new process" and report["protocol"] == 2


@pytestmark_posix
def test_standby_cancel_and_crash(standby_env, monkeypatch):
    cfg, gimp = standby_env
    folder = os.environ["AI_DEBLUR_RUNTIME_DIR"]
    monkeypatch.setenv("AI_DEBLUR_DOUBLE", "slow")
    _ready_standby(cfg, gimp)
    pid = _standby_pids(folder)[0]
    calls = []
    w = client.Worker(cfg, standby=True, watch_pid=gimp.pid)
    t0 = time.monotonic()
    with pytest.raises(client.Cancelled):
        w.request("deblur", 6, 6, 3, np.zeros((6, 6, 3), np.float32).tobytes(), {},
                  cancelled=lambda: calls.append(1) or len(calls) > 2)
    assert w.source == "standby" and time.monotonic() - t0 < 10
    assert _wait_for(lambda: pid not in _standby_pids(folder), 5), "the cancelled standby still runs"
    # a cancel should not make the next request pay for a cold start: a new standby waits
    assert _wait_for(lambda: os.path.exists(client.standby_path(cfg)), 30)
    os.kill(_standby_pids(folder)[0], 9)

    monkeypatch.setenv("AI_DEBLUR_DOUBLE", "crash")
    assert _wait_for(lambda: not _standby_pids(folder), 5)
    _ready_standby(cfg, gimp)
    w = client.Worker(cfg, standby=True, watch_pid=gimp.pid)
    with pytest.raises(client.WorkerError) as ei:
        w.request("deblur", 6, 6, 3, np.zeros((6, 6, 3), np.float32).tobytes(), {})
    assert w.source == "standby"
    assert "stopped without an answer" in str(ei.value) and "Segmentation fault" in str(ei.value)
    # a worker that crashed is not replaced by another standby
    time.sleep(1.0)
    assert not os.path.exists(client.standby_path(cfg))

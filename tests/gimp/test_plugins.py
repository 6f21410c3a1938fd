"""Every AI Deblur procedure, called non-interactively in the real GIMP 3 (one GIMP launch for all).

The GIMP side is tests/gimp/gimp_script_plugins.py; it records what happened into a JSON that the
tests below assert on (new layer above the source, its name, mask values, source pixels unchanged,
XCF round trip, alpha kept, errors with messages and nothing half-written).
"""
import json
import os
import shutil
import stat
import tempfile

import pytest

from gimp_env import PROCEDURES, gimp_batch

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = [
    dict(id="rgb8-auto-full", base="rgb", precision="u8", proc="auto",
         args={"strength": 50.0, "mask": "full"}),
    dict(id="rgba8-motion-hidden-offsets", base="rgb", precision="u8", alpha=True, layer_size=(100, 80), blur=7,
         offsets=(13, 9), proc="motion", args={"strength": 60.0, "mask": "hidden", "length": 7.0, "angle": 30.0}),
    dict(id="gray16-focus-auto", base="gray", precision="u16", proc="focus",
         args={"strength": 50.0, "mask": "auto", "radius": 3.0}),
    dict(id="graya32-shake-full", base="gray", precision="f32lin", alpha=True, proc="shake",
         args={"strength": 40.0, "mask": "full", "kernel_size": 9}),
    dict(id="rgb8-shake-regions", base="rgb", precision="u8", size=(192, 144), blur=7, proc="shake",
         args={"strength": 50.0, "mask": "full", "kernel_size": 9, "regions": 2}),
    dict(id="rgb32-sharpen-selection", base="rgb", precision="f32", selection=(20, 16, 64, 48),
         proc="smart-sharpen", args={"strength": 50.0, "mask": "selection", "radius": 1.5, "amount": 1.0}),
    dict(id="rgba16-oldphoto-auto-offset-selection", base="rgb", precision="u16lin", alpha=True,
         layer_size=(110, 80), offsets=(10, 12), selection=(30, 20, 48, 40), proc="old-photo",
         args={"strength": 70.0, "mask": "auto"}),
    dict(id="rgb8-focus-auto-ellipse", base="rgb", precision="u8", ellipse=(10, 10, 100, 70), proc="focus",
         args={"strength": 50.0, "mask": "auto"}),
    dict(id="rgb8-sharpen-subject", base="rgb", precision="u8", proc="smart-sharpen",
         args={"strength": 50.0, "mask": "subject"}),
    dict(id="rgb8-analyze-kernel", base="rgb", precision="u8", proc="analyze", size=(160, 120), blur=9,
         args={"show_kernel": True}),
    dict(id="gray8-analyze", base="gray", precision="u8", proc="analyze", args={"show_kernel": False}),
]
CORRECTIONS = [c for c in CASES if c["proc"] != "analyze"]


def _error_cases(tmp):
    exit1 = tmp / "broken-python.sh"
    exit1.write_text("#!/bin/sh\necho 'worker exploded on purpose' >&2\nexit 1\n")
    engine_err = tmp / "engine-error.sh"
    engine_err.write_text("#!/bin/sh\ncat >/dev/null\n"
                          "echo '{\"progress\": 0.1, \"message\": \"pretending\"}'\n"
                          "echo '{\"ok\": false, \"error\": \"synthetic engine failure\"}'\n")
    truncated = tmp / "truncated.sh"
    truncated.write_text("#!/bin/sh\ncat >/dev/null\n"
                         "echo '{\"ok\": true, \"report\": {\"title\": \"x\"}, \"outputs\": "
                         "[{\"name\": \"image\", \"shape\": [96, 128, 3]}, {\"name\": \"mask\", \"shape\": [96, 128]}]}'\n"
                         "printf 'short'\n")
    for f in (exit1, engine_err, truncated):
        f.chmod(f.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    base = dict(base="rgb", precision="u8", proc="auto", args={"strength": 50.0, "mask": "auto"})
    return [
        dict(base, id="err-indexed", indexed=True),
        dict(base, id="err-group", group=True),
        dict(base, id="err-worker-exits", python=str(exit1)),
        dict(base, id="err-engine-error", python=str(engine_err)),
        dict(base, id="err-truncated-output", python=str(truncated)),
        dict(base, id="err-missing-python", python=str(tmp / "no-such-python")),
    ]


@pytest.fixture(scope="module")
def results(gimp_profile, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gimp-plugins")
    params = {"out_dir": str(tmp), "cases": CASES, "error_cases": _error_cases(tmp),
              "procedures": list(PROCEDURES),
              "config_path": os.path.join(str(gimp_profile), "plug-ins", "ai-deblur", "ai-deblur.json")}
    with open(os.path.join(HERE, "gimp_script_plugins.py")) as fh:
        script = fh.read()
    code = gimp_batch.HELPERS + f"PARAMS = {json.dumps(params)!r}\nimport json as _j\nPARAMS = _j.loads(PARAMS)\n" + script
    runtime = tempfile.mkdtemp(prefix="aid-")  # this session's standby socket; short (AF_UNIX limit)
    try:
        res = gimp_batch.run_python(code, profile=str(gimp_profile), timeout=600, check=False,
                                    name="gimp_script_plugins.py", extra_env={"AI_DEBLUR_RUNTIME_DIR": runtime})
    finally:
        shutil.rmtree(runtime, ignore_errors=True)
    assert "error" not in res, f"{res.get('error')}\n{res.get('traceback')}\n{res.get('_log', '')[-3000:]}"
    assert "cases" in res, f"GIMP produced no results:\n{res.get('_log', '')[-3000:]}"
    with open(os.path.join(str(tmp), "results.json"), "w") as fh:
        json.dump(res, fh, indent=1, default=str)
    print(f"GIMP batch run: {res['_seconds']:.1f} s; results in {tmp}/results.json")
    return res


def _case(results, cid):
    rec = results["cases"][cid]
    assert rec["status"] != "script-error", rec["message"]
    return rec


def test_all_procedures_registered_with_menu(results):
    expected = {"plug-in-ai-deblur-auto": "Auto Deblur...", "plug-in-ai-deblur-motion": "Motion Deblur...",
                "plug-in-ai-deblur-focus": "Focus Correction...", "plug-in-ai-deblur-shake": "Camera Shake...",
                "plug-in-ai-deblur-smart-sharpen": "Smart Sharpen...",
                "plug-in-ai-deblur-old-photo": "Old Photo Clarity...", "plug-in-ai-deblur-analyze": "Analyze Blur..."}
    for name, label in expected.items():
        info = results["registered"][name]
        assert info is not None, f"{name} not registered"
        assert info["label"] == label
        assert "<Image>/Filters/Enhance/AI Deblur" in info["paths"]
        if name.endswith("analyze"):
            assert "show-kernel" in info["args"]
        else:
            assert "strength" in info["args"] and "mask" in info["args"]


def test_translations_set_up_without_warnings(results, gimp_profile):
    """The plug-in uses gettext with its own domain and catalog folder inside its folder, as GIMP's own
    Python plug-ins do (do_set_i18n); with no catalog for the language, the English strings show and
    GIMP prints nothing about it (it warns about a catalog folder that is missing or outside)."""
    assert os.path.isdir(os.path.join(str(gimp_profile), "plug-ins", "ai-deblur", "locale"))
    ours = [line for line in results["_log"].splitlines() if line.startswith("[plug-in-ai-deblur")]
    assert not [line for line in ours if "catalog directory" in line or "Localization disabled" in line], ours


@pytest.mark.parametrize("case", CORRECTIONS, ids=[c["id"] for c in CORRECTIONS])
def test_correction_adds_layer_above_source(results, case):
    rec = _case(results, case["id"])
    assert rec["status"] == "success", rec.get("message")
    new = rec["new"]
    # One new layer named after what was done, or the engine's stack of layers (bottom to top), with
    # short names the plug-in composes ("AI Deblur - focus 3 px, 50%").
    stack = rec["report"]["layer_names"]
    assert len(stack) == len(rec["report"].get("layers") or [None])
    assert new["name"] == stack[-1]
    assert all(name.startswith(("AI Deblur - ", "Old Photo Clarity")) and len(name) <= 60 for name in stack), stack
    before, after = rec["layers_before"], rec["layers_after"]
    assert len(after) == len(before) + len(stack)
    i_new, i_src = after.index(new["name"]), after.index("source")
    assert after[i_new:i_src] == list(reversed(stack)), f"new layers not directly above the source: {after}"
    assert after[:i_new] + after[i_src:] == before
    # geometry: selection bounds on the layer, offsets kept
    sx, sy, sw, sh = rec["region"]
    assert new["size"] == [sw, sh]
    assert new["offsets"] == [rec["source_offsets"][0] + sx, rec["source_offsets"][1] + sy]
    assert new["alpha"] == bool(case.get("alpha"))
    assert new["gray"] == (case["base"] == "gray")
    assert new["finite"] and -1e-6 <= new["min"] and new["max"] <= 1 + 1e-6
    assert rec["source_unchanged"], "the source layer's pixels changed"
    assert rec["selection_kept"], "the user's selection changed"
    if case.get("alpha"):
        assert rec["alpha_kept"], "alpha of the new layer differs from the source's"


def test_shake_blur_traces_per_region(results):
    """"Regions per side" = 2: four kernels, one per quarter of the layer, in the report."""
    rec = _case(results, "rgb8-shake-regions")
    assert rec["status"] == "success", rec.get("message")
    regions = rec["report"]["shake"]["regions"]
    assert len(regions) == 4
    w, h = rec["region"][2], rec["region"][3]
    assert sum(r["roi"][2] * r["roi"][3] for r in regions) == w * h
    assert all(r["source"] in ("own", "whole photo") for r in regions)
    harm = rec["report"]["harm"]
    if "regions" in harm:       # every region's kernel explained its part: the grid stands
        assert "2x2 regions" in rec["report"]["title"] and harm["trusted"]
    else:                       # do no harm: one kernel for the whole photo instead, and the report says so;
        warnings = rec["report"]["warnings"]    # when that does not explain it either, the next candidate
        assert any("regions did not explain their part" in w for w in warnings)
        assert "one for the whole photo" in rec["report"]["title"] or \
            any("did not explain the blur" in w or "gentle sharpening was used instead" in w for w in warnings), warnings


def test_calls_use_a_standby_worker(results):
    """In batch mode the engine's worker starts with GIMP (test_preload.py), so even the first call of
    the session finds it imported and warm; having answered, a worker stays as the standby for the
    next calls, which then skip the start-up costs."""
    sources = [_case(results, c["id"])["report"]["plugin_timing"]["worker"] for c in CORRECTIONS]
    assert sources[0] == "standby", sources
    assert sources[1:].count("standby") >= len(sources[1:]) // 2, sources


@pytest.mark.parametrize("case", CORRECTIONS, ids=[c["id"] for c in CORRECTIONS])
def test_mask_values(results, case):
    rec = _case(results, case["id"])
    assert rec["status"] == "success", rec.get("message")
    for key in ("new", "reopened_new"):
        m = rec[key]["mask"]
        assert m is not None, f"{key}: no layer mask"
        choice = case["args"]["mask"]
        if rec["report"].get("layers"):   # an engine layer stack: each layer carries its own mask
            choice = "stack"
        if choice == "stack":
            assert -1e-6 <= m["min"] and m["max"] <= 1.0 + 1e-6, m
        elif choice in ("full", "selection"):  # rectangular selection: all of the layer is inside
            assert m["min"] > 0.999 and m["max"] <= 1.0 + 1e-6, m
        elif choice == "hidden":
            assert m["max"] < 1e-3, m
        elif choice in ("faces", "subject"):
            assert -1e-6 <= m["min"] and m["max"] <= 1.0 + 1e-6, m
        elif choice == "auto":
            assert 0.0 <= m["min"] and m["max"] <= 1.0 + 1e-6, m
            assert m["max"] - m["min"] > 0.05 and m["distinct"] > 2, f"auto mask is constant: {m}"
        if case.get("ellipse"):  # the mask is limited to the (non-rectangular) selection
            assert max(m["corners"]) < 1e-3 and m["center_max"] > 0.05, m


@pytest.mark.parametrize("case", CORRECTIONS, ids=[c["id"] for c in CORRECTIONS])
def test_xcf_round_trip(results, case):
    rec = _case(results, case["id"])
    assert rec["status"] == "success", rec.get("message")
    assert rec["reopened_layers"] == rec["layers_after"]
    assert rec["reopened_source_unchanged"]
    a, b = rec["new"], rec["reopened_new"]
    assert (a["name"], a["size"], a["offsets"], a["alpha"]) == (b["name"], b["size"], b["offsets"], b["alpha"])


@pytest.mark.parametrize("cid,names", [
    ("rgba16-oldphoto-auto-offset-selection", ["Old Photo Clarity - background", "Old Photo Clarity - subjects, 70%"]),
    ("rgb8-sharpen-subject", ["AI Deblur - background smoothing", None]),
])
def test_retoucher_layer_stacks(results, cid, names):
    """Old Photo Clarity writes a background layer (the AI pass, softened outside the people: a full
    mask) and a subjects layer above it; the subject mask adds a background-smoothing layer under the
    correction, with complementary masks."""
    rec = _case(results, cid)
    assert rec["status"] == "success", rec.get("message")
    assert len(rec["report"]["layers"]) == 2
    stack = rec["report"]["layer_names"]
    assert len(stack) == 2 and stack[0] == names[0] and (names[1] is None or stack[1] == names[1]), stack
    assert all(rec["stack_masks"][n] is not None for n in stack)
    lo, hi = rec["stack_mask_sum"]
    if "oldphoto" in cid:        # full background mask (cut to the selection) + the subjects' mask
        assert 0.99 < hi < 2.01, (lo, hi)
    elif "selection" not in cid:   # outside a selection both masks are cut to 0
        assert lo > 0.99 and hi < 1.01, (lo, hi)
    else:
        assert hi < 1.01


def test_analyze_reports_and_kernel_layer(results):
    rec = _case(results, "rgb8-analyze-kernel")
    assert rec["status"] == "success", rec.get("message")
    report = rec["report"]
    kernel = report.get("kernel")
    assert isinstance(kernel, list) and kernel and isinstance(kernel[0], list)
    assert "new" in rec, "show-kernel added no layer"
    assert rec["new"]["name"].startswith("AI Deblur - kernel (")
    after = rec["layers_after"]
    assert after.index(rec["new"]["name"]) == after.index("source") - 1
    assert rec["new"]["max"] > 0.99  # scaled to its peak
    assert rec["source_unchanged"]

    rec = _case(results, "gray8-analyze")
    assert rec["status"] == "success", rec.get("message")
    assert rec["layers_after"] == rec["layers_before"]  # no kernel layer asked for
    assert isinstance(rec["report"], dict) and rec["report"]


@pytest.mark.parametrize("cid,needle", [
    ("err-indexed", "Indexed"),
    ("err-group", "group"),
    ("err-worker-exits", "worker exploded on purpose"),
    ("err-engine-error", "synthetic engine failure"),
    ("err-truncated-output", "result bytes"),
    ("err-missing-python", "does not exist"),
])
def test_errors_are_reported_and_leave_nothing(results, cid, needle):
    rec = _case(results, cid)
    assert rec["status"] in ("execution-error", "calling-error"), rec
    assert rec["message"] and needle.lower() in rec["message"].lower(), rec["message"]
    assert rec["layers_after"] == rec["layers_before"], "a failed run left a layer behind"
    if "source_unchanged" in rec:
        assert rec["source_unchanged"]

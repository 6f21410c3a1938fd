"""The engine processes' memory policy (deblur_core/memory.py): freed big arrays are reused by the next
allocation instead of being unmapped and page-faulted (and zeroed) anew."""
import json
import subprocess
import sys

from deblur_core import memory

CODE = r"""
import json, resource, sys
import numpy as np
if sys.argv[1] == "policy":
    from deblur_core.memory import keep_freed_memory
    assert keep_freed_memory()
a = np.ones(100 * 2**20 // 8)      # 100 MB, above glibc's highest mmap threshold (32 MB)
del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones(100 * 2**20 // 8)
print(json.dumps({"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _faults(mode):
    out = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["faults"]


def test_freed_big_arrays_are_reused_without_page_faults():
    if not sys.platform.startswith("linux"):
        assert memory.keep_freed_memory() is False  # glibc's malloc only: a no-op elsewhere
        return
    default, policy = _faults("default"), _faults("policy")
    assert policy <= 10, policy
    assert default >= 4 * max(policy, 10), (default, policy)   # 50 huge pages or 25,600 small ones


RELEASE = r"""
import json, os
import numpy as np
from deblur_core.memory import keep_freed_memory, release_free_memory

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

assert keep_freed_memory()
a = np.ones(200 * 2**20 // 8)     # 200 MB on malloc's heap (no mmap under the policy)
del a                             # freed, and kept for reuse
kept = rss_mb()
released = release_free_memory()
print(json.dumps({"kept": kept, "released": released, "after": rss_mb()}))
"""


def test_release_free_memory_hands_kept_memory_back():
    """Under the keep-freed policy a freed 200 MB array stays in the process; release_free_memory()
    gives it back to the system (what a standby worker does when it holds too much between requests)."""
    if not sys.platform.startswith("linux"):
        assert memory.release_free_memory() is False  # glibc's malloc only: a no-op elsewhere
        return
    out = json.loads(subprocess.run([sys.executable, "-c", RELEASE], capture_output=True, text=True,
                                    check=True).stdout)
    assert out["released"] is True, out
    assert out["kept"] - out["after"] >= 150, out


def test_policy_keeps_freed_memory_up_to_a_photo_size():
    linux = sys.platform.startswith("linux")
    try:
        assert memory.policy_for(12_000_000) is linux                         # speed
        assert memory.policy_for(memory.KEEP_FREED_MAX_PIXELS + 1) is False   # peak memory first
    finally:
        memory.keep_freed_memory(False)   # leave this test process as glibc made it


PREFAULT = r"""
import json, resource
import numpy as np
from deblur_core.memory import prefault
n = prefault(200 * 2**20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(150 * 2**20 // 8)     # lands on the pages prefault() touched
print(json.dumps({"n": n, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def test_prefault_leaves_pages_for_the_next_photo():
    """What a standby worker started ahead of any request does (in its main thread)."""
    out = json.loads(subprocess.run([sys.executable, "-c", PREFAULT], capture_output=True, text=True,
                                    check=True).stdout)
    if not sys.platform.startswith("linux"):
        assert out["n"] == 0
        return
    assert out["n"] == 200 * 2**20
    assert out["faults"] <= 10, out


def test_prefault_stops_when_asked():
    """A photo that arrives while the standby worker warms its heap up cuts the warm-up short: it is
    asked between 64 MB chunks."""
    code = ("import json\nfrom deblur_core.memory import prefault\n"
            "asked = []\n"
            "n = prefault(512 * 2**20, stop=lambda: asked.append(1) or len(asked) >= 2)\n"
            "print(json.dumps({'n': n, 'asked': len(asked)}))\n")
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout)
    if not sys.platform.startswith("linux"):
        assert out["n"] == 0
        return
    assert out == {"n": 128 * 2**20, "asked": 2}

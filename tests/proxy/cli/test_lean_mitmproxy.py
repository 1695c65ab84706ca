"""The lean ``mitmproxy.addons`` package: modules load alone, the rest loads when asked."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
lean = sys.argv[1] == "lean"
if lean:
    from proxy.cli import lean_mitmproxy
    assert lean_mitmproxy.install()
    assert not lean_mitmproxy.install(), "a second install changes nothing"
import mitmproxy.master
from mitmproxy.addons import core, proxyserver, tlsconfig
loaded_early = "flask" in sys.modules or "mitmproxy.addons.onboarding" in sys.modules
from mitmproxy import addons
names = sorted(type(a).__name__ for a in addons.default_addons())
from proxy.chain import addons_for_options
found = [type(a).__name__ for a in addons_for_options({"anticache"}, set())]
print(json.dumps({"early": loaded_early, "names": names, "found": found,
                  "same": addons.core is core, "flask": "flask" in sys.modules}))
"""


def probe(kind: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, kind], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_addon_modules_load_alone_and_default_addons_is_the_same_list() -> None:
    plain, lean = probe("plain"), probe("lean")
    assert plain["early"] is True, "the plain package loads every addon (Flask too) at once"
    assert lean["early"] is False, "the lean one loads only what is imported"
    assert lean["names"] == plain["names"] and len(lean["names"]) > 30  # type: ignore[arg-type]
    assert lean["same"] is True and lean["flask"] is True, "the real __init__ ran, once"
    assert lean["found"] == plain["found"] == ["AntiCache"], "--set anticache=... still works"

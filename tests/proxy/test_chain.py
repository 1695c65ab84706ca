"""Addon scripts: loaded as mitmproxy loads them, then watched on the gate's beat."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from mitmproxy import options
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import tflow

from proxy.chain import BeatScriptLoader
from proxy.hook_table import HearthgateMaster

SCRIPT = """
class Mark:
    def request(self, flow):
        flow.metadata["mark"] = {mark!r}


addons = [Mark()]
"""


async def _mark(master: HearthgateMaster) -> str | None:
    flow = tflow.tflow()
    await master.addons.handle_lifecycle(HttpRequestHook(flow))
    return flow.metadata.get("mark")


def _write(path: Path, text: str, later: float) -> None:
    path.write_text(text)
    stamp = path.stat().st_mtime + later
    os.utime(path, (stamp, stamp))  # a change within the file system's clock tick


async def _loaded(path: Path) -> tuple[HearthgateMaster, BeatScriptLoader]:
    master = HearthgateMaster(options.Options())
    loader = BeatScriptLoader()
    master.addons.add(loader)
    master.options.update(scripts=[str(path)])
    for _ in range(100):  # mitmproxy's own watch task loads a new script
        await asyncio.sleep(0.01)
        if loader.addons and loader.addons[0].ns is not None:
            break
    return master, loader


async def test_takes_over_the_watch_then_reloads_and_unloads(tmp_path: Path) -> None:
    path = tmp_path / "mark.py"
    _write(path, SCRIPT.format(mark="one"), 0)
    master, loader = await _loaded(path)
    assert await _mark(master) == "one"
    script = loader.addons[0]
    task = script.reloadtask
    assert task is not None and not task.done()

    loader.look()  # the first beat: mitmproxy's once-a-second task is stopped
    await asyncio.sleep(0)
    assert task.cancelled() and loader.watched == [script]

    loader.look()  # nothing changed: nothing reloaded
    assert await _mark(master) == "one"

    _write(path, SCRIPT.format(mark="two"), 5)
    loader.look()
    assert await _mark(master) == "two"

    path.unlink()
    loader.look()
    assert master.options.scripts == [] and loader.addons == []
    assert await _mark(master) is None


async def test_a_script_that_failed_to_load_keeps_mitmproxys_watch(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    _write(path, "this is not python\n", 0)
    master, loader = await _loaded(path)
    await asyncio.sleep(0.05)
    loader.look()
    script = loader.addons[0]
    assert script.ns is None and loader.watched == []
    assert script.reloadtask is not None and not script.reloadtask.done()

    _write(path, SCRIPT.format(mark="fixed"), 5)  # mitmproxy's watch loads the fixed file
    for _ in range(300):
        await asyncio.sleep(0.01)
        if script.ns is not None:
            break
    assert await _mark(master) == "fixed"
    loader.look()
    assert loader.watched == [script]
    script.done()


async def test_the_beat_looks_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "mark.py"
    _write(path, SCRIPT.format(mark="one"), 0)
    master, loader = await _loaded(path)
    loader.running()
    try:
        for _ in range(250):  # within the next whole second of the loop's clock
            await asyncio.sleep(0.01)
            if loader.watched:
                break
        assert loader.watched == loader.addons
    finally:
        loader.done()

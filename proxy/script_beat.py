"""Extra addon scripts (``hearthgate run -s``), reloaded on the gate's one-second beat.

mitmproxy's script loader gives every script a task that looks at the file once a second,
each on its own clock: a gate with a script woke twice a second when idle, once for the
script and once for its own jobs (``runtime.grid_delay``). ``BeatScriptLoader`` keeps
mitmproxy's loading as it is and, once a script has loaded, looks at its file on the beat
instead: a change is reloaded within a second, a deleted file unloads the script, as before.
A script that has not loaded (it failed, say) keeps mitmproxy's own watch until it does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from mitmproxy import ctx
from mitmproxy.addons import script

log = logging.getLogger(__name__)


class BeatScriptLoader(script.ScriptLoader):
    name = "scriptloader"  # what mitmproxy's own tools look it up by

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[int, float] = {}  # id(Script) -> the file's mtime when last loaded
        self._beat: asyncio.Task[None] | None = None

    def running(self) -> None:
        super().running()
        if self._beat is None:
            self._beat = asyncio.get_running_loop().create_task(self._watch(), name="scripts")

    def done(self) -> None:
        if self._beat is not None:
            self._beat.cancel()

    async def _watch(self) -> None:
        from proxy.runtime import grid_delay  # the running gate's module, loaded by then

        while True:
            await asyncio.sleep(grid_delay())
            try:
                self.look()
            except Exception:  # noqa: BLE001 - a script's trouble must not stop the gate
                log.exception("scripts: reload check failed")

    def look(self) -> None:
        """One look at every script file: take over loaded scripts' watches, reload the
        changed ones, unload the deleted ones."""
        for each in list(self.addons):
            key = id(each)
            if key not in self._seen:
                if each.ns is None or each.reloadtask is None or each.reloadtask.done():
                    continue  # not loaded yet (or no watch to take over)
                each.reloadtask.cancel()
                with contextlib.suppress(OSError):
                    self._seen[key] = os.stat(each.fullpath).st_mtime
                continue
            try:
                mtime = os.stat(each.fullpath).st_mtime
            except FileNotFoundError:
                log.info("Removing script %s", each.path)
                self._seen.pop(key, None)
                ctx.options.update(scripts=[s for s in ctx.options.scripts if s != each.path])
                continue
            if mtime > self._seen[key]:
                self._seen[key] = mtime
                each.loadscript()
        live = {id(each) for each in self.addons}
        for key in [k for k in self._seen if k not in live]:
            del self._seen[key]

    @property
    def watched(self) -> list[Any]:
        """The scripts whose files the beat looks at (for tests)."""
        return [each for each in self.addons if id(each) in self._seen]

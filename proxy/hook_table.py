"""mitmproxy's addon manager with a table of who handles which hook.

mitmproxy dispatches every hook by walking the whole addon tree and asking each addon for a
method of that name, and after every flow hook it does the same again for ``update``. A proxied
request fires four flow hooks, so that is eight walks of the tree per request, nearly all of
them finding nothing. ``HookTable`` remembers, per hook name, the methods that exist, and
forgets when the tree may have changed: an addon or script added, removed or reloaded
(mitmproxy routes all of that through ``register``/``remove``), and any options change
(the script loader reorders its scripts while it is configured). Dispatch keeps mitmproxy's
rules: addons run in chain order, an error in one is logged and the next still runs,
``AddonHalt`` stops the rest.

One thing is not seen: an addon that, while running, appends to its own ``addons`` list
without registering the child, or rebinds one of its hook methods. Such an addon calls
``ctx.master.addons.invalidate()`` afterwards (plain mitmproxy would not need it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mitmproxy import exceptions, flow, hooks, options
from mitmproxy.addonmanager import AddonManager, safecall
from mitmproxy.addons import termlog
from mitmproxy.master import Master

# per top-level addon of the chain: the handlers of it and its children, in tree order
Handlers = tuple[tuple[Callable[..., Any], ...], ...]


class HookTable(AddonManager):
    def __init__(self, master: Master) -> None:
        super().__init__(master)
        self._table: dict[str, Handlers] = {}

    # --- the tree changes: forget what was learned --------------------------------------

    def invalidate(self) -> None:
        """Forget every hook's handlers; they are looked up again on next use."""
        self._table.clear()

    def _configure_all(self, updated: Any) -> None:
        self._table.clear()
        try:
            super()._configure_all(updated)
        finally:
            self._table.clear()

    def register(self, addon: Any) -> Any:
        self._table.clear()
        try:
            return super().register(addon)
        finally:
            self._table.clear()

    def add(self, *addons: Any) -> None:
        self._table.clear()
        super().add(*addons)
        self._table.clear()

    def remove(self, addon: Any) -> None:
        self._table.clear()
        try:
            super().remove(addon)
        finally:
            self._table.clear()

    def clear(self) -> None:
        self._table.clear()
        super().clear()
        self._table.clear()

    # --- dispatch ------------------------------------------------------------------------

    def handlers(self, event: hooks.Hook) -> Handlers:
        found = self._table.get(event.name)
        if found is None:
            found = tuple(
                group
                for group in (
                    tuple(func for _, func in self._iter_hooks(top, event)) for top in self.chain
                )
                if group
            )
            self._table[event.name] = found
        return found

    async def trigger_event(self, event: hooks.Hook) -> None:
        try:
            table = self.handlers(event)
        except exceptions.AddonManagerError:  # a hook attribute that is not callable
            await super().trigger_event(event)  # mitmproxy logs it, every time, as before
            return
        if not table:
            return
        args = event.args()
        for group in table:
            try:
                with safecall():
                    for func in group:
                        result = func(*args)
                        if result is not None and inspect.isawaitable(result):
                            await result
            except exceptions.AddonHalt:
                return

    async def handle_lifecycle(self, event: hooks.Hook) -> None:
        await self.trigger_event(event)
        message = event.args()[0]
        if isinstance(message, flow.Flow) and self._wants_updates():
            await self.trigger_event(hooks.UpdateHook([message]))

    def _wants_updates(self) -> bool:
        try:
            return bool(self.handlers(hooks.UpdateHook([])))
        except exceptions.AddonManagerError:
            return True  # trigger_event reports the broken addon


class HearthgateMaster(Master):
    """A mitmproxy ``Master`` whose addons are dispatched through a ``HookTable``."""

    def __init__(self, opts: options.Options, with_termlog: bool = False) -> None:
        super().__init__(opts, with_termlog=False)
        opts.changed.disconnect(self.addons._configure_all)
        self.addons = HookTable(self)
        if with_termlog:
            self._termlog_addon = termlog.TermLog()
            self.addons.add(self._termlog_addon)

"""The mitmproxy addon chain hearthgate runs: lean by default, complete where asked.

mitmproxy's default chain has some 30 addons and every hook visits each of them; a gate needs
a handful. Any other addon is added on demand when ``--set`` names one of its options, so
every mitmproxy option still works as with ``mitmdump --set``. Addon scripts (``-s``) are
watched on the gate's beat (``BeatScriptLoader``, below).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from mitmproxy import addons, ctx
from mitmproxy.addons import (
    block,
    core,
    disable_h2c,
    dns_resolver,
    errorcheck,
    next_layer,
    proxyauth,
    proxyserver,
    script,
    strip_dns_https_records,
    tlsconfig,
    upstream_auth,
)
from mitmproxy.proxy import mode_specs

log = logging.getLogger(__name__)


class GateDnsResolver(dns_resolver.DnsResolver):
    """mitmproxy's resolver for WireGuard's DNS, leaving DNS mode to the gate's DNS server
    (which forwards instead of answering A/AAAA from a look-up of its own)."""

    @staticmethod
    def _should_resolve(flow: Any) -> bool:
        if isinstance(flow.client_conn.proxy_mode, mode_specs.DnsMode):
            return False
        return bool(dns_resolver.DnsResolver._should_resolve(flow))


class GateNextLayer(next_layer.NextLayer):
    """mitmproxy's next-layer choice, asking the gate before it tunnels a TLS connection
    that allow_hosts does not name (see ``SniGate.intercept_sibling``)."""

    name = "nextlayer"  # what mitmproxy looks it up by

    def __init__(self) -> None:
        super().__init__()
        self.intercept: Callable[[Any, str | None], bool] | None = None

    def _ignore_connection(
        self, context: Any, data_client: bytes, data_server: bytes
    ) -> bool | None:
        ignore = super()._ignore_connection(context, data_client, data_server)
        if ignore is True and self.intercept is not None:
            hello = self._get_client_hello(context, data_client)
            if hello is not None and hello.sni and self.intercept(context, hello.sni):
                return False
        return ignore


def lean_addons(dns_mode: bool = False) -> list[Any]:
    """What a gate needs: core, open-proxy protection, auth, servers, TLS, scripts."""
    return [
        core.Core(),
        block.Block(),
        strip_dns_https_records.StripDnsHttpsRecords(),
        disable_h2c.DisableH2C(),
        proxyauth.ProxyAuth(),
        proxyserver.Proxyserver(),
        BeatScriptLoader(),
        GateDnsResolver() if dns_mode else dns_resolver.DnsResolver(),
        GateNextLayer(),
        tlsconfig.TlsConfig(),
        upstream_auth.UpstreamAuth(),
        errorcheck.ErrorCheck(),
    ]


class _OptionProbe:
    """Stands in for mitmproxy's loader to learn which options an addon declares."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def add_option(self, name: str, *args: Any, **kwargs: Any) -> None:
        self.names.add(name)

    def add_command(self, *args: Any, **kwargs: Any) -> None:
        pass


def addons_for_options(names: set[str], present: set[str]) -> list[Any]:
    """Default addons not already in the chain that declare any of ``names``."""
    if not names:  # the usual start: no --set, so no need to build and probe 40 addons
        return []
    wanted = []
    for addon in addons.default_addons():
        if type(addon).__name__ in present or not hasattr(addon, "load"):
            continue
        probe = _OptionProbe()
        try:
            addon.load(probe)
        except Exception:  # noqa: BLE001 - an addon that cannot be probed is not needed
            continue
        if probe.names & names:
            wanted.append(type(addon)())
    return wanted


# --- addon scripts on the beat --------------------------------------------------------
# Extra addon scripts (``hearthgate run -s``), reloaded on the gate's one-second beat.
#
# mitmproxy's script loader gives every script a task that looks at the file once a second,
# each on its own clock: a gate with a script woke twice a second when idle, once for the
# script and once for its own jobs (``runtime.grid_delay``). ``BeatScriptLoader`` keeps
# mitmproxy's loading as it is and, once a script has loaded, looks at its file on the beat
# instead: a change is reloaded within a second, a deleted file unloads the script, as before.
# A script that has not loaded (it failed, say) keeps mitmproxy's own watch until it does.


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

"""The mitmproxy addon chain hearthgate runs: lean by default, complete where asked.

mitmproxy's default chain has some 30 addons and every hook visits each of them; a gate needs
a handful. Any other addon is added on demand when ``--set`` names one of its options, so
every mitmproxy option still works as with ``mitmdump --set``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mitmproxy import addons
from mitmproxy.addons import (
    block,
    core,
    disable_h2c,
    dns_resolver,
    errorcheck,
    next_layer,
    proxyauth,
    proxyserver,
    strip_dns_https_records,
    tlsconfig,
    upstream_auth,
)
from mitmproxy.proxy import mode_specs

from proxy.script_beat import BeatScriptLoader


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

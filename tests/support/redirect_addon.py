"""mitmproxy script addon for tests: every upstream TCP connection goes to the fake server.

Load with ``mitmdump -s tests/support/redirect_addon.py`` (or ``hearthgate run`` with the same
``-s``-style script loading) and set ``HEARTHGATE_TEST_UPSTREAM=127.0.0.1:PORT``.

It behaves like a DNS override: mitmproxy still believes it talks to ``api.openai.com:443``,
only the TCP socket is opened to 127.0.0.1:PORT (``server.peername`` shows that).

* ``server_connect`` fires for *every* upstream TCP connection mitmproxy opens, just before the
  socket is opened (mitmproxy 12.2 ``proxy/server.py: ConnectionHandler.open_connection``):
  for flows it decrypts and equally for connections it only tunnels (hosts outside
  ``allow_hosts`` / inside ``ignore_hosts``, which become raw TCP flows), with
  ``connection_strategy`` eager or lazy. Verified in ``test_support_selftest.py``. For a
  tunnelled TLS connection the client's own ClientHello (and SNI) reaches the fake server, which
  presents its own certificate, issued by the test CA.
* The hook swaps ``server.address`` to the fake server; ``server_connected`` (socket open) puts
  the original address back. ``Server.__setattr__`` refuses to change ``address`` on an open
  connection, hence the write to ``__dict__``. The restore is needed, found empirically:
  inside a CONNECT tunnel mitmproxy sets ``flow.request.host``/``port`` from
  ``server.address``, so without it every decrypted flow reads ``https://127.0.0.1:PORT/...``
  instead of ``https://api.openai.com/...``; and the HTTP layer reuses an upstream connection
  only if its ``address`` equals the request's host and port, so with
  ``connection_strategy=lazy`` every request would open a new upstream connection.
* ``server.sni`` is not touched. When ``server_connect`` runs it is None for an eagerly opened
  CONNECT tunnel (mitmproxy's TLS addon later sets it to ``client.sni or server.address[0]``,
  i.e. the original host name) and already the host name with ``connection_strategy=lazy``.
  mitmproxy sends it upstream and verifies the fake's certificate against it
  (``ssl_verify_upstream_trusted_ca`` = the test CA); tunnelled connections carry the client's
  SNI. ``FakeLLM.server_names`` records what arrives.

Only ``tcp`` connections are redirected; connections already aimed at the fake server, and UDP
(DNS, QUIC) are left alone. If the variable is missing or not ``127.0.0.1:PORT``, every upstream
connection is killed before connecting (an exception in a hook would only be logged).
Stdlib + mitmproxy only: mitmproxy loads this file as a script, outside the ``tests`` package.
"""

from __future__ import annotations

import logging
import os

from mitmproxy import connection
from mitmproxy.proxy import server_hooks

ENV_VAR = "HEARTHGATE_TEST_UPSTREAM"

logger = logging.getLogger(__name__)


def _parse_target(value: str) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{ENV_VAR} must look like 127.0.0.1:PORT, got {value!r}")
    if host != "127.0.0.1":
        # These tests must never leave the loopback interface.
        raise ValueError(f"{ENV_VAR} must point at 127.0.0.1, got {value!r}")
    return host, int(port)


class RedirectToFakeUpstream:
    def __init__(self) -> None:
        self.target: tuple[str, int] | None = None
        self.error: str | None = None
        # id(server) -> the address mitmproxy wanted, restored once the socket is open.
        self._original: dict[str, tuple[str, int]] = {}
        self.redirected = 0

    def load(self, loader: object) -> None:
        # mitmproxy only logs exceptions raised by script hooks, so a bad setting must not raise
        # here: it is remembered and every upstream connection is then refused (fail closed).
        try:
            self.target = _parse_target(os.environ.get(ENV_VAR, ""))
            self.error = None
        except ValueError as e:
            self.target = None
            self.error = str(e)
            logger.error("redirect_addon: %s; every upstream connection will be refused", e)
        else:
            logger.info("redirecting every upstream connection to %s:%d", *self.target)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        server = data.server
        if self.target is None:
            server.error = f"redirect_addon: {self.error or ENV_VAR + ' not loaded'}"
            return
        if server.transport_protocol != "tcp" or server.address is None:
            return
        address = (str(server.address[0]), int(server.address[1]))
        if address == self.target:
            return
        self._original[server.id] = address
        server.address = self.target
        self.redirected += 1
        logger.debug("redirect %s:%d (sni=%s) -> %s:%d", *address, server.sni, *self.target)

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        original = self._original.pop(data.server.id, None)
        if original is not None:
            # The connection is open now; mitmproxy's setattr guard forbids a plain assignment.
            data.server.__dict__["address"] = original

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        original = self._original.pop(data.server.id, None)
        if original is not None and data.server.state is connection.ConnectionState.CLOSED:
            data.server.address = original


addons = [RedirectToFakeUpstream()]

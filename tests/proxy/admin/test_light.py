"""/metrics, /healthz and the PAC file are answered without building the admin app, and the
same as the app answers them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy.admin.front import LazyApp
from proxy.admin.light import LightRoutes
from proxy.gate import Gate
from proxy.metrics import Metrics
from proxy.runtime import RulesHolder, StateCache
from proxy.store.writer import Writer

RULES = """\
version: 1
settings: {timezone: Europe/Berlin}
groups: {kids: {}}
people: {alice: {groups: [kids]}}
devices: {alice-laptop: {person: alice, ips: [127.0.0.1]}}
"""


@pytest.fixture
def gate(tmp_path: Path) -> Gate:
    (tmp_path / "rules.yaml").write_text(RULES)
    metrics = Metrics()
    holder = RulesHolder(tmp_path / "rules.yaml", metrics)
    writer = Writer(tmp_path)
    cache = StateCache(tmp_path, writer, lambda: holder.snapshot.zone, metrics)
    gate = Gate(holder, cache, writer, metrics)
    gate.proxy_port = 8080
    return gate


async def call(
    app: Any, path: str, method: str = "GET", host: bytes = b"gate.lan:9090"
) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {"type": "http", "method": method, "path": path, "headers": [(b"host", host)],
             "query_string": b"", "server": ("127.0.0.1", 9090), "scheme": "http",
             "root_path": "", "http_version": "1.1", "client": ("127.0.0.1", 5555)}  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


async def test_machine_paths_never_build_the_app_and_answer_like_it(gate: Gate) -> None:
    from proxy.admin.server import create_app

    built: list[int] = []

    def build() -> Any:
        built.append(1)
        return create_app(gate, 8080)

    lazy = LazyApp(build, LightRoutes(gate, 8080))
    light = {}
    for path in ("/metrics", "/healthz", "/proxy.pac", "/wpad.dat"):
        light[path] = await call(lazy, path)
        assert light[path][0] == 200
    status, headers, body = await call(lazy, "/healthz", "HEAD")
    assert (status, body) == (200, b"") and int(headers[b"content-length"]) > 0
    assert built == [] and not lazy.loaded, "nothing a machine asks for builds the admin app"

    app = create_app(gate, 8080)
    for path in ("/healthz", "/proxy.pac", "/wpad.dat"):
        status, headers, body = await call(app, path)
        assert light[path][2] == body, path
        assert light[path][1][b"content-type"] == headers[b"content-type"], path
    assert json.loads(light["/healthz"][2])["rules_version"] == gate.rules.snapshot.version
    assert b"gate.lan:8080" in light["/proxy.pac"][2], "named by the host the device used"
    assert b"hearthgate_" in light["/metrics"][2]
    ipv6 = await call(lazy, "/proxy.pac", host=b"[fd00::1]:9090")
    assert b"[fd00::1]:8080" in ipv6[2]

    status, _, _ = await call(lazy, "/api/decisions")  # anything else is the app's
    assert built == [1] and status == 401

"""``hearthgate run``: the proxy, the gate addon, the background tasks and the admin server.

Start-up order: rules (refuse to start on a broken file — there is no last good one yet),
database (created or migrated), runtime state, writer, the admin socket (bound, so a port in
use stops the start at once), then the proxy; once the proxy listens, uvicorn serves that
socket, and the admin app itself (FastAPI and its routes: a third of what the gate would
import, a tenth of its memory) is built on the first admin request (``admin.front.LazyApp``).
The listening addresses are written to ``<state-dir>/run.json`` once both are serving, which
is how scripts and tests find a proxy started with ``--listen-port 0``. An admin server that
cannot start stops the proxy (exit status 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitmproxy import ctx, options
from mitmproxy.master import Master

from governance import textnorm
from proxy import identity
from proxy.addon import GateAddon
from proxy.admin.front import LazyApp, bind_socket, make_server
from proxy.chain import GateNextLayer, addons_for_options, lean_addons
from proxy.dns.config import DnsConfig
from proxy.dns.listeners import DnsListeners
from proxy.dns.server import DnsServer
from proxy.dns.upstream import Resolver, points_at_gate
from proxy.gate import Gate
from proxy.hook_table import HearthgateMaster
from proxy.metrics import Metrics
from proxy.reports import schedule as weekly_reports
from proxy.rules.problems import RulesFileError
from proxy.runtime import RulesHolder, SharedCounter, StateCache, grid_delay, utc_now
from proxy.store import retention
from proxy.store.sql.target import Target, sqlite_in
from proxy.store.writer import Writer

log = logging.getLogger("hearthgate")
RUN_FILE = "run.json"


@dataclass
class RunConfig:
    rules: Path
    state_dir: Path
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    modes: list[str] = field(default_factory=lambda: ["regular"])
    admin: tuple[str, int] = ("127.0.0.1", 8090)
    scripts: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    dns: DnsConfig | None = None  # ``--dns``: the DNS server and its listeners
    database: Target | None = None  # default: <state-dir>/hearthgate.db
    instance: str = field(default_factory=socket.gethostname)  # this gate's name

    @property
    def target(self) -> Target:
        return self.database or sqlite_in(self.state_dir)

    @property
    def confdir(self) -> Path:
        return self.state_dir / "mitmproxy"


def run(cfg: RunConfig) -> int:
    try:
        return asyncio.run(serve(cfg))
    except KeyboardInterrupt:
        return 0


async def serve(cfg: RunConfig) -> int:
    logging.getLogger().setLevel(logging.INFO)
    if cfg.dns is not None and (problem := dns_problem(cfg, cfg.dns)):
        print(f"hearthgate: --dns: {problem}", file=sys.stderr)
        return 2
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    try:
        rules = RulesHolder(cfg.rules, metrics, state_dir=cfg.state_dir)
    except RulesFileError as exc:
        print(f"hearthgate: the rules file cannot be used:\n{exc}", file=sys.stderr)
        return 2
    # a lone row waits for the gate's one-second beat, when the usage counters are queued
    # too: a household's trickle of requests costs one transaction and one wake-up a second
    writer = Writer(cfg.target, linger=grid_delay)
    cache = StateCache(cfg.target, writer, lambda: rules.snapshot.zone, metrics)
    try:
        await cache.start()
    except Exception as exc:  # noqa: BLE001 - say what is wrong instead of a traceback
        print(
            f"hearthgate: the database {cfg.target.display} cannot be used: {exc}",
            file=sys.stderr,
        )
        return 1  # not 2 (bad input): systemd restarts the gate until the database is up
    writer.start()
    counter = SharedCounter(cfg.target) if cfg.target.shared else None
    gate = Gate(rules, cache, writer, metrics, counter=counter, instance=cfg.instance)
    metrics.bind_database(
        lambda: writer.stats.last_ok and cache.database_ok, cfg.instance, cfg.target.kind
    )
    metrics.bind_state(
        lambda: _emergency_on(cache),
        lambda: writer.depth,
        lambda: writer.stats.written,
        lambda: writer.stats.dropped,
    )
    try:
        sock = bind_socket(*cfg.admin)
    except OSError as exc:
        print(
            f"hearthgate: the admin server cannot listen on {cfg.admin[0]}:{cfg.admin[1]}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        await writer.stop()
        await cache.stop()
        return 2
    tasks = [
        asyncio.create_task(coro)
        for coro in (
            rules.watch(),
            cache.run(),
            gate.neighbours.run(needed=lambda: identity.macs_matter(rules.snapshot, cache.state)),
            gate.notifier.run(),
            gate.run_minutes(),
            weekly_reports.run(cache.target, lambda: rules.snapshot, utc_now),
            retention.run_daily(
                cfg.target,
                lambda: rules.snapshot.rules.settings.retention_days,
                utc_now,
                local_day=lambda now: now.astimezone(rules.snapshot.zone).date().isoformat(),
            ),
        )
    ]
    announce = _Announce(cfg, gate, sock)
    try:
        master, dns_gate = _build_master(cfg, gate, announce)
        _install_signals(master)
        await master.run()
        if dns_gate is not None and dns_gate.loop is not None:
            print(
                f"hearthgate: --dns: the upstream resolver {dns_gate.loop} forwards queries "
                "back to this gate; they would loop. Give --dns-upstream a resolver that does "
                "not ask the gate (the provider's, or a public one)",
                file=sys.stderr,
            )
            return 2
        return 2 if announce.failed else 0
    finally:
        await announce.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await cache.stop()  # queues the last usage counters for the writer
        await writer.stop()
        if counter is not None:
            counter.close()
        sock.close()
        with contextlib.suppress(OSError):
            (cfg.state_dir / RUN_FILE).unlink()


def dns_problem(cfg: RunConfig, dns: DnsConfig) -> str | None:
    """Why DNS mode cannot start as configured, or None. The gate must never be its own
    upstream: every forwarded query would come back to it until the client gives up."""
    if not dns.upstreams:
        return "no upstream resolver: the system has none configured; give --dns-upstream"
    host = dns.host or cfg.listen_host
    for upstream in dns.upstreams:
        if points_at_gate(upstream, host, dns.port):
            return (
                f"the upstream resolver {upstream} is this gate's own DNS server; queries "
                "would loop. Give --dns-upstream the router's or the provider's resolver "
                "(the system's resolvers are used when --dns-upstream is not given)"
            )
    return None


def _build_master(
    cfg: RunConfig, gate: Gate, announce: _Announce
) -> tuple[Master, DnsServer | None]:
    opts = options.Options()
    master = HearthgateMaster(opts, with_termlog=True)
    chain = lean_addons(dns_mode=cfg.dns is not None)
    master.addons.add(*chain)
    # only options the lean chain does not declare send us looking through every addon
    set_names = {name for item in cfg.sets if (name := item.split("=", 1)[0]) not in opts}
    master.addons.add(*addons_for_options(set_names, {type(a).__name__ for a in chain}))
    modes = list(cfg.modes)
    dns_gate = None
    if cfg.dns is not None:
        resolver = Resolver(cfg.dns.upstreams)
        dns_gate = DnsServer(cfg.dns, gate, resolver, cfg.listen_host)
        gate.dns_stats = dns_gate.stats
        # before the gate addon: the listeners route what the gate then decides
        master.addons.add(dns_gate, DnsListeners(cfg.dns, gate, resolver, cfg.listen_host))
        modes += cfg.dns.modes()
        opts.update(
            keep_host_header=True,
            dns_name_servers=[u.host for u in cfg.dns.upstreams if u.port == 53],
        )
    addon = GateAddon(gate)
    master.addons.add(addon, announce)
    for each in chain:
        if isinstance(each, GateNextLayer):
            each.intercept = addon.intercept_sibling
    opts.update(
        listen_host=cfg.listen_host,
        listen_port=cfg.listen_port,
        mode=modes,
        confdir=str(cfg.confdir),
        connection_strategy="lazy",
        allow_hosts=gate.catalog.allow_hosts_patterns(),
        scripts=cfg.scripts,
        termlog_verbosity="info",
    )
    opts.set(*cfg.sets, defer=True)
    if "allow_hosts" not in set_names:
        gate.rules.listeners.append(
            lambda _snap: opts.update(allow_hosts=gate.catalog.allow_hosts_patterns())
        )
    return master, dns_gate


class _Announce:
    """Once the proxy listens: loads and starts the admin server, then writes run.json."""

    def __init__(self, cfg: RunConfig, gate: Gate, sock: Any) -> None:
        self.cfg, self.gate, self.sock = cfg, gate, sock
        self.admin: Any = None
        self.master: Any = None
        self.admin_task: asyncio.Task[Any] | None = None
        self.starting: asyncio.Task[None] | None = None
        self.failed = False

    def running(self) -> None:
        server = ctx.master.addons.get("proxyserver")
        proxy = [list(addr[:2]) for addr in server.listen_addrs()]
        if proxy:
            self.gate.proxy_port = int(proxy[0][1])
        self.master = ctx.master
        self.starting = asyncio.get_running_loop().create_task(self._start_admin(proxy))

    async def _start_admin(self, proxy: list[list[Any]]) -> None:
        from proxy.admin.light import LightRoutes

        app = LazyApp(
            lambda: _build_admin_app(self.gate, self.cfg),
            LightRoutes(self.gate, self.cfg.listen_port),
        )
        # uvicorn loads in a thread: the event loop keeps serving the proxy meanwhile
        self.admin = await asyncio.to_thread(make_server, app, *self.cfg.admin)
        self.admin_task = asyncio.create_task(self.admin.serve(sockets=[self.sock]))
        if not await _started(self.admin, self.admin_task):
            print("hearthgate: the admin server did not start", file=sys.stderr)
            self.failed = True
            self.master.shutdown()
            return
        admin = self.admin.bound_address()
        info = {
            "pid": os.getpid(),
            "proxy": proxy,
            "admin": list(admin) if admin else None,
            "ca_cert": str(self.cfg.confdir / "mitmproxy-ca-cert.pem"),
            "dns": self.gate.dns_stats() if self.gate.dns_stats else None,
        }
        path = self.cfg.state_dir / RUN_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        tmp.replace(path)
        log.info(
            "hearthgate gate on %s, admin on http://%s:%s, CA %s",
            ", ".join(f"{h}:{p}" for h, p in proxy),
            *(admin or ("-", "-")),
            info["ca_cert"],
        )
        # the keyword tables (about 0.1 s), once the gate serves: off the loop, not in the start
        await asyncio.to_thread(textnorm.warm)

    async def stop(self) -> None:
        if self.starting is not None and not self.starting.done():
            self.starting.cancel()
            await asyncio.gather(self.starting, return_exceptions=True)
        if self.admin is not None:
            self.admin.should_exit = True
        if self.admin_task is not None:
            await asyncio.gather(self.admin_task, return_exceptions=True)


def _build_admin_app(gate: Gate, cfg: RunConfig) -> Any:
    """The FastAPI app, built in a worker thread on the first admin request."""
    from proxy.admin.server import create_app

    return create_app(gate, cfg.listen_port)


async def _started(admin: Any, task: asyncio.Task[Any], timeout: float = 15) -> bool:
    for _ in range(int(timeout / 0.02)):
        if admin.started:
            return True
        if task.done():
            return False
        await asyncio.sleep(0.02)
    return False


def _install_signals(master: Master) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, master.shutdown)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def _emergency_on(cache: StateCache) -> bool:
    active = cache.state.emergency
    return active is not None and active.until > utc_now()

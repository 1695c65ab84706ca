"""``hearthgate run``: the proxy, the gate addon, the background tasks and the admin server.

Start-up order: rules (refuse to start on a broken file — there is no last good one yet),
database (created or migrated), runtime state, writer, admin server, then the proxy. The
listening addresses are written to ``<state-dir>/run.json`` once they are bound, which is
how scripts and tests find a proxy started with ``--listen-port 0``.
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

from proxy.addon import GateAddon
from proxy.admin.server import bind_socket, create_app, make_server
from proxy.chain import addons_for_options, lean_addons
from proxy.gate import Gate
from proxy.hook_table import HearthgateMaster
from proxy.metrics import Metrics
from proxy.rules.loader import RulesFileError
from proxy.runtime import RulesHolder, SharedCounter, StateCache, utc_now
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
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    try:
        rules = RulesHolder(cfg.rules, metrics)
    except RulesFileError as exc:
        print(f"hearthgate: the rules file cannot be used:\n{exc}", file=sys.stderr)
        return 2
    writer = Writer(cfg.target)
    cache = StateCache(cfg.target, writer, lambda: rules.snapshot.zone, metrics)
    try:
        await cache.start()
    except Exception as exc:  # noqa: BLE001 - say what is wrong instead of a traceback
        print(
            f"hearthgate: the database {cfg.target.display} cannot be used: {exc}",
            file=sys.stderr,
        )
        return 2
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
    admin = make_server(create_app(gate, cfg.listen_port), *cfg.admin)
    tasks = [
        asyncio.create_task(coro)
        for coro in (
            rules.watch(),
            cache.run(),
            gate.neighbours.run(),
            gate.notifier.run(),
            gate.run_minutes(),
            retention.run_daily(
                cfg.target,
                lambda: rules.snapshot.rules.settings.retention_days,
                utc_now,
                local_day=lambda now: now.astimezone(rules.snapshot.zone).date().isoformat(),
            ),
        )
    ]
    admin_task = asyncio.create_task(admin.serve(sockets=[sock]))
    try:
        if not await _started(admin, admin_task):
            print("hearthgate: the admin server did not start", file=sys.stderr)
            return 2
        master = _build_master(cfg, gate, admin)
        _install_signals(master)
        await master.run()
        return 0
    finally:
        admin.should_exit = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(admin_task, *tasks, return_exceptions=True)
        await cache.stop()  # queues the last usage counters for the writer
        await writer.stop()
        if counter is not None:
            counter.close()
        with contextlib.suppress(OSError):
            (cfg.state_dir / RUN_FILE).unlink()


def _build_master(cfg: RunConfig, gate: Gate, admin: Any) -> Master:
    opts = options.Options()
    master = HearthgateMaster(opts, with_termlog=True)
    chain = lean_addons()
    master.addons.add(*chain)
    set_names = {item.split("=", 1)[0] for item in cfg.sets}
    master.addons.add(*addons_for_options(set_names, {type(a).__name__ for a in chain}))
    master.addons.add(GateAddon(gate), _Announce(cfg, admin, gate))
    opts.update(
        listen_host=cfg.listen_host,
        listen_port=cfg.listen_port,
        mode=cfg.modes,
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
    return master


class _Announce:
    """Writes run.json and a start-up line once the proxy is listening."""

    def __init__(self, cfg: RunConfig, admin: Any, gate: Gate) -> None:
        self.cfg, self.admin, self.gate = cfg, admin, gate

    def running(self) -> None:
        server = ctx.master.addons.get("proxyserver")
        proxy = [list(addr[:2]) for addr in server.listen_addrs()]
        if proxy:
            self.gate.proxy_port = int(proxy[0][1])
        admin = self.admin.bound_address()
        info = {
            "pid": os.getpid(),
            "proxy": proxy,
            "admin": list(admin) if admin else None,
            "ca_cert": str(self.cfg.confdir / "mitmproxy-ca-cert.pem"),
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

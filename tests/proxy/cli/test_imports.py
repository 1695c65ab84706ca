"""The CLI stays quick: no subcommand but ``run`` loads the proxy, the admin app or their stacks.

Every subcommand of the parser is found by walking it (a command added later is covered
without touching this file), run for real in a forked copy of a fresh interpreter that has
built the parser and nothing else, with a dummy value for each required argument (a refusal
is fine: the imports happen either way), and the modules it loaded are compared with what a
command may load. ``--help`` (building every parser) must not even load pydantic or SQLite.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from governance.facts import Category, Endpoint
from proxy.cli import log as cli_log
from proxy.cli import main as cli_main
from proxy.cli import state as cli_state
from proxy.store import admins, allowlist, consent
from tests.proxy.cli.test_main import RULES

ROOT = Path(__file__).resolve().parents[3]

# what no command but `run` may load: the proxy and its TLS and HTTP stacks, the admin app
HEAVY = (
    "mitmproxy",
    "mitmproxy_rs",
    "aioquic",
    "cryptography",
    "OpenSSL",
    "h2",
    "wsproto",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "prometheus_client",
    "argon2",
    "proxy.service",
    "proxy.addon",
    "proxy.gate",
    "proxy.sni_gate",
    "proxy.admin",
    "proxy.runtime",
    "proxy.metrics",
    "proxy.notify",
)
# what building the parser (`hearthgate --help`, `hearthgate X --help`) may not load either
NOT_FOR_PARSING = (
    *HEAVY,
    "pydantic",
    "pydantic_core",
    "yaml",
    "sqlite3",
    "aiosqlite",
    "asyncio",
    "governance.schema",
    "governance.snapshot",
    "proxy.rules",
    "proxy.store",
    "proxy.catalog",
)

DRIVER = r"""
import argparse, io, json, os, sys
from proxy.cli.main import build_parser, main

parser = build_parser()
parsing = sorted(sys.modules)

def walk(p, prefix=()):
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from walk(sub, (*prefix, name))

def dummy(action):
    if action.choices:
        return str(list(action.choices)[0])
    return "1" if action.type in (int, float) else "x"

def argv_for(path, p):
    argv = list(path)
    for action in p._actions:
        if action.required and not isinstance(action, argparse._SubParsersAction):
            if action.option_strings:
                argv.append(action.option_strings[-1])
            argv.append(dummy(action))
    return argv

def run(argv):
    pid = os.fork()
    if pid == 0:
        before = set(sys.modules)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        sys.stdin = io.StringIO("4711\n")
        try:
            main(argv)
        except BaseException:
            pass
        with open(sys.argv[1] + "/" + str(os.getpid()), "w") as out:
            json.dump(sorted(set(sys.modules) - before), out)
        os._exit(0)
    os.waitpid(pid, 0)
    with open(sys.argv[1] + "/" + str(pid)) as f:
        return json.load(f)

main(["ca"])  # the CA made once, as on a set-up gate (making it is allowed to load more)
warming = run(["rules", "check"])  # in a child: the rules cache written, as after a start
commands = {}
for path, p in walk(parser):
    if path[0] == "run":
        continue
    argv = argv_for(path, p)
    commands[" ".join(argv)] = run(argv)
    commands[" ".join([*path, "--help"])] = run([*path, "--help"])
commands["--help"] = run(["--help"])
print(json.dumps({"parsing": parsing, "commands": commands, "warming": warming}))
"""


def offending(modules: list[str], banned: tuple[str, ...]) -> list[str]:
    """The banned names that ``modules`` reach (a package or any module inside it)."""
    return sorted({b for b in banned for m in modules if m == b or m.startswith(b + ".")})


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("cli-imports")
    (tmp / "rules.yaml").write_text(RULES)
    (tmp / "out").mkdir()
    env = {
        **os.environ,
        "HEARTHGATE_RULES": str(tmp / "rules.yaml"),
        "HEARTHGATE_STATE_DIR": str(tmp / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_building_the_parser_loads_nothing_heavy(loaded: dict[str, object]) -> None:
    parsing = loaded["parsing"]
    assert isinstance(parsing, list)
    assert "proxy.cli.state" in parsing  # the walk did build every group
    assert offending(parsing, NOT_FOR_PARSING) == []


def test_no_command_but_run_loads_the_proxy_or_the_admin_app(loaded: dict[str, object]) -> None:
    commands = loaded["commands"]
    assert isinstance(commands, dict)
    assert len(commands) > 50  # every group, every action, each with --help
    assert "status" in commands and "rules check" in commands
    assert commands["status"], "status ran and loaded its implementation"
    bad = {
        argv: offending(modules, NOT_FOR_PARSING if argv.endswith("--help") else HEAVY)
        for argv, modules in commands.items()
    }
    assert {argv: mods for argv, mods in bad.items() if mods} == {}


# what no command but `run` loads once the rules cache is warm (the usual case: the running
# gate writes it at start): the rules schema, the event loop, an HTTP client
NOT_WITH_A_WARM_CACHE = (
    "pydantic",
    "pydantic_core",
    "governance.schema",
    "yaml",
    "asyncio",
    "urllib.request",
    "http.client",
)
NEEDS = {"rules show": ("yaml",)}  # it prints YAML


def test_with_a_warm_rules_cache_no_command_loads_the_schema_the_loop_or_an_http_client(
    loaded: dict[str, object],
) -> None:
    warming, commands = loaded["warming"], loaded["commands"]
    assert isinstance(warming, list) and isinstance(commands, dict)
    assert "governance.schema" in warming  # the cache was cold: the check loaded the schema
    bad = {
        argv: [m for m in offending(modules, NOT_WITH_A_WARM_CACHE) if m not in NEEDS.get(argv, ())]
        for argv, modules in commands.items()
    }
    assert {argv: mods for argv, mods in bad.items() if mods} == {}


def test_choices_spelled_out_for_the_parser_agree_with_their_sources() -> None:
    assert cli_log.ENDPOINTS == tuple(e.value for e in Endpoint)
    assert cli_log.CATEGORIES == tuple(c.value for c in Category)
    assert cli_state.ENTRY_TYPES == allowlist.ENTRY_TYPES
    assert cli_state.ROLES == admins.ROLES
    assert cli_state.CHANGE_TYPES == consent.CHANGE_TYPES


def top_level(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_top_level_command_names_the_group_that_registers_it() -> None:
    everything = top_level(cli_main.build_parser())
    assert set(everything) == {"run", "ca", *cli_main.COMMANDS}
    assert set(cli_main.COMMANDS.values()) == set(cli_main.GROUPS)
    for command, group in cli_main.COMMANDS.items():
        alone = top_level(cli_main.build_parser(command))
        assert command in alone, (command, group)
        assert alone[command].format_help() == everything[command].format_help()
        module = importlib.import_module(f"proxy.cli.{group}")
        own = argparse.ArgumentParser()
        module.add(own.add_subparsers(), cli_main.common)
        assert command in top_level(own), f"{command} is not registered by proxy.cli.{group}"

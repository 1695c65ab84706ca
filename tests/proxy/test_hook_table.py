"""HookTable dispatches exactly as mitmproxy's AddonManager does, only without the walks.

Each scenario runs against a plain mitmproxy ``Master`` and a ``HearthgateMaster`` with the
same addons, and the calls they record must be identical.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from mitmproxy import exceptions, options
from mitmproxy.master import Master
from mitmproxy.proxy.layers.http import HttpRequestHook, HttpResponseHook
from mitmproxy.test import tflow

from proxy.hook_table import HearthgateMaster, HookTable

Calls = list[str]


class Recorder:
    def __init__(self, name: str, calls: Calls, children: list[Any] | None = None) -> None:
        self.name, self.calls = name, calls
        if children is not None:
            self.addons = children

    def request(self, f: Any) -> None:
        self.calls.append(f"{self.name}.request")


class AsyncRecorder(Recorder):
    async def response(self, f: Any) -> None:  # type: ignore[override]
        self.calls.append(f"{self.name}.response(async)")


class Broken(Recorder):
    def request(self, f: Any) -> None:
        self.calls.append(f"{self.name}.request")
        raise RuntimeError("addon bug")


class Halting(Recorder):
    def response(self, f: Any) -> None:
        self.calls.append(f"{self.name}.response")
        raise exceptions.AddonHalt


class Updating(Recorder):
    def update(self, flows: Any) -> None:
        self.calls.append(f"{self.name}.update")


async def _run(
    make: Callable[[options.Options], Master], scenario: Callable[[Master, Calls], Any]
) -> Calls:
    calls: Calls = []
    master = make(options.Options())
    await scenario(master, calls)
    return calls


async def _both(scenario: Callable[[Master, Calls], Any]) -> tuple[Calls, Calls]:
    plain = await _run(lambda o: Master(o), scenario)
    table = await _run(lambda o: HearthgateMaster(o), scenario)
    return plain, table


async def _lifecycle(master: Master) -> None:
    f = tflow.tflow(resp=True)
    await master.addons.handle_lifecycle(HttpRequestHook(f))
    await master.addons.handle_lifecycle(HttpResponseHook(f))


async def test_the_master_uses_a_hook_table() -> None:
    assert isinstance(HearthgateMaster(options.Options()).addons, HookTable)


async def test_chain_order_children_and_async_handlers_match_mitmproxy() -> None:
    async def scenario(master: Master, calls: Calls) -> None:
        child = Recorder("child", calls)
        master.addons.add(
            Recorder("a", calls, [child]), AsyncRecorder("b", calls), Updating("u", calls)
        )
        await _lifecycle(master)

    plain, table = await _both(scenario)
    assert table == plain
    assert table == [
        "a.request",
        "child.request",
        "b.request",
        "u.request",
        "u.update",
        "b.response(async)",
        "u.update",
    ]


async def test_an_addon_error_is_logged_and_the_next_addon_still_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(master: Master, calls: Calls) -> None:
        master.addons.add(
            Broken("broken", calls, [Recorder("skipped-child", calls)]), Recorder("next", calls)
        )
        await _lifecycle(master)

    with caplog.at_level(logging.ERROR):
        plain, table = await _both(scenario)
    assert table == plain == ["broken.request", "next.request"]
    assert sum("Addon error: addon bug" in r.getMessage() for r in caplog.records) == 2


async def test_addon_halt_stops_the_rest_of_the_chain() -> None:
    async def scenario(master: Master, calls: Calls) -> None:
        master.addons.add(Halting("halt", calls), AsyncRecorder("after", calls))
        await _lifecycle(master)

    plain, table = await _both(scenario)
    assert table == plain == ["halt.request", "after.request", "halt.response"]


async def test_adding_registering_and_removing_addons_is_seen_at_once() -> None:
    """What a script reload does: children change, then register/remove tell the manager."""

    async def scenario(master: Master, calls: Calls) -> None:
        parent = Recorder("parent", calls, [])
        master.addons.add(parent)
        await _lifecycle(master)
        script = Recorder("script", calls)
        parent.addons.append(script)
        master.addons.register(script)
        await _lifecycle(master)
        late = AsyncRecorder("late", calls)
        master.addons.add(late)
        await _lifecycle(master)
        master.addons.remove(script)
        parent.addons.remove(script)
        master.addons.remove(late)
        await _lifecycle(master)

    plain, table = await _both(scenario)
    assert table == plain
    assert table == [
        "parent.request",
        "parent.request",
        "script.request",
        "parent.request",
        "script.request",
        "late.request",
        "late.response(async)",
        "parent.request",
    ]


async def test_a_hook_attribute_that_is_not_callable_is_reported_as_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class NotCallable(Recorder):
        response = "oops"  # type: ignore[assignment]

    async def scenario(master: Master, calls: Calls) -> None:
        master.addons.add(NotCallable("odd", calls), Recorder("next", calls))
        await _lifecycle(master)

    with caplog.at_level(logging.ERROR):
        plain, table = await _both(scenario)
    assert table == plain == ["odd.request", "next.request"]
    assert sum("not callable" in r.getMessage() for r in caplog.records) == 2


SCRIPT = """
from mitmproxy import ctx


class Mark:
    name = "mark-{name}"

    def request(self, flow):
        flow.metadata.setdefault("order", []).append({name!r})


addons = [Mark()]
"""


async def test_scripts_reordered_through_the_option_run_in_the_new_order(tmp_path: Any) -> None:
    """The script loader reorders its children without telling the manager; the options
    change that asks for it does."""
    paths = []
    for name in ("first", "second"):
        path = tmp_path / f"{name}.py"
        path.write_text(SCRIPT.format(name=name))
        paths.append(str(path))

    async def scenario(master: Master, calls: Calls) -> None:
        from mitmproxy.addons import script

        master.addons.add(script.ScriptLoader())
        for order in (paths, paths[::-1], paths[:1], paths):
            master.options.update(scripts=order)
            await asyncio.sleep(0.05)  # a new script is loaded by its watcher task
            f = tflow.tflow()
            await master.addons.handle_lifecycle(HttpRequestHook(f))
            calls.append(",".join(f.metadata.get("order", [])))

    plain, table = await _both(scenario)
    assert table == plain == ["first,second", "second,first", "first", "first,second"]


async def test_invalidate_sees_a_child_added_without_registering() -> None:
    calls: Calls = []
    master = HearthgateMaster(options.Options())
    parent = Recorder("parent", calls, [])
    master.addons.add(parent)
    await _lifecycle(master)
    parent.addons.append(Recorder("child", calls))
    assert isinstance(master.addons, HookTable)
    master.addons.invalidate()
    await _lifecycle(master)
    assert calls == ["parent.request", "parent.request", "child.request"]

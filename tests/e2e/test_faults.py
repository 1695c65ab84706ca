"""Faults with a defined outcome: the disk, the database, the process, the upstream, the
admin port. Decisions keep being enforced through all of them."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import KID, PARENT, Gate, cli
from tests.support.proxyproc import wait_until

pytestmark = pytest.mark.e2e
URL = "https://api.openai.com/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@contextmanager
def tmpfs(path: Path, size: str = "16m") -> Iterator[Path]:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI must run the disk-fault tests as root")
        pytest.skip("mounting a small filesystem needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True, timeout=10
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], timeout=10)


def kid_burst(gate: Gate, n: int) -> list[int]:
    with gate.http(KID) as client:
        return [client.post(URL, json=BODY).status_code for _ in range(n)]


def logged(gate: Gate) -> int:
    try:
        return len(gate.sql("SELECT id FROM decisions"))
    except sqlite3.Error:
        return -1


def test_full_disk_keeps_enforcing_bounds_the_queue_and_resumes(make_gate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with tmpfs(tmp_path / "small") as disk:
        gate: Gate = make_gate(state=disk / "state", env={"HEARTHGATE_LOG_QUEUE": "40"})
        assert kid_burst(gate, 3) == [403] * 3
        wait_until(lambda: logged(gate) == 3, 10, "the first rows")
        filler = disk / "filler"
        with open(filler, "wb") as out:  # fill the filesystem to the last block
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        assert kid_burst(gate, 100) == [403] * 100  # still enforced, never opened
        wait_until(lambda: gate.health()["database_writable"] is False, 15, "the write error")
        assert gate.health()["status"] == "degraded"
        assert gate.health()["decision_log_queue_depth"] <= 40
        metrics = gate.metrics()
        dropped = float(
            re.search(r"^hearthgate_decision_log_dropped_total (\S+)$", metrics, re.M).group(1)
        )  # type: ignore[union-attr]
        assert dropped >= 100 - 40 - 2
        filler.unlink()  # space again: the queued rows are written
        wait_until(lambda: gate.health()["database_writable"] is True, 20, "writes to resume")
        wait_until(lambda: logged(gate) >= 3 + 40 - 2, 10, "the queued rows")
        assert kid_burst(gate, 1) == [403]
        wait_until(
            lambda: logged(gate) == 104 - int(dropped), 10, f"new rows ({logged(gate)}, {dropped})"
        )


@contextmanager
def ext4(path: Path) -> Iterator[Path]:
    """A small ext4 filesystem on a loop device (tmpfs has no immutable flag)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a filesystem needs root")
    image = path.with_suffix(".img")
    subprocess.run(["truncate", "-s", "32M", str(image)], check=True, timeout=10)
    subprocess.run(["mkfs.ext4", "-q", str(image)], check=True, timeout=30)
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(path)], capture_output=True, text=True, timeout=10
    )
    if mounted.returncode != 0:
        pytest.skip(f"no loop devices here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], timeout=10)


def test_unwritable_database_is_survived_and_writes_resume(make_gate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with ext4(tmp_path / "disk") as disk:
        gate: Gate = make_gate(state=disk / "state")
        assert kid_burst(gate, 1) == [403]
        wait_until(lambda: logged(gate) == 1, 10, "the first row")
        files = [str(gate.state_dir / name) for name in ("hearthgate.db", "hearthgate.db-wal")]
        subprocess.run(["chattr", "+i", *files], check=True, timeout=10)  # writes now fail
        try:
            assert kid_burst(gate, 5) == [403] * 5
            wait_until(lambda: gate.health()["database_writable"] is False, 15, "the error")
        finally:
            subprocess.run(["chattr", "-i", *files], check=True, timeout=10)
        wait_until(lambda: logged(gate) == 6, 20, "the queued rows once writable again")
        assert gate.health()["status"] == "ok"


def test_deleted_database_is_recreated_and_logging_goes_on(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate()
    assert kid_burst(gate, 2) == [403, 403]
    wait_until(lambda: logged(gate) == 2, 10, "the first rows")
    for suffix in ("", "-wal", "-shm"):
        (gate.state_dir / f"hearthgate.db{suffix}").unlink(missing_ok=True)
    assert kid_burst(gate, 3) == [403] * 3  # still enforced from memory
    wait_until(lambda: logged(gate) == 3, 15, "rows in the new database")
    # the state check that met the missing file says so until its next look, a second later
    wait_until(lambda: gate.health()["status"] == "ok", 5, "health back to ok")


def test_sigkill_mid_burst_leaves_a_sound_database_and_state(make_gate) -> None:  # type: ignore[no-untyped-def]
    gate: Gate = make_gate()
    cli(gate, "unlock", "mom-laptop", "--minutes", "60", "--as", "mom")
    client = gate.openai(PARENT)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o-mini", messages=BODY["messages"])
    wait_until(
        lambda: (
            [r["requests"] for r in gate.sql("SELECT requests FROM usage WHERE key = 'person:mom'")]
            == [3]
        ),
        10,
        "usage saved",
    )
    stop = threading.Event()

    def hammer() -> None:
        with gate.http(KID) as c:
            while not stop.is_set():
                try:
                    c.post(URL, json=BODY)
                except httpx.HTTPError:
                    return

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()
    time.sleep(1.0)
    os.kill(gate.proc.popen.pid, signal.SIGKILL)
    stop.set()
    for w in workers:
        w.join(10)
    gate.proc.popen.wait(10)
    with sqlite3.connect(gate.state_dir / "hearthgate.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    restarted: Gate = make_gate()
    usage = restarted.sql("SELECT requests FROM usage WHERE key = 'person:mom'")
    assert usage[0]["requests"] == 3  # quotas survive
    assert "mom-laptop" in cli(restarted, "status")  # the unlock too
    assert kid_burst(restarted, 1) == [403]


def test_refusing_upstream_gives_a_quick_502_and_the_gate_stays_up(make_gate) -> None:  # type: ignore[no-untyped-def]
    closed = "127.0.0.1:9"  # discard port: nothing listens there
    gate: Gate = make_gate(env={"HEARTHGATE_TEST_UPSTREAM": closed})
    started = time.monotonic()
    with gate.http(PARENT) as client:
        r = client.post(URL, json=BODY)
    assert r.status_code == 502 and time.monotonic() - started < 10
    [row] = gate.rows("device = 'mom-laptop'")
    assert (row["allowed"], row["status"]) == (1, 502)
    assert gate.health()["status"] == "ok"


def test_hanging_upstream_times_out_for_its_client_only(gate: Gate) -> None:
    slow = gate.openai(PARENT).with_options(timeout=2)
    result: dict[str, object] = {}

    def hang() -> None:
        # the upstream sends one chunk, then nothing for 30 s
        stream = slow.chat.completions.create(
            model="gpt-4o-mini",
            messages=BODY["messages"],
            stream=True,
            extra_headers={"x-fake-delay-ms": "30000"},
        )
        try:
            for _ in stream:
                pass
        except (openai.APITimeoutError, httpx.ReadTimeout) as exc:
            result["error"] = exc

    waiting = threading.Thread(target=hang)
    waiting.start()
    time.sleep(0.3)
    started = time.monotonic()
    reply = gate.openai(PARENT).chat.completions.create(
        model="gpt-4o-mini", messages=BODY["messages"]
    )
    assert reply.choices and time.monotonic() - started < 5  # others are served meanwhile
    waiting.join(15)
    assert isinstance(result.get("error"), (openai.APITimeoutError, httpx.ReadTimeout))


def test_hammering_the_admin_port_does_not_slow_the_gate(gate: Gate) -> None:
    stop = threading.Event()

    def hammer() -> None:
        with httpx.Client(timeout=30) as c:
            while not stop.is_set():
                c.get(gate.admin_url + "/api/audit", headers={"authorization": "Bearer x"})

    workers = [threading.Thread(target=hammer) for _ in range(8)]
    for w in workers:
        w.start()
    try:
        time.sleep(1)
        with gate.http(PARENT) as client:
            statuses = [client.post(URL, json=BODY).status_code for _ in range(20)]
        assert statuses == [200] * 20
        assert kid_burst(gate, 5) == [403] * 5
    finally:
        stop.set()
        for w in workers:
            w.join(30)

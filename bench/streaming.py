"""Section 6: streaming — time to first chunk, added delay per chunk, coalesced chunks.

Each client connection (CONNECT and TLS set up beforehand, one short warm-up stream so the
proxy's upstream connection is open too) asks the bench upstream for an OpenAI-shaped SSE
stream of ``CHUNKS`` events ``INTERVAL_MS`` apart and reads it as it arrives. The request
does not ask for usage, as the openai SDK does not by default: hearthgate adds
``include_usage`` and strips the usage event again, so its whole streaming path is measured.

* time to first chunk: from the request's last byte written to the first event read;
* per-chunk delay: each event carries the upstream's ``time.monotonic_ns()`` when it was
  written (one clock for the whole machine); the delay is its arrival time minus that.
  "Added" values are a proxy's minus direct's (the medians of the same concurrency);
* coalesced: events that arrived in the same read as the event before them — a proxy that
  buffers, or writes two upstream chunks at once, shows here; 0 is the target;
* CPU per stream: the proxy process's CPU time over the run (the scheduler's runtime of
  each thread, to the microsecond), per stream.

Every wait has a timeout; a stream that fails is counted as an error, not measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench import sysinfo
from bench.load import LLM_HOST, PATH, Target, client_tls, open_connection
from bench.proxies import Lab
from bench.report import Report, number, table
from bench.stats import percentile

CHUNKS = 50
INTERVAL_MS = 20
CONCURRENCIES = (1, 20)
STREAM_TIMEOUT = 30.0
_STAMP = re.compile(rb'"t":(\d+)\}')
BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Count slowly to fifty."}],
        "stream": True,
    },
    separators=(",", ":"),
).encode()


def request_bytes(chunks: int, interval_ms: int) -> bytes:
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: {LLM_HOST}\r\n"
        "content-type: application/json\r\naccept: text/event-stream\r\n"
        "authorization: Bearer sk-bench-not-a-real-key\r\n"
        f"x-bench-chunks: {chunks}\r\nx-bench-interval-ms: {interval_ms}\r\n"
        f"content-length: {len(BODY)}\r\n\r\n"
    )
    return head.encode() + BODY


@dataclass
class StreamSample:
    ttfc_ns: int
    delays_ns: list[int]
    coalesced: int
    events: int


@dataclass
class Cell:
    """One (target, concurrency) run: every stream of it."""

    samples: list[StreamSample] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None
    cpu_s: float = 0.0

    def ttfc_ms(self, q: float = 50) -> float:
        return percentile([s.ttfc_ns for s in self.samples], q) / 1e6

    def delay_ms(self, q: float) -> float:
        return percentile([d for s in self.samples for d in s.delays_ns], q) / 1e6

    @property
    def coalesced(self) -> int:
        return sum(s.coalesced for s in self.samples)

    @property
    def events(self) -> int:
        return sum(s.events for s in self.samples)

    @property
    def cpu_ms_per_stream(self) -> float:
        return 1e3 * self.cpu_s / len(self.samples) if self.samples else float("nan")


def merged(turns: list[Cell]) -> Cell:
    out = Cell()
    for turn in turns:
        out.samples += turn.samples
        out.errors += turn.errors
        out.first_error = out.first_error or turn.first_error
        out.cpu_s += turn.cpu_s
    return out


@dataclass
class StreamingResults:
    """Every turn of every (target, concurrency), in the order they ran."""

    rounds: int
    turns: dict[tuple[str, int], list[Cell]] = field(default_factory=dict)

    def new_turn(self, target: str, conc: int) -> Cell:
        turn = Cell()
        self.turns.setdefault((target, conc), []).append(turn)
        return turn

    def cell(self, target: str, conc: int) -> Cell:
        """All the turns of one target at one concurrency, pooled."""
        return merged(self.turns.get((target, conc), []))


def sign_test(above: int, differing: int) -> float:
    """One-sided p of ``above`` or more of ``differing`` paired turns going one way by chance."""
    if not differing:
        return 1.0
    return sum(math.comb(differing, k) for k in range(above, differing + 1)) / 2**differing


@dataclass(frozen=True)
class Comparison:
    """hearthgate vs mitmdump on one figure at one concurrency: pooled, and turn by turn."""

    hearthgate: float
    mitmdump: float
    above: int  # turns in which hearthgate's figure was the higher
    differing: int  # turns in which the two differed
    bound: float  # hearthgate meets the target at or below this

    @property
    def ok(self) -> bool:
        return self.hearthgate <= self.bound

    @property
    def level(self) -> bool:
        """Missed, but hearthgate was the higher in too few of the paired turns for the
        difference to be told from the machine's noise (sign test, p >= 0.05)."""
        return sign_test(self.above, self.differing) >= 0.05


def compare(
    res: StreamingResults, conc: int, figure: Callable[[Cell], float], added: bool
) -> Comparison:
    """``added``: the figure is a delay, read as the proxy's minus direct's (pooled); turn by
    turn, direct's part cancels out of the difference."""
    base = figure(res.cell("direct", conc)) if added else 0.0
    h_turns, m_turns = (
        res.turns.get(("hearthgate", conc), []),
        res.turns.get(("mitmdump", conc), []),
    )
    pairs = [figure(h) - figure(m) for h, m in zip(h_turns, m_turns, strict=False)]
    diffs = [d for d in pairs if not math.isnan(d)]  # a turn with no stream has no figure
    m = figure(res.cell("mitmdump", conc)) - base
    return Comparison(
        hearthgate=figure(res.cell("hearthgate", conc)) - base,
        mitmdump=m,
        above=sum(d > 0 for d in diffs),
        differing=sum(d != 0 for d in diffs),
        bound=max(m, 0.0) if added else m,
    )


class _Dechunker:
    """HTTP/1.1 chunked framing -> body bytes, fed whatever each read returned."""

    def __init__(self) -> None:
        self.buffer = b""
        self.left = 0  # bytes of the current chunk still to come (+2 for its CRLF)
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self.buffer += data
        out = bytearray()
        while self.buffer and not self.done:
            if self.left:
                piece, self.buffer = self.buffer[: self.left], self.buffer[self.left :]
                out += piece[: max(0, self.left - 2)]  # the chunk's data, not its CRLF
                self.left -= len(piece)
                continue
            line, sep, rest = self.buffer.partition(b"\r\n")
            if not sep:
                break
            size = int(line.split(b";")[0], 16)
            self.buffer = rest
            if size == 0:
                self.done = True
            else:
                self.left = size + 2
        return bytes(out)


async def _read_stream(
    reader: asyncio.StreamReader, sent_ns: int
) -> tuple[StreamSample | None, str | None]:
    head = await reader.readuntil(b"\r\n\r\n")
    if head[9:12] != b"200" or b"chunked" not in head.lower():
        return None, f"answer: {head[:60]!r}"
    dechunk, pending = _Dechunker(), b""
    ttfc, delays, coalesced, events, saw_done = 0, [], 0, 0, False
    while not dechunk.done:
        data = await reader.read(65536)
        now = time.monotonic_ns()
        if not data:
            return None, "connection closed mid-stream"
        pending += dechunk.feed(data)
        complete, _, pending = pending.rpartition(b"\n\n")
        in_this_read = 0
        for event in complete.split(b"\n\n") if complete else []:
            if b"[DONE]" in event:
                saw_done = True
            elif stamp := _STAMP.search(event):
                ttfc = ttfc or now - sent_ns
                delays.append(now - int(stamp[1]))
                events += 1
                in_this_read += 1
        coalesced += max(0, in_this_read - 1)
    if not saw_done:
        return None, "no [DONE]"
    return StreamSample(ttfc, delays, coalesced, events), None


async def _stream_once(
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
) -> tuple[StreamSample | None, str | None]:
    reader, writer = streams
    writer.write(request)
    await writer.drain()
    sent = time.monotonic_ns()
    async with asyncio.timeout(STREAM_TIMEOUT):
        return await _read_stream(reader, sent)


async def _client(
    target: Target, tls: ssl.SSLContext, rounds: int, start: asyncio.Event, cell: Cell
) -> None:
    try:
        async with asyncio.timeout(STREAM_TIMEOUT):
            streams = await open_connection(target, "https", tls)
            await _stream_once(streams, request_bytes(1, 0))  # warm-up: upstream connection
    except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
        cell.errors += rounds
        cell.first_error = cell.first_error or f"connect: {type(exc).__name__}: {exc}"
        return
    try:
        await start.wait()
        for _ in range(rounds):
            try:
                sample, error = await _stream_once(streams, request_bytes(CHUNKS, INTERVAL_MS))
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                sample, error = None, f"{type(exc).__name__}: {exc}"
            if sample is None or sample.events != CHUNKS:
                cell.errors += 1
                cell.first_error = cell.first_error or error or f"{sample and sample.events}"
                return
            cell.samples.append(sample)
    finally:
        streams[1].close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await streams[1].wait_closed()


async def _run_cell(target: Target, conc: int, rounds: int, pid: int, cell: Cell) -> None:
    tls = client_tls(target.ca)
    start = asyncio.Event()
    tasks = [asyncio.create_task(_client(target, tls, rounds, start, cell)) for _ in range(conc)]
    await asyncio.sleep(0.2 + 0.05 * conc)  # connections and warm-ups settle
    cpu_before = sysinfo.process_cpu_fine(pid)
    start.set()
    await asyncio.gather(*tasks)
    cell.cpu_s += sysinfo.process_cpu_fine(pid) - cpu_before


def cell_rounds(rounds: int, conc: int) -> int:
    """Streams per connection: a single stream runs four times as many rounds, so its
    medians rest on as many streams as a few rounds of 20 do."""
    return rounds if conc > 1 else 4 * rounds


def measure(lab: Lab, rounds: int, progress: Callable[[str], None]) -> StreamingResults:
    """Each target in turn, one round at a time (direct, mitmdump, hearthgate, direct ...):
    a slow phase of the shared machine then falls on every target alike, not on one."""
    res = StreamingResults(rounds)
    targets = [lab.upstream, lab.mitmdump, lab.hearthgate]
    for conc in CONCURRENCIES:
        progress(f"streaming: {conc} concurrent stream(s), {rounds} turns of each target")
        for _ in range(rounds):
            for running in targets:
                cell = res.new_turn(running.target.name, conc)
                streams = cell_rounds(1, conc)
                asyncio.run(_run_cell(running.target, conc, streams, running.pid, cell))
    return res


def added(res: StreamingResults, target: str, conc: int) -> tuple[float, float]:
    """(time to first chunk, per-chunk delay p50) added over direct, ms."""
    d, t = res.cell("direct", conc), res.cell(target, conc)
    return t.ttfc_ms() - d.ttfc_ms(), t.delay_ms(50) - d.delay_ms(50)


FIGURES: dict[str, tuple[Callable[[Cell], float], bool]] = {
    "added time to first chunk": (lambda c: c.ttfc_ms(), True),
    "added per-chunk p50": (lambda c: c.delay_ms(50), True),
    "added per-chunk p99": (lambda c: c.delay_ms(99), True),
    "CPU per stream": (lambda c: c.cpu_ms_per_stream, False),
}


def _figure_target(report: Report, res: StreamingResults, name: str, errors: int) -> None:
    """One "<= mitmdump's" target over both concurrencies: PASS when each pooled figure is
    at most mitmdump's; LEVEL when one is not but no miss stands out of the turns' noise."""
    figure, is_delay = FIGURES[name]
    sign = "+" if is_delay else ""
    parts, comparisons = [], []
    for conc in CONCURRENCIES:
        cmp = compare(res, conc, figure, is_delay)
        comparisons.append(cmp)
        parts.append(
            f"{conc}: {sign}{cmp.hearthgate:.2f} vs {sign}{cmp.mitmdump:.2f} ms, "
            f"above in {cmp.above} of {cmp.differing} turns"
        )
    ok = all(c.ok for c in comparisons) and not errors
    level = not errors and all(c.ok or c.level for c in comparisons)
    report.target(
        f"streaming: hearthgate's {name} <= mitmdump's (1 and 20 streams)",
        "; ".join(parts),
        ok,
        level,
    )


def tables(report: Report, res: StreamingResults) -> None:
    """The section's table, notes and targets (each concurrency must meet them)."""
    rows = []
    for conc in CONCURRENCIES:
        for name in ("direct", "mitmdump", "hearthgate"):
            cell = res.cell(name, conc)
            add_ttfc, add_chunk = added(res, name, conc) if name != "direct" else (0.0, 0.0)
            rows.append(
                [
                    name,
                    str(conc),
                    str(len(cell.samples)),
                    number(cell.ttfc_ms(), 2),
                    "-" if name == "direct" else number(add_ttfc, 2),
                    f"{number(cell.delay_ms(50), 2)} / {number(cell.delay_ms(99), 2)}",
                    "-" if name == "direct" else number(add_chunk, 2),
                    f"{cell.coalesced} of {cell.events}",
                    number(cell.cpu_ms_per_stream, 1),
                    str(cell.errors),
                ]
            )
    hearthgate = [res.cell("hearthgate", c) for c in CONCURRENCIES]
    coalesced = sum(c.coalesced for c in hearthgate)
    errors = sum(c.errors for c in hearthgate)
    for name in FIGURES:
        _figure_target(report, res, name, errors)
    others = {
        n: sum(res.cell(n, c).coalesced for c in CONCURRENCIES) for n in ("mitmdump", "direct")
    }
    report.target(
        "streaming: 0 coalesced chunks through hearthgate",
        f"{coalesced} of {sum(c.events for c in hearthgate)} events "
        f"(mitmdump {others['mitmdump']}, direct {others['direct']})",
        coalesced == 0 and not errors,
    )
    headers = ["target", "streams at once", "streams", "first chunk ms p50", "added",
               "per-chunk delay ms p50 / p99", "added p50", "coalesced", "CPU ms/stream",
               "errors"]  # fmt: skip
    firsts = [f"{n} {c}: {res.cell(n, c).first_error}" for (n, c) in res.turns
              if res.cell(n, c).first_error]  # fmt: skip
    report.section(
        "6. Streaming",
        f"{CHUNKS} SSE events {INTERVAL_MS} ms apart per stream. The targets take turns "
        f"(direct, mitmdump, hearthgate, direct ...), {res.rounds} turns each per concurrency; "
        "a turn opens its HTTPS keep-alive connections (a warm-up stream each) and runs "
        f"{cell_rounds(1, 1)} streams on the single connection, or one on each of 20. "
        "'mitmdump' runs bare with a three-line addon that streams text/event-stream "
        "(bench/stream_addon.py); without it mitmdump buffers the "
        "whole answer. 'added' = the proxy's median minus direct's. Each '<= mitmdump's' "
        "target also pairs the turns (mitmdump's turn and hearthgate's right after it): "
        "a figure above mitmdump's pooled one, but the higher in too few of the pairs to be "
        "told from chance (one-sided sign test, p >= 0.05: at 10 turns, 8 or fewer), is "
        "reported LEVEL rather than FAIL.",
        table(headers, rows),
        ("First errors: " + "; ".join(firsts)) if firsts else "",
    )

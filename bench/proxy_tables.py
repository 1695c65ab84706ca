"""Tables, verdicts and notes of the proxy sections: 1 (throughput, latency) and 5 (memory)."""

from __future__ import annotations

from bench.load import MODES
from bench.memory import MemoryPoint
from bench.report import Report, number, table, times, verdict
from bench.stats import ratio
from bench.throughput import CONCURRENCIES, ThroughputResults

MODE_LABEL = {
    "http": "HTTP keep-alive",
    "https": "HTTPS keep-alive",
    "https-new": "HTTPS new conn/request",
}
TARGETS = ("direct", "mitmdump", "hearthgate")
MEMORY_TOLERANCE_MIB = 2.0


def _pair(a: float, b: float, digits: int = 2) -> str:
    return f"{number(a, digits)} / {number(b, digits)}"


def throughput(report: Report, res: ThroughputResults, rounds: int, seconds: float) -> None:
    rows, ratios = [], []
    for mode in MODES:
        for conc in CONCURRENCIES:
            d, m, h = (res.cell(mode, conc, t) for t in TARGETS)
            r = ratio(h.median_rps, m.median_rps)
            ratios.append(r)
            rows.append(
                [
                    MODE_LABEL[mode],
                    str(conc),
                    number(d.median_rps),
                    number(m.median_rps),
                    number(h.median_rps),
                    times(r),
                    verdict(r >= 1),
                ]
            )
    rps = table(
        [
            "mode",
            "conc.",
            "direct",
            "mitmdump",
            "hearthgate",
            "hearthgate/mitmdump",
            "target >= 1.00x",
        ],
        rows,
    )
    passed = sum(r >= 1 for r in ratios)
    report.target(
        "proxy: hearthgate requests/s >= bare mitmdump's (each row)",
        f"{passed} of {len(ratios)} rows; ratio {min(ratios):.2f}x-{max(ratios):.2f}x",
        passed == len(ratios),
    )
    report.section(
        "1. Proxy throughput and added latency",
        f"Requests/s, median of {rounds} round(s) of {seconds:g} s per cell:",
        rps,
        "Latency at concurrency 1, ms (p50 / p99 over every request of every round); "
        "'added' is the proxy's value minus direct's:",
        _latency(res),
        "Proxy CPU per answered request, µs (user+system of the whole process, from /proc; "
        "the direct column is the fake upstream's own cost):",
        _cpu(res),
        _wrk(res),
        _errors(res),
        f"Other processes on this machine kept {res.foreign_cores:.2f} cores busy on average "
        "during this section (the proxies each need one full core).",
    )


def _latency(res: ThroughputResults) -> str:
    rows = []
    for mode in MODES:
        d, m, h = (res.cell(mode, 1, t) for t in TARGETS)
        add_m = (m.ms(50) - d.ms(50), m.ms(99) - d.ms(99))
        add_h = (h.ms(50) - d.ms(50), h.ms(99) - d.ms(99))
        rows.append(
            [
                MODE_LABEL[mode],
                _pair(d.ms(50), d.ms(99)),
                _pair(m.ms(50), m.ms(99)),
                _pair(h.ms(50), h.ms(99)),
                _pair(*add_m),
                _pair(*add_h),
                f"{times(ratio(add_h[0], add_m[0]))} / {times(ratio(add_h[1], add_m[1]))}",
            ]
        )
    return table(
        [
            "mode",
            "direct",
            "mitmdump",
            "hearthgate",
            "added by mitmdump",
            "added by hearthgate",
            "added, hearthgate/mitmdump",
        ],
        rows,
    )


def _cpu(res: ThroughputResults) -> str:
    rows = []
    for mode in MODES:
        for conc in CONCURRENCIES:
            d, m, h = (res.cell(mode, conc, t) for t in TARGETS)
            rows.append(
                [
                    MODE_LABEL[mode],
                    str(conc),
                    number(d.cpu_us_per_request),
                    number(m.cpu_us_per_request),
                    number(h.cpu_us_per_request),
                    times(ratio(h.cpu_us_per_request, m.cpu_us_per_request)),
                    f"{100 * h.off_main_share:.0f}%",
                ]
            )
    return table(
        [
            "mode",
            "conc.",
            "upstream",
            "mitmdump",
            "hearthgate",
            "hearthgate/mitmdump",
            "hearthgate CPU off the main thread",
        ],
        rows,
    )


def _wrk(res: ThroughputResults) -> str:
    if not res.wrk:
        return f"wrk cross-check skipped: {res.wrk_note}."
    rows = [
        [name, number(w.rps), number(w.p50_ms, 2), number(w.p99_ms, 2), str(w.errors)]
        for name, w in res.wrk.items()
    ]
    r = ratio(res.wrk["hearthgate"].rps, res.wrk["mitmdump"].rps)
    return (
        "Cross-check with wrk (C client), plain HTTP keep-alive, 8 connections "
        f"({res.wrk_note}); hearthgate/mitmdump = {times(r)}:\n\n"
        + table(["target", "requests/s", "p50 ms", "p99 ms", "errors"], rows)
    )


def _errors(res: ThroughputResults) -> str:
    bad = [(k, c) for k, c in res.cells.items() if c.errors]
    if not bad:
        return "Every answer was a 200 (no errors, no refused or broken connections)."
    return "Errors: " + "; ".join(
        f"{MODE_LABEL[k[0]]} c={k[1]} {k[2]}: {c.errors} (first: {c.first_error})" for k, c in bad
    )


MEMORY_RATIO_TARGET = 1.25  # issue 18: RSS after 100k requests within 1.25x of mitmdump's


def memory(report: Report, points: list[MemoryPoint], mitmdump: list[MemoryPoint]) -> None:
    """hearthgate's readings beside bare mitmdump's, taken at the same points of the same
    load (each proxy gets the same rounds, one after the other)."""
    beside = {p.label: p for p in mitmdump}
    rows = []
    for p in points:
        m = beside.get(p.label)
        rows.append(
            [
                p.label,
                number(p.served),
                number(p.rss_mib, 1),
                "-" if m is None else number(m.served),
                "-" if m is None else number(m.rss_mib, 1),
                "-" if m is None else f"{p.rss_mib / m.rss_mib:.2f}x",
                number(p.queue_depth),
                ""
                if p.rps is None
                else number(p.rps) + ("" if m is None or m.rps is None else f" / {number(m.rps)}"),
                str(p.errors + (m.errors if m else 0)),
            ]
        )
    body = table(
        ["reading", "hearthgate: requests", "RSS MiB", "mitmdump: requests", "RSS MiB",
         "ratio", "hearthgate log queue", "round req/s (hearthgate / mitmdump)", "errors"],
        rows,
    )  # fmt: skip
    rounds = [p for p in points if p.rps is not None]
    m_rounds = [p for p in mitmdump if p.rps is not None]
    last, before = rounds[-1], rounds[-2]
    growth = last.rss_mib - before.rss_mib
    m_growth = m_rounds[-1].rss_mib - m_rounds[-2].rss_mib
    report.target(
        f"memory: RSS after {last.served:,} requests, no growth between the last two rounds "
        f"(<= {MEMORY_TOLERANCE_MIB:g} MiB)",
        f"{growth:+.1f} MiB (mitmdump {m_growth:+.1f}); {last.rss_mib:.0f} MiB after "
        f"{last.served:,} requests",
        growth <= MEMORY_TOLERANCE_MIB,
    )
    ratio = last.rss_mib / m_rounds[-1].rss_mib
    report.target(
        f"memory: RSS after the rounds within {MEMORY_RATIO_TARGET:g}x of mitmdump's after the "
        "same rounds",
        f"{last.rss_mib:.1f} MiB after {last.served:,} vs {m_rounds[-1].rss_mib:.1f} MiB after "
        f"{m_rounds[-1].served:,}: {ratio:.2f}x",
        ratio <= MEMORY_RATIO_TARGET,
    )
    notes = [
        f"Growth between the last two rounds: {growth:+.1f} MiB "
        f"({1024 * growth / max(last.served - before.served, 1):.2f} KiB per request); "
        f"mitmdump's {m_growth:+.1f} MiB."
    ]
    if last.queue_depth > before.queue_depth:
        notes.append(
            f"Meanwhile the decision-log queue grew by "
            f"{last.queue_depth - before.queue_depth:,} writes: they wait in memory "
            "(section 4), so part of that growth is rows not yet written, not a leak."
        )
    report.section("5. Memory", body, " ".join(notes))

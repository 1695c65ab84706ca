"""Prometheus metrics (SPEC section 8), bound once to one registry.

Label values are bounded: devices named in the rules, else ``unknown``; providers from the
catalog, else ``none``; categories the nine of governance.facts.Category, else ``none``
(a provider has exactly one, so the category adds no series). Gauges that mirror state
(queue depth, emergency) are computed at scrape time by a collector instead of being updated
on the request path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()  # the *_created series only add noise for a household

DURATION_BUCKETS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "hearthgate_decisions",
            "Decisions made, by outcome",
            ["action", "stage", "provider", "device", "category"],
            registry=r,
        )
        self.duration = Histogram(
            "hearthgate_decision_duration_seconds",
            "Time spent in the decision pipeline",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "hearthgate_tokens",
            "Tokens reported by providers",
            ["provider", "device", "direction"],
            registry=r,
        )
        self.reloads = Counter(
            "hearthgate_rules_reloads", "Rules file reloads", ["result"], registry=r
        )
        self.override_attempts = Counter(
            "hearthgate_override_attempts", "PIN attempts", ["result"], registry=r
        )
        self.errors = Counter("hearthgate_errors", "Internal errors caught", ["where"], registry=r)
        self.dns_queries = Counter(
            "hearthgate_dns_queries",
            "DNS-mode queries, by outcome (gate, forwarded, canary, doh_blocked, failed)",
            ["outcome", "device"],
            registry=r,
        )
        self.dns_refused = Counter(
            "hearthgate_dns_refused_connections",
            "Connections DNS sent to the gate for a name that is not an LLM service",
            registry=r,
        )
        for result in ("ok", "error"):
            self.reloads.labels(result)
        for result in ("ok", "wrong_pin", "locked_out", "expired"):
            self.override_attempts.labels(result)
        for where in ("pipeline", "addon", "response", "writer", "state", "notify", "quota", "dns"):
            self.errors.labels(where)

    def bind_state(
        self,
        emergency_active: Callable[[], bool],
        queue_depth: Callable[[], int],
        written: Callable[[], int],
        dropped: Callable[[], int],
    ) -> None:
        self.registry.register(_StateCollector(emergency_active, queue_depth, written, dropped))

    def bind_database(self, up: Callable[[], bool], instance: str, backend: str) -> None:
        """``hearthgate_database_up`` and ``hearthgate_gate_info{gate, backend}``: which
        gate this is (several may share one database) and whether it reaches the database."""
        self.registry.register(_DatabaseCollector(up, instance, backend))


class _DatabaseCollector(Collector):
    def __init__(self, up: Callable[[], bool], instance: str, backend: str) -> None:
        self._up, self._instance, self._backend = up, instance, backend

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily(
            "hearthgate_gate_info",
            "This gate: its --instance name and database backend (always 1)",
            labels=["gate", "backend"],
        )
        info.add_metric([self._instance, self._backend], 1)
        yield info
        yield GaugeMetricFamily(
            "hearthgate_database_up",
            "1 while the database can be read and written, 0 while requests are decided "
            "from memory and decision-log rows wait in the queue",
            value=1 if self._up() else 0,
        )


class _StateCollector(Collector):
    def __init__(
        self,
        emergency_active: Callable[[], bool],
        queue_depth: Callable[[], int],
        written: Callable[[], int],
        dropped: Callable[[], int],
    ) -> None:
        self._emergency, self._depth = emergency_active, queue_depth
        self._written, self._dropped = written, dropped

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily(
            "hearthgate_emergency_active",
            "1 while an emergency override is on",
            value=1 if self._emergency() else 0,
        )
        yield GaugeMetricFamily(
            "hearthgate_decision_log_queue_depth",
            "Rows waiting to be written to the decision log",
            value=self._depth(),
        )
        yield CounterMetricFamily(
            "hearthgate_decision_log_written",
            "Decision rows written to the database",
            value=self._written(),
        )
        yield CounterMetricFamily(
            "hearthgate_decision_log_dropped",
            "Decision rows lost because the queue was full",
            value=self._dropped(),
        )

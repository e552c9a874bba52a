"""What an endpoint served lately, for the console's charts: requests, errors and latency per
interval of the last few minutes, per endpoint.

The Prometheus counters the platform exports are totals since the server started; a chart of
traffic and latency over time needs the recent history of one endpoint, which this read model
keeps in memory (a ring of fixed intervals, a bounded sample of latencies in each). It wraps the
``ServingMetrics`` port, so every invocation the supervisor times is counted in both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from charter.domain.deployments import percentile
from charter.services.ports import ServingMetrics

MAX_SAMPLES = 500
"""Latencies kept per interval (the first ones: enough for a p95 at a glance, bounded in memory)."""


@dataclass(frozen=True, slots=True)
class TrafficPoint:
    """One interval of an endpoint's traffic."""

    start: datetime
    requests: int
    errors: int
    p50_ms: float
    p95_ms: float
    by_variant: dict[str, int]


@dataclass
class _Bucket:
    index: int
    requests: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    by_variant: dict[str, int] = field(default_factory=dict)


class TrafficWindow:
    """A ``ServingMetrics`` that also remembers the last ``intervals`` × ``interval_seconds`` of
    each endpoint's traffic (and passes every observation on to ``inner``)."""

    def __init__(self, inner: ServingMetrics, interval_seconds: float = 10.0, intervals: int = 36,
                 clock: Callable[[], float] = time.time) -> None:
        if interval_seconds <= 0 or intervals < 1:
            raise ValueError("a traffic window needs a positive interval and at least one of them")
        self.inner = inner
        self.interval_seconds = interval_seconds
        self.intervals = intervals
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], list[_Bucket]] = {}

    def observe(self, account: str, endpoint: str, variant: str, seconds: float, error: bool) -> None:
        self.inner.observe(account, endpoint, variant, seconds, error)
        index = int(self._clock() // self.interval_seconds)
        with self._lock:
            ring = self._buckets.setdefault((account, endpoint), [])
            if not ring or ring[-1].index != index:
                ring.append(_Bucket(index))
                del ring[: max(len(ring) - self.intervals, 0)]
            bucket = ring[-1]
            bucket.requests += 1
            bucket.errors += int(error)
            bucket.by_variant[variant] = bucket.by_variant.get(variant, 0) + 1
            if len(bucket.latencies) < MAX_SAMPLES:
                bucket.latencies.append(seconds * 1000)

    def render(self) -> tuple[bytes, str]:
        return self.inner.render()

    def traffic(self, account: str, endpoint: str) -> list[TrafficPoint]:
        """Every interval of the window, oldest first (the quiet ones with no requests)."""
        now = int(self._clock() // self.interval_seconds)
        with self._lock:
            found = {b.index: b for b in self._buckets.get((account, endpoint), [])}
            copies = {i: (b.requests, b.errors, list(b.latencies), dict(b.by_variant)) for i, b in found.items()}
        out = []
        for index in range(now - self.intervals + 1, now + 1):
            requests, errors, latencies, by_variant = copies.get(index, (0, 0, [], {}))
            out.append(TrafficPoint(datetime.fromtimestamp(index * self.interval_seconds, UTC), requests, errors,
                                    round(percentile(latencies, 50), 3), round(percentile(latencies, 95), 3),
                                    by_variant))
        return out

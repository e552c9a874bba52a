"""Serving metrics in the Prometheus text format: per endpoint and variant, the requests, the
errors and a latency histogram (in a registry of the platform's own, not the process-global one,
so two platforms in one process — the tests — never share counts)."""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

LABELS = ("account", "endpoint", "variant")
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class PrometheusServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("charter_endpoint_requests", "Invocations of an endpoint", LABELS,
                                registry=self.registry)
        self.errors = Counter("charter_endpoint_errors", "Invocations that failed (refused input, no "
                              "worker up, a model error)", LABELS, registry=self.registry)
        self.latency = Histogram("charter_endpoint_latency_seconds", "Time to serve an invocation, "
                                 "validation and the worker's prediction included", LABELS,
                                 buckets=BUCKETS, registry=self.registry)

    def observe(self, account: str, endpoint: str, variant: str, seconds: float, error: bool) -> None:
        self.requests.labels(account, endpoint, variant).inc()
        if error:
            self.errors.labels(account, endpoint, variant).inc()
        self.latency.labels(account, endpoint, variant).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

"""The per-endpoint traffic window the console charts: intervals, errors, latency percentiles,
what falls out of the window, and every observation passed on to the exported metrics."""

from __future__ import annotations

from charter.services.endpoint_traffic import TrafficWindow


class Counted:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, float, bool]] = []

    def observe(self, account: str, endpoint: str, variant: str, seconds: float, error: bool) -> None:
        self.seen.append((account, endpoint, variant, seconds, error))

    def render(self) -> tuple[bytes, str]:
        return b"", "text/plain"


def test_the_window_counts_each_interval_and_passes_every_observation_on() -> None:
    now = [1000.0]
    inner = Counted()
    window = TrafficWindow(inner, interval_seconds=10, intervals=3, clock=lambda: now[0])
    for ms in (10, 20, 30, 40):
        window.observe("ml-prod", "churn", "a", ms / 1000, False)
    window.observe("ml-prod", "churn", "b", 0.5, True)
    window.observe("ml-prod", "other", "a", 0.1, False)
    now[0] = 1012.0
    window.observe("ml-prod", "churn", "a", 0.005, False)
    points = window.traffic("ml-prod", "churn")
    assert [(p.requests, p.errors) for p in points] == [(0, 0), (5, 1), (1, 0)]
    assert (points[1].p50_ms, points[1].p95_ms) == (30.0, 500.0)
    assert points[1].by_variant == {"a": 4, "b": 1}
    assert len(inner.seen) == 7


def test_intervals_older_than_the_window_are_dropped() -> None:
    now = [0.0]
    window = TrafficWindow(Counted(), interval_seconds=1, intervals=2, clock=lambda: now[0])
    window.observe("a", "e", "v", 0.01, False)
    now[0] = 5.0
    window.observe("a", "e", "v", 0.01, False)
    assert [p.requests for p in window.traffic("a", "e")] == [0, 1]
    assert [p.requests for p in window.traffic("a", "unknown")] == [0, 0]

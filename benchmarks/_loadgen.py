"""A small closed-loop load generator, run as its own process so that it does not share the GIL
with a server under test. Loopback only; bounded by a duration and a request count.

    python benchmarks/_loadgen.py '{"url": "http://127.0.0.1:PORT", "method": "POST",
        "path": "/api/v1/tokens", "json": {"principal": "sam", "description": "load {n}"},
        "headers": {...}, "concurrency": 4, "duration": 5, "max_requests": 20000,
        "expect": [200, 201]}'

``-`` instead of the JSON reads it from stdin. ``{n}`` in string values of the JSON body is
replaced by a number unique to the request. Prints one JSON object: completed requests, errors,
requests/s and latency percentiles (ms).

An operation may also be several requests in a row, each with its own headers, a later one using
a value an earlier one returned (register a version, then approve that version):

    {"url": ..., "concurrency": 8, "duration": 5, "max_requests": 20000, "samples": true,
     "steps": [
        {"name": "register", "method": "POST", "path": "/groups/churn/packages",
         "json": {...}, "headers": {"authorization": "Bearer A"}, "expect": [201],
         "capture": {"version": "version"}},
        {"name": "approve", "method": "POST", "path": "/groups/churn/packages/{version}/approve",
         "json": {"comment": "load {n}"}, "headers": {"authorization": "Bearer B"},
         "expect": [200]}]}

A step may give ``paths`` (a list) instead of ``path``: operation ``n`` requests
``paths[n % len(paths)]``, so that reads can range over keys chosen beforehand (random versions,
random cursors) without the generator knowing what they mean.

``capture`` names a value of the response's JSON by its dotted path (``model_version.version``);
``{version}`` in a later step's path or body is replaced by it. ``max_requests`` then counts
operations; an operation is timed from its first request to the end of its last, and counts as an
error if any of its requests fails (the rest of it is not sent). The output adds
``operations_per_s`` and a latency summary per step; ``"samples": true`` adds every operation's
latency in nanoseconds (``samples_ns``, and per step ``step_samples_ns``), so that several runs
can be pooled.
"""

from __future__ import annotations

import http.client as http_client
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from _common import summarize


def _fill(value: Any, n: int, captured: dict[str, str] | None = None) -> Any:
    if isinstance(value, str):
        value = value.replace("{n}", str(n))
        for name, found in (captured or {}).items():
            value = value.replace("{" + name + "}", found)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, n, captured) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, n, captured) for v in value]
    return value


def _dig(document: Any, dotted: str) -> str:
    for key in dotted.split("."):
        document = document[key]
    return str(document)


class _Connection:
    """One keep-alive HTTP/1.1 connection of one client: the standard library's ``http.client``,
    which spends a fraction of httpx's CPU per request, so that on two cores the client leaves the
    servers it measures their share (httpx topped out near 800 requests/s against a server that
    answers without doing anything). A connection that fails is opened again by the next request."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.connection = http_client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                                     timeout=timeout)
        self.headers = dict(headers)

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        sent = {**self.headers, **(headers or {})}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            sent["content-type"] = "application/json"
        try:
            self.connection.request(method, path, body=content, headers=sent)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (http_client.HTTPException, OSError):
            self.connection.close()
            raise

    def __enter__(self) -> _Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.close()


def _steps(spec: dict[str, Any]) -> list[dict[str, Any]]:
    if "steps" in spec:
        return list(spec["steps"])
    step = {"name": spec["path"], "method": spec["method"], "path": spec["path"],
            "expect": spec.get("expect", [200, 201])}
    if "json" in spec:
        step["json"] = spec["json"]
    return [step]


def main() -> int:
    spec = json.loads(sys.stdin.read() if sys.argv[1] == "-" else sys.argv[1])
    # ``urls``: several servers behind no balancer; client i talks to urls[i % len(urls)].
    urls = list(spec.get("urls") or [spec["url"]])
    for url in urls:
        host = urlsplit(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"refusing to send load to a non-loopback host: {host}")
    concurrency = int(spec.get("concurrency", 4))
    duration = float(spec.get("duration", 5.0))
    max_requests = int(spec.get("max_requests", 20000))
    steps = _steps(spec)
    expects = [set(step.get("expect", [200, 201])) for step in steps]
    lock = threading.Lock()
    counter = iter(range(10**12))
    samples: list[int] = []
    step_samples: list[list[int]] = [[] for _ in steps]
    errors: list[str] = []
    start_gate = threading.Event()
    deadline = [0.0]

    def operation(http: _Connection, n: int) -> tuple[int, list[int]] | str:
        captured: dict[str, str] = {}
        times = []
        t0 = time.perf_counter_ns()
        for step, expect in zip(steps, expects, strict=True):
            body = _fill(step["json"], n, captured) if "json" in step else None
            path = _fill(step["paths"][n % len(step["paths"])] if "paths" in step else step["path"], n, captured)
            s0 = time.perf_counter_ns()
            try:
                status, content = http.request(step["method"], path, body, step.get("headers"))
            except (http_client.HTTPException, OSError) as error:
                return f"{step.get('name', path)}: {type(error).__name__}: {error}"
            if status not in expect:
                return f"{step.get('name', path)}: {status} {content[:200].decode(errors='replace')}"
            for name, dotted in step.get("capture", {}).items():
                captured[name] = _dig(json.loads(content), dotted)
            times.append(time.perf_counter_ns() - s0)
        return time.perf_counter_ns() - t0, times

    def worker(url: str) -> None:
        with _Connection(url, spec.get("headers", {})) as http:
            http.request("GET", spec.get("warmup_path", "/healthz"))
            start_gate.wait()
            while time.monotonic() < deadline[0]:
                with lock:
                    n = next(counter)
                if n >= max_requests:
                    return
                outcome = operation(http, n)
                with lock:
                    if isinstance(outcome, str):
                        errors.append(outcome)
                    else:
                        samples.append(outcome[0])
                        for kept, elapsed in zip(step_samples, outcome[1], strict=True):
                            kept.append(elapsed)

    threads = [threading.Thread(target=worker, args=(urls[i % len(urls)],), daemon=True)
               for i in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # let every worker connect
    began = time.monotonic()
    deadline[0] = began + duration
    start_gate.set()
    for thread in threads:
        thread.join(timeout=duration + 60)
    wall = time.monotonic() - began
    out: dict[str, Any] = {
        "concurrency": concurrency,
        "duration_s": round(wall, 3),
        "completed": len(samples),
        "errors": len(errors),
        "first_errors": errors[:3],
        "requests_per_s": round(len(samples) * len(steps) / wall, 1) if wall > 0 else None,
        "latency": summarize(samples, "ms") if samples else None,
    }
    if "steps" in spec:
        out["operations_per_s"] = round(len(samples) / wall, 1) if wall > 0 else None
        out["steps"] = {step.get("name", str(i)): summarize(kept, "ms") if kept else None
                        for i, (step, kept) in enumerate(zip(steps, step_samples, strict=True))}
    if spec.get("samples"):
        out["samples_ns"] = samples
        if "steps" in spec:
            out["step_samples_ns"] = {step.get("name", str(i)): kept
                                      for i, (step, kept) in enumerate(zip(steps, step_samples, strict=True))}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

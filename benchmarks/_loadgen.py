"""A small closed-loop load generator, run as its own process so that it does not share the GIL
with a server under test. Loopback only; bounded by a duration and a request count.

    python benchmarks/_loadgen.py '{"url": "http://127.0.0.1:PORT", "method": "POST",
        "path": "/api/v1/tokens", "json": {"principal": "sam", "description": "load {n}"},
        "headers": {...}, "concurrency": 4, "duration": 5, "max_requests": 20000,
        "expect": [200, 201]}'

``{n}`` in string values of the JSON body is replaced by a number unique to the request. Prints
one JSON object: completed requests, errors, requests/s and latency percentiles (ms).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, __file__.rsplit("/", 1)[0])

from _common import summarize


def _fill(value: Any, n: int) -> Any:
    if isinstance(value, str):
        return value.replace("{n}", str(n))
    if isinstance(value, dict):
        return {k: _fill(v, n) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, n) for v in value]
    return value


def main() -> int:
    spec = json.loads(sys.argv[1])
    host = urlsplit(spec["url"]).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to send load to a non-loopback host: {host}")
    concurrency = int(spec.get("concurrency", 4))
    duration = float(spec.get("duration", 5.0))
    max_requests = int(spec.get("max_requests", 20000))
    expect = set(spec.get("expect", [200, 201]))
    lock = threading.Lock()
    counter = iter(range(10**12))
    samples: list[int] = []
    errors: list[str] = []
    start_gate = threading.Event()
    deadline = [0.0]

    def worker() -> None:
        with httpx.Client(base_url=spec["url"], headers=spec.get("headers", {}), timeout=30) as http:
            http.get(spec.get("warmup_path", "/healthz"))
            start_gate.wait()
            while time.monotonic() < deadline[0]:
                with lock:
                    n = next(counter)
                if n >= max_requests:
                    return
                body = _fill(spec.get("json"), n) if "json" in spec else None
                t0 = time.perf_counter_ns()
                response = http.request(spec["method"], spec["path"], json=body)
                elapsed = time.perf_counter_ns() - t0
                with lock:
                    if response.status_code in expect:
                        samples.append(elapsed)
                    else:
                        errors.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # let every worker connect
    began = time.monotonic()
    deadline[0] = began + duration
    start_gate.set()
    for thread in threads:
        thread.join(timeout=duration + 60)
    wall = time.monotonic() - began
    out = {
        "concurrency": concurrency,
        "duration_s": round(wall, 3),
        "completed": len(samples),
        "errors": len(errors),
        "first_errors": errors[:3],
        "requests_per_s": round(len(samples) / wall, 1) if wall > 0 else None,
        "latency": summarize(samples, "ms") if samples else None,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

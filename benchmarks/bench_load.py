"""Benchmark: mixed reads and writes through the API from 64 concurrent clients, on 1 and on 3
`charter server` replicas sharing one PostgreSQL database.

- Servers: real `charter server` processes on loopback ports, one PostgreSQL database created for
  the run (``CHARTER_BENCH_DATABASE_URL`` names the server; it is dropped afterwards), one data dir
  (artifacts on local files, one signing key), each server with its event dispatcher on, so every
  approval is promoted into the central registry while the load runs.
- Load: ``benchmarks/_loadgen.py`` in two processes of 32 clients each (closed loop, keep-alive),
  client *i* on server *i mod n*. One operation is five requests:
    GET  .../registry/groups/churn/packages?limit=20          as sam   (read)
    POST .../registry/groups/churn/packages                   as sam   (write: register)
    GET  .../registry/groups/churn/packages/{version}         as lena  (read)
    POST .../registry/groups/churn/packages/{version}/approve as lena  (write: approve -> promotion)
    GET  /api/v1/audit/records?limit=10                        as arthur (read)
- Checked afterwards: zero errors, versions of ``churn`` gap-free 1..N, ``audit verify`` passes;
  the resident memory of each server is sampled every second (start, peak, end).
- Reported: operations/s and requests/s, p50/p99 of an operation and of each request kind, for 1
  and 3 replicas, and the ratio of their throughputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Option, bench_main, free_loopback_port, loadgen, log, machine, summarize, table
from bench_registry import fresh_postgres, skops_model

from charter.examples import acme_document

DATABASE_URL_ENV = "CHARTER_BENCH_DATABASE_URL"
CLIENTS = 64
LOADGEN_PROCESSES = 2
PACKAGES = "/api/v1/accounts/ml-dev/registry/groups/churn/packages"


def _charter() -> str:
    return str(Path(sys.executable).with_name("charter"))


def _env(data: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env |= {"CHARTER_DATA_DIR": str(data), "CHARTER_DATABASE_URL": database_url,
            "CHARTER_CONFIG_DIR": str(data / "config"), "PYTHONUNBUFFERED": "1"}
    return env


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Replicas:
    def __init__(self, count: int, data: Path, database_url: str) -> None:
        self.env = _env(data, database_url)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        for i in range(count):
            port = free_loopback_port()
            log_file = (data / f"server-{i}.log").open("ab")
            self.processes.append(subprocess.Popen(
                [_charter(), "server", "--host", "127.0.0.1", "--port", str(port)],
                env=self.env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            self.urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        for url, process in zip(self.urls, self.processes, strict=True):
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"charter server exited: see {data}/server-*.log")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not become healthy")
                time.sleep(0.1)

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _prepare(url: str, admin_token: str) -> dict[str, str]:
    from charter.client.client import Client

    with Client(url, admin_token, timeout=120) as admin:
        admin.apply(acme_document(), filename="examples/acme/charter.yaml")
        tokens = {n: admin.create_token(n, description="bench load").secret for n in ("sam", "lena", "arthur")}
    with Client(url, tokens["sam"]) as sam:
        digest = sam.upload_artifact("ml-dev", skops_model(), model_format="skops").sha256
    with Client(url, tokens["lena"]) as lena:
        lena.create_group("ml-dev", "churn", readers=["ml-shared-services"])
    return {**tokens, "digest": digest}


def _spec(urls: list[str], prep: dict[str, str], clients: int, seconds: float) -> dict[str, Any]:
    def auth(who: str) -> dict[str, str]:
        return {"authorization": f"Bearer {prep[who]}"}

    body = {"format": "skops", "artifacts": [{"path": "model.skops", "sha256": prep["digest"]}],
            "metrics": {"auc": 0.9}, "lineage": {"run": "load-{n}"}}
    return {
        "url": urls[0], "urls": urls, "concurrency": clients, "duration": seconds, "max_requests": 10**7,
        "samples": True, "warmup_path": "/healthz",
        "steps": [
            {"name": "list", "method": "GET", "path": PACKAGES + "?limit=20", "headers": auth("sam"), "expect": [200]},
            {"name": "register", "method": "POST", "path": PACKAGES, "json": body, "headers": auth("sam"),
             "expect": [201], "capture": {"version": "version"}},
            {"name": "get", "method": "GET", "path": PACKAGES + "/{version}", "headers": auth("lena"),
             "expect": [200]},
            {"name": "approve", "method": "POST", "path": PACKAGES + "/{version}/approve",
             "json": {"comment": "load {n}"}, "headers": auth("lena"), "expect": [200]},
            {"name": "audit", "method": "GET", "path": "/api/v1/audit/records?limit=10", "headers": auth("arthur"),
             "expect": [200]},
        ],
    }


def _one(replicas: int, database_url: str, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="charter-bench-load-") as tmp:
        data = Path(tmp)
        env = _env(data, database_url)
        init = subprocess.run([_charter(), "--output", "json", "init", "--org", "acme"], env=env,
                              capture_output=True, text=True, check=True)
        admin_token = json.loads(init.stdout)["token"]
        servers = Replicas(replicas, data, database_url)
        try:
            prep = _prepare(servers.urls[0], admin_token)
            memory: dict[int, list[int]] = {p.pid: [] for p in servers.processes}
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    for pid, kept in memory.items():
                        rss = _rss_kib(pid)
                        if rss is not None:
                            kept.append(rss)
                    stop.wait(1.0)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            per_process = CLIENTS // LOADGEN_PROCESSES
            specs = [_spec(servers.urls[i % replicas:] + servers.urls[:i % replicas], prep, per_process, seconds)
                     for i in range(LOADGEN_PROCESSES)]
            with ThreadPoolExecutor(LOADGEN_PROCESSES) as pool:
                results = list(pool.map(loadgen, specs))
            stop.set()
            sampler.join()
            failed = [r["error"] for r in results if "error" in r]
            if failed:
                raise RuntimeError(f"the load generator failed: {failed[0]}")
            with httpx.Client(base_url=servers.urls[-1], timeout=300) as http:
                versions, cursor = [], None
                while True:
                    page = http.get(PACKAGES, params={"limit": 500, **({"cursor": cursor} if cursor else {})},
                                    headers={"authorization": f"Bearer {prep['sam']}"}).json()
                    versions += [p["version"] for p in page["items"]]
                    cursor = page.get("next_cursor")
                    if not cursor:
                        break
                verified = http.post("/api/v1/audit/verify",
                                     headers={"authorization": f"Bearer {prep['arthur']}"}).json()
        finally:
            servers.close()
    samples = [s for r in results for s in r["samples_ns"]]
    steps = {name: summarize([s for r in results for s in r["step_samples_ns"][name]], "ms")
             for name in results[0]["step_samples_ns"]}
    wall = max(r["duration_s"] for r in results)
    operations = len(samples)
    return {
        "replicas": replicas, "clients": CLIENTS, "seconds": wall, "operations": operations,
        "errors": sum(r["errors"] for r in results), "first_errors": [e for r in results for e in r["first_errors"]][:3],
        "operations_per_s": round(operations / wall, 1), "requests_per_s": round(5 * operations / wall, 1),
        "latency": summarize(samples, "ms"), "steps": steps,
        "versions_gap_free": sorted(versions) == list(range(1, len(versions) + 1)),
        "versions": len(versions), "audit_ok": bool(verified.get("ok")),
        "memory_mib": {str(i): {"start": round(v[0] / 1024, 1), "peak": round(max(v) / 1024, 1),
                                "end": round(v[-1] / 1024, 1)}
                       for i, v in enumerate(memory.values()) if v},
    }


def run(seconds: float = 120.0, database_url: str | None = None) -> dict[str, Any]:
    url = database_url or os.environ.get(DATABASE_URL_ENV)
    if not url:
        return {"skipped": f"set {DATABASE_URL_ENV} to a PostgreSQL server (e.g. "
                           "postgresql+psycopg://postgres@127.0.0.1:5432/test)"}
    out: dict[str, Any] = {"machine": machine(), "runs": []}
    for replicas in (1, 3):
        log(f"load: {CLIENTS} clients for {seconds:.0f} s on {replicas} replica(s)")
        with fresh_postgres(url) as database:
            out["runs"].append(_one(replicas, database, seconds))
    one, three = out["runs"]
    out["ratio_3_to_1"] = round(three["operations_per_s"] / one["operations_per_s"], 2) if one["operations_per_s"] else None
    out["met"] = all(r["errors"] == 0 and r["versions_gap_free"] and r["audit_ok"] for r in out["runs"])
    return out


def report(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"## Mixed load (skipped: {result['skipped']})\n"
    rows = [[r["replicas"], r["operations"], r["errors"], r["operations_per_s"], r["requests_per_s"],
             r["latency"]["p50"], r["latency"]["p99"], r["steps"]["register"]["p99"], r["steps"]["approve"]["p99"],
             " / ".join(f"{m['start']}→{m['peak']}→{m['end']}" for m in r["memory_mib"].values())]
            for r in result["runs"]]
    return table(f"Mixed load: {CLIENTS} clients, 5 requests per operation, PostgreSQL (3 vs 1 replicas: "
                 f"{result['ratio_3_to_1']}×)",
                 ["replicas", "operations", "errors", "ops/s", "req/s", "p50 ms", "p99 ms", "register p99",
                  "approve p99", "server RSS MiB start→peak→end"], rows)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, run, report, [
        Option("--seconds", float, 120.0, "how long each load run lasts"),
        Option("--database-url", str, None, f"the PostgreSQL server (default: ${DATABASE_URL_ENV})")], argv)


if __name__ == "__main__":
    raise SystemExit(main())

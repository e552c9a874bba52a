"""Benchmark 2: an audited write through the API on SQLite, against MLflow's tracking server.

Charter side (the real server, nothing stubbed):
- ``BackgroundServer`` (uvicorn in a thread, as ``charter demo`` runs it) on 127.0.0.1, port 0,
  over a fresh SQLite store (WAL) in a temporary directory, the example org applied;
- one keep-alive httpx client, as the org admin, issuing in turn:
    POST   /api/v1/tokens        mint a token for sam    (audited write: token row, hash-chained
                                                          audit record, outbox event, one commit)
    GET    /api/v1/whoami        a read, for contrast     (authenticate + decide, not audited)
    DELETE /api/v1/tokens/{id}   revoke it                (audited write)
  Each request is timed on its own, client side: HTTP over loopback, routing, authentication,
  the Cedar decision, the transaction and the audit append, JSON both ways.
- after the loop, the audit trail is verified through the API, and must hold one new record per
  write.
- then a short concurrent run (a separate load-generator process, 4 keep-alive connections) for
  the throughput a client fleet sees.

Peer: ``mlflow server`` on SQLite (its own venv, started as a subprocess on 127.0.0.1, one
uvicorn worker, access log off, job runner off) with the analogous registry calls:
    POST   /api/2.0/mlflow/registered-models/create
    GET    /api/2.0/mlflow/registered-models/get
    DELETE /api/2.0/mlflow/registered-models/delete
Rounds alternate between the two servers so drift on the machine hits both alike. Ratios are
Charter / MLflow for latencies (below 1: Charter faster) and for requests/s (above 1: Charter
serves more).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    describe_ratio,
    free_loopback_port,
    loadgen,
    log,
    machine,
    ratio,
    summarize,
    table,
)

from charter.examples import acme_document

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET_P50_MS = 5.0
MLFLOW_LOCATIONS = (
    HERE / ".venv-mlflow" / "bin" / "mlflow",
    Path("/tmp/charter-bench-mlflow/bin/mlflow"),
)


class Timed:
    """Per-operation nanosecond samples."""

    def __init__(self, *names: str) -> None:
        self.samples: dict[str, list[int]] = {n: [] for n in names}

    def call(self, name: str, fn: Callable[[], httpx.Response], expect: int) -> httpx.Response:
        start = time.perf_counter_ns()
        response = fn()
        self.samples[name].append(time.perf_counter_ns() - start)
        if response.status_code != expect:
            raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
        return response


# --- Charter ---------------------------------------------------------------------------------

class CharterServer:
    def __init__(self, directory: Path) -> None:
        from charter.bootstrap import bootstrap
        from charter.client.client import Client
        from charter.config import Settings
        from charter.domain.commands import InitOrg
        from charter.domain.identity import Identity
        from charter.entrypoints.server import BackgroundServer

        self.settings = Settings(data_dir=directory, config_dir=directory / "config",
                                 database_url=None, audit_key_file=None)
        self.platform = bootstrap(self.settings)
        init = self.platform.bus.handle(InitOrg("acme"), Identity("system", "bench"))
        self.admin_bearer = init.bearer
        self.background = BackgroundServer(self.platform, "127.0.0.1", 0)
        self.url = self.background.start()
        with Client(self.url, self.admin_bearer) as client:
            client.apply(acme_document(), filename="examples/acme/charter.yaml")
        self.http = httpx.Client(base_url=self.url, timeout=30,
                                 headers={"authorization": f"Bearer {self.admin_bearer}"})
        self.timed = Timed("create", "read", "delete")

    def iteration(self, i: int) -> None:
        t = self.timed
        created = t.call("create", lambda: self.http.post(
            "/api/v1/tokens", json={"principal": "sam", "description": f"bench {i}"}), 201)
        token_id = created.json()["token"]["id"]
        t.call("read", lambda: self.http.get("/api/v1/whoami"), 200)
        t.call("delete", lambda: self.http.delete(f"/api/v1/tokens/{token_id}"), 200)

    def audit(self) -> dict[str, Any]:
        response = self.http.post("/api/v1/audit/verify")
        response.raise_for_status()
        return dict(response.json())

    def close(self) -> None:
        self.http.close()
        self.background.stop()
        self.platform.close()


# --- MLflow ----------------------------------------------------------------------------------

def find_mlflow(explicit: str | None) -> Path | None:
    """The mlflow executable: the one named (--mlflow, $CHARTER_BENCH_MLFLOW), else a known place."""
    named = explicit or os.environ.get("CHARTER_BENCH_MLFLOW")
    candidates = [named] if named else [*MLFLOW_LOCATIONS, shutil.which("mlflow")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


class MLflowServer:
    def __init__(self, executable: Path, directory: Path, startup_timeout: float = 120.0) -> None:
        self.directory = directory
        self.port = free_loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "mlflow-server.log"
        env = dict(os.environ)
        # The job runner starts several huey consumer processes that serve no request here;
        # on two cores they would only compete with the server under test.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        command = [
            str(executable), "server",
            "--backend-store-uri", f"sqlite:///{directory / 'mlflow.db'}",
            "--default-artifact-root", str(directory / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", "1",
            "--uvicorn-opts", "--no-access-log",  # Charter's server logs no access line either
        ]
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(command, cwd=directory, env=env, stdout=self.log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        started = time.monotonic()
        self.http = httpx.Client(base_url=self.url, timeout=30)
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if self.http.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - started > startup_timeout:
                raise RuntimeError(f"mlflow server did not answer /health in {startup_timeout:.0f}s: "
                                   f"{self.log_tail()}")
            time.sleep(0.25)
        self.startup_s = round(time.monotonic() - started, 1)
        self.timed = Timed("create", "read", "delete")
        self.prefix = f"bench-{os.getpid()}-{int(time.time())}"

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-800:]
        except OSError:
            return "(no log)"

    def iteration(self, i: int) -> None:
        t = self.timed
        name = f"{self.prefix}-{i}"
        t.call("create", lambda: self.http.post(
            "/api/2.0/mlflow/registered-models/create", json={"name": name}), 200)
        t.call("read", lambda: self.http.get(
            "/api/2.0/mlflow/registered-models/get", params={"name": name}), 200)
        t.call("delete", lambda: self.http.request(
            "DELETE", "/api/2.0/mlflow/registered-models/delete", json={"name": name}), 200)

    def close(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the group this benchmark started
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.log_file.close()


# --- running -----------------------------------------------------------------------------------



def run(iterations: int = 1500, rounds: int = 5, budget_s: float = 50.0, mlflow: str | None = None,
        concurrency: int = 4, concurrent_seconds: float = 5.0, with_peer: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="charter-bench-write-"))
    results: dict[str, Any] = {"target": {"metric": "POST /api/v1/tokens p50", "max_ms": TARGET_P50_MS}}
    charter: CharterServer | None = None
    peer_server: MLflowServer | None = None
    peer: dict[str, Any] = {"name": "mlflow", "version": None}
    try:
        (directory / "charter").mkdir()
        charter = CharterServer(directory / "charter")
        results["charter_settings"] = {
            "audit_checkpoint_every": charter.settings.audit_checkpoint_every,
            "database": "sqlite (WAL, synchronous=NORMAL)",
            "server": "BackgroundServer: uvicorn in a thread of this process",
        }
        before = charter.audit()

        executable = find_mlflow(mlflow) if with_peer else None
        if not with_peer:
            peer["skipped"] = "--no-peer was given"
        elif executable is None:
            peer["skipped"] = ("mlflow not found: create its venv with `python -m venv "
                               "/tmp/charter-bench-mlflow && /tmp/charter-bench-mlflow/bin/pip install "
                               "-r benchmarks/requirements-mlflow.txt`, or pass --mlflow PATH / set "
                               "CHARTER_BENCH_MLFLOW")
        else:
            (directory / "mlflow").mkdir()
            log(f"write: starting the peer, {executable} server (SQLite) ...")
            try:
                peer_server = MLflowServer(executable, directory / "mlflow")
                peer["version"] = _mlflow_version(executable)
                peer["startup_s"] = peer_server.startup_s
                peer["settings"] = {"workers": 1, "access_log": False, "job_execution": False,
                                    "database": "sqlite (MLflow's defaults: rollback journal, "
                                                "synchronous=FULL)"}
            except (RuntimeError, OSError) as error:
                peer["skipped"] = f"mlflow server did not start: {error}"
        if "skipped" in peer:
            log(f"write: peer skipped: {peer['skipped']}")

        # Warm both up (imports, first-request code paths, SQLAlchemy statement caches).
        for i in range(50):
            charter.iteration(-1 - i)
            if peer_server:
                peer_server.iteration(-1 - i)
        for timed in (charter.timed, *( [peer_server.timed] if peer_server else [])):
            for samples in timed.samples.values():
                samples.clear()

        per_round = max(1, iterations // rounds)
        round_budget = budget_s / rounds / (2 if peer_server else 1)
        log(f"write: {rounds} rounds of up to {per_round} iterations per server ...")
        count = 0
        wall = {"charter": 0.0, "mlflow": 0.0}
        for _ in range(rounds):
            for name, server in (("charter", charter), ("mlflow", peer_server)):
                if server is None:
                    continue
                t0 = time.monotonic()
                for j in range(per_round):
                    server.iteration(count + j)
                    if time.monotonic() - t0 > round_budget:
                        break
                wall[name] += time.monotonic() - t0
            count += per_round

        after = charter.audit()
        writes = len(charter.timed.samples["create"]) + len(charter.timed.samples["delete"])
        results["charter"] = _stats(charter.timed, wall["charter"])
        results["charter"]["audit"] = {
            "verified_ok": after["ok"],
            "records_before": before["records"],
            "records_after": after["records"],
            "new_records": after["records"] - before["records"],
            "audited_writes_timed": writes,
            "checkpoints": after["checkpoints"],
        }
        if not after["ok"] or after["records"] - before["records"] < writes:
            raise AssertionError(f"the audit trail does not hold every write: {after}")
        results["target_met"] = results["charter"]["create"]["p50"] <= TARGET_P50_MS

        log(f"write: concurrent phase, {concurrency} connections x {concurrent_seconds:.0f}s each ...")
        results["charter"]["concurrent_create"] = loadgen({
            "url": charter.url, "method": "POST", "path": "/api/v1/tokens",
            "headers": {"authorization": f"Bearer {charter.admin_bearer}"},
            "json": {"principal": "sam", "description": "load {n}"}, "expect": [201],
            "concurrency": concurrency, "duration": concurrent_seconds, "max_requests": 50000,
        })
        if peer_server:
            peer.update(_stats(peer_server.timed, wall["mlflow"]))
            peer["concurrent_create"] = loadgen({
                "url": peer_server.url, "method": "POST",
                "path": "/api/2.0/mlflow/registered-models/create",
                "json": {"name": f"{peer_server.prefix}-load-{{n}}"}, "expect": [200],
                "warmup_path": "/health",
                "concurrency": concurrency, "duration": concurrent_seconds, "max_requests": 50000,
            })
            peer["ratios"] = _ratios(results["charter"], peer)
    finally:
        if peer_server:
            peer_server.close()
        if charter:
            charter.close()
        shutil.rmtree(directory, ignore_errors=True)
    results["peer"] = peer
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    return results


def _mlflow_version(executable: Path) -> str | None:
    try:
        out = subprocess.run([str(executable), "--version"], capture_output=True, text=True,
                             timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.strip().split()[-1] if out.strip() else None


def _stats(timed: Timed, wall_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {name: summarize(s, "ms") for name, s in timed.samples.items()}
    total = sum(len(s) for s in timed.samples.values())
    for name, samples in timed.samples.items():
        mean_s = sum(samples) / len(samples) / 1e9 if samples else 0
        out[name]["requests_per_s_sequential"] = round(1 / mean_s, 1) if mean_s else None
    out["sequential_requests_per_s_all"] = round(total / wall_s, 1) if wall_s else None
    return out


def _ratios(charter: dict[str, Any], peer: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for op in ("create", "read", "delete"):
        for q in ("p50", "p99"):
            out[f"{op}_{q}"] = ratio(charter[op][q], peer[op][q])
    c, p = charter.get("concurrent_create", {}), peer.get("concurrent_create", {})
    if c.get("requests_per_s") and p.get("requests_per_s"):
        out["concurrent_create_requests_per_s"] = round(c["requests_per_s"] / p["requests_per_s"], 3)
    return out


def report(results: dict[str, Any]) -> str:
    ch, peer = results["charter"], results["peer"]
    labels = {
        "create": ("POST /api/v1/tokens (audited write)  [target]", "POST registered-models/create"),
        "read": ("GET /api/v1/whoami (read)", "GET registered-models/get"),
        "delete": ("DELETE /api/v1/tokens/{id} (audited write)", "DELETE registered-models/delete"),
    }
    rows = []
    for op, (charter_label, peer_label) in labels.items():
        s = ch[op]
        rows.append([f"Charter  {charter_label}", s["n"], s["p50"], s["p90"], s["p99"], s["mean"],
                     s["requests_per_s_sequential"]])
        if op in peer:
            s = peer[op]
            rows.append([f"MLflow   {peer_label}", s["n"], s["p50"], s["p90"], s["p99"], s["mean"],
                         s["requests_per_s_sequential"]])
    lines = [table(
        f"API over loopback, milliseconds, one keep-alive connection, sequential "
        f"(target: audited write p50 <= {TARGET_P50_MS:.0f} ms)",
        ["request", "n", "p50", "p90", "p99", "mean", "req/s"], rows), ""]
    conc = [["Charter  POST /api/v1/tokens", ch.get("concurrent_create", {})]]
    if "concurrent_create" in peer:
        conc.append(["MLflow   POST registered-models/create", peer["concurrent_create"]])
    crow = []
    for label, c in conc:
        lat = c.get("latency") or {}
        crow.append([label, c.get("concurrency"), c.get("completed"), c.get("errors"),
                     c.get("requests_per_s"), lat.get("p50"), lat.get("p99")])
    lines += [table("Concurrent writes (separate load-generator process)",
                    ["request", "conns", "done", "errors", "req/s", "p50 ms", "p99 ms"], crow), ""]
    verdict = "MET" if results["target_met"] else "MISSED"
    lines.append(f"target audited write (POST /api/v1/tokens) p50 <= {TARGET_P50_MS:.0f} ms: {verdict} "
                 f"({ch['create']['p50']:.2f} ms); revoke p50 {ch['delete']['p50']:.2f} ms")
    audit = ch["audit"]
    lines.append(f"audit trail: verified={audit['verified_ok']}, {audit['new_records']} new records for "
                 f"{audit['audited_writes_timed']} timed writes (+ warm-up), {audit['checkpoints']} "
                 f"signed checkpoints")
    if "skipped" in peer:
        lines.append(f"peer MLflow: SKIPPED - {peer['skipped']}")
    else:
        lines.append(f"peer MLflow {peer['version']} (started in {peer['startup_s']}s)")
        for name, value in peer["ratios"].items():
            if name.startswith("concurrent"):
                lines.append(f"ratio {name} (Charter/MLflow): {value:.2f}x"
                             if value is not None else f"ratio {name}: n/a")
            else:
                lines.append(f"ratio {name} (Charter/MLflow): {describe_ratio(value)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1500, help="iterations per server")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=float, default=50.0, help="seconds for the sequential loops")
    parser.add_argument("--mlflow", help="path of the mlflow executable (its own venv)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--concurrent-seconds", type=float, default=5.0)
    parser.add_argument("--no-peer", action="store_true", help="measure Charter alone")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results = run(args.iterations, args.rounds, args.budget, args.mlflow, args.concurrency,
                  args.concurrent_seconds, with_peer=not args.no_peer)
    print(report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine(), "write": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

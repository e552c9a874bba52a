"""Benchmark: the registry on PostgreSQL with 1,000,000 packages in one group (issue 8).

- A PostgreSQL database created for the run on the server ``CHARTER_BENCH_DATABASE_URL`` names
  (dropped afterwards), the example organization applied, the group ``churn-1m`` in ``ml-dev``
  filled with 1,000,000 versions written through the repository (``allocate_version`` for each, as
  a registration takes it; one transaction per batch; every 10th approved), then ``VACUUM ANALYZE``.
- The real server (``BackgroundServer``, uvicorn in a thread, event dispatcher off) on that
  database; every request authenticated, authorized by Cedar, and (for writes) audited, sent one at
  a time by benchmarks/_loadgen.py in a process of its own (so the client does not share the
  server's GIL), after 20 untimed requests of the same kind:
    list, first page   GET  .../groups/churn-1m/packages?limit=50                 as lena
    list, deep page    GET  .../groups/churn-1m/packages?limit=50&cursor=<after a random version>
    lookup             GET  .../groups/churn-1m/packages/{random version}
    latest approved    GET  .../groups/churn-1m/packages/latest?status=Approved
    register           POST .../groups/churn-1m/packages                          as sam (version 1,000,001 on)
- Target: p99 of list, lookup and register ≤ 20 ms.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Option, bench_main, loadgen, log, machine, table
from bench_registry import _platform, fresh_postgres, populate, skops_model

from charter.examples import acme_document

DATABASE_URL_ENV = "CHARTER_BENCH_DATABASE_URL"
GROUP = "churn-1m"
TARGET_P99_MS = 20.0
PACKAGES = f"/api/v1/accounts/ml-dev/registry/groups/{GROUP}/packages"


def _cursor(after: int) -> str:
    from charter.entrypoints.api.convert import encode_cursor

    cursor = encode_cursor(str(after))
    assert cursor is not None
    return cursor


def run(versions: int = 1_000_000, iterations: int = 2000, budget_s: float = 20.0,
        database_url: str | None = None) -> dict[str, Any]:
    from sqlalchemy import text

    from charter.client.client import Client
    from charter.entrypoints.server import BackgroundServer

    url = database_url or os.environ.get(DATABASE_URL_ENV)
    if not url:
        return {"skipped": f"set {DATABASE_URL_ENV} to a PostgreSQL server"}
    out: dict[str, Any] = {"machine": machine(), "versions": versions, "target_p99_ms": TARGET_P99_MS}
    with fresh_postgres(url) as database, tempfile.TemporaryDirectory(prefix="charter-bench-scale-") as tmp:
        platform, admin_bearer = _platform(Path(tmp), database, background_work=False)
        server = BackgroundServer(platform, "127.0.0.1", 0)
        base = server.start()
        try:
            with Client(base, admin_bearer, timeout=300) as admin:
                admin.apply(acme_document(), filename="examples/acme/charter.yaml")
                bearers = {n: admin.create_token(n, description="bench scale").secret for n in ("sam", "lena")}
            with Client(base, bearers["sam"]) as sam:
                digest = sam.upload_artifact("ml-dev", skops_model(), model_format="skops").sha256
            log(f"scale: writing {versions:,} packages into {GROUP} on PostgreSQL ...")
            out["population"] = populate(platform, versions, 1000, group=GROUP)
            # VACUUM as well as ANALYZE: a table just written is what autovacuum wakes up for, and
            # its pass would otherwise land in the middle of the timings.
            with platform.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
            rng = random.Random(7)
            body = {"format": "skops", "artifacts": [{"path": "model.skops", "sha256": digest}],
                    "lineage": {"run": "scale"}}
            as_lena = {"authorization": f"Bearer {bearers['lena']}"}
            kinds: dict[str, dict[str, Any]] = {
                "list_first_page": {"method": "GET", "path": f"{PACKAGES}?limit=50", "headers": as_lena},
                "list_deep_page": {"method": "GET", "headers": as_lena, "paths": [
                    f"{PACKAGES}?limit=50&cursor={_cursor(rng.randrange(1, versions - 50))}"
                    for _ in range(iterations)]},
                "lookup": {"method": "GET", "headers": as_lena, "paths": [
                    f"{PACKAGES}/{rng.randrange(1, versions + 1)}" for _ in range(iterations)]},
                "latest_approved": {"method": "GET", "path": f"{PACKAGES}/latest?status=Approved",
                                    "headers": as_lena},
                "register": {"method": "POST", "path": PACKAGES, "json": body, "expect": [201],
                             "headers": {"authorization": f"Bearer {bearers['sam']}"}},
            }
            out["api"] = {}
            for name, kind in kinds.items():
                log(f"scale: timing {name} ...")
                step = {"name": name, "expect": [200], **kind}
                loadgen({"url": base, "concurrency": 1, "duration": 5, "max_requests": 20, "steps": [step]})
                timed = loadgen({"url": base, "concurrency": 1, "duration": budget_s, "max_requests": iterations,
                                 "steps": [step]})
                if "error" in timed or timed["errors"]:
                    raise RuntimeError(f"scale: {name} failed: {timed.get('error') or timed['first_errors']}")
                out["api"][name] = timed["latency"]
            with httpx.Client(base_url=base, timeout=30, headers=as_lena) as lena:
                last = lena.get(f"{PACKAGES}/latest", params={"status": "PendingManualApproval"}).json()
            out["last_version"] = last["version"]
        finally:
            server.stop()
            platform.close()
    out["met"] = all(out["api"][k]["p99"] <= TARGET_P99_MS
                     for k in ("list_first_page", "list_deep_page", "lookup", "register"))
    return out


def report(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"## Registry at scale (skipped: {result['skipped']})\n"
    rows = [[name, s["n"], s["p50"], s["p90"], s["p99"], "met" if s["p99"] <= TARGET_P99_MS else "MISSED"]
            for name, s in result["api"].items()]
    return table(f"Registry through the API on PostgreSQL, {result['versions']:,} packages in one group "
                 f"(target p99 ≤ {TARGET_P99_MS:.0f} ms; written in {result['population']['seconds']} s)",
                 ["request", "n", "p50 ms", "p90 ms", "p99 ms", "target"], rows)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, run, report, [
        Option("--versions", int, 1_000_000, "packages written into the group"),
        Option("--iterations", int, 2000, "requests timed per kind"),
        Option("--database-url", str, None, f"the PostgreSQL server (default: ${DATABASE_URL_ENV})")], argv)


if __name__ == "__main__":
    raise SystemExit(main())

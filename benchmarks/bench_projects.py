"""Benchmark: ``charter projects create`` with 1,000 products and 200 shares, through the API.

- The set-up of ``bench_catalog.py`` (the real server in a thread, a fresh SQLite store, the example
  org; 200 portfolios each shared and granted once, train-from-dataset published for real in
  portfolio-0, 999 more products written through the repository).
- Timed: ``POST /api/v1/accounts/ml-dev/projects`` as lena (lead-data-scientist in ml-dev), one
  keep-alive connection, sequential, a new project name each call: each launch checks the share
  and the grant, validates the parameters against the version's JSON Schema, and creates the
  project, its model package group (readers ml-shared-services), its forwarding rule (a new rule
  bumps the org state revision, so the next request reloads the organization) and records its
  pipeline, in one transaction; each response is checked (201, three resources).
  Target: p50 below 50 ms.

    python benchmarks/bench_projects.py [--iterations N] [--budget SECONDS] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import log, machine, summarize, table, time_calls
from bench_catalog import PORTFOLIOS, PRODUCTS, _populate

from charter.examples import acme_document

DEV = "ml-dev"
TARGET_P50_MS = 50.0


def run(iterations: int, budget: float) -> dict[str, Any]:
    from bench_registry import _platform

    from charter.client.client import Client
    from charter.entrypoints.server import BackgroundServer

    with tempfile.TemporaryDirectory(prefix="charter-bench-projects-") as tmp:
        platform, admin_bearer = _platform(Path(tmp))
        background = BackgroundServer(platform, "127.0.0.1", 0)
        url = background.start()
        try:
            with Client(url, admin_bearer) as admin:
                admin.apply(acme_document(), filename="examples/acme/charter.yaml")
                bearers = {n: admin.create_token(n, description="bench").secret for n in ("priya", "lena")}
            log(f"populating {PORTFOLIOS} portfolios, shares and grants, {PRODUCTS} products")
            _populate(url, platform, bearers["priya"])
            with httpx.Client(base_url=url, timeout=30, headers={"authorization": f"Bearer {bearers['lena']}"}) as http:
                path = f"/api/v1/accounts/{DEV}/projects"

                made = iter(range(10**9))  # warm-up calls count too: every name is new

                def call(_: int) -> None:
                    response = http.post(path, json={
                        "name": f"p-{next(made)}", "product": "train-from-dataset",
                        "parameters": {"dataset": "bank-marketing", "target": "y", "threshold": "0.8"}})
                    if response.status_code != 201 or len(response.json()["resources"]) != 3:
                        raise RuntimeError(f"create: HTTP {response.status_code}: {response.text[:300]}")

                samples = time_calls(call, iterations=iterations, budget_s=budget, warmup=20)
        finally:
            background.stop()
            platform.close()
    stats = summarize(samples, "ms")
    return {"benchmark": "projects-create", "portfolios": PORTFOLIOS, "shares": PORTFOLIOS,
            "products": PRODUCTS, "latency": stats, "target_p50_ms": TARGET_P50_MS,
            "met": stats["p50"] < TARGET_P50_MS, "machine": machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds for the timed loop")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    result = run(args.iterations, args.budget)
    s = result["latency"]
    print(table("projects create (POST .../projects as lena), SQLite",
                ["products", "shares", "n", "p50 ms", "p90 ms", "p99 ms", "target p50", "met"],
                [[result["products"], result["shares"], s["n"], s["p50"], s["p90"], s["p99"],
                  f"< {TARGET_P50_MS:g} ms", "yes" if result["met"] else "no"]]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

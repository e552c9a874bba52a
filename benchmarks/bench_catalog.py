"""Benchmark: ``charter catalog imported`` with 1,000 products and 200 shares, through the API.

- The real server (``BackgroundServer``: uvicorn in a thread of this process, port 0, a fresh
  SQLite store, the example org applied). As priya (platform engineer in ml-shared-services),
  through the API: 200 portfolios, each shared once (even ones with ``ou:workloads``, odd ones
  with ``ml-test``) and granted once (every fourth to ``lead-data-scientist``, the others to
  ``ml-engineer``); one real template (examples/acme/templates/train-from-dataset) published.
  The other 999 products (five per portfolio) are written straight through the catalog
  repository in one transaction: publishing them one by one would time the set-up, not the view.
- Timed: ``GET /api/v1/accounts/ml-dev/catalog/imported`` as lena (lead-data-scientist in ml-dev),
  one keep-alive connection, sequential; each response is checked (100 portfolios shared with
  ml-dev, 250 products launchable). Target: p50 below 50 ms.

    python benchmarks/bench_catalog.py [--iterations N] [--budget SECONDS] [--json FILE]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import log, machine, summarize, table, time_calls

from charter.examples import acme_document

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "examples" / "acme" / "templates" / "train-from-dataset"
SHARED, DEV = "ml-shared-services", "ml-dev"
PORTFOLIOS, PRODUCTS = 200, 1000
TARGET_P50_MS = 50.0


def _pack(root: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(root).as_posix())
    return buffer.getvalue()


def _populate(url: str, platform: Any, priya: str) -> None:
    from charter.domain.catalog import Product, ProductKind

    with httpx.Client(base_url=f"{url}/api/v1/accounts/{SHARED}/catalog", timeout=60,
                      headers={"authorization": f"Bearer {priya}"}) as http:
        for i in range(PORTFOLIOS):
            name = f"portfolio-{i}"
            for path, body in (("/portfolios", {"name": name}),
                               (f"/portfolios/{name}/shares", {"target": "ou:workloads" if i % 2 == 0 else "ml-test"}),
                               (f"/portfolios/{name}/grants",
                                {"pattern": "lead-data-scientist" if i % 4 == 0 else "ml-engineer"})):
                response = http.post(path, json=body)
                if response.status_code != 201:
                    raise RuntimeError(f"POST {path}: HTTP {response.status_code}: {response.text[:300]}")
        published = http.post("/portfolios/portfolio-0/publish", content=_pack(TEMPLATE),
                              headers={"content-type": "application/gzip"})
        if published.status_code != 201:
            raise RuntimeError(f"publish: HTTP {published.status_code}: {published.text[:300]}")
    now = datetime.now(UTC)
    with platform.bus.uow_factory() as uow:
        made = 1
        for i in range(PORTFOLIOS):
            for j in range(5):
                if made == PRODUCTS or (i == 0 and j == 0):
                    continue
                uow.catalog.add_product(Product(SHARED, f"portfolio-{i}", f"product-{i}-{j}", ProductKind.PROJECT,
                                                "bench"), now, "priya")
                made += 1
        uow.commit()


def run(iterations: int, budget: float) -> dict[str, Any]:
    from bench_registry import _platform

    from charter.client.client import Client
    from charter.entrypoints.server import BackgroundServer

    with tempfile.TemporaryDirectory(prefix="charter-bench-catalog-") as tmp:
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
                path = f"/api/v1/accounts/{DEV}/catalog/imported"

                def call(_: int) -> None:
                    response = http.get(path)
                    if response.status_code != 200:
                        raise RuntimeError(f"imported: HTTP {response.status_code}: {response.text[:300]}")

                first = http.get(path).json()
                shared = len(first["portfolios"])
                launchable = sum(len(e["launchable"]) for e in first["portfolios"])
                if (shared, launchable) != (100, 250):
                    raise RuntimeError(f"unexpected view: {shared} portfolios, {launchable} launchable")
                samples = time_calls(call, iterations=iterations, budget_s=budget, warmup=20)
        finally:
            background.stop()
            platform.close()
    stats = summarize(samples, "ms")
    return {"benchmark": "catalog-imported", "portfolios": PORTFOLIOS, "shares": PORTFOLIOS,
            "products": PRODUCTS, "shared_with_account": shared, "launchable": launchable,
            "latency": stats, "target_p50_ms": TARGET_P50_MS, "met": stats["p50"] < TARGET_P50_MS,
            "machine": machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds for the timed loop")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    result = run(args.iterations, args.budget)
    s = result["latency"]
    print(table("catalog imported (GET .../catalog/imported as lena), SQLite",
                ["products", "shares", "n", "p50 ms", "p90 ms", "p99 ms", "target p50", "met"],
                [[result["products"], result["shares"], s["n"], s["p50"], s["p90"], s["p99"],
                  f"< {TARGET_P50_MS:g} ms", "yes" if result["met"] else "no"]]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

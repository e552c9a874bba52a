"""Run Charter's benchmarks, each side by side with its peer, and record the results.

    python benchmarks/run.py                 # every benchmark, ~4 minutes on 2 cores
    python benchmarks/run.py --only authz    # or: --only write, --only registry
    python benchmarks/run.py --quick         # a smoke run: fewer samples, same code paths

Prints one table per benchmark and writes every figure to benchmarks/results/latest.json
(``--output`` to choose another file); with ``--only``, the other benchmarks' sections of the
file it replaces are kept, each marked with the run it came from. A peer that is not installed is
skipped with the reason printed; Charter's own figures are always produced. Only loopback
traffic; every loop is bounded by an iteration count and a time budget. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_authz
import bench_promotion
import bench_registry
import bench_serving
import bench_write
from _common import log, machine, version_of


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=HERE.parent, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _busy_processes() -> list[str]:
    """Other processes using CPU right now: the figures are only as quiet as the machine."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,comm", "--sort=-pcpu", "--no-headers"],
                             capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    busy = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and int(parts[0]) != os.getpid():
            try:
                if float(parts[1]) >= 20.0:
                    busy.append(f"{parts[2]} (pid {parts[0]}, {parts[1]}% cpu)")
            except ValueError:
                continue
    return busy


def _cpu_busy_percent(seconds: float = 1.0) -> float | None:
    """How busy all CPUs were over the last ``seconds``, before this run starts (Linux only)."""
    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle
    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    elapsed = total1 - total0
    return round(100.0 * (1 - (idle1 - idle0) / elapsed), 1) if elapsed else None


BENCHMARKS = ("authz", "write", "registry", "promotion", "serving")


def _carry_over(document: dict[str, Any], output: Path) -> None:
    """Keep the sections of benchmarks this run skipped from the file it replaces, each with the
    run it came from, so that the file always holds the latest figure of every benchmark."""
    try:
        previous = json.loads(output.read_text())
    except (OSError, ValueError):
        return
    earlier = previous.get("carried_over", {})
    runs = {}
    for name in BENCHMARKS:
        if name in document or name not in previous:
            continue
        document[name] = previous[name]
        runs[name] = earlier.get(name) or {key: previous.get(key) for key in (
            "generated_at", "git", "versions", "load_average_before", "cpu_busy_percent_before",
            "quick", "elapsed_s")}
    if runs:
        document["carried_over"] = runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Charter's benchmarks, side by side with their peers.")
    parser.add_argument("--only", choices=BENCHMARKS, help="run one benchmark")
    parser.add_argument("--quick", action="store_true", help="a smoke run with few samples")
    parser.add_argument("--mlflow", help="the mlflow executable, in its own venv (see docs/benchmarks.md)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    busy = _busy_processes()
    cpu_busy = _cpu_busy_percent()
    if (cpu_busy or 0) > 10 or busy:
        log(f"note: the machine is not idle ({cpu_busy}% CPU busy over the last second; "
            f"busy processes: {busy or 'none'}); figures will be noisier")
    started = time.monotonic()
    document: dict[str, Any] = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "git": {"commit": _git("rev-parse", "HEAD"),
                "dirty": bool(_git("status", "--porcelain", "--", "src")),
                "dirty_files": (_git("status", "--porcelain", "--", "src") or "").splitlines()},
        "versions": {name: version_of(name) for name in
                     ("charter", "cedarpy", "sqlalchemy", "fastapi", "uvicorn", "httpx", "casbin")},
        "load_average_before": [round(x, 2) for x in load_before],
        "cpu_busy_percent_before": cpu_busy,
        "busy_processes_before": busy,
        "quick": args.quick,
    }
    blocks = []
    if args.only in (None, "authz"):
        log("== authz: Authorizer.decide / CedarPolicyEngine.decide vs pycasbin ==")
        authz = (bench_authz.run(iterations=600, budget_s=3) if args.quick
                 else bench_authz.run(iterations=5000, budget_s=15))
        document["authz"] = authz
        blocks.append(bench_authz.report(authz))
    if args.only in (None, "write"):
        log("== write: audited write through the API vs MLflow's tracking server ==")
        write = (bench_write.run(iterations=90, rounds=3, budget_s=10, mlflow=args.mlflow,
                                 concurrent_seconds=2) if args.quick
                 else bench_write.run(iterations=1500, rounds=5, budget_s=50, mlflow=args.mlflow,
                                      concurrent_seconds=5))
        document["write"] = write
        document["versions"]["mlflow"] = write["peer"].get("version")
        blocks.append(bench_write.report(write))
    if args.only in (None, "registry"):
        log("== registry: register + approve vs MLflow; latest approved of 100,000 versions ==")
        registry = (bench_registry.run(rounds=1, seconds=2, versions=5000, lookups=500, budget_s=2,
                                       mlflow=args.mlflow) if args.quick
                    else bench_registry.run(rounds=2, seconds=5, versions=100_000, lookups=5000,
                                            budget_s=5, mlflow=args.mlflow))
        document["registry"] = registry
        document["versions"]["mlflow"] = registry["peer"].get("version") or document["versions"].get("mlflow")
        document["versions"]["psycopg"] = version_of("psycopg")
        blocks.append(bench_registry.report(registry))
    if args.only in (None, "promotion"):
        log("== promotion: approve in dev -> central package; a 1 GiB copy vs plain copy and hashing ==")
        promotion = (bench_promotion.run(samples=5, big_bytes=64 * 1024 * 1024) if args.quick
                     else bench_promotion.run(samples=30))
        document["promotion"] = promotion
        blocks.append(bench_promotion.report(promotion))
    if args.only in (None, "serving"):
        log("== serving: a Charter endpoint vs mlflow models serve, concurrency 1, 10, 64 ==")
        serving = bench_serving.run(seconds=2 if args.quick else 5, mlflow=args.mlflow)
        document["serving"] = serving
        blocks.append(bench_serving.report(serving))
    document["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    document["elapsed_s"] = round(time.monotonic() - started, 1)

    m = document["machine"]
    print(f"Machine: {m['nproc']} cpus ({m['cpu_model']}), Python {m['python']}, {m['platform']}")
    print(f"CPU busy before the run: {cpu_busy}%; load average before: "
          f"{document['load_average_before']}, after: {document['load_average_after']}")
    for block in blocks:
        print()
        print(block)
    if args.only:
        _carry_over(document, args.output)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nResults written to {args.output} ({document['elapsed_s']}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

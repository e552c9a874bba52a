"""Shared helpers for the benchmarks: timing loops, percentiles, tables, machine facts.

Every loop here is bounded twice, by a number of iterations and by a time budget, so a slow
machine produces fewer samples instead of a run that never ends.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, by linear interpolation."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    rank = (len(sorted_values) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low))


def summarize(samples_ns: Iterable[int], unit: str) -> dict[str, Any]:
    """p50/p90/p99/mean/min/max of nanosecond samples, expressed in ``unit`` (``us`` or ``ms``)."""
    scale = {"us": 1e3, "ms": 1e6}[unit]
    values = sorted(s / scale for s in samples_ns)
    n = len(values)
    return {
        "unit": unit,
        "n": n,
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "mean": round(sum(values) / n, 3) if n else float("nan"),
        "min": round(values[0], 3) if n else float("nan"),
        "max": round(values[-1], 3) if n else float("nan"),
    }


def time_calls(fn: Callable[[int], Any], *, iterations: int, budget_s: float,
               warmup: int = 0) -> list[int]:
    """Call ``fn(i)`` up to ``iterations`` times (or until ``budget_s`` runs out), timing each call.

    ``fn`` gets the iteration number so it can cycle through a request mix. Warm-up calls are
    made first and not recorded. A GC pass runs before the loop so that garbage left by the set-up
    is not collected inside it; the collector then stays on, as it is in production.
    """
    for i in range(warmup):
        fn(i)
    gc.collect()
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = time.monotonic() + budget_s
    for i in range(iterations):
        start = clock()
        fn(i)
        samples.append(clock() - start)
        if (i & 63) == 0 and time.monotonic() > deadline:
            break
    return samples


def ratio(charter: float, peer: float) -> float | None:
    """Charter's figure over the peer's: below 1 means Charter took less time."""
    if not peer or math.isnan(peer):
        return None
    return round(charter / peer, 3)


def describe_ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value <= 1:
        return f"{value:.2f}x (Charter {1 / value:.1f}x faster)" if value > 0 else f"{value:.2f}x"
    return f"{value:.2f}x (Charter {value:.1f}x slower)"


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table that reads well in a terminal and in a CI log."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True)))

    out = [title, line(headers), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def version_of(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu or platform.processor() or None,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }


def free_loopback_port() -> int:
    """A port on 127.0.0.1 that is free right now (for a peer server that needs one named)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    """One closed-loop load run in a process of its own (no GIL shared with the server under
    test); ``{"error": ...}`` when the generator failed."""
    script = Path(__file__).with_name("_loadgen.py")
    # The spec goes in on stdin: a list of paths can outgrow what one argument may hold (128 KiB).
    completed = subprocess.run([sys.executable, str(script), "-"], input=json.dumps(spec), capture_output=True,
                               text=True, timeout=spec["duration"] + 90, check=False)
    if completed.returncode != 0:
        return {"error": completed.stderr[-800:]}
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


@dataclass(frozen=True)
class Option:
    """One command-line option of a benchmark: ``--database-url`` is passed to ``run`` as
    ``database_url``."""

    flag: str
    type: Callable[[str], Any]
    default: Any
    help: str | None = None


def bench_main(doc: str | None, run: Callable[..., dict[str, Any]], report: Callable[[dict[str, Any]], str],
               options: Sequence[Option], argv: list[str] | None = None) -> int:
    """The command line of a benchmark that runs once: its options given to ``run`` by name, the
    report printed, the result also written as JSON with ``--json``; exit status 1 when the result
    says a target was missed (``met`` false)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    for option in options:
        parser.add_argument(option.flag, type=option.type, default=option.default, help=option.help)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = vars(parser.parse_args(argv))
    out: Path | None = args.pop("json")
    result = run(**args)
    print(report(result))
    if out is not None:
        out.write_text(json.dumps(result, indent=1))
    return 0 if result.get("met", True) else 1

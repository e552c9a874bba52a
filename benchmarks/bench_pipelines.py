"""Benchmark: orchestration overhead per step on the local executor, beside Prefect 3.

- Charter: a fresh SQLite platform (``bootstrap``, the default settings: the fork server's
  preload of numpy/scikit-learn/skops on) with the example org; lena creates a chain of 40 no-op
  steps (each takes the previous step's output and writes its own, so each waits for the one
  before) and the runner executes it in this process, exactly as ``charter server`` does: every
  step in its own process in its own process group, forked by the local executor's fork server
  (the bare one: the no-op steps import only the standard library), each change of its state
  (running, succeeded) saved, audited and emitted as an event (a step's success and the next
  step's start in one transaction), its output stored content-addressed (written, fsynced,
  renamed). A ``salt`` parameter differs per run so nothing is reused from the cache. The figure per step is the time from one step's end to the next one's
  end (its whole cost: the process, the database, the artifact store): median over every step of
  every run. Target: median at most 20 ms.
- Prefect 3, in a virtual environment of its own (benchmarks/requirements-prefect.txt), runs the
  same chain as 40 ``@task`` calls in one ``@flow`` on its ephemeral local server, with the same
  measure (end to end of consecutive tasks). Prefect runs tasks in the flow's process, Charter
  starts a process per step: the ratio prices that isolation too.

    python benchmarks/bench_pipelines.py [--runs N] [--steps N] [--prefect PYTHON] [--json FILE] [--profile]

``--profile`` also times the runner's parts (the step's process, the transactions that record its
changes, storing its output with its fsyncs, giving the next step its input) and prints their mean
per step.
The machine's load average is recorded beside the figures: on the shared 2-core machine the other
sessions' work moves them more than any change here.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import describe_ratio, log, machine, ratio, table

from charter.bootstrap import bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.identity import Identity
from charter.domain.pipelines import RunStatus
from charter.examples import acme_document

HERE = Path(__file__).resolve().parent
PREFECT_LOCATIONS = (HERE / ".venv-prefect" / "bin" / "python", Path("/tmp/charter-bench-prefect/bin/python"))
TARGET_MS = 20.0
NOOP = b'''
def step(previous, salt, outputs):
    (outputs / "out").write_text(previous.read_text() + ".")


def first(salt, outputs):
    (outputs / "out").write_text(salt)
'''

PREFECT_SCRIPT = '''
import json, sys, time
from prefect import flow, task

@task
def noop(x):
    return x

@flow
def chain(n, salt):
    ends = []
    x = salt
    for _ in range(n):
        x = noop(x)
        ends.append(time.perf_counter())
    return ends

steps, runs = int(sys.argv[1]), int(sys.argv[2])
chain(2, "warm-up")
deltas = []
for r in range(runs):
    ends = chain(steps, str(r))
    deltas += [(b - a) * 1000 for a, b in zip(ends, ends[1:])]
print(json.dumps({"deltas_ms": deltas}))
'''


def chain_definition(steps: int) -> str:
    lines = ["parameters:", "  salt: {}", "steps:",
             '  - {name: s0, entry_point: "noop:first", inputs: {salt: "param:salt"}, outputs: [out]}']
    for i in range(1, steps):
        lines.append(f'  - {{name: s{i}, entry_point: "noop:step", inputs: {{previous: "step:s{i - 1}.out", '
                     f'salt: "param:salt"}}, outputs: [out]}}')
    return "\n".join(lines) + "\n"


def charter_deltas(steps: int, runs: int) -> tuple[list[float], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        platform = bootstrap(Settings(data_dir=Path(tmp) / "data", pipeline_max_parallel=4))
        log(f"fork server preload: {platform.settings.pipeline_preload_modules}")
        try:
            bus = platform.bus
            init = bus.handle(c.InitOrg("acme"), Identity("system", "bench"))
            admin = bus.authenticate(init.bearer)
            bus.handle(c.ApplyOrg(acme_document()), admin)
            lena = bus.authenticate(bus.handle(c.CreateToken("lena"), admin).bearer)
            bus.handle(c.CreatePipeline("ml-dev", "chain", chain_definition(steps), {"noop.py": NOOP}), lena)
            deltas: list[float] = []
            totals: list[float] = []
            for r in range(runs + 1):  # the first run warms the interpreter's caches; not counted
                run = bus.handle(c.StartPipelineRun("ml-dev", "chain", {"salt": f"run-{r}-{time.time_ns()}"}), lena)
                started = time.perf_counter()
                assert platform.pipelines.run_once()
                elapsed = time.perf_counter() - started
                done = bus.handle(c.GetPipelineRun("ml-dev", run.id), lena)
                assert done.status is RunStatus.SUCCEEDED, done.reason
                assert not any(s.cached for s in done.steps)
                if r == 0:
                    continue
                ends = [s.finished_at for s in done.steps]
                assert all(e is not None for e in ends)
                deltas += [(b - a).total_seconds() * 1000 for a, b in zip(ends, ends[1:], strict=False)]  # type: ignore[operator]
                totals.append(elapsed * 1000 / steps)
                log(f"charter run {r}: {elapsed:.2f} s for {steps} steps")
            return deltas, totals
        finally:
            platform.close()


PARTS = {
    # label: (module, class, method)
    "step process (executor.run_step)": ("charter.adapters.executors.local", "LocalExecutor", "run_step"),
    "recording changes (runner.update: 1 transaction)": ("charter.services.pipeline_runner", "PipelineRunner", "update"),
    "storing an output (artifact put, fsyncs)": ("charter.adapters.artifacts.file", "FileArtifactStore", "put"),
    "giving an input (_blob: a link)": ("charter.services.pipeline_runner", "_Execution", "_blob"),
    "a step in all (_step)": ("charter.services.pipeline_runner", "_Execution", "_step"),
}


def instrument() -> tuple[dict[str, float], collections.Counter[str]]:
    """Wrap the runner's parts with timers (for --profile): total seconds and calls per part."""
    import importlib

    spent: dict[str, float] = collections.defaultdict(float)
    calls: collections.Counter[str] = collections.Counter()
    for label, (module, cls, name) in PARTS.items():
        owner = getattr(importlib.import_module(module), cls)
        original = getattr(owner, name)

        def timed(*args: Any, _original: Any = original, _label: str = label, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label] += time.perf_counter() - started
                calls[_label] += 1

        setattr(owner, name, functools.wraps(original)(timed))
    return spent, calls


def find_prefect(explicit: str | None) -> Path | None:
    named = explicit or os.environ.get("CHARTER_BENCH_PREFECT")
    for candidate in ([Path(named)] if named else list(PREFECT_LOCATIONS)):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def prefect_deltas(python: Path, steps: int, runs: int) -> list[float]:
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=home, PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120")
        script = Path(home) / "chain.py"
        script.write_text(PREFECT_SCRIPT)
        done = subprocess.run([str(python), str(script), str(steps), str(runs)], capture_output=True, text=True,
                              env=env, timeout=900, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"prefect failed: {done.stderr[-3000:]}")
        deltas: list[float] = json.loads(done.stdout.strip().splitlines()[-1])["deltas_ms"]
        return deltas


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--prefect", help="The python of a virtual environment with Prefect 3.")
    parser.add_argument("--json", type=Path, help="Write the results here too.")
    parser.add_argument("--profile", action="store_true", help="Time the runner's parts too.")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    profile = instrument() if args.profile else None
    deltas, totals = charter_deltas(args.steps, args.runs)
    charter_median = statistics.median(deltas)
    result: dict[str, Any] = {"benchmark": "pipelines", "machine": machine(), "steps": args.steps,
                              "runs": args.runs, "target_ms": TARGET_MS,
                              "charter": {"median_ms": round(charter_median, 2),
                                          "p90_ms": round(statistics.quantiles(deltas, n=10)[-1], 2),
                                          "wall_per_step_ms": round(statistics.median(totals), 2)},
                              "preload": Settings().pipeline_preload_modules,
                              "load_average_1m": round(load_before, 2)}
    if profile is not None:
        spent, calls = profile
        steps_run = (args.runs + 1) * args.steps
        result["charter"]["parts_ms"] = {label: round(spent[label] * 1000 / steps_run, 2) for label in PARTS}
        print(table("Where a step's time goes (mean ms per step; parts overlap with 'a step in all')",
                    ["part", "ms per step", "calls"],
                    [[label, spent[label] * 1000 / steps_run, calls[label]] for label in PARTS]))
    rows: list[list[Any]] = [["charter (local executor)", charter_median, result["charter"]["p90_ms"],
                              "process per step"]]
    python = find_prefect(args.prefect)
    if python is None:
        log("Prefect not found: create its venv (see benchmarks/requirements-prefect.txt) for the comparison")
        result["prefect"] = None
    else:
        peer = prefect_deltas(python, args.steps, args.runs)
        peer_median = statistics.median(peer)
        result["prefect"] = {"median_ms": round(peer_median, 2),
                             "p90_ms": round(statistics.quantiles(peer, n=10)[-1], 2), "python": str(python)}
        result["ratio"] = ratio(charter_median, peer_median)
        rows.append(["prefect 3 (ephemeral server)", peer_median, result["prefect"]["p90_ms"], "tasks in the flow process"])
    print(table(f"Orchestration overhead per step, {args.steps}-step chain of no-op steps (ms)",
                ["engine", "median", "p90", "isolation"], rows))
    print(f"target: median <= {TARGET_MS:.0f} ms: {'met' if charter_median <= TARGET_MS else 'NOT met'} "
          f"(load average {load_before:.1f} on {os.cpu_count()} CPUs)")
    if result.get("ratio") is not None:
        print(f"charter / prefect: {describe_ratio(result['ratio'])}")
    result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    print(f"load average after: {result['load_average_1m_after']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

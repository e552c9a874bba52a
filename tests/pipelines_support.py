"""A small real pipeline (three steps of real Python) shared by the pipeline tests."""

from __future__ import annotations

import os
from pathlib import Path

from charter.services.ports import StepJob

CODE: dict[str, bytes] = {
    "steps.py": b'''
import json
import time
from pathlib import Path


def prepare(n, outputs):
    print(f"preparing {n} rows")
    rows = [[i, i % 2] for i in range(int(n))]
    (outputs / "table").write_text(json.dumps(rows))


def train(table, outputs):
    rows = json.loads(Path(table).read_text())
    ones = sum(label for _, label in rows)
    print(f"training on {len(rows)} rows")
    (outputs / "model").write_text(json.dumps({"p": ones / len(rows)}))
    return {"metrics": {"rows": len(rows), "accuracy": 0.9}}


def gate(metrics, threshold):
    ok = metrics["accuracy"] >= float(threshold)
    return ok, f"accuracy {metrics['accuracy']} against {threshold}"


def register(model):
    print("registered", Path(model).read_text())
    return None


def nap(seconds, tag, outputs):
    time.sleep(float(seconds))
    (outputs / "done").write_text(tag)


def crash():
    print("about to fail")
    raise ValueError("boom in the step")


def lazy():
    print("forgot to write the output")
''',
    "pkg/__init__.py": b"",
    "pkg/more.py": b"def helper():\n    return 1\n",
}

DEFINITION = """
name: tiny
parameters:
  n: {default: "10"}
  threshold: {default: "0.5"}
steps:
  - name: prepare
    kind: processing
    entry_point: steps:prepare
    inputs: {n: "param:n"}
    outputs: [table]
  - name: train
    kind: training
    entry_point: steps:train
    inputs: {table: "step:prepare.table"}
    outputs: {model: artifact, metrics: metrics}
  - name: gate
    kind: condition
    entry_point: steps:gate
    inputs: {metrics: "step:train.metrics", threshold: "param:threshold"}
  - name: register
    kind: generic
    entry_point: steps:register
    inputs: {model: "step:train.model"}
    after: [gate]
"""

PARALLEL = """
name: wide
parameters:
  seconds: {default: "0.8"}
  a: {default: "a"}
  b: {default: "b"}
  c: {default: "c"}
steps:
  - {name: a, entry_point: "steps:nap", inputs: {seconds: "param:seconds", tag: "param:a"}, outputs: [done]}
  - {name: b, entry_point: "steps:nap", inputs: {seconds: "param:seconds", tag: "param:b"}, outputs: [done]}
  - {name: c, entry_point: "steps:nap", inputs: {seconds: "param:seconds", tag: "param:c"}, outputs: [done]}
"""

FAILING = """
name: failing
steps:
  - {name: crash, entry_point: "steps:crash", retries: 1}
"""


def step_job(code_dir: Path, entry: str, *, inputs: dict[str, str] | None = None,
             outputs: dict[str, str] | None = None, timeout: float = 30.0, kind: str = "generic") -> StepJob:
    """One step of the code in ``code_dir``, as the runner hands it to an executor (any executor)."""
    work = code_dir.parent / "work" / entry.replace(":", "-")
    work.mkdir(parents=True, exist_ok=True)
    return StepJob("run1", "s", 1, kind, str(code_dir), entry,
                   {k: {"kind": "value", "value": v} for k, v in (inputs or {}).items()},
                   outputs or {}, str(work / "out"), str(work / "log"), timeout)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()

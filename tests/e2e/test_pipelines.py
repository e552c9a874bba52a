"""Pipelines through the real server and the CLI: lena creates a three-step pipeline of real
Python from a folder, starts it, the server's runner executes it, `show` draws it and `logs`
prints what a step wrote."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.pipelines_support import CODE

from .support import CliResult

Cli = Callable[..., CliResult]
THREE_STEPS = """
parameters:
  n: {default: "10"}
  threshold: {default: "0.5"}
steps:
  - {name: prepare, kind: processing, entry_point: "steps:prepare", inputs: {n: "param:n"}, outputs: [table]}
  - name: train
    kind: training
    entry_point: steps:train
    inputs: {table: "step:prepare.table"}
    outputs: {model: artifact, metrics: metrics}
  - name: gate
    kind: condition
    entry_point: steps:gate
    inputs: {metrics: "step:train.metrics", threshold: "param:threshold"}
"""


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, Path]:
    code = tmp_path / "code"
    for path, content in CODE.items():
        (code / path).parent.mkdir(parents=True, exist_ok=True)
        (code / path).write_bytes(content)
    definition = tmp_path / "pipeline.yaml"
    definition.write_text(THREE_STEPS)
    return definition, code


def _ok(result: CliResult) -> Any:
    assert result.returncode == 0, str(result)
    return result.json()


def _wait(cli: Cli, token: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = _ok(cli("--output", "json", "pipelines", "show", run_id, "--account", "ml-dev",
                                      token=token))
        if run["status"] not in ("Pending", "Running") or time.monotonic() > deadline:
            return run
        time.sleep(0.2)


def test_a_pipeline_created_from_a_folder_runs_on_the_server_and_is_drawn(
        cli: Cli, persona_tokens: dict[str, str], folder: tuple[Path, Path]) -> None:
    lena, sam = persona_tokens["lena"], persona_tokens["sam"]
    definition, code = folder
    created = _ok(cli("--output", "json", "pipelines", "create", "e2e-tiny", "-f", str(definition),
                      "--code", str(code), "--account", "ml-dev", token=lena))
    assert created["version"] >= 1
    listed = _ok(cli("--output", "json", "pipelines", "list", "--account", "ml-dev", token=sam))
    assert "e2e-tiny" in [p["name"] for p in listed]
    started = _ok(cli("--output", "json", "pipelines", "start", "e2e-tiny", "--param", "n=8",
                      "--account", "ml-dev", token=sam))
    run = _wait(cli, lena, started["id"])
    assert run["status"] == "Succeeded", run
    assert run["layers"] == [["prepare"], ["train"], ["gate"]]
    assert run["started_by"] == "sam"
    drawn = cli("pipelines", "show", started["id"], "--account", "ml-dev", token=lena)
    assert drawn.returncode == 0, str(drawn)
    for text in ("layer 1", "prepare", "train", "gate", "Succeeded", "accuracy=0.9"):
        assert text in drawn.stdout
    logs = cli("pipelines", "logs", started["id"], "--step", "prepare", "--account", "ml-dev", token=lena)
    assert logs.returncode == 0 and "preparing 8 rows" in logs.stdout, str(logs)
    followed = _ok(cli("--output", "json", "pipelines", "logs", started["id"], "--step", "train", "--follow",
                       "--account", "ml-dev", token=lena))
    assert "training on 8 rows" in followed["log"]
    runs = _ok(cli("--output", "json", "pipelines", "runs", "e2e-tiny", "--account", "ml-dev", token=lena))
    assert runs[0]["id"] == started["id"]


def test_bad_parameters_and_outsiders_are_refused_before_anything_runs(
        cli: Cli, persona_tokens: dict[str, str], folder: tuple[Path, Path]) -> None:
    lena = persona_tokens["lena"]
    definition, code = folder
    _ok(cli("--output", "json", "pipelines", "create", "e2e-refusals", "-f", str(definition), "--code", str(code),
            "--account", "ml-dev", token=lena))
    bad = cli("--output", "json", "pipelines", "start", "e2e-refusals", "--param", "depth=3", "--account", "ml-dev",
              token=lena)
    assert bad.returncode != 0 and "unknown parameter 'depth'" in bad.stderr + bad.stdout
    outsider = cli("--output", "json", "pipelines", "start", "e2e-refusals", "--account", "ml-dev",
                   token=persona_tokens["priya"])
    assert outsider.returncode != 0 and "PermissionDenied" in outsider.stderr + outsider.stdout
    assert _ok(cli("--output", "json", "pipelines", "runs", "e2e-refusals", "--account", "ml-dev", token=lena)) == []


def test_a_running_step_is_cancelled_from_the_cli(
        cli: Cli, persona_tokens: dict[str, str], folder: tuple[Path, Path], tmp_path: Path) -> None:
    lena = persona_tokens["lena"]
    _, code = folder
    slow = tmp_path / "slow.yaml"
    slow.write_text('parameters: {s: {default: "30"}, t: {default: "x"}}\n'
                    'steps: [{name: nap, entry_point: "steps:nap", inputs: {seconds: "param:s", tag: "param:t"},'
                    ' outputs: [done]}]\n')
    _ok(cli("--output", "json", "pipelines", "create", "e2e-slow", "-f", str(slow), "--code", str(code),
            "--account", "ml-dev", token=lena))
    started = _ok(cli("--output", "json", "pipelines", "start", "e2e-slow", "--account", "ml-dev", token=lena))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = _ok(cli("--output", "json", "pipelines", "show", started["id"], "--account", "ml-dev", token=lena))
        if run["steps"][0]["status"] == "Running":
            break
        time.sleep(0.2)
    _ok(cli("--output", "json", "pipelines", "cancel", started["id"], "--account", "ml-dev", token=lena))
    done = _wait(cli, lena, started["id"], timeout=20)
    assert done["status"] == "Cancelled"

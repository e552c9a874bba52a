"""``charter pipelines``: define pipelines from a template's code, start and cancel runs, draw a
run's DAG with its step states, and read (or follow) a step's log.

The server never reads a path of the caller's: ``create`` packs the code folder here, with the
definition added at ``pipeline.yaml``, and uploads the archive.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from charter.client import models as m
from charter.entrypoints.cli.catalog import SKIPPED, pack_directory
from charter.entrypoints.cli.output import Format, console, show, table, when
from charter.entrypoints.cli.registry import _account, _pairs
from charter.entrypoints.cli.state import state_of as _state
from charter.errors import ValidationError

app = typer.Typer(no_args_is_help=True, help="Pipelines: DAGs of steps, their runs, steps and logs.")

AccountOpt = Annotated[str | None, typer.Option("--account", help="Account (default: the assumed role's).")]
DEFINITION_FILE = "pipeline.yaml"
COLOURS = {"Pending": "grey50", "Running": "yellow", "Succeeded": "green", "Failed": "red",
           "Cancelled": "magenta", "Skipped": "grey50", "SucceededNotRegistered": "cyan"}
MARKS = {"Pending": "○", "Running": "◐", "Succeeded": "●", "Failed": "✗", "Cancelled": "■", "Skipped": "–",
         "SucceededNotRegistered": "◍"}
FINISHED = {"Succeeded", "Failed", "Cancelled", "Skipped"}


def _status(status: str) -> str:
    return f"[{COLOURS.get(status, 'white')}]{MARKS.get(status, '?')} {status}[/]"


def pack_pipeline(definition: Path, code: Path, out: IO[bytes]) -> None:
    """The code folder as a tar.gz with the definition at pipeline.yaml (catalog packing)."""
    if not definition.is_file():
        raise ValidationError(f"no such file: {definition}", path=str(definition))
    if not code.is_dir():
        raise ValidationError(f"no such folder: {code}", path=str(code))
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "code"
        shutil.copytree(code, staged, symlinks=True, ignore=shutil.ignore_patterns(*SKIPPED))
        shutil.copyfile(definition, staged / DEFINITION_FILE)
        pack_directory(staged, out, required=DEFINITION_FILE)


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    file: Annotated[Path, typer.Option("-f", "--file", help="The pipeline definition (YAML).")],
    code: Annotated[Path, typer.Option("--code", help="The folder with the steps' code.")],
    account: AccountOpt = None,
) -> None:
    """Create a pipeline from a definition and its code folder (or give it its next version)."""
    where = _account(ctx, account)
    with tempfile.TemporaryFile() as archive:
        pack_pipeline(file, code, archive)
        archive.seek(0)
        with _state(ctx).client() as client:
            created = client.create_pipeline(where, name, archive)
    show(_state(ctx).output, created, lambda: console.print(
        f"Pipeline {created.crn} version {created.version} (code {created.code_sha256[:12]})", highlight=False))


@app.command("list")
def list_(ctx: typer.Context, account: AccountOpt = None) -> None:
    """The account's pipelines."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.pipelines(where))
    show(_state(ctx).output, items, lambda: table(f"Pipelines in {where}", ["name", "version", "by", "created"], [
        (p.name, str(p.version), p.created_by, when(p.created_at)) for p in items]))


@app.command("start")
def start(ctx: typer.Context, name: str,
          param: Annotated[list[str] | None, typer.Option("--param", help="A parameter as k=v (repeatable).")] = None,
          account: AccountOpt = None) -> None:
    """Start a run; the runner in `charter server` executes it."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        run = client.start_pipeline(where, name, _pairs(param, "--param"))
    show(_state(ctx).output, run, lambda: console.print(f"Started run {run.id} of {name} ({_status(run.status)})"))


@app.command("runs")
def runs(ctx: typer.Context, name: str, account: AccountOpt = None) -> None:
    """A pipeline's runs, newest first."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        items = list(client.pipeline_runs(where, name))
    show(_state(ctx).output, items, lambda: table(f"Runs of {name}", ["id", "status", "by", "created", "reason"], [
        (r.id, _status(r.status), r.started_by, when(r.created_at), escape(r.reason[:60])) for r in items]))


def draw(run: m.PipelineRunOut) -> Tree:
    """The run's DAG in layers: each layer depends only on those above it; a step names what it
    waits for, its state (coloured), attempts and whether it was reused from the cache."""
    tree = Tree(f"[bold]{escape(run.pipeline)}[/] run {run.id}  {_status(run.status)}"
                + (f"  [dim]{escape(run.reason[:200])}[/]" if run.reason else ""))
    steps = {s.name: s for s in run.steps}
    for i, layer in enumerate(run.layers, 1):
        branch = tree.add(f"[dim]layer {i}[/]")
        for name in layer:
            s = steps[name]
            extra = []
            if s.upstream:
                extra.append("after " + ", ".join(s.upstream))
            if s.attempts > 1:
                extra.append(f"{s.attempts} attempts")
            if s.cached:
                extra.append("cached")
            node = branch.add(f"{_status(s.status)}  [bold]{escape(name)}[/] [dim]({s.kind})[/]"
                              + (f"  [dim]{escape('; '.join(extra))}[/]" if extra else ""))
            for output, metrics in s.metrics.items():
                if isinstance(metrics, dict) and not output.startswith("_"):
                    node.add(f"[dim]{escape(output)}:[/] " + escape(", ".join(f"{k}={v}" for k, v in metrics.items())))
            if s.error and s.status in ("Failed", "Skipped"):
                node.add(f"[red]{escape(s.error.splitlines()[0][:200])}[/]")
    return tree


@app.command("show")
def show_run(ctx: typer.Context, run_id: str, account: AccountOpt = None) -> None:
    """A run: its DAG drawn with each step's state."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        run = client.pipeline_run(where, run_id)
    show(_state(ctx).output, run, lambda: console.print(draw(run)))


@app.command("logs")
def logs(ctx: typer.Context, run_id: str,
         step: Annotated[str, typer.Option("--step", help="The step whose log to show.")],
         follow: Annotated[bool, typer.Option("--follow", help="Keep printing until the step ends.")] = False,
         account: AccountOpt = None) -> None:
    """A step's log; with --follow, what it prints as it runs, until it ends."""
    where = _account(ctx, account)
    offset = 0
    text: list[str] = []
    with _state(ctx).client() as client:
        while True:
            chunk, status = client.step_log(where, run_id, step, offset=offset)
            offset += len(chunk)
            decoded = chunk.decode(errors="replace")
            text.append(decoded)
            if _state(ctx).output is not Format.JSON and decoded:
                sys.stdout.write(decoded)
                sys.stdout.flush()
            if not follow or status in FINISHED:
                break
            time.sleep(0.5)
    if _state(ctx).output is Format.JSON:
        print(json.dumps({"run": run_id, "step": step, "status": status, "log": "".join(text)}, indent=2))


@app.command("cancel")
def cancel(ctx: typer.Context, run_id: str, account: AccountOpt = None) -> None:
    """Cancel a run: a pending one at once, a running one's steps are killed."""
    where = _account(ctx, account)
    with _state(ctx).client() as client:
        run = client.cancel_pipeline_run(where, run_id)
    show(_state(ctx).output, run, lambda: console.print(
        f"Run {run.id}: {_status(run.status)}" + (" (cancelling)" if run.cancel_requested and run.status == "Running"
                                                  else "")))

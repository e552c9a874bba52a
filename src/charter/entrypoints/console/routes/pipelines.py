"""Pipelines: their runs, a run's DAG drawn with its steps' states, a step's log, starting a run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from charter.domain import commands as c
from charter.domain.authz import Action
from charter.domain.pipelines import StepStatus
from charter.entrypoints.api import convert
from charter.entrypoints.console import views
from charter.entrypoints.console.svg import Node, draw
from charter.entrypoints.console.web import Console, ConsoleRoute, problem
from charter.errors import CharterError, ValidationError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
ConsoleDep = Annotated[Console, Depends(Console)]
Name = Annotated[str, Path(max_length=63)]
RunId = Annotated[str, Path(max_length=64)]
LOG_LIMIT = 1024 * 1024


@router.get("/accounts/{account}/pipelines")
def pipelines(account: Name, console: ConsoleDep) -> Response:
    found = views.all_pages(console, lambda p: c.ListPipelines(account, p), convert.pipeline)
    return console.render("pipelines.html", account=account, pipelines=found)


def render_pipeline(console: Console, account: str, name: str, errors: dict[str, str] | None = None,
                    status: int = 200) -> Response:
    pipeline = convert.pipeline(console(c.GetPipeline(account, name)))
    runs = views.all_pages(console, lambda p: c.ListPipelineRuns(account, name, p), convert.pipeline_run)
    may_start = console.allowed(str(Action.START_PIPELINE_RUN), account, name)
    return console.render("pipeline.html", status=status, account=account, pipeline=pipeline,
                          runs=sorted(runs, key=lambda r: r.created_at, reverse=True), may_start=may_start,
                          errors=errors or {}, parameters=console.field("parameters"))


@router.get("/accounts/{account}/pipelines/{name}")
def pipeline(account: Name, name: Name, console: ConsoleDep) -> Response:
    return render_pipeline(console, account, name)


def parse_parameters(text: str) -> dict[str, str]:
    """``key=value`` lines, as the CLI's ``--param key=value``."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"line {number}: write key=value", field="parameters")
        out[key.strip()] = value.strip()
    return out


@router.post("/accounts/{account}/pipelines/{name}/runs")
def start_run(account: Name, name: Name, console: ConsoleDep) -> Response:
    try:
        run = console(c.StartPipelineRun(account, name, parse_parameters(console.field("parameters"))))
    except CharterError as error:
        return render_pipeline(console, account, name, problem(error), error.status)
    return console.redirect(f"/accounts/{account}/runs/{run.id}", f"Started run {run.id} of {name}")


def dag(run: Any) -> Any:
    steps = {s.name: s for s in run.steps}
    layers = [[Node(n, n, f"{steps[n].kind} · {steps[n].status}" if n in steps else "",
                    steps[n].status if n in steps else "", f"#step-{n}") for n in layer] for layer in run.layers]
    edges = [(up, s.name) for s in run.steps for up in s.upstream]
    return draw(layers, edges, f"Steps of run {run.id}")


@router.get("/accounts/{account}/runs/{run_id}")
def run(account: Name, run_id: RunId, console: ConsoleDep) -> Response:
    found = convert.pipeline_run(console(c.GetPipelineRun(account, run_id)))
    live = found.status in ("Pending", "Running")
    return console.render("run.html", account=account, run=found, picture=dag(found), live=live)


@router.get("/accounts/{account}/runs/{run_id}/steps/{step}/log")
def log(account: Name, run_id: RunId, step: Name, console: ConsoleDep) -> Response:
    found = console(c.GetStepLog(account, run_id, step))
    chunks = found.chunks
    if found.state.status is StepStatus.RUNNING:
        path = console.request.app.state.platform.pipelines.live_log(found.run, step)
        chunks = iter([path.read_bytes()[-LOG_LIMIT:]]) if path is not None and path.exists() else iter(())
    data = bytearray()
    for chunk in chunks:
        data.extend(chunk)
        if len(data) > LOG_LIMIT:
            del data[: len(data) - LOG_LIMIT]  # the tail is what a reader of a long log wants
    return console.render("log.html", account=account, run_id=run_id, step=step,
                          text=data.decode("utf-8", "replace"), status_of=str(found.state.status))

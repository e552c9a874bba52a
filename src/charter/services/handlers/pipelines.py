"""Pipelines: definitions with their code, runs started and cancelled, and what runs left behind.

A run is only recorded here (Pending); the runner in ``charter server`` claims and executes it."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from charter.domain import commands as c
from charter.domain.authz import Action, Resource
from charter.domain.crn import CRN
from charter.domain.events import Event, event_type
from charter.domain.names import check_name
from charter.domain.org import Account
from charter.domain.pipelines import (
    Pipeline,
    PipelineRun,
    RunStatus,
    StepState,
    StepStatus,
    definition_digest,
    new_run,
    resolve_defaults,
    resolve_parameters,
)
from charter.errors import InvalidTransition, NotFound, TooLarge, ValidationError
from charter.services import catalog_archive as archive
from charter.services.handlers.registry import artifact_store
from charter.services.messagebus import HandlerContext
from charter.services.pipeline_spec import load_definition
from charter.services.ports import ArtifactStore, Page, paginate

MAX_CODE_FILES = 1000
MAX_CODE_BYTES = 64 * 1024 * 1024
MAX_PARAMETER_CHARS = 4096
DEFINITION_FILE = "pipeline.yaml"


def new_run_id(now: datetime) -> str:
    """32 hex digits that sort by creation time."""
    return f"{int(now.timestamp() * 1_000_000):016x}{secrets.token_hex(8)}"


def keyed_run_id(account: str, pipeline: str, key: str, at: datetime) -> str:
    """The id of the run a keyed request starts: sorted by the request's time like any run id, the
    rest derived from the key, so the same request again names the same run."""
    digest = hashlib.sha256(f"{account}\0{pipeline}\0{key}".encode()).hexdigest()[:16]
    return f"{int(at.timestamp() * 1_000_000):016x}{digest}"


def _kind(account: Account) -> dict[str, Any]:
    return {"account_kind": str(account.kind), "stage": str(account.stage or "")}


def pipeline_resource(account: Account, name: str) -> Resource:
    return Resource(CRN(account.name, "pipelines", "pipeline", name), "Pipeline", _kind(account))


def run_resource(account: Account, run: PipelineRun) -> Resource:
    return Resource(run.crn, "PipelineRun", {**_kind(account), "pipeline": run.pipeline,
                                              "started_by": run.started_by})


def code_digest(manifest: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def run_event(run: PipelineRun, previous: RunStatus | None) -> Event:
    return Event(event_type("pipelines", "run", "state-changed"), run.account, str(run.crn), {
        "run": run.id, "pipeline": run.pipeline, "status": str(run.status),
        "previous_status": str(previous) if previous else None, "reason": run.reason,
        "started_by": run.started_by, "parameters": dict(run.parameters)})


def step_event(run: PipelineRun, step: str, previous: StepStatus | None) -> Event:
    state = run.step(step)
    return Event(event_type("pipelines", "step", "state-changed"), run.account, f"{run.crn}/{step}", {
        "run": run.id, "pipeline": run.pipeline, "step": step, "status": str(state.status),
        "previous_status": str(previous) if previous else None, "attempts": state.attempts,
        "cached": state.cached, "outputs": dict(state.outputs), "error": state.error})


def _require_pipeline(ctx: HandlerContext, account: Account, name: str) -> Pipeline:
    found = ctx.uow.pipelines.get_pipeline(account.name, name)
    if found is None:
        ctx.authorize(Action.READ_PIPELINE, pipeline_resource(account, name))
        raise NotFound(f"no pipeline {name!r} in {account.name}", account=account.name, pipeline=name)
    return found


def _require_run(ctx: HandlerContext, account: Account, run_id: str) -> PipelineRun:
    run = ctx.uow.pipelines.get_run(run_id) if 0 < len(run_id) <= 64 else None
    if run is None or run.account != account.name:
        ctx.authorize(Action.READ_PIPELINE_RUN, Resource(CRN(account.name, "pipelines", "run", "-"),
                                                         "PipelineRun", _kind(account)))
        raise NotFound(f"no pipeline run {run_id!r} in {account.name}", account=account.name, run=run_id)
    return run


def _check_code(files: dict[str, bytes]) -> None:
    if len(files) > MAX_CODE_FILES:
        raise TooLarge(f"a pipeline's code holds at most {MAX_CODE_FILES} files", limit=MAX_CODE_FILES)
    if sum(len(b) for b in files.values()) > MAX_CODE_BYTES:
        raise TooLarge(f"a pipeline's code holds at most {MAX_CODE_BYTES} bytes", limit=MAX_CODE_BYTES)


def _stored(store: ArtifactStore, account: str, content: bytes) -> str:
    """The digest of ``content``, stored in ``account`` unless a blob of that digest is there already
    (blobs never change under their digest; a second project of one template writes nothing)."""
    digest = hashlib.sha256(content).hexdigest()
    if store.stat(account, digest) is None:
        store.put(account, [content], expected_sha256=digest)
    return digest


def create_pipeline(cmd: c.CreatePipeline, ctx: HandlerContext) -> Pipeline:
    account = ctx.account(cmd.account)
    resource = pipeline_resource(account, cmd.name)
    ctx.authorize(Action.CREATE_PIPELINE, resource)
    name = check_name(cmd.name, "pipeline")
    _check_code(cmd.files)
    definition = load_definition(cmd.definition, cmd.files, name=name)
    defaults = resolve_defaults(definition, cmd.defaults)
    store = artifact_store(ctx)
    manifest = {path: _stored(store, account.name, content) for path, content in sorted(cmd.files.items())}
    existing = ctx.uow.pipelines.get_pipeline(account.name, name)
    pipeline = Pipeline(account.name, name, cmd.definition, definition_digest(cmd.definition),
                        code_digest(manifest), ctx.identity.principal, ctx.clock.now(),
                        existing.version + 1 if existing else 1, defaults)
    ctx.uow.pipelines.put_pipeline(pipeline, manifest)
    ctx.audit(Action.CREATE_PIPELINE, resource, version=pipeline.version, digest=pipeline.digest,
              code_sha256=pipeline.code_sha256, steps=[s.name for s in definition.steps],
              defaults=defaults)
    ctx.emit(Event(event_type("pipelines", "pipeline", "defined"), account.name, str(pipeline.crn), {
        "pipeline": name, "version": pipeline.version, "digest": pipeline.digest,
        "code_sha256": pipeline.code_sha256, "actor": ctx.identity.principal}))
    return pipeline


def create_from_archive(cmd: c.CreatePipelineFromArchive, ctx: HandlerContext) -> Pipeline:
    account = ctx.account(cmd.account)
    # Decided before a byte is read: a refused caller learns nothing about the archive.
    ctx.authorize(Action.CREATE_PIPELINE, pipeline_resource(account, cmd.name))
    files: dict[str, bytes] = {}
    with archive.spool(cmd.chunks, min(cmd.max_bytes, MAX_CODE_BYTES)) as spooled, \
            archive.open_archive(spooled) as tar:
        for member in archive.members(tar, required=DEFINITION_FILE):
            files[member.path] = archive.read_small(tar, member, MAX_CODE_BYTES)
    definition = files.pop(DEFINITION_FILE).decode("utf-8", errors="strict")
    return create_pipeline(c.CreatePipeline(cmd.account, cmd.name, definition, files), ctx)


def list_pipelines(cmd: c.ListPipelines, ctx: HandlerContext) -> Page[Pipeline]:
    account = ctx.account(cmd.account)
    ctx.authorize(Action.LIST_PIPELINES, pipeline_resource(account, "*"))
    items = ctx.uow.pipelines.list_pipelines(account.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda p: p.name)


def get_pipeline(cmd: c.GetPipeline, ctx: HandlerContext) -> Pipeline:
    account = ctx.account(cmd.account)
    pipeline = _require_pipeline(ctx, account, cmd.name)
    ctx.authorize(Action.READ_PIPELINE, pipeline_resource(account, pipeline.name))
    return pipeline


def start_run(cmd: c.StartPipelineRun, ctx: HandlerContext) -> PipelineRun:
    account = ctx.account(cmd.account)
    pipeline = _require_pipeline(ctx, account, cmd.pipeline)
    resource = pipeline_resource(account, pipeline.name)
    ctx.authorize(Action.START_PIPELINE_RUN, resource)
    for key, value in cmd.parameters.items():
        if not isinstance(value, str) or len(value) > MAX_PARAMETER_CHARS:
            raise ValidationError(f"parameter {key!r}: a string of at most {MAX_PARAMETER_CHARS} characters",
                                  field=f"parameters.{key}")
    if cmd.idempotency_key is not None and not 0 < len(cmd.idempotency_key) <= 200:
        raise ValidationError("an idempotency key has 1 to 200 characters", field="idempotency_key")
    definition = load_definition(pipeline.definition, name=pipeline.name)
    parameters = resolve_parameters(definition, {**pipeline.defaults, **cmd.parameters})
    now = ctx.clock.now()
    run_id = new_run_id(now)
    if cmd.idempotency_key is not None:
        run_id = keyed_run_id(account.name, pipeline.name, cmd.idempotency_key, cmd.requested_at or now)
        earlier = ctx.uow.pipelines.get_run(run_id)
        if earlier is not None:  # the same request again: its run, not a second one
            ctx.audit(Action.START_PIPELINE_RUN, run_resource(account, earlier), pipeline=pipeline.name,
                      idempotency_key=cmd.idempotency_key, repeated=True)
            return earlier
    run = new_run(run_id, pipeline, definition, parameters, ctx.identity.principal, now)
    ctx.uow.pipelines.add_run(run)
    ctx.audit(Action.START_PIPELINE_RUN, run_resource(account, run), pipeline=pipeline.name,
              version=pipeline.version, parameters=parameters,
              **({"idempotency_key": cmd.idempotency_key} if cmd.idempotency_key else {}))
    ctx.emit(run_event(run, None))
    return run


def cancel_run(cmd: c.CancelPipelineRun, ctx: HandlerContext) -> PipelineRun:
    account = ctx.account(cmd.account)
    run = _require_run(ctx, account, cmd.run_id)
    resource = run_resource(account, run)
    ctx.authorize(Action.CANCEL_PIPELINE_RUN, resource)
    if run.status.finished:
        raise InvalidTransition(f"run {run.id} is {run.status}; it cannot be cancelled", status=str(run.status))
    if run.status is RunStatus.PENDING:
        now = ctx.clock.now()
        cancelled = run.moved(RunStatus.CANCELLED, now, f"cancelled by {ctx.identity.principal}")
        for state in cancelled.steps:
            cancelled = cancelled.with_step(type(state)(state.name, StepStatus.CANCELLED))
        ctx.uow.pipelines.save_run(cancelled)
        ctx.emit(run_event(cancelled, run.status))
        run = cancelled
    else:
        ctx.uow.pipelines.request_cancel(run.id)
    ctx.audit(Action.CANCEL_PIPELINE_RUN, resource, pipeline=run.pipeline, status=str(run.status))
    return run


def list_runs(cmd: c.ListPipelineRuns, ctx: HandlerContext) -> Page[PipelineRun]:
    account = ctx.account(cmd.account)
    pipeline = _require_pipeline(ctx, account, cmd.pipeline)
    ctx.authorize(Action.LIST_PIPELINE_RUNS, pipeline_resource(account, pipeline.name))
    items = ctx.uow.pipelines.list_runs(account.name, pipeline.name, cmd.page.after, cmd.page.limit + 1)
    return paginate(items, cmd.page.limit, lambda r: r.id)


def get_run(cmd: c.GetPipelineRun, ctx: HandlerContext) -> PipelineRun:
    account = ctx.account(cmd.account)
    run = _require_run(ctx, account, cmd.run_id)
    ctx.authorize(Action.READ_PIPELINE_RUN, run_resource(account, run))
    return run


@dataclass(frozen=True, slots=True)
class StepLog:
    run: PipelineRun
    state: StepState
    chunks: Iterator[bytes]
    """The stored log; empty while the step runs (the server then reads the live file)."""


def get_step_log(cmd: c.GetStepLog, ctx: HandlerContext) -> StepLog:
    """The stored log of a step that has ended (empty for one that has not, or was cached)."""
    account = ctx.account(cmd.account)
    run = _require_run(ctx, account, cmd.run_id)
    ctx.authorize(Action.READ_PIPELINE_LOGS, run_resource(account, run))
    try:
        state = run.step(cmd.step)
    except KeyError:
        raise NotFound(f"run {run.id} has no step {cmd.step!r}", run=run.id, step=cmd.step) from None
    if state.log_sha256 is None:
        return StepLog(run, state, iter(()))
    return StepLog(run, state, artifact_store(ctx).open(account.name, state.log_sha256))


HANDLERS: dict[type, Any] = {
    c.CreatePipeline: create_pipeline,
    c.CreatePipelineFromArchive: create_from_archive,
    c.ListPipelines: list_pipelines,
    c.GetPipeline: get_pipeline,
    c.StartPipelineRun: start_run,
    c.CancelPipelineRun: cancel_run,
    c.ListPipelineRuns: list_runs,
    c.GetPipelineRun: get_run,
    c.GetStepLog: get_step_log,
}

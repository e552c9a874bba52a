"""The deployment runner: takes up runnable executions and runs their stages, one stage at a time.

Every stage acts as the pipeline's ``runAs`` service principal through ``EndpointOperations`` (so
each call is authorized and audited as that principal's), and every change of a stage or of the
execution is saved, audited and emitted in one transaction.

Several servers may share the database. A runner *claims* an execution (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, then a save conditional on the revision read) for a lease it renews while it works.
A server that stops cleanly hands its executions back at once; one that dies leaves them to be
taken up when the lease runs out. Either way the execution resumes where it stood: a deploy stage
records the revision it asked for before it waits, so it waits for that revision again instead of
deploying twice. The expiry of approval requests is claimed the same way, so it happens once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from charter.domain import commands as c
from charter.domain.audit import AuditEntry, Outcome
from charter.domain.crn import CRN
from charter.domain.deployments import (
    APPROVE_PROD,
    DEPLOY_PROD,
    DEPLOY_TEST,
    INTEGRATION_TESTS,
    SMOKE_PROD,
    DeploymentPipeline,
    Execution,
    ExecutionStatus,
    StageStatus,
    judge,
)
from charter.domain.identity import Identity
from charter.domain.registry import ModelPackage
from charter.errors import CharterError
from charter.services.handlers.deployments import approval_event, execution_event
from charter.services.messagebus import MessageBus
from charter.services.ports import EndpointOperations, Rollout, RolloutStatus, UnitOfWork

log = logging.getLogger("charter.deployments")

HOLDOUT_PATHS = ("holdout.json", "holdout")
MAX_HOLDOUT_BYTES = 32 * 1024 * 1024
ACCURACY_BATCH = 100
HOLDOUT_PAYLOAD_ROWS = 20


class _Lost(Exception):
    """Someone else moved the execution (superseded it, or a claim ran out): stop working on it."""


class _Stopping(Exception):
    """The server is stopping: the execution was handed back where it stood."""


class DeploymentRunner:
    def __init__(self, bus: MessageBus, endpoints: EndpointOperations, *, poll_seconds: float = 0.5,
                 lease_seconds: float = 30.0, rollout_timeout_seconds: float = 300.0,
                 rollout_poll_seconds: float = 0.2, smoke_requests: int = 3, owner: str | None = None) -> None:
        self.bus = bus
        self.endpoints = endpoints
        self.poll_seconds = poll_seconds
        self.lease = timedelta(seconds=lease_seconds)
        self.rollout_timeout = rollout_timeout_seconds
        self.rollout_poll_seconds = rollout_poll_seconds
        self.smoke_requests = smoke_requests
        self.owner = (owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")[:64]
        self._wake = threading.Event()
        self._changed = threading.Event()
        self.stopping = threading.Event()

    def wake(self) -> None:
        self._wake.set()
        self._changed.set()

    def nap(self) -> None:
        """Between two looks at a rollout: until this process commits something (the serving
        supervisor recording a rollout's end does) or the rollout poll, whichever comes first."""
        self._changed.wait(self.rollout_poll_seconds)
        self._changed.clear()

    # --- the loop ------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        self.stopping = stop
        while not stop.is_set():
            try:
                worked = self.run_once()
            except Exception:  # noqa: BLE001 - one bad round must not stop the runner
                log.exception("a deployment round failed")
                worked = False
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def run_once(self) -> bool:
        """Expire what ran out, then claim one runnable execution and run it as far as it goes
        (its end, the approval it waits for, or a stop). False when there was nothing to do."""
        expired = self.expire_due()
        execution = self.claim()
        if execution is None:
            return expired > 0
        self.execute(execution)
        return True

    def run_until_idle(self, max_rounds: int = 100) -> int:
        rounds = 0
        while rounds < max_rounds and self.run_once():
            rounds += 1
        return rounds

    # --- claims -----------------------------------------------------------------------------------

    def claim(self) -> Execution | None:
        now = self.bus.clock.now()
        with self.bus.uow_factory(readonly=True) as uow:  # a look first: no write lock while idle
            if not uow.deployments.has_runnable(now):
                return None
        with self.bus.uow_factory() as uow:
            found = uow.deployments.claim_runnable(now, 1)
            if not found:
                return None
            before = found[0]
            status = ExecutionStatus.IN_PROGRESS if before.status is ExecutionStatus.PENDING else before.status
            claimed = replace(before, status=status, claimed_by=self.owner, claimed_until=now + self.lease,
                              updated_at=now)
            if not uow.deployments.save_execution(claimed):
                return None
            if status is not before.status:
                self.record(uow, before, claimed, None)
            uow.commit()
        return replace(claimed, revision=claimed.revision + 1)

    def expire_due(self) -> int:
        """Fail every execution whose approval request ran out, once whatever the number of servers:
        the rows are claimed locked and saved conditionally on the revision read."""
        now = self.bus.clock.now()
        with self.bus.uow_factory(readonly=True) as uow:
            if not uow.deployments.claim_expired(now, 1):
                return 0
        count = 0
        with self.bus.uow_factory() as uow:
            for before in uow.deployments.claim_expired(now, 50):
                after = before.expire(now)
                if uow.deployments.save_execution(after):
                    self.record(uow, before, after, APPROVE_PROD, system=True)
                    count += 1
            uow.commit()
        return count

    # --- persistence ------------------------------------------------------------------------------

    def record(self, uow: UnitOfWork, before: Execution, after: Execution, stage: str | None, *,
               system: bool = False, extra: list[Any] | None = None) -> None:
        """Audit and emit one change of ``before`` into ``after`` (already saved) in ``uow``: as the
        pipeline's principal, or as the system (an expiry, which nobody did)."""
        pipeline = uow.deployments.get_pipeline(after.account, after.pipeline)
        who = None if system or pipeline is None else pipeline.run_as
        details: dict[str, Any] = {"execution": after.id, "status": str(after.status),
                                   "previous_status": str(before.status), "reason": after.reason}
        if stage is not None:
            state = after.stage(stage)
            details |= {"stage": stage, "stage_status": str(state.status), "stage_reason": state.reason,
                        "details": state.details}
        self.bus.trail.append(uow, AuditEntry(
            actor=who, via=f"deployment:{after.id}"[:64] if who else None, account=after.account,
            action="deployments:StageStateChanged" if stage else "deployments:ExecutionStateChanged",
            resource=str(after.crn), outcome=Outcome.ALLOWED, details=details))
        uow.outbox.add(replace(execution_event(after, before.status, stage), time=self.bus.clock.now()))
        for event in extra or []:
            uow.outbox.add(replace(event, time=self.bus.clock.now()))
        uow.after_commit(self._notify)

    def _notify(self) -> None:
        for listener in self.bus.outbox_listeners:
            listener()

    # --- one execution -------------------------------------------------------------------------------

    def execute(self, execution: Execution) -> Execution:
        with self.bus.uow_factory(readonly=True) as uow:
            pipeline = uow.deployments.get_pipeline(execution.account, execution.pipeline)
        assert pipeline is not None, "an execution's pipeline is never deleted"
        run = _Run(self, pipeline, execution)
        try:
            run.go()
        except _Lost:
            log.info("execution %s was moved by someone else; leaving it", execution.id)
        except _Stopping:
            log.info("execution %s handed back: the server is stopping", execution.id)
        return run.execution


class _Run:
    def __init__(self, runner: DeploymentRunner, pipeline: DeploymentPipeline, execution: Execution) -> None:
        self.runner = runner
        self.pipeline = pipeline
        self.execution = execution
        self.identity = Identity(principal=pipeline.run_as, credential_id=f"deployment:{execution.id}"[:64],
                                 principal_kind="service")
        self._package: ModelPackage | None = None
        self._renewed = time.monotonic()

    @property
    def clock(self) -> Any:
        return self.runner.bus.clock

    def update(self, change: Callable[[Execution], Execution], stage: str | None,
               extra: Callable[[Execution], list[Any]] | None = None) -> Execution:
        """Apply ``change`` and save it conditionally, renewing the claim while the execution runs."""
        now = self.clock.now()
        before = self.execution
        after = change(before)
        if after.status in (ExecutionStatus.IN_PROGRESS, ExecutionStatus.ROLLING_BACK) and after.claimed_by:
            after = replace(after, claimed_until=now + self.runner.lease)
        with self.runner.bus.uow_factory() as uow:
            if not uow.deployments.save_execution(after):
                raise _Lost
            if after.status is not before.status or (stage is not None and before.stage(stage).status
                                                      is not after.stage(stage).status):
                self.runner.record(uow, before, after, stage, extra=extra(after) if extra else None)
            uow.commit()
        self.execution = replace(after, revision=after.revision + 1)
        self._renewed = time.monotonic()
        return self.execution

    def heartbeat(self) -> None:
        """Renew the claim now and then while a stage waits; hand the execution back on a stop."""
        if self.runner.stopping.is_set():
            self.update(lambda e: e.released(self.clock.now()), None)
            raise _Stopping
        if time.monotonic() - self._renewed > self.runner.lease.total_seconds() / 3:
            self.update(lambda e: e, None)

    def fail(self, stage: str, reason: str, **details: Any) -> None:
        self.update(lambda e: e.fail(stage, self.clock.now(), reason, **details), stage)

    # --- the stages -------------------------------------------------------------------------------

    def go(self) -> None:
        if self.execution.status is ExecutionStatus.ROLLING_BACK:
            self.operator_rollback()
            return
        while True:
            e = self.execution
            if e.status is not ExecutionStatus.IN_PROGRESS:
                return
            stage = e.current
            if stage is None:
                return
            self.heartbeat()
            if stage.name == APPROVE_PROD:
                self.update(lambda x: x.request_approval(self.clock.now(), self.pipeline.approval), APPROVE_PROD,
                            extra=lambda x: [approval_event(self.pipeline, x)])
                return
            self.update(lambda x, name=stage.name: x.begin(name, self.clock.now()), stage.name)  # type: ignore[misc]
            try:
                package = self.package()
            except CharterError as error:
                self.fail(stage.name, f"the package {e.package} cannot be read as {self.identity.principal}: "
                                      f"{error.type_name}: {error.message}")
                return
            if stage.name == DEPLOY_TEST:
                self.deploy(DEPLOY_TEST, self.pipeline.test_account)
            elif stage.name == INTEGRATION_TESTS:
                self.integration_tests(package)
            elif stage.name == DEPLOY_PROD:
                self.deploy(DEPLOY_PROD, self.pipeline.prod_account)
            elif stage.name == SMOKE_PROD:
                self.smoke(package)

    def package(self) -> ModelPackage:
        """The central package, read as the pipeline's principal under its group's resource policy."""
        if self._package is None:
            crn = CRN.parse(self.execution.package)
            self._package = self.runner.bus.handle(
                c.GetModelPackage(crn.account, crn.name, int(crn.version or 0)), self.identity)
        return self._package

    # --- deploying ---

    def deploy(self, name: str, account: str) -> None:
        endpoint, ops = self.pipeline.endpoint, self.runner.endpoints
        stage = self.execution.stage(name)
        revision = stage.details.get("revision")
        if revision is None:
            previous = self._previous_production() if name == DEPLOY_PROD else None
            attempt = int(stage.details.get("attempts", 1))
            reason = (f"deployment {self.pipeline.name} execution {self.execution.id}: {name}"
                      + (f" (attempt {attempt})" if attempt > 1 else ""))
            try:
                # A server that died after asking for the revision but before noting its number
                # left it on the endpoint: it is found by its reason, not asked for twice.
                revision = ops.revision_for(self.identity, account, endpoint, reason)
                if revision is None:
                    revision = ops.deploy(self.identity, account, endpoint, self.execution.package, reason=reason)
            except CharterError as error:
                self.fail(name, f"{account} refused the deploy of {endpoint}: {error.type_name}: {error.message}")
                return
            self.update(lambda e: e.note(name, self.clock.now(), revision=revision, account=account,
                                         endpoint=endpoint, **(previous or {})), None)
        rollout = self.wait(name, account, int(revision))
        if rollout is not None and rollout.status is RolloutStatus.IN_SERVICE:
            self.update(lambda e: e.succeed(name, self.clock.now(), serving_revision=rollout.serving_revision,
                                            serving_package=rollout.serving_package), name)

    def _previous_production(self) -> dict[str, Any]:
        """What production served before, from the last execution that deployed it (for the record:
        the endpoint's own rollback is what restores it)."""
        with self.runner.bus.uow_factory(readonly=True) as uow:
            for earlier in uow.deployments.list_executions(self.execution.account, self.pipeline.name, None, 50):
                stage = earlier.stage(DEPLOY_PROD)
                if earlier.id != self.execution.id and stage.status is StageStatus.SUCCEEDED:
                    return {"previous_revision": stage.details.get("serving_revision"),
                            "previous_package": stage.details.get("serving_package")}
        return {}

    def wait(self, name: str, account: str, revision: int) -> Rollout | None:
        """Poll the rollout of ``revision`` until it is in service; fail the stage (None) otherwise."""
        endpoint = self.pipeline.endpoint
        started = self.execution.stage(name).started_at or self.clock.now()
        deadline = started + timedelta(seconds=self.runner.rollout_timeout)
        while True:
            try:
                rollout = self.runner.endpoints.rollout(self.identity, account, endpoint, revision)
            except CharterError as error:
                self.fail(name, f"the rollout of revision {revision} of {endpoint} in {account} cannot be read: "
                                f"{error.type_name}: {error.message}")
                return None
            if rollout.status is RolloutStatus.IN_SERVICE:
                return rollout
            keeps = (f"{account} keeps serving revision {rollout.serving_revision} ({rollout.serving_package})"
                     if rollout.serving_revision is not None else f"nothing serves {endpoint} in {account}")
            if rollout.status is RolloutStatus.FAILED:
                self.fail(name, f"revision {revision} of {endpoint} in {account} never got healthy: "
                                f"{rollout.reason or 'no reason given'}; {keeps}", serving_revision=rollout.serving_revision,
                          serving_package=rollout.serving_package)
                return None
            if rollout.status is RolloutStatus.SUPERSEDED:
                self.fail(name, f"revision {revision} of {endpoint} in {account} was superseded by a later "
                                f"one before it was in service; {keeps}")
                return None
            if self.clock.now() >= deadline:
                self.fail(name, f"revision {revision} of {endpoint} in {account} was not in service after "
                                f"{self.runner.rollout_timeout:g} s; {keeps}", serving_revision=rollout.serving_revision,
                          serving_package=rollout.serving_package)
                return None
            self.heartbeat()
            self.runner.nap()

    # --- testing ---

    def holdout(self, package: ModelPackage) -> tuple[list[list[Any]], list[Any], str | None]:
        """The package's labelled held-out sample (its bytes read after the package itself was
        authorized above): instances, labels, or the reason there is none."""
        artifact = next((a for a in package.artifacts if a.path in HOLDOUT_PATHS), None)
        if artifact is None:
            return [], [], f"{package.crn} carries no labelled held-out sample (holdout.json)"
        if artifact.size > MAX_HOLDOUT_BYTES:
            return [], [], f"holdout.json is larger than {MAX_HOLDOUT_BYTES} bytes"
        store = self.runner.bus.artifacts
        assert store is not None, "the runner needs an artifact store"
        try:
            doc = json.loads(b"".join(store.open(package.account, artifact.sha256)))
        except (CharterError, ValueError) as error:
            return [], [], f"holdout.json cannot be read: {error}"
        instances, labels = (doc.get("instances"), doc.get("labels")) if isinstance(doc, dict) else (None, None)
        if not isinstance(instances, list) or not isinstance(labels, list) or len(instances) != len(labels) \
                or not instances or not all(isinstance(r, list) for r in instances):
            return [], [], "holdout.json holds no {instances: [[...]], labels: [...]} of equal lengths"
        return instances, labels, None

    def _invoke(self, account: str, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, float, str | None]:
        started = time.perf_counter()
        try:
            out = self.runner.endpoints.invoke(self.identity, account, self.pipeline.endpoint, payload)
        except CharterError as error:
            return None, 0.0, f"{error.type_name}: {error.message}"
        return out, (time.perf_counter() - started) * 1000, None

    def integration_tests(self, package: ModelPackage) -> None:
        tests, account = self.pipeline.tests, self.pipeline.test_account
        instances, labels, problem = self.holdout(package)
        try:
            validator = Draft202012Validator(tests.output_schema)
            Draft202012Validator.check_schema(tests.output_schema)
        except SchemaError as error:
            self.fail(INTEGRATION_TESTS, f"the expected output schema is not a JSON Schema: {error.message}")
            return
        payloads: list[dict[str, Any]] = [package.sample_payload] if package.sample_payload else []
        payloads += [{"instances": instances[i:i + HOLDOUT_PAYLOAD_ROWS]}
                     for i in range(0, min(len(instances), 10 * HOLDOUT_PAYLOAD_ROWS), HOLDOUT_PAYLOAD_ROWS)]
        if not payloads:
            self.fail(INTEGRATION_TESTS, f"{package.crn} carries neither a sample payload nor a held-out sample: "
                                         "there is nothing to test the endpoint with")
            return
        allowed = {_label(v) for v in tests.allowed_labels} or {_label(v) for v in labels}
        latencies: list[float] = []
        errors: list[str] = []
        schema_violations: list[str] = []
        label_violations: list[str] = []
        for i in range(tests.requests):
            payload = payloads[i % len(payloads)]
            out, ms, failure = self._invoke(account, payload)
            if failure is not None:
                errors.append(failure)
            else:
                latencies.append(ms)
                self._check(out, _rows(payload), validator, allowed, schema_violations, label_violations)
            if i % 10 == 9:
                self.heartbeat()
        correct = 0
        for i in range(0, len(instances), ACCURACY_BATCH):
            batch = instances[i:i + ACCURACY_BATCH]
            out, _, failure = self._invoke(account, {"instances": batch})
            predictions = out.get("predictions") if out else None
            if failure is not None or not isinstance(predictions, list) or len(predictions) != len(batch):
                problem = problem or f"scoring the held-out sample failed: {failure or 'a malformed response'}"
                break
            correct += sum(_label(p) == _label(y) for p, y in zip(predictions, labels[i:i + ACCURACY_BATCH],
                                                                  strict=True))
            self.heartbeat()
        checks, figures = judge(tests, latencies_ms=latencies, errors=errors, schema_violations=schema_violations,
                                label_violations=label_violations, correct=correct, labelled=len(instances),
                                holdout_problem=problem)
        details = {"checks": [ch.to_document() for ch in checks], "figures": figures,
                   "allowed_labels": sorted(allowed), "sample_payload": package.sample_payload is not None}
        failed = [ch for ch in checks if not ch.passed]
        if failed:
            self.fail(INTEGRATION_TESTS, "; ".join(f"{ch.name}: {ch.detail}" for ch in failed), **details)
        else:
            self.update(lambda e: e.succeed(INTEGRATION_TESTS, self.clock.now(), **details), INTEGRATION_TESTS)

    @staticmethod
    def _check(out: dict[str, Any] | None, rows: int, validator: Draft202012Validator, allowed: set[str],
               schema_violations: list[str], label_violations: list[str]) -> None:
        problems = sorted(validator.iter_errors(out), key=lambda e: list(e.path))
        if problems:
            schema_violations.append(problems[0].message[:300])
            return
        predictions = (out or {}).get("predictions")
        if not isinstance(predictions, list) or len(predictions) != rows:
            schema_violations.append(f"{rows} rows sent, {len(predictions) if isinstance(predictions, list) else 'no'} "
                                     "predictions returned")
            return
        if allowed:
            label_violations.extend(repr(p)[:40] for p in predictions if _label(p) not in allowed)

    # --- production ---

    def smoke(self, package: ModelPackage) -> None:
        instances, _, _ = self.holdout(package)
        payload = package.sample_payload or ({"instances": instances[:HOLDOUT_PAYLOAD_ROWS]} if instances else None)
        problem = None
        if payload is None:
            problem = f"{package.crn} carries no payload to invoke production with"
        validator = Draft202012Validator(self.pipeline.tests.output_schema)
        calls: list[float] = []
        for _ in range(self.runner.smoke_requests if payload else 0):
            assert payload is not None
            out, ms, error = self._invoke(self.pipeline.prod_account, payload)
            violations: list[str] = []
            if error is None:
                self._check(out, _rows(payload), validator, set(), violations, [])
            if error or violations:
                problem = f"invoking production failed: {error or violations[0]}"
                break
            calls.append(round(ms, 3))
        if problem is None:
            self.update(lambda e: e.succeed(SMOKE_PROD, self.clock.now(), invocations=len(calls), latency_ms=calls),
                        SMOKE_PROD)
            return
        attempt = int(self.execution.stage(SMOKE_PROD).details.get("attempts", 1))
        outcome = self.roll_back(f"smoke test of execution {self.execution.id} failed (attempt {attempt})")
        self.fail(SMOKE_PROD, f"{problem}; {outcome['summary']}", rollback=outcome, latency_ms=calls)

    def roll_back(self, reason: str) -> dict[str, Any]:
        """Return production to its previous configuration and wait until that is in service. The
        rollback is asked for once: resumed after its server died, it finds its revision by its
        reason (a second rollback would bring back what the first took out of service)."""
        account, endpoint = self.pipeline.prod_account, self.pipeline.endpoint
        ops = self.runner.endpoints
        try:
            revision = ops.revision_for(self.identity, account, endpoint, reason)
            if revision is None:
                revision = ops.rollback(self.identity, account, endpoint, reason=reason)
        except CharterError as error:
            return {"ok": False, "summary": f"rolling production back failed: {error.type_name}: {error.message}"}
        deadline = time.monotonic() + self.runner.rollout_timeout
        while True:
            try:
                rollout = self.runner.endpoints.rollout(self.identity, account, endpoint, revision)
            except CharterError as error:
                return {"ok": False, "revision": revision,
                        "summary": f"the rollback's revision {revision} cannot be read: {error.message}"}
            if rollout.status is RolloutStatus.IN_SERVICE:
                return {"ok": True, "revision": revision, "serving_package": rollout.serving_package,
                        "summary": f"production rolled back to its previous configuration (revision {revision}, "
                                   f"serving {rollout.serving_package})"}
            if rollout.status is not RolloutStatus.UPDATING or time.monotonic() >= deadline:
                return {"ok": False, "revision": revision,
                        "summary": f"the rollback's revision {revision} is {rollout.status}: {rollout.reason or ''}"}
            self.runner.nap()

    def operator_rollback(self) -> None:
        request = self.execution.rollbacks[-1]
        outcome = self.roll_back(f"rollback {len(self.execution.rollbacks)} of execution {self.execution.id}, "
                                 f"requested by {request['requested_by']}: {request['reason']}"[:2000])
        ok = bool(outcome.pop("ok"))
        self.update(lambda e: e.rolled_back(self.clock.now(), ok, **({} if ok else {"error": outcome["summary"]}),
                                            **outcome), None)


def _label(value: Any) -> str:
    """Labels compare as text: a CSV-trained model predicts "1" where a JSON label says 1."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _rows(payload: dict[str, Any]) -> int:
    if isinstance(payload.get("instances"), list):
        return len(payload["instances"])
    columns = payload.get("inputs")
    if isinstance(columns, dict) and columns:
        first = next(iter(columns.values()))
        return len(first) if isinstance(first, list) else 1
    return 0


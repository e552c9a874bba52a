"""The golden path of DESIGN.md, walked by each persona with their own credentials.

``charter demo`` runs it against the embedded server it starts: every step is a real request
through the SDK, decided by the policies and written to the audit trail, so what the demo shows is
what the platform does. A step that the platform refuses on purpose (a self-approval) is shown
refused, with the policy that decided it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from charter.client import models as m
from charter.client.client import Client
from charter.errors import CharterError, NotFound, PermissionDenied
from charter.examples import acme_file

CENTRAL = "ml-shared-services"
DEV = "ml-dev"
DATA = "data-governance"
PIPELINE = "churn-train"
CENTRAL_GROUP = "churn-ml-dev"
DEPLOY = "churn-deploy"
TEST, PROD = "ml-test", "ml-prod"
PERSONAS = ("priya", "diego", "lena", "sam", "mei", "grace", "arthur")


@dataclass
class Outcome:
    """What the walk did, step by step, for the summary and ``--output json``."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


Say = Callable[[str], None]
T = TypeVar("T")


class GoldenPath:
    def __init__(self, url: str, admin: Client, say: Say, status: Callable[[str], Any],
                 checkpoint: Callable[[], None] = lambda: None, patience: float = 120.0) -> None:
        self.url = url
        self.patience = patience
        """How long a training run, the promotion or a deployment may take before the walk fails."""
        self.checkpoint = checkpoint
        self.admin = admin
        self.say = say
        self.status = status
        self.outcome = Outcome()
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, str] = {}
        """Each persona's API token, printed at the end so the console and the CLI can be tried as them."""

    # --- running --------------------------------------------------------------------------

    def walk(self) -> Outcome:
        for name in PERSONAS:
            token = self.admin.create_token(name, description="charter demo").secret
            self.tokens[name] = token
            self.clients[name] = Client(self.url, token, timeout=120)
        try:
            with tempfile.TemporaryDirectory(prefix="charter-demo-") as scratch:
                self._catalog()
                self._data(Path(scratch))
                self._registry()
                self._promotion()
                self._deployment()
                self._audit()
        finally:
            for client in self.clients.values():
                client.close()
        return self.outcome

    @contextmanager
    def step(self, who: str, title: str) -> Iterator[dict[str, Any]]:
        record: dict[str, Any] = {"persona": who, "step": title}
        started = time.perf_counter()
        with self.status(f"{who}: {title} …"):
            yield record
        record["ms"] = round((time.perf_counter() - started) * 1000, 1)
        self.outcome.steps.append(record)
        detail = record.get("detail", "")
        self.say(f"[green]✓[/] [bold]{who}[/] {title}" + (f" — {detail}" if detail else ""))

    # --- the steps ------------------------------------------------------------------------

    def _catalog(self) -> None:
        from charter.entrypoints.cli.apply_products import check_folders, publish_declared

        # The organization's file declares the portfolios, their shares and grants (applied by
        # the org admin); the platform engineer publishes the products it lists, from the folders.
        with self.step("priya", "publishes the example's templates into their portfolios") as s:
            document = acme_file().read_text()
            check_folders(acme_file(), document)
            outcomes = publish_declared(self.clients["priya"], acme_file(), document, plan=False)
            s["detail"] = ", ".join(f"{o.product}/{o.version}" + ("" if o.outcome == "published" else " (unchanged)")
                                    for o in outcomes)
            self.outcome.facts["products_published"] = [f"{o.product}/{o.version}" for o in outcomes]
        with self.step("lena", "sees what ml-dev imports") as s:
            imported = self.clients["lena"].imported(DEV)
            launchable = sorted({p.name for entry in imported.portfolios for p in entry.launchable})
            s["detail"] = f"launchable: {', '.join(launchable) or 'nothing'}"
        with self.step("sam", "sees what ml-dev imports (a data scientist launches nothing)") as s:
            imported = self.clients["sam"].imported(DEV)
            names = sorted({p.name for e in imported.portfolios for p in e.launchable})
            s["detail"] = f"launchable: {', '.join(names) or 'nothing'}"

    def _data(self, scratch: Path) -> None:
        from charter.examples.datasets import write_example_csv

        diego, lena = self.clients["diego"], self.clients["lena"]
        with self.step("diego", "registers the governed dataset bank-marketing") as s:
            csv_file = write_example_csv(scratch / "bank-marketing.csv")
            version = diego.register_dataset(DATA, "bank-marketing", csv_file,
                                             description="Breast-cancer data (569 rows), standing in "
                                                         "for the article's bank marketing set")
            s["detail"] = f"v{version.version}, {version.rows} rows, {len(version.columns)} columns, sha256 {version.sha256[:12]}…"
        with self.step("sam", "reads it without a subscription: refused") as s:
            try:
                b"".join(self.clients["sam"].read_dataset(DATA, "bank-marketing", for_account=DEV))
                s["detail"] = "UNEXPECTEDLY ALLOWED"
            except PermissionDenied as denied:
                s["detail"] = f"denied by {denied.details.get('policy')}"
        with self.step("lena", "subscribes ml-dev to it; diego approves") as s:
            sub = lena.subscribe(DATA, "bank-marketing", subscriber=DEV, reason="churn model")
            approved = diego.approve_subscription(DATA, sub.id, "for the churn project",
                                                  expires_in_seconds=90 * 86400)
            s["detail"] = f"subscription {approved.id[:8]}… {approved.status}, grant expires {approved.expires_at:%Y-%m-%d}"

    def _registry(self) -> None:
        lena, sam = self.clients["lena"], self.clients["sam"]
        with self.step("lena", "launches project churn from train-from-dataset (its pipeline starts)") as s:
            project = lena.create_project(DEV, "churn", "train-from-dataset", parameters={
                "dataset": "bank-marketing", "target": "y", "algorithm": "LogisticRegression"})
            group = lena.group(DEV, "churn")
            s["detail"] = (f"group churn readable by {', '.join(group.readers)}; "
                           + "; ".join(project.notes))
        first = next(iter(lena.pipeline_runs(DEV, PIPELINE)))
        self._training_run("lena", first.id)
        with self.step("sam", f"starts {PIPELINE} again with another estimator") as s:
            second = sam.start_pipeline(DEV, PIPELINE, {"algorithm": "GradientBoostingClassifier"})
            s["detail"] = f"run {second.id}, algorithm {second.parameters['algorithm']}"
        self._training_run("sam", second.id)
        with self.step("lena", "tries to approve churn/1, her own run's model: refused") as s:
            try:
                lena.approve(DEV, "churn", 1, "looks fine")
                s["detail"] = "UNEXPECTEDLY ALLOWED"
            except PermissionDenied as denied:
                s["detail"] = f"denied by {denied.details.get('policy')}"
        with self.step("lena", "approves churn/2 (sam's run)") as s:
            approved = lena.approve(DEV, "churn", 2, "beats v1")
            s["detail"] = f"{approved.status}, bound to digests {', '.join(d[:12] for d in approved.history[-1].digests)}…"

    def _training_run(self, who: str, run_id: str) -> None:
        client = self.clients[who]
        with self.step(who, f"waits for run {run_id}: ingest -> train -> evaluate -> condition -> register") as s:
            run = _poll(lambda: client.pipeline_run(DEV, run_id), lambda r: r.status not in RUNNING,
                        what=f"run {run_id} to finish", timeout=self.patience)
            if run.status != "Succeeded":
                failed = [f"{st.name}: {st.error}" for st in run.steps if st.error]
                raise RuntimeError(f"run {run_id} ended {run.status}: {run.reason} {'; '.join(failed)}")
            steps = " -> ".join(f"{st.name} {_seconds(st.started_at, st.finished_at)}" for st in run.steps)
            registered = run.steps[-1].metrics.get("_registered", {})
            evaluation = next(st.metrics.get("evaluation", {}) for st in run.steps if st.name == "evaluate")
            s["detail"] = (f"{steps}; churn/{registered.get('version')} PendingManualApproval, "
                           + ", ".join(f"{k} {evaluation[k]:.3f}" for k in ("accuracy", "roc_auc", "f1") if k in evaluation))
            self.outcome.facts.setdefault("runs", []).append(
                {"run": run_id, "started_by": run.started_by, "version": registered.get("version"),
                 "metrics": evaluation})

    def _promotion(self) -> None:
        mei = self.clients["mei"]
        with self.step("promotion-bot", "promotes the approval into the central registry (event -> rule -> handler)") as s:
            central = _poll(lambda: mei.package(CENTRAL, "churn-ml-dev", 1), what="the central package churn-ml-dev/1",
                            timeout=self.patience)
            s["detail"] = f"{CENTRAL}: churn-ml-dev/{central.version} {central.status}, origin {central.origin}"
            self.outcome.facts["central_package"] = f"churn-ml-dev/{central.version}"
        with self.step("mei", "checks the copied artifacts against their digests") as s:
            import hashlib

            for artifact in central.artifacts:
                data = b"".join(mei.download_artifact(CENTRAL, artifact.sha256))
                if hashlib.sha256(data).hexdigest() != artifact.sha256:
                    raise RuntimeError(f"{artifact.path} does not match its digest")
            s["detail"] = f"{len(central.artifacts)} artifact(s) verified"

    def _deployment(self) -> None:
        import yaml

        mei, grace = self.clients["mei"], self.clients["grace"]
        with self.step("mei", "launches churn-deploy from deploy-realtime-cross-account") as s:
            project = mei.create_project(CENTRAL, DEPLOY, "deploy-realtime-cross-account", parameters={
                "model_group": CENTRAL_GROUP, "test_account": TEST, "prod_account": PROD})
            pipeline = mei.deployment_pipeline(CENTRAL, DEPLOY)
            group = mei.group(CENTRAL, CENTRAL_GROUP)
            s["detail"] = (f"deployment pipeline {pipeline.name} (endpoint {pipeline.endpoint} in {TEST}, then "
                           f"{PROD}, as {pipeline.run_as}); {CENTRAL_GROUP} readable by {', '.join(group.readers)}; "
                           f"{len(project.resources)} resources")
        with self.step("mei", f"approves the central package {CENTRAL_GROUP}/1 (starts the deployment)") as s:
            approved = mei.approve(CENTRAL, CENTRAL_GROUP, 1, "ok for test")
            s["detail"] = approved.status
        with self.step("deployment-bot", f"deploys to {TEST} and runs the integration tests") as s:
            execution = _at_approval(_poll(lambda: mei.deployment_execution(CENTRAL, DEPLOY),
                                           lambda e: e.status not in BEFORE_APPROVAL,
                                           what="the deployment to reach its production approval",
                                           timeout=self.patience))
            serving = _stage(execution, "deploy-test")
            tests = _stage(execution, "integration-tests")
            self.outcome.facts["approval_to_test_serving_s"] = round(
                (serving.finished_at - approved.history[-1].time).total_seconds(), 2) if serving.finished_at else None
            checks = tests.details.get("checks", [])
            s["detail"] = (f"test endpoint serving {self.outcome.facts['approval_to_test_serving_s']} s after the "
                           "approval; " + "; ".join(f"{'✓' if ch['passed'] else '✗'} {ch['detail']}" for ch in checks)
                           + f"; now {execution.status}")
            self.outcome.facts["integration_tests"] = checks
        with self.step("mei", "completes the model card and submits it") as s:
            document = yaml.safe_load((acme_file().resolve().parent / "card.yaml").read_text())
            card = mei.model_card(CENTRAL, CENTRAL_GROUP)
            mei.edit_model_card(CENTRAL, CENTRAL_GROUP, document, summary="Completed for review",
                                expected_version=card.latest_version)
            submitted = mei.submit_model_card(CENTRAL, CENTRAL_GROUP, "ready for review")
            s["detail"] = f"card v{submitted.latest_version} {submitted.status}"
        with self.step("grace", "tries to approve production while the card is under review: refused") as s:
            try:
                grace.approve_deployment(CENTRAL, DEPLOY, "validated")
                s["detail"] = "UNEXPECTEDLY ALLOWED"
            except CharterError as refused:
                s["detail"] = f"{refused.type_name}: {refused.message}"
        with self.step("grace", "approves the model card") as s:
            card = grace.approve_model_card(CENTRAL, CENTRAL_GROUP, "risk reviewed")
            s["detail"] = f"card v{card.approved_version} {card.status}"
            self.outcome.facts["card"] = {"status": card.status, "version": card.approved_version}
        with self.step("grace", "approves production (deploy-prod, then the smoke test)") as s:
            grace.approve_deployment(CENTRAL, DEPLOY, "validated")
            done = _poll(lambda: grace.deployment_execution(CENTRAL, DEPLOY), lambda e: e.status not in UNFINISHED,
                         what="the deployment to finish", timeout=self.patience)
            if done.status != "Succeeded":
                raise RuntimeError(f"the deployment ended {done.status}: {done.reason}")
            s["detail"] = " -> ".join(f"{st.name} {_seconds(st.started_at, st.finished_at)}" for st in done.stages)
            self.outcome.facts["deployment"] = done.status
        with self.step("grace", f"asks the production endpoint {PROD}/{DEPLOY} for a prediction") as s:
            package = grace.package(CENTRAL, CENTRAL_GROUP, 1)
            sample = package.sample_payload or {}
            answer = grace.invoke_endpoint(PROD, DEPLOY, sample)
            s["detail"] = (f"predictions {answer.predictions} from {answer.package} "
                           f"(revision {answer.revision})")
            self.outcome.facts["prediction"] = answer.predictions

    def _audit(self) -> None:
        arthur = self.clients["arthur"]
        with self.step("arthur", "verifies the audit trail") as s:
            self.checkpoint()  # the server signs the head of the chain, as it does every few seconds
            verified = arthur.audit_verify()
            history = list(arthur.audit_records(resource=f"crn:charter:{CENTRAL}:registry:model-package/churn-ml-dev/1"))
            s["detail"] = (f"{'intact' if verified.ok else 'BROKEN'}: {verified.records} records, "
                           f"{verified.checkpoints} signed checkpoints; churn-ml-dev/1 has {len(history)} records")
            self.outcome.facts["audit_ok"] = verified.ok


RUNNING = ("Pending", "Running")
BEFORE_APPROVAL = ("Pending", "InProgress")
UNFINISHED = ("Pending", "InProgress", "AwaitingApproval", "RollingBack")


def _at_approval(execution: m.DeploymentExecutionOut) -> m.DeploymentExecutionOut:
    """The execution once it waits for the production approval; an error if it stopped before it."""
    if execution.status != "AwaitingApproval":
        raise RuntimeError(f"the deployment stopped at {execution.current_stage}: {execution.reason}")
    return execution


def _stage(execution: m.DeploymentExecutionOut, name: str) -> m.DeploymentStageOut:
    return next(st for st in execution.stages if st.name == name)


def _seconds(started: Any, finished: Any) -> str:
    return f"{(finished - started).total_seconds():.1f}s" if started and finished else "-"


def _poll(read: Callable[[], T], done: Callable[[T], bool] = lambda _: True, *, what: str,
          timeout: float = 30.0) -> T:
    """``read()`` again until ``done`` holds for what it returns; a NotFound means the object is
    not there yet (the promotion makes the central package). TimeoutError names what it waited for."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = read()
            if done(value):
                return value
            last = "not done yet"
        except NotFound as missing:
            last = missing.message
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}: {last}")
        time.sleep(0.05)

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
from charter.errors import NotFound, PermissionDenied
from charter.examples import acme_file

CENTRAL = "ml-shared-services"
DEV = "ml-dev"
DATA = "data-governance"
PIPELINE = "churn-train"
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
                 checkpoint: Callable[[], None] = lambda: None) -> None:
        self.url = url
        self.checkpoint = checkpoint
        self.admin = admin
        self.say = say
        self.status = status
        self.outcome = Outcome()
        self.clients: dict[str, Client] = {}

    # --- running --------------------------------------------------------------------------

    def walk(self) -> Outcome:
        for name in PERSONAS:
            token = self.admin.create_token(name, description="charter demo").secret
            self.clients[name] = Client(self.url, token, timeout=120)
        try:
            with tempfile.TemporaryDirectory(prefix="charter-demo-") as scratch:
                self._catalog()
                self._data(Path(scratch))
                self._registry()
                self._promotion()
                self._cards_and_central_approval()
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
            run = _eventually(lambda: _finished(client.pipeline_run(DEV, run_id)), timeout=120)
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
            central = _eventually(lambda: mei.package(CENTRAL, "churn-ml-dev", 1))
            s["detail"] = f"{CENTRAL}: churn-ml-dev/{central.version} {central.status}, origin {central.origin}"
            self.outcome.facts["central_package"] = f"churn-ml-dev/{central.version}"
        with self.step("mei", "checks the copied artifacts against their digests") as s:
            import hashlib

            for artifact in central.artifacts:
                data = b"".join(mei.download_artifact(CENTRAL, artifact.sha256))
                if hashlib.sha256(data).hexdigest() != artifact.sha256:
                    raise RuntimeError(f"{artifact.path} does not match its digest")
            s["detail"] = f"{len(central.artifacts)} artifact(s) verified"

    def _cards_and_central_approval(self) -> None:
        import yaml

        mei, grace = self.clients["mei"], self.clients["grace"]
        with self.step("mei", "completes the model card and submits it") as s:
            document = yaml.safe_load((acme_file().resolve().parent / "card.yaml").read_text())
            card = mei.model_card(CENTRAL, "churn-ml-dev")
            mei.edit_model_card(CENTRAL, "churn-ml-dev", document, summary="Completed for review",
                                expected_version=card.latest_version)
            submitted = mei.submit_model_card(CENTRAL, "churn-ml-dev", "ready for review")
            s["detail"] = f"card v{submitted.latest_version} {submitted.status}"
        with self.step("mei", "approves the central package churn-ml-dev/1") as s:
            approved = mei.approve(CENTRAL, "churn-ml-dev", 1, "ok for test")
            s["detail"] = approved.status
        with self.step("grace", "approves the model card") as s:
            card = grace.approve_model_card(CENTRAL, "churn-ml-dev", "risk reviewed")
            s["detail"] = f"card v{card.approved_version} {card.status}"
            self.outcome.facts["card"] = {"status": card.status, "version": card.approved_version}

    def _audit(self) -> None:
        arthur = self.clients["arthur"]
        with self.step("arthur", "verifies the audit trail") as s:
            self.checkpoint()  # the server signs the head of the chain, as it does every few seconds
            verified = arthur.audit_verify()
            history = list(arthur.audit_records(resource=f"crn:charter:{CENTRAL}:registry:model-package/churn-ml-dev/1"))
            s["detail"] = (f"{'intact' if verified.ok else 'BROKEN'}: {verified.records} records, "
                           f"{verified.checkpoints} signed checkpoints; churn-ml-dev/1 has {len(history)} records")
            self.outcome.facts["audit_ok"] = verified.ok


def _finished(run: m.PipelineRunOut) -> m.PipelineRunOut:
    if run.status in ("Pending", "Running"):
        raise NotFound(f"run {run.id} is still {run.status}")
    return run


def _seconds(started: Any, finished: Any) -> str:
    return f"{(finished - started).total_seconds():.1f}s" if started and finished else "-"


def _eventually(probe: Callable[[], T], timeout: float = 30.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)

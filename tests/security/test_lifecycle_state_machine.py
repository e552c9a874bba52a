"""The governed lifecycle as a Hypothesis state machine over the message bus (a real bootstrap on
SQLite in a temporary directory, the dispatcher and the deployment runner run in-process, the
endpoints served by real worker processes): registrations, approvals, rejections, promotions,
model-card edits, submissions, approvals and rejections, role-binding changes, and deployments —
the central approval starting an execution, the integration tests against the test endpoint,
production approvals by eligible, ineligible, central and repeated approvers, a card decision
racing a production approval, rejections of the central package, retries, and an ML engineer
deploying to production by hand — in any order, by any persona. After every step:

- no package is Approved without an approval by an eligible principal, distinct from whoever
  registered it or started its run, on its current digests;
- production serves nothing but a package released by an execution whose production stage got
  the required number of distinct approvals, each by a governance officer other than the
  central approver, given while the model card was Approved, of a package centrally approved on
  its current digests;
- every state change (each decision in a package's history, each card version, each production
  approval, each stage of an execution, each endpoint revision) has its audit record;
- the audit chain verifies.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from charter.bootstrap import Platform, bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.cards import CardStatus
from charter.domain.deployments import APPROVE_PROD, DEPLOY_PROD, Decision, Execution, StageStatus
from charter.domain.registry import ApprovalStatus
from charter.errors import CharterError
from tests.conftest import EXAMPLE
from tests.deployments_support import HOLDOUT, PIPELINE, SAMPLE, Road
from tests.integration.conftest import Org
from tests.models import skops_model

DEV, SHARED, PROD = "ml-dev", "ml-shared-services", "ml-prod"
GROUP = "lifecycle"
CENTRAL_GROUP = f"{GROUP}-{DEV}"
REQUIRED_APPROVALS = 2
# hedy is a second governance officer in shared services, and an ML engineer there too: she may
# approve a package centrally, and then not its production stage.
HEDY = ("  - name: hedy\n    displayName: Hedy Lamarr\n",
        "  - {principal: hedy, account: ml-shared-services, role: governance-officer}\n"
        "  - {principal: hedy, account: ml-shared-services, role: ml-engineer}\n")
LENA_LEAD = "  - {principal: lena, account: ml-dev, role: lead-data-scientist}\n"
GRACE_OFFICER = "  - {principal: grace, account: ml-shared-services, role: governance-officer}\n"


def document(*, lena_is_lead: bool, grace_is_officer: bool) -> str:
    text = EXAMPLE.read_text().replace("\nprincipals:\n", "\nprincipals:\n" + HEDY[0], 1)
    text = text.replace("\nroleBindings:\n", "\nroleBindings:\n" + HEDY[1], 1)
    return text.replace(LENA_LEAD, LENA_LEAD if lena_is_lead else "").replace(
        GRACE_OFFICER, GRACE_OFFICER if grace_is_officer else "")


PEOPLE = st.sampled_from(["lena", "sam", "mei", "grace", "priya", "hedy"])
OFFICERS = st.sampled_from(["grace", "hedy", "mei", "sam"])


def eligible(account: str, lena_is_lead: bool) -> set[str]:
    """Who may decide packages in each registry by the default policies and the bindings in force."""
    return {DEV: {"lena"} if lena_is_lead else set(), SHARED: {"mei", "promotion-bot", "hedy"}}[account]


class LifecycleMachine(RuleBasedStateMachine):
    world: ClassVar[Org | None] = None
    """One organization for every run (state only accumulates, and the invariants are global)."""
    granted: ClassVar[set[tuple[str, str]]] = set()
    """(execution, approver) of every production approval seen allowed, and checked as it was."""

    def __init__(self) -> None:
        super().__init__()
        assert self.world is not None
        self.org = self.world
        self.variant = 0
        self.lena_is_lead = True
        self.grace_is_officer = True
        self.org.bus.handle(c.ApplyOrg(document(lena_is_lead=True, grace_is_officer=True)), self.org.admin)

    # --- actions ----------------------------------------------------------------------------

    def _try(self, message: Any, who: str) -> Any:
        try:
            return self.org.bus.handle(message, self.org.identity(who) if who != "admin" else self.org.admin)
        except CharterError:
            return None  # a refusal: the invariants check it changed nothing that matters

    @rule(who=st.sampled_from(["sam", "lena", "mei"]), starter=st.sampled_from([None, "sam", "lena"]))
    def register(self, who: str, starter: str | None) -> None:
        self.variant += 1
        store = self.org.platform.artifacts
        model = store.put(DEV, iter([skops_model() + b"\n" * self.variant]))
        holdout = store.put(DEV, iter([json.dumps(HOLDOUT).encode()]))
        self._try(c.RegisterModelPackage(DEV, GROUP, "skops", (c.ArtifactRef("model.skops", model.sha256),
                                                                c.ArtifactRef("holdout.json", holdout.sha256)),
                                         sample_payload=SAMPLE, run_started_by=starter), who)

    @rule(who=PEOPLE, status=st.sampled_from(["Approved", "Rejected"]), central=st.booleans(),
          pick=st.integers(0, 50))
    def decide(self, who: str, status: str, central: bool, pick: int) -> None:
        """A registry decision; in the central registry, what starts (or, rejected, re-runs) a deployment."""
        account = SHARED if central else DEV
        packages = self._packages(account)
        if packages:
            p = packages[pick % len(packages)]
            self._try(c.DecideModelPackage(account, p.group, p.version, status, "decided"), who)

    @rule()
    def dispatch(self) -> None:
        self.org.platform.dispatcher.run_until_idle()

    @rule()
    def run_deployments(self) -> None:
        """The runner takes every runnable execution as far as it goes: real deploys, real invocations."""
        self.org.platform.deployments.run_until_idle(max_rounds=10)

    @rule(lena_is_lead=st.booleans(), grace_is_officer=st.booleans())
    def change_role_bindings(self, lena_is_lead: bool, grace_is_officer: bool) -> None:
        self.org.bus.handle(c.ApplyOrg(document(lena_is_lead=lena_is_lead, grace_is_officer=grace_is_officer)),
                            self.org.admin)
        self.lena_is_lead, self.grace_is_officer = lena_is_lead, grace_is_officer

    def _card_message(self, who: str, action: str) -> Any:
        return {
            "edit": c.EditModelCard(SHARED, CENTRAL_GROUP, {"overview": {"description": f"by {who} {self.variant}"}},
                                    "edit"),
            "submit": c.SubmitModelCard(SHARED, CENTRAL_GROUP),
            "approve": c.ApproveModelCard(SHARED, CENTRAL_GROUP),
            "reject": c.RejectModelCard(SHARED, CENTRAL_GROUP, "no"),
            "archive": c.ArchiveModelCard(SHARED, CENTRAL_GROUP, "retired"),
        }[action]

    # Archiving retires a card for good (and production with it, in a world every run shares): the
    # card tests cover it; here the card comes and goes between Draft, PendingReview and Approved.
    @rule(who=PEOPLE, action=st.sampled_from(["edit", "submit", "approve", "reject"]))
    def card(self, who: str, action: str) -> None:
        self.variant += 1
        self._try(self._card_message(who, action), who)

    @rule(who=OFFICERS, approve=st.booleans())
    def decide_production(self, who: str, approve: bool) -> None:
        """A production decision on the latest execution by anyone: the machine knows beforehand
        whether it may be allowed, and fails if an approval it should refuse goes through."""
        before = self._latest_execution()
        card = self._card_status()
        done = self._try(c.DecideDeployment(SHARED, PIPELINE, "Approved" if approve else "Rejected", "checked"), who)
        if done is None or not approve:
            return
        assert before is not None
        self._check_approval(before, who, card)

    @rule(who=OFFICERS, action=st.sampled_from(["reject", "edit", "approve"]))
    def race_card_and_production_approval(self, who: str, action: str) -> None:
        """A production approval and a card decision at once: whichever commits first, the approval
        stands only if the card was Approved when it committed (read from the audit order)."""
        mark = self._head()
        card_actor = "grace" if action in ("reject", "approve") else "mei"
        barrier = threading.Barrier(2)

        def go(message: Any, actor: str) -> Callable[[], None]:
            def run() -> None:
                barrier.wait()
                self._try(message, actor)
            return run

        threads = [threading.Thread(target=go(c.DecideDeployment(SHARED, PIPELINE, "Approved", "racing"), who)),
                   threading.Thread(target=go(self._card_message(card_actor, action), card_actor))]
        self.variant += 1
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for record in self._records(after=mark, action="deployments:ApproveProduction"):
            if str(record.outcome) != "allowed":
                continue
            status = self._card_status_at(record.seq)
            assert status == str(CardStatus.APPROVED), f"{record.actor} approved production while the card was {status}"
            assert record.actor in self._officers(), f"{record.actor} approved production without being an officer"
            assert record.actor != record.details.get("central_approver"), record.actor
            LifecycleMachine.granted.add((record.details["execution"], str(record.actor)))

    @rule(who=st.sampled_from(["mei", "grace"]))
    def retry_deployment(self, who: str) -> None:
        self._try(c.RetryDeployment(SHARED, PIPELINE), who)

    @rule(who=st.sampled_from(["mei", "deployment-bot", "grace"]))
    def deploy_to_production_by_hand(self, who: str) -> None:
        """Straight to the production endpoint, around the pipeline: the latest approved central
        package, by an ML engineer of ml-prod (or the pipeline's own service principal)."""
        approved = [p for p in self._packages(SHARED) if p.status is ApprovalStatus.APPROVED]
        if approved:
            endpoint = self._pipeline_endpoint()
            self._try(c.DeployEndpoint(PROD, endpoint, (c.VariantSpec(str(approved[-1].crn)),), reason="by hand"),
                      who)

    def _officers(self) -> set[str]:
        return {"hedy", "grace"} if self.grace_is_officer else {"hedy"}

    @rule(steps=st.integers(1, 6))
    def advance(self, steps: int) -> None:
        """The road to production taken by the right people, ``steps`` moves at a time, so that
        the adversarial rules above act on executions that get somewhere."""
        for _ in range(steps):
            self._next_move()

    def _next_move(self) -> None:
        if not self.lena_is_lead or not self.grace_is_officer:
            self.change_role_bindings(True, True)
            return
        latest = self._latest_execution()
        if latest is not None and str(latest.status) == "AwaitingApproval":
            if self._card_status() != str(CardStatus.APPROVED):
                self._approve_card()
                return
            done = {a.principal for a in latest.approvals}
            who = next((o for o in ("grace", "hedy") if o not in done and o != latest.central_approver), None)
            if who is not None:
                self.decide_production(who, True)
                return
        if latest is not None and str(latest.status) in ("Pending", "InProgress"):
            self.run_deployments()
            return
        central = [p for p in self._packages(SHARED) if p.status is ApprovalStatus.PENDING]
        if central:
            approver = "mei" if "mei" not in central[-1].lineage.responsible else "hedy"
            self._try(c.DecideModelPackage(SHARED, CENTRAL_GROUP, central[-1].version, "Approved", "ok"), approver)
            self.dispatch()
            return
        dev = [p for p in self._packages(DEV) if p.status is ApprovalStatus.PENDING
               and "lena" not in p.lineage.responsible]
        if dev:
            self._try(c.DecideModelPackage(DEV, GROUP, dev[-1].version, "Approved", "ok"), "lena")
            self.dispatch()
            return
        self.register("sam", "sam")

    def _approve_card(self) -> None:
        """Whatever the card's status, the next move toward Approved, by someone allowed to make it."""
        status = self._card_status()
        if status in (None, str(CardStatus.ARCHIVED)):
            return  # no card yet (promotion makes it), or retired for good: production waits forever
        if status == str(CardStatus.PENDING_REVIEW):
            self._try(self._card_message("hedy", "approve"), "hedy") or self._try(
                self._card_message("grace", "approve"), "grace")
            return
        self.variant += 1
        self._try(self._card_message("mei", "edit"), "mei")
        self._try(self._card_message("mei", "submit"), "mei")

    def _check_approval(self, before: Execution, who: str, card: str | None) -> None:
        assert who in self._officers(), f"{who} approved production without being a governance officer"
        assert who != before.central_approver, f"{who} approved {before.package} centrally and in production"
        assert who not in {a.principal for a in before.approvals}, f"{who} approved {before.id} twice"
        assert card == str(CardStatus.APPROVED), f"{who} approved production while the card was {card}"
        LifecycleMachine.granted.add((before.id, who))

    # --- reading ----------------------------------------------------------------------------

    def _packages(self, account: str) -> list[Any]:
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            return [p for g in uow.registry.list_groups(account, None, 100)
                    for p in uow.registry.list_packages(account, g.name, None, 1000)]

    def _executions(self) -> list[Execution]:
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            return uow.deployments.list_executions(SHARED, PIPELINE, None, 1000)

    def _latest_execution(self) -> Execution | None:
        found = self._executions()
        return found[0] if found else None

    def _pipeline_endpoint(self) -> str:
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            pipeline = uow.deployments.get_pipeline(SHARED, PIPELINE)
        assert pipeline is not None
        return pipeline.endpoint

    def _card_status(self) -> str | None:
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            card = uow.cards.get(SHARED, CENTRAL_GROUP)
        return str(card.status) if card is not None else None

    def _card_crn(self) -> str:
        return f"crn:charter:{SHARED}:cards:model-card/{CENTRAL_GROUP}"

    def _card_status_at(self, seq: int) -> str | None:
        """The card's status just before audit record ``seq``: the last allowed card change before it."""
        changes = [r for r in self._records(resource=self._card_crn()) if r.seq < seq and str(r.outcome) == "allowed"]
        return changes[-1].details.get("status") if changes else None

    def _head(self) -> int:
        records = self._records()
        return records[-1].seq if records else 0

    def _records(self, after: int = 0, **filters: Any) -> list[Any]:
        out: list[Any] = []
        cursor: str | None = str(after) if after else None
        while True:
            page = self.org.bus.handle(c.ListAudit(c.AuditFilter(**filters), c.PageRequest(after=cursor, limit=500)),
                                       self.org.admin)
            out.extend(page.items)
            cursor = page.next_after
            if cursor is None:
                return out

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def approvals_are_governed(self) -> None:
        for account in (DEV, SHARED):
            for p in self._packages(account):
                if p.status is not ApprovalStatus.APPROVED:
                    continue
                approval = p.approval
                assert approval is not None, p.crn
                assert approval.actor in eligible(account, True), (p.crn, approval.actor)
                assert approval.actor not in p.lineage.responsible, (p.crn, approval.actor)
                assert tuple(sorted(approval.digests)) == p.digests, p.crn

    @invariant()
    def production_serves_only_governed_packages(self) -> None:
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            endpoints = uow.endpoints.list_endpoints(PROD, None, 100)
        executions = self._executions()
        centrals = {str(p.crn): p for p in self._packages(SHARED)}
        for endpoint in endpoints:
            for revision in endpoint.revisions:
                if revision.rollback_of is not None:
                    continue  # the configuration of an earlier revision, checked as that one
                packages = [v.package for v in revision.variants]
                released = [e for e in executions if e.stage(DEPLOY_PROD).details.get("revision") == revision.number
                            and e.stage(DEPLOY_PROD).details.get("endpoint") == endpoint.name]
                assert released, f"{endpoint.name} revision {revision.number} ({packages}) came from no execution"
                e = released[-1]
                assert packages == [e.package], (packages, e.package)
                assert e.stage(APPROVE_PROD).status is StageStatus.SUCCEEDED, e.id
                approvers = [a.principal for a in e.approvals if a.decision is Decision.APPROVED]
                assert len(set(approvers)) == len(approvers) >= REQUIRED_APPROVALS, (e.id, approvers)
                assert e.central_approver not in approvers, (e.id, approvers)
                unchecked = [a for a in approvers if (e.id, a) not in self.granted]
                assert not unchecked, f"production approvals of {e.id} the machine never saw allowed: {unchecked}"
                package = centrals[e.package]
                assert package.approval is not None and tuple(sorted(package.approval.digests)) == package.digests

    @invariant()
    def every_decision_has_its_audit_record(self) -> None:
        for account in (DEV, SHARED):
            for p in self._packages(account):
                decisions = [h for h in p.history if h.previous is not None]
                if not decisions:
                    continue
                records = [r for r in self._records(resource=str(p.crn))
                           if r.action in ("registry:ApproveModelPackage", "registry:RejectModelPackage")
                           and str(r.outcome) == "allowed"]
                assert len(records) >= len(decisions), (p.crn, len(records), len(decisions))
                assert [r.actor for r in records][-len(decisions):] == [h.actor for h in decisions], p.crn

    @invariant()
    def every_deployment_change_has_its_audit_record(self) -> None:
        for e in self._executions():
            records = [r for r in self._records(resource=str(e.crn)) if str(r.outcome) == "allowed"]
            approved = [(str(r.actor), r.details["execution"]) for r in records
                        if r.action == "deployments:ApproveProduction"]
            for a in e.approvals:
                if a.decision is Decision.APPROVED:
                    assert (a.principal, e.id) in approved, (e.id, a.principal)
            staged = {(r.details.get("stage"), r.details.get("stage_status")) for r in records}
            for stage in e.stages:
                if stage.status in (StageStatus.SUCCEEDED, StageStatus.FAILED) and stage.name != APPROVE_PROD:
                    assert (stage.name, str(stage.status)) in staged, (e.id, stage.name, stage.status)
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            endpoints = uow.endpoints.list_endpoints(PROD, None, 100)
        for endpoint in endpoints:
            audited = {r.details.get("revision") for r in self._records(resource=str(endpoint.crn))
                       if str(r.outcome) == "allowed"}
            assert {r.number for r in endpoint.revisions} <= audited, endpoint.name

    @invariant()
    def every_card_change_has_its_audit_record(self) -> None:
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            card = uow.cards.get(SHARED, CENTRAL_GROUP)
        if card is None:
            return
        records = [r.details for r in self._records(resource=self._card_crn()) if str(r.outcome) == "allowed"]
        assert {v.number for v in card.versions} <= {d.get("version") for d in records}, card.crn
        audited = {(d.get("status"), d.get("version")) for d in records}
        for change in card.history:
            assert (str(change.status), change.version) in audited, (card.crn, change)

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        result = self.org.bus.handle(c.VerifyAudit(), self.org.admin)
        assert result.ok, result.reason


def test_the_lifecycle_keeps_its_invariants_whatever_the_order_of_actions() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        platform: Platform = bootstrap(Settings(
            data_dir=root / "data", database_url=f"sqlite:///{root / 'c.db'}", audit_checkpoint_every=16,
            endpoint_poll_seconds=0.05, deployment_rollout_poll_seconds=0.05, deployment_smoke_requests=2,
            deployment_rollout_timeout_seconds=60))
        stop = threading.Event()
        serving = threading.Thread(target=platform.endpoints.run_forever, args=(stop,), daemon=True)
        try:
            org = Org(platform)
            platform.bus.endpoints = platform.endpoints
            platform.bus.outbox_listeners.append(platform.endpoints.wake)
            serving.start()
            org.bus.handle(c.ApplyOrg(document(lena_is_lead=True, grace_is_officer=True)), org.admin)
            org.bus.handle(c.CreateModelPackageGroup(DEV, GROUP, readers=(SHARED,)), org.identity("lena"))
            Road(org.bus, org.identity).launch(
                model_group=CENTRAL_GROUP, integration_tests={"requests": 3, "latency_p95_ms": 10000},
                approval={"required": REQUIRED_APPROVALS})
            LifecycleMachine.world = org
            LifecycleMachine.granted = set()
            run = LifecycleMachine.TestCase
            run.settings = settings(max_examples=6, stateful_step_count=24, deadline=None, database=None,
                                    derandomize=True, suppress_health_check=list(HealthCheck))
            run().runTest()
            with platform.bus.uow_factory(readonly=True) as uow:
                statuses = [str(p.status) for a in (DEV, SHARED) for g in uow.registry.list_groups(a, None, 100)
                            for p in uow.registry.list_packages(a, g.name, None, 1000)]
                executions = uow.deployments.list_executions(SHARED, PIPELINE, None, 1000)
            print("package statuses reached:", sorted(set(statuses)), len(statuses))
            print("executions:", sorted({(str(e.status), e.current.name if e.current else "-") for e in executions}))
            assert "Approved" in statuses  # the machine exercised approvals, not only refusals
            assert any(e.stage(DEPLOY_PROD).status is StageStatus.SUCCEEDED for e in executions)  # and production
        finally:
            LifecycleMachine.world = None
            stop.set()
            platform.endpoints.wake()
            serving.join(30)
            platform.close()

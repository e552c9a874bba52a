"""The governed lifecycle as a Hypothesis state machine over the message bus (a real bootstrap on
SQLite in a temporary directory, the dispatcher run in-process): registrations, approvals,
rejections, promotions, model-card edits, submissions and approvals, and role-binding changes, in
any order, by any persona. After every step:

- no package is Approved without an approval by an eligible principal, distinct from whoever
  registered it or started its run, on its current digests;
- every state change (each decision in a package's history, each card version) has its audit record;
- the audit chain verifies.

Deployments and production endpoints are being built elsewhere: add their rules to
``LifecycleMachine`` (a rule per command) and their invariant ("production serves only a package
with the required distinct approvals and an approved card") beside ``approvals_are_governed``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, ClassVar

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from charter.bootstrap import Platform, bootstrap
from charter.config import Settings
from charter.domain import commands as c
from charter.domain.registry import ApprovalStatus
from charter.errors import CharterError
from tests.conftest import EXAMPLE
from tests.integration.conftest import Org
from tests.models import skops_model

DEV, SHARED = "ml-dev", "ml-shared-services"
GROUP = "lifecycle"
# Who may decide packages in each registry by the default policies and the example org's bindings.
ELIGIBLE = {DEV: {"lena"}, SHARED: {"mei", "promotion-bot"}}
LENA_LEAD = "  - {principal: lena, account: ml-dev, role: lead-data-scientist}\n"
DOCUMENTS = {True: EXAMPLE.read_text(), False: EXAMPLE.read_text().replace(LENA_LEAD, "")}
PEOPLE = st.sampled_from(["lena", "sam", "mei", "grace", "priya"])


class LifecycleMachine(RuleBasedStateMachine):
    world: ClassVar[Org | None] = None
    """One organization for every run (state only accumulates, and the invariants are global)."""

    def __init__(self) -> None:
        super().__init__()
        assert self.world is not None
        self.org = self.world
        self.variant = 0

    # --- actions ----------------------------------------------------------------------------

    def _try(self, message: Any, who: str) -> Any:
        try:
            return self.org.bus.handle(message, self.org.identity(who) if who != "admin" else self.org.admin)
        except CharterError:
            return None  # a refusal: the invariants check it changed nothing that matters

    @rule(who=st.sampled_from(["sam", "lena", "mei"]), starter=st.sampled_from([None, "sam", "lena"]))
    def register(self, who: str, starter: str | None) -> None:
        self.variant += 1
        info = self.org.platform.artifacts.put(DEV, iter([skops_model() + b"\n" * self.variant]))
        self._try(c.RegisterModelPackage(DEV, GROUP, "skops", (c.ArtifactRef("model.skops", info.sha256),),
                                         run_started_by=starter), who)

    @rule(who=PEOPLE, status=st.sampled_from(["Approved", "Rejected"]), central=st.booleans(),
          pick=st.integers(0, 50))
    def decide(self, who: str, status: str, central: bool, pick: int) -> None:
        account = SHARED if central else DEV
        packages = self._packages(account)
        if packages:
            p = packages[pick % len(packages)]
            self._try(c.DecideModelPackage(account, p.group, p.version, status, "decided"), who)

    @rule()
    def dispatch(self) -> None:
        self.org.platform.dispatcher.run_until_idle()

    @rule(lena_is_lead=st.booleans())
    def change_role_bindings(self, lena_is_lead: bool) -> None:
        self.org.bus.handle(c.ApplyOrg(DOCUMENTS[lena_is_lead]), self.org.admin)

    @rule(who=PEOPLE, action=st.sampled_from(["edit", "submit", "approve", "reject"]))
    def card(self, who: str, action: str) -> None:
        groups = [g for g in self._groups(SHARED)]
        if not groups:
            return
        group = groups[0]
        message: Any = {
            "edit": c.EditModelCard(SHARED, group, {"overview": {"description": f"by {who}"}}, "edit"),
            "submit": c.SubmitModelCard(SHARED, group),
            "approve": c.ApproveModelCard(SHARED, group),
            "reject": c.RejectModelCard(SHARED, group, "no"),
        }[action]
        self._try(message, who)

    # --- reading ----------------------------------------------------------------------------

    def _groups(self, account: str) -> list[str]:
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            return [g.name for g in uow.registry.list_groups(account, None, 100)]

    def _packages(self, account: str) -> list[Any]:
        with self.org.platform.bus.uow_factory(readonly=True) as uow:
            return [p for g in uow.registry.list_groups(account, None, 100)
                    for p in uow.registry.list_packages(account, g.name, None, 1000)]

    def _records(self, **filters: Any) -> list[Any]:
        out: list[Any] = []
        after: str | None = None
        while True:
            page = self.org.bus.handle(c.ListAudit(c.AuditFilter(**filters), c.PageRequest(after=after, limit=500)),
                                       self.org.admin)
            out.extend(page.items)
            after = page.next_after
            if after is None:
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
                assert approval.actor in ELIGIBLE[account], (p.crn, approval.actor)
                assert approval.actor not in p.lineage.responsible, (p.crn, approval.actor)
                assert tuple(sorted(approval.digests)) == p.digests, p.crn

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
    def the_audit_chain_verifies(self) -> None:
        result = self.org.bus.handle(c.VerifyAudit(), self.org.admin)
        assert result.ok, result.reason


def test_the_lifecycle_keeps_its_invariants_whatever_the_order_of_actions() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        platform: Platform = bootstrap(Settings(data_dir=root / "data", database_url=f"sqlite:///{root / 'c.db'}",
                                                audit_checkpoint_every=16))
        try:
            org = Org(platform)
            org.bus.handle(c.CreateModelPackageGroup(DEV, GROUP, readers=(SHARED,)), org.identity("lena"))
            LifecycleMachine.world = org
            run = LifecycleMachine.TestCase
            run.settings = settings(max_examples=6, stateful_step_count=14, deadline=None, database=None,
                                    derandomize=True, suppress_health_check=list(HealthCheck))
            run().runTest()
            with platform.bus.uow_factory(readonly=True) as uow:
                statuses = [str(p.status) for a in (DEV, SHARED) for g in uow.registry.list_groups(a, None, 100)
                            for p in uow.registry.list_packages(a, g.name, None, 1000)]
            print("package statuses reached:", sorted(set(statuses)), len(statuses))
            assert "Approved" in statuses  # the machine exercised approvals, not only refusals
        finally:
            LifecycleMachine.world = None
            platform.close()

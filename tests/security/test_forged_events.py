"""Forged cross-account events: an event whose claimed source is not the account that owns what it
names. Only the server writes the outbox, so such an event is what a bug or a compromised writer
would produce; the promotion handler refuses it (dead letter, audited) and nothing is promoted."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from charter.domain import commands as c
from charter.domain.events import Event
from tests.conftest import EXAMPLE

from .conftest import Org
from .support import SHARED, register

OTHER = "ml-lab"  # a workload account in an OU the central bus does not admit
DOCUMENT = EXAMPLE.read_text().replace("\nprincipals:", f"""
  - name: {OTHER}
    kind: workload
    stage: dev
    ou: deployments
    description: Not admitted by the central bus
principals:""", 1).replace("\nroleBindings:\n", f"""
roleBindings:
  - {{principal: lena, account: {OTHER}, role: lead-data-scientist}}
  - {{principal: sam, account: {OTHER}, role: data-scientist}}
""", 1)


@pytest.fixture(scope="module")
def approved_elsewhere(org: Org) -> tuple[str, list[str]]:
    """An approved package in the account the central bus does not admit, readable by the centre."""
    org.bus.handle(c.ApplyOrg(DOCUMENT), org.admin)
    org.bus.handle(c.CreateModelPackageGroup(OTHER, "lab-model", readers=(SHARED,)), org.identity("lena"))
    package = register(org, "lab-model", account=OTHER)
    approved = org.bus.handle(c.DecideModelPackage(OTHER, "lab-model", package.version, "Approved"),
                              org.identity("lena"))
    org.platform.dispatcher.run_until_idle()
    return str(approved.crn), list(approved.digests)


def _forge(org: Org, source: str, subject: str, digests: list[str]) -> str:
    data = {"group": "lab-model", "version": 1, "status": "Approved", "previous_status": "PendingManualApproval",
            "actor": "lena", "digests": digests}
    event = Event("charter.registry.model-package.state-changed", source, subject, data)
    with org.platform.bus.uow_factory() as uow:  # the outbox as the server writes it
        uow.outbox.add(event)
        uow.commit()
    return event.id


def _central_groups(org: Org) -> list[str]:
    with org.platform.engine.connect() as conn:
        return [str(r[0]) for r in conn.execute(
            text("SELECT name FROM model_package_groups WHERE account = :a"), {"a": SHARED})]


def test_the_unadmitted_account_own_approval_never_reaches_the_central_registry(
        org: Org, approved_elsewhere: tuple[str, list[str]]) -> None:
    assert "lab-model-" + OTHER not in _central_groups(org)


@pytest.mark.parametrize("claimed", ["ml-dev", "ml-shared-services", "management"])
def test_an_event_claiming_an_admitted_source_for_another_account_package_is_refused_and_audited(
        org: Org, approved_elsewhere: tuple[str, list[str]], claimed: str) -> None:
    subject, digests = approved_elsewhere
    event_id = _forge(org, claimed, subject, digests)
    org.platform.dispatcher.run_until_idle()
    assert "lab-model-" + OTHER not in _central_groups(org)
    with org.platform.engine.connect() as conn:
        deliveries = conn.execute(text("SELECT status, last_error FROM event_deliveries WHERE event_id = :e"),
                                  {"e": event_id}).all()
    for status, error in deliveries:  # routed (from ml-dev) or not routed at all: never promoted
        assert status in ("dead", "succeeded"), error
    records = [r for r in org.bus.handle(c.ListAudit(c.AuditFilter(action="events:Deliver"),
                                                     c.PageRequest(limit=1000)), org.admin).items
               if r.details.get("event") == event_id]
    if claimed == "ml-dev":
        assert records and all(str(r.outcome) == "denied" or str(r.outcome) == "failed" for r in records)
        assert any(OTHER in r.details.get("reason", "") for r in records)

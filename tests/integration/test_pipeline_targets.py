"""A rule's `pipeline: NAME` target: a matching event starts one run of that pipeline in the rule's
account, as the target's runAs service principal, keyed on the event's id."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sqlalchemy import select

from charter.adapters.db import tables as t
from charter.domain import commands as c
from charter.domain.events import Event
from charter.errors import ValidationError
from charter.services.event_handlers import Invocation, start_pipeline
from tests.conftest import EXAMPLE
from tests.integration.conftest import Org
from tests.pipelines_support import CODE, DEFINITION

TYPE = "charter.data.dataset.version-registered"


def _document(role: str = "ml-engineer", **target: Any) -> str:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["principals"].append({"name": "retrain-bot", "kind": "service", "displayName": "Retrains on new data"})
    doc["roleBindings"].append({"principal": "retrain-bot", "account": "ml-dev", "role": role})
    doc["rules"].append({"account": "ml-dev", "name": "retrain", "pattern": {"type": [TYPE]},
                         "targets": [target or {"pipeline": "tiny", "runAs": "retrain-bot"}]})
    return yaml.safe_dump(doc, sort_keys=False)


def _event(org: Org) -> Event:
    event = Event(TYPE, "ml-dev", "crn:charter:ml-dev:data:dataset/x/2", {"version": 2},
                  time=org.bus.clock.now())
    with org.bus.uow_factory() as uow:
        uow.outbox.add(event)
        uow.commit()
    return event


def _dispatch(org: Org) -> None:
    dispatcher = org.platform.dispatcher
    while dispatcher.route() or dispatcher.deliver():
        pass


def _runs(org: Org) -> list[Any]:
    return list(org.bus.handle(c.ListPipelineRuns("ml-dev", "tiny"), org.identity("lena")).items)


@pytest.fixture
def with_rule(org: Org) -> Org:
    org.bus.handle(c.CreatePipeline("ml-dev", "tiny", DEFINITION, CODE), org.identity("lena"))
    org.bus.handle(c.ApplyOrg(_document()), org.admin)
    return org


def test_a_matching_event_starts_a_run_of_the_pipeline_as_the_run_as_principal(with_rule: Org) -> None:
    _event(with_rule)
    _dispatch(with_rule)
    runs = _runs(with_rule)
    assert [(r.status.value, r.started_by) for r in runs] == [("Pending", "retrain-bot")]
    with with_rule.platform.engine.connect() as conn:
        deliveries = conn.execute(select(t.event_deliveries.c.status).where(t.event_deliveries.c.rule == "retrain")).all()
    assert [d.status for d in deliveries] == ["succeeded"]


def test_the_same_event_delivered_again_starts_no_second_run(with_rule: Org) -> None:
    event = _event(with_rule)
    _dispatch(with_rule)
    again = Invocation(event, "ml-dev", "retrain", "a-second-delivery", with_rule.identity("retrain-bot"))
    start_pipeline(with_rule.bus, again, "tiny")
    assert len(_runs(with_rule)) == 1
    _event(with_rule)  # another event: another run
    _dispatch(with_rule)
    assert len(_runs(with_rule)) == 2


def test_a_run_as_principal_that_may_not_start_runs_dead_letters_the_delivery(org: Org) -> None:
    org.bus.handle(c.CreatePipeline("ml-dev", "tiny", DEFINITION, CODE), org.identity("lena"))
    org.bus.handle(c.ApplyOrg(_document(role="platform-engineer")), org.admin)
    _event(org)
    _dispatch(org)
    assert _runs(org) == []
    with org.platform.engine.connect() as conn:
        deliveries = conn.execute(select(t.event_deliveries.c.status, t.event_deliveries.c.last_error)
                                  .where(t.event_deliveries.c.rule == "retrain")).all()
    assert [d.status for d in deliveries] == ["dead"]
    assert "PermissionDenied" in (deliveries[0].last_error or "")


def test_a_pipeline_target_without_run_as_is_refused_naming_the_field(org: Org) -> None:
    with pytest.raises(ValidationError, match=r"rules\[ml-dev/retrain\]\.targets.*runAs: a pipeline target starts its runs"):
        org.bus.handle(c.ApplyOrg(_document(pipeline="tiny")), org.admin)


def test_a_pipeline_target_naming_no_valid_pipeline_is_refused(org: Org) -> None:
    with pytest.raises(ValidationError, match=r"rules\[2\]\.targets\[0\]\.pipeline: String should match pattern"):
        org.bus.handle(c.ApplyOrg(_document(pipeline="Not A Name", runAs="retrain-bot")), org.admin)

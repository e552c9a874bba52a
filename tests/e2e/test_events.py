"""Event delivery through the real server: an approval in ml-dev forwarded by the example's rule to
the shared-services bus and handled there; the dead-letter queue and replays."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import pytest

from charter.client import models as m
from charter.client.client import Client
from charter.errors import PermissionDenied
from tests.models import skops_model

from .support import CliResult

T = TypeVar("T")


def _eventually(probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the dispatcher did not get there in time")


def _approved_package(personas: dict[str, Client]) -> tuple[str, m.PackageOut]:
    group = f"churn-{uuid.uuid4().hex[:8]}"
    personas["lena"].create_group("ml-dev", group, readers=["ml-shared-services"])
    blob = personas["sam"].upload_artifact("ml-dev", skops_model())
    personas["sam"].register_package("ml-dev", group, m.PackageCreate(
        format="skops", artifacts=[m.ArtifactIn(path="model.skops", sha256=blob.sha256)]))
    return group, personas["lena"].approve("ml-dev", group, 1, "ship it")


def test_an_approval_in_dev_is_forwarded_to_shared_services_and_handled_there(
        personas: dict[str, Client], cli: Callable[..., CliResult], persona_tokens: dict[str, str]) -> None:
    group, package = _approved_package(personas)
    subject = package.crn

    def handled() -> m.DeliveryOut | None:
        return next((d for d in personas["mei"].deliveries("ml-shared-services", status="succeeded")
                     if d.rule == "promote-approved-packages" and d.event["subject"] == subject), None)

    delivery = _eventually(handled)
    assert delivery.event["source"] == "ml-dev" and delivery.event["data"]["status"] == "Approved"
    forwarded = [d for d in personas["lena"].deliveries("ml-dev")
                 if d.rule == "forward-approved-packages" and d.event["subject"] == subject]
    assert [(d.status, d.target.kind, d.target.value) for d in forwarded] == [
        ("succeeded", "bus", "ml-shared-services")]
    records = list(personas["grace"].audit_records(account="ml-shared-services",
                                                   action="registry:PromoteModelPackage"))
    assert any(r.details.get("event") == delivery.event["id"] for r in records)
    shown = cli("events", "deliveries", "--account", "ml-shared-services", "--output", "json",
                token=persona_tokens["mei"])
    assert shown.returncode == 0, shown
    assert delivery.id in {d["id"] for d in json.loads(shown.stdout)}


def test_the_example_rules_are_listed_for_the_account(personas: dict[str, Client]) -> None:
    rules = {r.name: r for r in personas["sam"].event_rules("ml-dev")}
    forward = rules["forward-approved-packages"]
    assert [(t.kind, t.value) for t in forward.targets] == [("bus", "ml-shared-services")]
    assert forward.pattern["data"] == {"status": ["Approved"]}


@pytest.mark.usefixtures("restore_org")
def test_a_refused_webhook_lands_in_the_dlq_and_a_platform_engineer_replays_it(
        admin: Client, acme_yaml: str, personas: dict[str, Client],
        cli: Callable[..., CliResult], persona_tokens: dict[str, str]) -> None:
    rule = f"metadata-{uuid.uuid4().hex[:6]}"
    at = acme_yaml.index("\nroleBindings:")
    admin.apply(acme_yaml[:at].rstrip("\n") + f"""
  - account: ml-dev
    name: {rule}
    pattern:
      type: [charter.registry.model-package-group.created]
    targets:
      - webhook: http://169.254.169.254/latest/meta-data
""" + acme_yaml[at:])
    personas["lena"].create_group("ml-dev", f"g-{uuid.uuid4().hex[:8]}")

    def dead() -> m.DeliveryOut | None:
        return next((d for d in personas["sam"].dead_letters("ml-dev") if d.rule == rule), None)

    letter = _eventually(dead)
    assert "non-public address" in (letter.last_error or "")
    with pytest.raises(PermissionDenied):
        personas["lena"].replay_delivery("ml-dev", letter.id)
    replayed = cli("events", "replay", letter.id, "--account", "ml-dev", "--output", "json",
                   token=persona_tokens["priya"])
    assert replayed.returncode == 0, replayed
    assert json.loads(replayed.stdout)["status"] == "pending"
    records = list(personas["arthur"].audit_records(action="events:ReplayDelivery"))
    assert records and records[-1].actor == "priya" and records[-1].details["event"] == letter.event["id"]
    # Still refused by the guard: dead again after one more attempt.
    _eventually(lambda: next((d for d in personas["sam"].dead_letters("ml-dev")
                              if d.id == letter.id and d.updated_at != letter.updated_at), None))
    dlq = cli("events", "dlq", "--account", "ml-dev", "--output", "json", token=persona_tokens["sam"])
    assert dlq.returncode == 0, dlq
    again = next(d for d in json.loads(dlq.stdout) if d["id"] == letter.id)
    assert (again["status"], again["attempts"]) == ("dead", 1)

"""Event buses and rules declared in charter.yaml: validated, applied, kept in step with the file."""

from __future__ import annotations

import json

import pytest

from charter.domain import commands as c
from charter.domain.org import EventTarget, TargetKind
from charter.domain.patterns import compile_pattern
from charter.errors import ValidationError
from tests.unit.conftest import World

RULE = """
  - account: ml-dev
    name: extra
    pattern: {pattern}
    targets:
      - {target}
"""


def _with_rule(text: str, pattern: str = "{type: [x]}", target: str = "bus: ml-shared-services") -> str:
    """The example with one more rule at the end of its rules section."""
    at = text.index("\nroleBindings:")
    return text[:at].rstrip("\n") + RULE.format(pattern=pattern, target=target) + text[at:]


def test_the_example_forwards_approved_dev_packages_to_the_shared_services_bus(world: World) -> None:
    rules = world.store.data.state.rules
    rule = rules["ml-dev/forward-approved-packages"]
    assert rule.targets == (EventTarget(TargetKind.BUS, "ml-shared-services"),)
    pattern = compile_pattern(json.loads(rule.pattern))
    event = {"type": "charter.registry.model-package.state-changed", "data": {"status": "Approved"}}
    assert pattern.matches(event)
    assert not pattern.matches({**event, "data": {"status": "Rejected"}})


def test_an_invalid_pattern_is_refused_naming_the_path(world: World, example_text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        world.bus.handle(c.ApplyOrg(_with_rule(example_text, pattern="{data: {status: [{prefx: A}]}}")),
                         world.admin)
    fields = [p["field"] for p in refused.value.details["problems"]]
    assert any(f.startswith("rules[ml-dev/extra].pattern.data.status[0]") for f in fields), fields


def test_a_bus_that_does_not_admit_the_source_account_is_refused(world: World, example_text: str) -> None:
    text = _with_rule(example_text, target="bus: ml-prod")
    with pytest.raises(ValidationError, match="does not admit events from ml-dev"):
        world.bus.handle(c.ApplyOrg(text), world.admin)


def test_an_unknown_handler_is_refused(world: World, example_text: str) -> None:
    with pytest.raises(ValidationError, match="unknown handler 'copy-everything'"):
        world.bus.handle(c.ApplyOrg(_with_rule(example_text, target="handler: copy-everything")), world.admin)


def test_a_target_names_exactly_one_kind(world: World, example_text: str) -> None:
    text = _with_rule(example_text, target="{bus: ml-shared-services, webhook: 'https://x.example/h'}")
    with pytest.raises(ValidationError, match="exactly one of handler, bus, webhook, deployment or pipeline"):
        world.bus.handle(c.ApplyOrg(text), world.admin)


def test_a_rule_left_out_of_the_file_is_removed(world: World, example_text: str) -> None:
    start, end = example_text.index("# Blueprint rules"), example_text.index("roleBindings:")
    without = example_text[:start] + example_text[end:]
    result = world.bus.handle(c.ApplyOrg(without), world.admin)
    assert [(ch.kind, str(ch.action)) for ch in result.changes] == [("event-rule", "delete")] * 2
    assert world.store.data.state.rules == {}
    assert "charter.events.rule.deleted" in {e.type for e in world.store.data.outbox}


def test_the_example_is_applied_again_without_changes(world: World, example_text: str) -> None:
    assert world.bus.handle(c.ApplyOrg(example_text), world.admin).changes == []


def _problems(world: World, text: str) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as refused:
        world.bus.handle(c.ApplyOrg(text), world.admin)
    problems: list[dict[str, str]] = refused.value.details["problems"]
    return problems


def _on_shared(text: str, target: str) -> str:
    return _with_rule(text, target=target).replace("account: ml-dev\n    name: extra",
                                                   "account: ml-shared-services\n    name: extra")


def test_a_handler_target_runs_as_a_bound_service_principal(world: World, example_text: str) -> None:
    world.bus.handle(c.ApplyOrg(_on_shared(example_text, "{handler: audit-log, runAs: promotion-bot}")), world.admin)
    rule = world.store.data.state.rules["ml-shared-services/extra"]
    assert rule.targets == (EventTarget(TargetKind.HANDLER, "audit-log", "promotion-bot"),)


def test_run_as_a_person_is_refused_naming_the_target(world: World, example_text: str) -> None:
    problems = _problems(world, _on_shared(example_text, "{handler: audit-log, runAs: mei}"))
    assert problems == [{"field": "rules[ml-shared-services/extra].targets[0].runAs",
                         "reason": "mei is a person; a handler acts only as a service principal"}]


def test_run_as_an_unknown_principal_is_refused(world: World, example_text: str) -> None:
    problems = _problems(world, _on_shared(example_text, "{handler: audit-log, runAs: ghost}"))
    assert problems[0]["reason"] == "unknown principal 'ghost'"


def test_run_as_a_principal_without_a_role_in_the_rules_account_is_refused(world: World, example_text: str) -> None:
    problems = _problems(world, _with_rule(example_text, target="{handler: audit-log, runAs: promotion-bot}"))
    assert problems == [{"field": "rules[ml-dev/extra].targets[0].runAs",
                         "reason": "promotion-bot holds no role in ml-dev; bind it a role there"}]


def test_run_as_on_a_bus_target_is_refused(world: World, example_text: str) -> None:
    problems = _problems(world, _with_rule(example_text, target="{bus: ml-shared-services, runAs: promotion-bot}"))
    assert problems[-1]["reason"] == "only a handler or pipeline target acts as a principal, not a bus target"


def test_the_plan_shows_a_changed_run_as(world: World, example_text: str) -> None:
    world.bus.handle(c.ApplyOrg(_on_shared(example_text, "{handler: audit-log}")), world.admin)
    plan = world.bus.handle(c.PlanOrg(_on_shared(example_text, "{handler: audit-log, runAs: promotion-bot}")),
                            world.admin)
    changed = [ch for ch in plan.changes if ch.kind == "event-rule"]  # type: ignore[attr-defined]
    assert [ch.name for ch in changed] == ["ml-shared-services/extra"]
    assert changed[0].after["targets"][0]["run_as"] == "promotion-bot"
    assert changed[0].before["targets"][0]["run_as"] is None


def test_a_target_declares_its_own_retry_limits(world: World, example_text: str) -> None:
    text = _with_rule(example_text, target="{bus: ml-shared-services, maxAttempts: 3, maxAgeSeconds: 600}")
    world.bus.handle(c.ApplyOrg(text), world.admin)
    rule = world.store.data.state.rules["ml-dev/extra"]
    assert rule.targets == (EventTarget(TargetKind.BUS, "ml-shared-services", max_attempts=3, max_age_seconds=600),)


def test_retry_limits_out_of_range_are_refused_naming_the_field(world: World, example_text: str) -> None:
    text = _with_rule(example_text, target="{bus: ml-shared-services, maxAttempts: 0}")
    with pytest.raises(ValidationError, match="maxAttempts"):
        world.bus.handle(c.ApplyOrg(text), world.admin)


def test_a_rule_in_charter_yaml_may_target_a_deployment_pipeline(world: World, example_text: str) -> None:
    world.bus.handle(c.ApplyOrg(_with_rule(example_text, target="deployment: churn-deploy"), "charter.yaml"),
                     world.admin)
    assert world.store.data.state.rules["ml-dev/extra"].targets == (EventTarget(TargetKind.DEPLOYMENT, "churn-deploy"),)


def test_a_deployment_target_names_a_pipeline(world: World, example_text: str) -> None:
    with pytest.raises(ValidationError):
        world.bus.handle(c.ApplyOrg(_with_rule(example_text, target="deployment: Not_A_Name"), "charter.yaml"),
                         world.admin)

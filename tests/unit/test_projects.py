"""Launching products on fakes: parameters, the share and grant checks, provisioning in one
transaction, updating to another version, terminating, and workspaces."""

from __future__ import annotations

import pytest

from charter.domain import commands as c
from charter.domain.identity import Identity
from charter.domain.org import EventRule, EventTarget, TargetKind
from charter.domain.projects import LaunchStatus, ResourceKind, render
from charter.domain.registry import Artifact, Lineage, ModelFormat, ModelPackage
from charter.errors import Conflict, NotFound, PermissionDenied, ValidationError
from charter.services.handlers.projects import ProjectResult
from tests.unit.catalog_support import pack, template, template_files
from tests.unit.conftest import World

SHARED = "ml-shared-services"


def _publish(world: World, who: Identity, archive: bytes, portfolio: str = "ml-templates") -> object:
    unpacked = world.bus.handle(c.UnpackProductArchive(SHARED, portfolio, [archive], 1 << 24, None), who)
    refs = tuple(c.ProductFileRef(f.path, f.sha256) for f in unpacked.files)  # type: ignore[attr-defined]
    return world.bus.handle(c.PublishProductVersion(SHARED, portfolio, refs), who)


def _train(**changes: str) -> bytes:
    files = template_files("train-from-dataset")
    text = files["product.yaml"].decode()
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    files["product.yaml"] = text.encode()
    return pack(files)


@pytest.fixture
def priya(world: World) -> Identity:
    who = world.token_for("priya")
    world.bus.handle(c.CreatePortfolio(SHARED, "ml-templates", "Model-building projects"), who)
    return who


@pytest.fixture
def shared(world: World, priya: Identity) -> Identity:
    """train-from-dataset and team-workspace published, shared with ou:workloads, granted to leads."""
    _publish(world, priya, template("train-from-dataset"))
    _publish(world, priya, template("team-workspace"))
    world.bus.handle(c.SharePortfolio(SHARED, "ml-templates", "ou:workloads"), priya)
    world.bus.handle(c.GrantPortfolio(SHARED, "ml-templates", "lead-data-scientist"), priya)
    return priya


@pytest.fixture
def lena(world: World) -> Identity:
    return world.token_for("lena")


def _launch(world: World, who: Identity, name: str = "churn", **params: object) -> ProjectResult:
    given = {"dataset": "bank-marketing", "target": "y", **params}
    result: ProjectResult = world.bus.handle(c.CreateProject("ml-dev", name, "train-from-dataset", given), who)
    return result


def test_a_lead_data_scientist_launches_a_project_with_its_group_rule_and_pipeline(
        world: World, shared: Identity, lena: Identity) -> None:
    project = _launch(world, lena).project
    group = world.store.data.groups[("ml-dev", "churn")][0]
    assert group.readers == ("ml-shared-services",)
    rule = world.store.data.state.rules["ml-dev/churn-forward-approved"]
    assert rule.managed_by == "project:ml-dev/churn"
    assert rule.targets == (EventTarget(TargetKind.BUS, "ml-shared-services"),)
    pipeline = project.of_kind(ResourceKind.PIPELINE)[0]
    assert pipeline.name == "churn-train" and pipeline.details["definition"] == "pipelines/train.yaml"
    assert pipeline.details["parameters"] == {"dataset": "bank-marketing", "target": "y",
                                              "algorithm": "RandomForestClassifier", "metric": "roc_auc",
                                              "threshold": 0.7, "group": "churn"}
    assert len(pipeline.details["sha256"]) == 64
    assert project.parameters["threshold"] == 0.7  # the default, applied
    assert world.store.data.outbox[-1].type == "charter.catalog.project.launched"
    assert world.store.data.records[-1].action == "catalog:LaunchProduct"


def test_param_text_is_read_as_json_where_the_schema_wants_a_number(
        world: World, shared: Identity, lena: Identity) -> None:
    project = _launch(world, lena, threshold="0.85").project
    assert project.parameters["threshold"] == 0.85


def test_bad_parameters_are_refused_naming_every_failing_field(world: World, shared: Identity, lena: Identity) -> None:
    with pytest.raises(ValidationError) as refused:
        world.bus.handle(c.CreateProject("ml-dev", "churn", "train-from-dataset",
                                         {"dataset": "Bank Marketing", "threshold": "2", "metric": "mse",
                                          "colour": "red"}), lena)
    assert set(refused.value.details["fields"]) == {"dataset", "target", "threshold", "metric", "colour"}
    assert "target" in refused.value.message and "colour" in refused.value.message
    assert world.store.data.projects == {}


def test_a_param_that_is_not_json_where_json_is_wanted_is_named(world: World, shared: Identity, lena: Identity) -> None:
    with pytest.raises(ValidationError) as refused:
        _launch(world, lena, threshold="high")
    assert refused.value.details["fields"] == ["threshold"]


def test_a_product_not_shared_with_the_account_is_refused(world: World, priya: Identity, lena: Identity) -> None:
    _publish(world, priya, template("train-from-dataset"))
    world.bus.handle(c.GrantPortfolio(SHARED, "ml-templates", "lead-data-scientist"), priya)
    with pytest.raises(PermissionDenied) as refused:
        _launch(world, lena)
    assert refused.value.details["policy"] == "portfolio-share"
    assert world.store.data.records[-1].outcome == "denied"


def test_a_role_the_portfolio_is_not_granted_to_is_refused(world: World, priya: Identity) -> None:
    _publish(world, priya, template("train-from-dataset"))
    world.bus.handle(c.SharePortfolio(SHARED, "ml-templates", "ou:workloads"), priya)
    world.bus.handle(c.GrantPortfolio(SHARED, "ml-templates", "ml-engineer"), priya)
    with pytest.raises(PermissionDenied) as refused:
        _launch(world, world.token_for("lena"))
    assert refused.value.details["policy"] == "portfolio-grant"
    assert refused.value.details["grants"] == ["ml-engineer"]


def test_a_data_scientist_cannot_launch_products(world: World, shared: Identity) -> None:
    with pytest.raises(PermissionDenied):
        _launch(world, world.token_for("sam"))
    assert world.store.data.projects == {}


def test_an_unknown_placeholder_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError) as refused:
        render({"name": "{{project}}-{{colour}}"}, {"project": "churn"})
    assert refused.value.details["placeholders"] == ["colour"]
    assert "{{colour}}" in refused.value.message


def test_a_whole_value_placeholder_keeps_its_type() -> None:
    assert render({"members": "{{members}}", "t": "at {{threshold}}"},
                  {"members": ["lena", "sam"], "threshold": 0.7}) == {"members": ["lena", "sam"], "t": "at 0.7"}


def test_a_failure_mid_provisioning_leaves_nothing(world: World, shared: Identity, lena: Identity) -> None:
    # A rule of that name exists already: the group is created first, then the rule is refused.
    with world.store.uow() as uow:
        uow.org.put_rule(EventRule("ml-dev", "churn-forward-approved", '{"type":["x"]}',
                                   (EventTarget(TargetKind.BUS, SHARED),)))
        uow.commit()
    events, records = len(world.store.data.outbox), len(world.store.data.records)
    with pytest.raises(Conflict):
        _launch(world, lena)
    assert world.store.data.projects == {}
    assert ("ml-dev", "churn") not in world.store.data.groups
    assert world.store.data.state.rules["ml-dev/churn-forward-approved"].managed_by is None
    assert len(world.store.data.outbox) == events
    assert world.store.data.records[records].outcome == "failed"


def test_a_project_name_already_taken_by_a_group_is_a_conflict(world: World, shared: Identity, lena: Identity) -> None:
    world.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn"), lena)
    with pytest.raises(Conflict):
        _launch(world, lena)
    assert world.store.data.projects == {}


def _register(world: World, account: str, group: str) -> None:
    with world.store.uow() as uow:
        number = uow.registry.allocate_version(account, group)
        uow.registry.add_package(ModelPackage(account, group, number, ModelFormat.SKOPS,
                                              (Artifact("model.skops", 1, "a" * 64),),
                                              Lineage(registered_by="lena"), world.clock.now()))
        uow.commit()


def test_terminating_removes_its_rules_and_keeps_the_group_with_its_packages(
        world: World, shared: Identity, lena: Identity) -> None:
    _launch(world, lena)
    _register(world, "ml-dev", "churn")
    result: ProjectResult = world.bus.handle(c.TerminateProject("ml-dev", "churn"), lena)
    assert result.project.status is LaunchStatus.TERMINATED
    assert "ml-dev/churn-forward-approved" not in world.store.data.state.rules
    assert ("ml-dev", "churn") in world.store.data.groups
    assert ("ml-dev", "churn", 1) in world.store.data.packages
    assert "holds 1 package" in result.notes[0]
    assert world.store.data.records[-1].action == "catalog:TerminateProject"
    assert world.store.data.outbox[-1].type == "charter.catalog.project.terminated"


def test_updating_to_a_version_without_the_rule_removes_it_and_keeps_the_group(
        world: World, shared: Identity, lena: Identity) -> None:
    _launch(world, lena)
    _register(world, "ml-dev", "churn")
    text = template_files("train-from-dataset")["product.yaml"].decode()
    head, _, _ = text.partition("  rules:\n")
    _, _, pipelines = text.partition("  pipelines:\n")
    without = head.replace('name: "{{project}}"', 'name: "{{project}}-v2"') + "  pipelines:\n" + pipelines
    files = {**template_files("train-from-dataset"), "product.yaml": without.encode()}
    _publish(world, shared, pack(files))
    result: ProjectResult = world.bus.handle(c.UpdateProject("ml-dev", "churn", {"threshold": "0.9"}, 2), lena)
    assert result.project.version == 2 and result.project.parameters["threshold"] == 0.9
    assert "ml-dev/churn-forward-approved" not in world.store.data.state.rules
    assert ("ml-dev", "churn-v2") in world.store.data.groups and ("ml-dev", "churn") in world.store.data.groups
    assert any("kept model package group churn" in n and "holds 1 package" in n for n in result.notes)
    assert result.project.history[-1].from_version == 1
    assert world.store.data.outbox[-1].type == "charter.catalog.project.updated"


def test_updating_changes_a_rule_the_new_version_declares_differently(
        world: World, shared: Identity, lena: Identity) -> None:
    _launch(world, lena)
    _publish(world, shared, _train(**{"status: [Approved]": "status: [Approved, Rejected]"}))
    world.bus.handle(c.UpdateProject("ml-dev", "churn", {}, 2), lena)
    assert "Rejected" in world.store.data.state.rules["ml-dev/churn-forward-approved"].pattern


def test_a_bus_target_the_bus_does_not_admit_is_refused(world: World, shared: Identity, lena: Identity) -> None:
    _publish(world, shared, _train(**{"- bus: ml-shared-services": "- bus: ml-prod"}))
    with pytest.raises(ValidationError) as refused:
        world.bus.handle(c.CreateProject("ml-dev", "churn", "train-from-dataset",
                                         {"dataset": "d", "target": "y"}, version=2), lena)
    assert "does not admit" in refused.value.message
    assert world.store.data.groups.get(("ml-dev", "churn")) is None


def test_a_workspace_binds_its_existing_members_and_keeps_its_tags(world: World, shared: Identity, lena: Identity) -> None:
    ws = world.bus.handle(c.CreateWorkspace("ml-dev", "fraud-team", "team-workspace", {
        "team": "fraud", "costCentre": "CC-42", "businessUnit": "retail", "members": '["arthur", "nobody", "promotion-bot"]'}), lena)
    assert (ws.team, ws.cost_centre, ws.business_unit, ws.environment) == ("fraud", "CC-42", "retail", "dev")
    bindings = {(b.principal, b.role, b.managed_by) for b in world.store.data.state.bindings if b.account == "ml-dev"}
    assert ("arthur", "data-scientist", "workspace:ml-dev/fraud-team") in bindings
    assert [m.bound for m in ws.members] == [True, False, False]  # no such principal; a service principal
    assert world.store.data.outbox[-1].type == "charter.catalog.workspace.launched"
    world.bus.handle(c.TerminateWorkspace("ml-dev", "fraud-team"), lena)
    assert not any(b.principal == "arthur" and b.account == "ml-dev" for b in world.store.data.state.bindings)


def test_a_project_product_cannot_be_launched_as_a_workspace(world: World, shared: Identity, lena: Identity) -> None:
    with pytest.raises(ValidationError):
        world.bus.handle(c.CreateWorkspace("ml-dev", "w", "train-from-dataset", {}), lena)


def test_an_update_drops_parameters_the_new_version_no_longer_declares(
        world: World, shared: Identity, lena: Identity) -> None:
    with_notes = "  properties:\n    notes:\n      type: string\n"
    _publish(world, shared, _train(**{"  properties:\n": with_notes}))
    world.bus.handle(c.CreateProject("ml-dev", "churn", "train-from-dataset",
                                     {"dataset": "d", "target": "y", "notes": "first try"}, version=2), lena)
    _publish(world, shared, _train(**{"default: 0.7": "default: 0.75"}))
    result: ProjectResult = world.bus.handle(c.UpdateProject("ml-dev", "churn", {}, 3), lena)
    assert "notes" not in result.project.parameters
    assert result.project.parameters["dataset"] == "d"


def test_an_ml_engineer_launches_a_deployment_project_from_the_accounts_own_portfolio(
        world: World, priya: Identity) -> None:
    _publish(world, priya, template("deploy-realtime-cross-account"))
    world.bus.handle(c.GrantPortfolio(SHARED, "ml-templates", "ml-engineer"), priya)
    result: ProjectResult = world.bus.handle(c.CreateProject(
        SHARED, "churn-deploy", "deploy-realtime-cross-account", {"model_group": "churn-ml-dev"}),
        world.token_for("mei"))
    rule = result.project.of_kind(ResourceKind.EVENT_RULE)[0]
    # Its target is the project's deployment pipeline, a real target on the bus.
    assert rule.details["targets"] == [{"deployment": "churn-deploy"}] and rule.details["on_bus"] is True
    on_bus = world.store.data.state.rules[f"{SHARED}/churn-deploy-on-central-decision"]
    assert [(str(t.kind), t.value) for t in on_bus.targets] == [("deployment", "churn-deploy")]
    assert result.project.parameters["integration_tests"]["requests"] == 20
    deployment = result.project.of_kind(ResourceKind.DEPLOYMENT_PIPELINE)[0]
    assert deployment.details["test_account"] == "ml-test" and deployment.details["run_as"] == "deployment-bot"
    assert world.store.data.deployment_pipelines[(SHARED, "churn-deploy")].prod_account == "ml-prod"


def test_a_project_joins_an_active_workspace_only(world: World, shared: Identity, lena: Identity) -> None:
    with pytest.raises(NotFound):
        world.bus.handle(c.CreateProject("ml-dev", "churn", "train-from-dataset",
                                         {"dataset": "d", "target": "y"}, workspace="fraud"), lena)
    world.bus.handle(c.CreateWorkspace("ml-dev", "fraud", "team-workspace", {
        "team": "fraud", "costCentre": "CC-42", "businessUnit": "retail"}), lena)
    project = world.bus.handle(c.CreateProject("ml-dev", "churn", "train-from-dataset",
                                               {"dataset": "d", "target": "y"}, workspace="fraud"), lena).project
    assert project.workspace == "fraud"

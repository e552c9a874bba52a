"""Deployment pipelines through the real server and the CLI, where no real endpoint is needed: mei
launches the deploy project in shared services (a pipeline and a rule on the bus), the central
approval starts an execution by itself, and the execution stops at deploy-test with the reason
(the test package's sample payload does not fit its model, so the test endpoint never gets
healthy), production untouched; the refusals of decisions nobody may take. The whole road to
production runs in `charter demo` (tests/e2e/test_cli.py)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any

import pytest

from charter.client import models as m
from charter.client.client import Client
from charter.errors import InvalidTransition, PermissionDenied

from .support import REPO, CliResult, charter_env, run_cli
from .test_promotion import approved_dev_package, wait_for_central

SHARED = "ml-shared-services"
PRODUCT = "deploy-e2e"


def _ok(result: CliResult) -> Any:
    assert result.returncode == 0, str(result)
    return result.json()


def _wait(client: Client, name: str, done: Callable[[m.DeploymentExecutionOut], bool],
          timeout: float = 30.0) -> m.DeploymentExecutionOut:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = client.deployment_execution(SHARED, name)
            if done(found):
                return found
        except Exception:  # noqa: BLE001 - not started yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"the execution of {name} did not get there")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory, persona_tokens: dict[str, str], server: Any,
           personas: dict[str, Client]) -> dict[str, Any]:
    config = tmp_path_factory.mktemp("deployments-cli")

    def run(who: str, *args: str, json: bool = True) -> CliResult:
        env = charter_env(config, CHARTER_SERVER=server.url, CHARTER_TOKEN=persona_tokens[who])
        return run_cli((["--output", "json"] if json else []) + list(args), env)

    template = tmp_path_factory.mktemp("template") / PRODUCT
    shutil.copytree(REPO / "examples" / "acme" / "templates" / "deploy-realtime-cross-account", template)
    spec = template / "product.yaml"
    spec.write_text(spec.read_text().replace("name: deploy-realtime-cross-account", f"name: {PRODUCT}", 1))
    published = run("priya", "catalog", "publish", str(template), "--portfolio", "ml-projects", "--account", SHARED)
    assert published.returncode == 0 or "Conflict" in str(published), str(published)
    group, _ = approved_dev_package(personas)
    central = f"{group}-ml-dev"
    wait_for_central(personas["mei"], central)
    name = f"{group}-deploy"
    project = _ok(run("mei", "projects", "create", name, "--product", PRODUCT, "--param", f"model_group={central}",
                      "--param", "test_account=ml-test", "--param", "prod_account=ml-prod", "--account", SHARED))
    personas["mei"].approve(SHARED, central, 1, "ok for test")
    return {"run": run, "name": name, "group": central, "project": project}


def test_launching_the_deploy_project_creates_a_pipeline_named_after_it(deploy: dict[str, Any],
                                                                        personas: dict[str, Client]) -> None:
    pipeline = personas["grace"].deployment_pipeline(SHARED, deploy["name"])
    assert (pipeline.model_group, pipeline.test_account, pipeline.prod_account, pipeline.run_as) == (
        deploy["group"], "ml-test", "ml-prod", "deployment-bot")
    kinds = {r["kind"] for r in deploy["project"]["resources"]}
    assert kinds == {"event-rule", "deployment-pipeline"}


def test_the_projects_rule_is_on_the_bus_with_a_deployment_target(deploy: dict[str, Any],
                                                                 personas: dict[str, Client]) -> None:
    rules = {r.name: r for r in personas["mei"].event_rules(SHARED)}
    rule = rules[f"{deploy['name']}-on-central-decision"]
    assert [(t.kind, t.value) for t in rule.targets] == [("deployment", deploy["name"])]


def test_the_central_approval_starts_an_execution_that_stops_at_deploy_test_with_the_reason(
        deploy: dict[str, Any], personas: dict[str, Client]) -> None:
    e = _wait(personas["mei"], deploy["name"], lambda x: x.status == "Failed")
    assert e.trigger == "Approved" and e.package.endswith(f"{deploy['group']}/1")
    assert e.current_stage == "deploy-test" and "never got healthy" in e.reason
    assert [s.status for s in e.stages] == ["Failed", "Skipped", "Skipped", "Skipped", "Skipped"]


def test_deployments_show_draws_the_stage_timeline(deploy: dict[str, Any], personas: dict[str, Client]) -> None:
    _wait(personas["mei"], deploy["name"], lambda x: x.status == "Failed")
    shown = deploy["run"]("mei", "deployments", "show", deploy["name"], "--account", SHARED, json=False)
    assert shown.returncode == 0, str(shown)
    for text in ("deploy-test", "integration-tests", "approve-prod", "deploy-prod", "smoke-prod", "Failed",
                 "deployment-bot"):
        assert text in shown.stdout
    data = _ok(deploy["run"]("mei", "deployments", "show", deploy["name"], "--account", SHARED))
    assert data["execution"]["current_stage"] == "deploy-test"
    listed = _ok(deploy["run"]("grace", "deployments", "list", "--account", SHARED))
    assert deploy["name"] in {p["name"] for p in listed}


def test_someone_outside_shared_services_cannot_approve_production(deploy: dict[str, Any],
                                                                    personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied):
        personas["lena"].approve_deployment(SHARED, deploy["name"], "looks good")


def test_production_is_not_approved_while_the_card_is_not_naming_the_policy(
        deploy: dict[str, Any], personas: dict[str, Client]) -> None:
    with pytest.raises(PermissionDenied, match="production-needs-an-approved-card"):
        personas["grace"].approve_deployment(SHARED, deploy["name"], "validated")


def test_a_governance_officer_may_not_retry_but_an_ml_engineer_may(deploy: dict[str, Any],
                                                                   personas: dict[str, Client]) -> None:
    _wait(personas["mei"], deploy["name"], lambda x: x.status == "Failed")
    refused = deploy["run"]("grace", "deployments", "retry", deploy["name"], "--account", SHARED)
    assert refused.returncode != 0 and "PermissionDenied" in str(refused)
    retried = _ok(deploy["run"]("mei", "deployments", "retry", deploy["name"], "--account", SHARED))
    assert retried["status"] == "Pending"
    again = _wait(personas["mei"], deploy["name"], lambda x: x.status == "Failed")
    assert again.stages[0].details.get("attempts") == 2


def test_a_rollback_of_an_execution_that_never_reached_production_is_refused(
        deploy: dict[str, Any], personas: dict[str, Client]) -> None:
    with pytest.raises(InvalidTransition, match="never deployed to production"):
        personas["mei"].rollback_deployment(SHARED, deploy["name"], "bad release")


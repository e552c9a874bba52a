"""Launching a project through the real server and the CLI: priya publishes train-from-dataset and
shares it with the workloads OU granting lead data scientists; lena launches project churn in
ml-dev (group churn readable by the central registry, its forwarding rule, its training pipeline
recorded); sam may not launch."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import pytest

from charter.client.client import Client
from charter.errors import Conflict, PermissionDenied

from .support import REPO, CliResult

SHARED = "ml-shared-services"
PRODUCT = "train-churn-e2e"
Cli = Callable[..., CliResult]


def _ok(result: CliResult) -> Any:
    assert result.returncode == 0, str(result)
    return result.json()


def _done_or_there(result: CliResult) -> None:
    """Another module of the session may have published or shared it already."""
    assert result.returncode == 0 or "Conflict" in str(result), str(result)


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory, persona_tokens: dict[str, str], server: Any) -> Any:
    from .support import charter_env, run_cli

    config = tmp_path_factory.mktemp("projects-cli")

    def run(who: str, *args: str) -> CliResult:
        env = charter_env(config, CHARTER_SERVER=server.url, CHARTER_TOKEN=persona_tokens[who])
        return run_cli(["--output", "json", *args], env)

    # A product of this module's own (the catalog tests publish the example's templates under
    # their names), in the example's ml-projects portfolio: shared with ou:workloads, granted to
    # lead data scientists by examples/acme/charter.yaml.
    template = tmp_path_factory.mktemp("template") / PRODUCT
    shutil.copytree(REPO / "examples" / "acme" / "templates" / "train-from-dataset", template)
    spec = template / "product.yaml"
    spec.write_text(spec.read_text().replace("name: train-from-dataset", f"name: {PRODUCT}", 1))
    _done_or_there(run("priya", "catalog", "publish", str(template), "--portfolio", "ml-projects",
                       "--account", SHARED))
    project = _ok(run("lena", "projects", "create", "churn", "--product", PRODUCT,
                      "--param", "dataset=bank-marketing", "--param", "target=y", "--account", "ml-dev"))
    return {"run": run, "project": project}


def test_lena_launches_churn_with_its_group_readable_by_the_central_registry(
        launched: Any, personas: dict[str, Client]) -> None:
    project = launched["project"]
    assert (project["name"], project["status"], project["launched_by"]) == ("churn", "Active", "lena")
    group = personas["lena"].group("ml-dev", "churn")
    assert "ml-shared-services" in group.readers
    assert project["parameters"]["threshold"] == 0.7


def test_the_project_rule_forwards_to_the_central_registry_bus(launched: Any, personas: dict[str, Client]) -> None:
    rules = {r.name: r for r in personas["lena"].event_rules("ml-dev")}
    assert rules["churn-forward-approved"].targets[0].value == SHARED


def test_the_training_pipeline_is_recorded_with_its_definition(launched: Any) -> None:
    pipelines = [r for r in launched["project"]["resources"] if r["kind"] == "pipeline"]
    assert pipelines[0]["name"] == "churn-train"
    assert pipelines[0]["details"]["definition"] == "pipelines/train.yaml"
    assert pipelines[0]["details"]["start_on_launch"] is True


def test_projects_list_and_show_through_the_cli(launched: Any) -> None:
    listed = _ok(launched["run"]("lena", "projects", "list", "--account", "ml-dev"))
    assert "churn" in {p["name"] for p in listed}
    shown = _ok(launched["run"]("lena", "projects", "show", "churn", "--account", "ml-dev"))
    assert shown["product_crn"] == f"crn:charter:ml-shared-services:catalog:product/{PRODUCT}/" + str(
        launched["project"]["version"])


def test_sam_cannot_launch(launched: Any, personas: dict[str, Client]) -> None:
    refused = launched["run"]("sam", "projects", "create", "churn-sam", "--product", PRODUCT,
                              "--param", "dataset=bank-marketing", "--param", "target=y", "--account", "ml-dev")
    assert refused.returncode != 0 and "PermissionDenied" in str(refused)
    with pytest.raises(PermissionDenied):
        personas["sam"].create_project("ml-dev", "churn-sam", PRODUCT,
                                       parameters={"dataset": "bank-marketing", "target": "y"})


def test_launching_the_same_name_again_is_a_conflict(launched: Any, personas: dict[str, Client]) -> None:
    with pytest.raises(Conflict):
        personas["lena"].create_project("ml-dev", "churn", PRODUCT,
                                        parameters={"dataset": "bank-marketing", "target": "y"})


def test_the_launched_pipeline_keeps_the_launch_values_so_a_later_run_needs_only_its_changes(
        launched: Any, personas: dict[str, Client]) -> None:
    sam = personas["sam"]
    pipeline = sam.pipeline("ml-dev", "churn-train")
    assert pipeline.defaults["dataset"] == "bank-marketing" and pipeline.defaults["group"] == "churn"
    run = sam.start_pipeline("ml-dev", "churn-train", {"algorithm": "LogisticRegression"})
    assert run.started_by == "sam"
    assert (run.parameters["dataset"], run.parameters["target"], run.parameters["algorithm"]) == (
        "bank-marketing", "y", "LogisticRegression")
    sam.cancel_pipeline_run("ml-dev", run.id)

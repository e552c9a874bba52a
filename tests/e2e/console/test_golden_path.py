"""The golden path clicked through in headless Chromium by the personas, each signed in with their
own token: lena subscribes ml-dev to diego's dataset and diego approves it from his inbox; lena
launches the training project from the catalog's form (its pipeline trains, evaluates and
registers a model) and sam starts the pipeline again from its page; lena is refused the approval
of her own run's package (the page hides the button, the server refuses it when it is posted
anyway) and approves sam's; the approval promotes it; mei launches the deployment project from the
catalog's form and approves the central package; the test stage and its integration tests run;
mei completes and submits the model card; grace, refused production while the card is under
review, approves the card and then production from her inbox with a comment (a stale page gets a
conflict); the execution reaches production; grace asks the production endpoint for a prediction
in its try-it form; the lineage runs from the dataset version to the endpoint.

Registering the dataset (a file upload the console does not offer) and publishing the two
templates are set up through the API and the CLI. Every approval is clicked."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from charter.client import models as m
from charter.client.client import Client
from charter.examples.datasets import write_example_csv
from tests.e2e.support import REPO, ServerProcess, charter_env, run_cli
from tests.e2e.test_promotion import wait_for_central

SHARED, DEV, PROD, DATA = "ml-shared-services", "ml-dev", "ml-prod", "data-governance"
TRAIN, DEPLOY = "train-console", "deploy-console"
SignIn = Callable[[str], Any]
Shot = Callable[[Any, str], Path]


def _publish(template: str, name: str, tmp: pytest.TempPathFactory, server: ServerProcess, token: str) -> None:
    """The example's template, renamed, published by priya into ml-projects (Conflict: it already is)."""
    folder = tmp.mktemp("template") / name
    shutil.copytree(REPO / "examples" / "acme" / "templates" / template, folder)
    spec = folder / "product.yaml"
    spec.write_text(spec.read_text().replace(f"name: {template}", f"name: {name}", 1))
    env = charter_env(tmp.mktemp("golden-cli"), CHARTER_SERVER=server.url, CHARTER_TOKEN=token)
    published = run_cli(["catalog", "publish", str(folder), "--portfolio", "ml-projects", "--account", SHARED], env)
    assert published.returncode == 0 or "Conflict" in str(published), str(published)


@pytest.fixture(scope="module")
def road(tmp_path_factory: pytest.TempPathFactory, server: ServerProcess, persona_tokens: dict[str, str],
         personas: dict[str, Client]) -> dict[str, Any]:
    """diego's new dataset, and the training and deployment templates published (what the console
    does not do)."""
    suffix = uuid.uuid4().hex[:6]
    dataset = f"bank-{suffix}"
    csv_file = write_example_csv(tmp_path_factory.mktemp("data") / "bank.csv")
    personas["diego"].register_dataset(DATA, dataset, csv_file, description="breast cancer, standing in")
    _publish("train-from-dataset", TRAIN, tmp_path_factory, server, persona_tokens["priya"])
    _publish("deploy-realtime-cross-account", DEPLOY, tmp_path_factory, server, persona_tokens["priya"])
    group = f"churn-{suffix}"
    return {"dataset": dataset, "group": group, "pipeline": f"{group}-train", "central": f"{group}-ml-dev",
            "project": f"{group}-deploy"}


def _item(kind: str, key: str) -> str:
    return f"[data-testid=item-{kind}-{key}]"


def _eventually(probe: Callable[[], Any], what: str, timeout: float = 240.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except Exception:  # noqa: BLE001 - not there yet
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _finished_run(client: Client, run_id: str) -> m.PipelineRunOut:
    run = _eventually(lambda: (r := client.pipeline_run(DEV, run_id)).status not in ("Pending", "Running") and r,
                      f"run {run_id}")
    assert run.status == "Succeeded", (run.reason, [(s.name, s.error) for s in run.steps if s.error])
    return run  # type: ignore[no-any-return]


def test_1_lena_subscribes_ml_dev_to_the_dataset_and_diego_approves_it_in_his_inbox(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client]) -> None:
    lena = signed_in("lena")
    lena.goto(f"/accounts/{DATA}/data/datasets/{road['dataset']}")
    lena.select_option("#subscriber", DEV)
    lena.fill("#reason", "the churn model")
    lena.click("form[action$='/subscribe'] button[type=submit]")
    lena.wait_for_load_state()
    sub = next(s for s in personas["diego"].subscriptions(DATA) if s.dataset == road["dataset"])
    diego = signed_in("diego")
    item = diego.locator(_item("subscription", sub.id))
    item.locator("textarea[name=comment]").fill("for the churn project")
    item.locator("button[value=approve]").click()
    diego.wait_for_load_state()
    assert f"Approved the subscription of {DEV} to {road['dataset']}" in diego.inner_text("main")


def test_2_lena_launches_the_training_project_and_sam_starts_its_pipeline_again(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    lena = signed_in("lena")
    lena.goto(f"/accounts/{DEV}/projects/new/{TRAIN}")
    lena.fill("#name", road["group"])
    lena.fill("[name='param.dataset']", road["dataset"])
    lena.fill("[name='param.target']", "y")
    lena.select_option("[name='param.algorithm']", "LogisticRegression")
    lena.click("[data-testid=launch] button[type=submit]")
    lena.wait_for_load_state()
    first = _eventually(lambda: next(iter(personas["lena"].pipeline_runs(DEV, road["pipeline"]))), "the first run")
    _finished_run(personas["lena"], first.id)
    sam = signed_in("sam")
    sam.goto(f"/accounts/{DEV}/pipelines/{road['pipeline']}")
    sam.fill("#parameters", "algorithm=GradientBoostingClassifier")
    sam.click("text=Start run")
    sam.wait_for_selector("[data-testid=dag] svg")
    second = _finished_run(personas["sam"], sam.url.rsplit("/", 1)[-1])
    assert second.started_by == "sam"
    sam.goto(f"/accounts/{DEV}/runs/{second.id}")
    shot(sam, "golden-2-training-run")
    road["lena_version"], road["sam_version"] = 1, 2


def test_3_lena_is_refused_her_own_runs_package_in_the_page_and_by_the_server(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    own = personas["lena"].package(DEV, road["group"], road["lena_version"])
    assert own.lineage.run_started_by == "lena"
    page = signed_in("lena")
    item = page.locator(_item("package", f"{DEV}-{road['group']}-{own.version}"))
    assert "no-self-approval" in item.locator("[data-testid=approve-refused]").inner_text()
    assert item.locator("button[value=approve]").count() == 0
    shot(page, "golden-3-self-approval-refused")
    # A hand-made approve button (as a stale or forged page would have) is refused by the server.
    item.locator(".buttons").evaluate(
        "el => el.insertAdjacentHTML('beforeend', '<button type=submit name=decision value=approve>x</button>')")
    item.locator("textarea[name=comment]").fill("mine, but fine")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        item.locator("button[value=approve]").click()
    assert posted.value.status == 403
    refusal = page.locator(_item("package", f"{DEV}-{road['group']}-{own.version}")).locator(
        "[data-testid=form-error]").inner_text()
    assert "lena may not registry:ApproveModelPackage" in refusal and "no-self-approval" in refusal
    assert personas["lena"].package(DEV, road["group"], own.version).status == "PendingManualApproval"
    shot(page, "golden-3-self-approval-refused-by-the-server")


def test_4_lena_approves_sams_package_in_her_inbox_and_it_is_promoted(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client]) -> None:
    pkg = personas["lena"].package(DEV, road["group"], road["sam_version"])
    assert pkg.lineage.run_started_by == "sam"
    page = signed_in("lena")
    item = page.locator(_item("package", f"{DEV}-{road['group']}-{pkg.version}"))
    item.locator("textarea[name=comment]").fill("beats v1")
    item.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert f"Approved {road['group']}/{pkg.version} in {DEV}" in page.inner_text("main")
    central = wait_for_central(personas["mei"], road["central"], 1, timeout=60)
    assert central.origin == pkg.crn
    road["source"] = pkg


def test_5_mei_launches_the_deployment_project_and_approves_the_central_package(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    page = signed_in("mei")
    page.goto(f"/accounts/{SHARED}/projects/new/{DEPLOY}")
    page.fill("#name", road["project"])
    page.fill("[name='param.model_group']", road["central"])
    page.fill("[name='param.test_account']", "ml-test")
    page.fill("[name='param.prod_account']", PROD)
    page.click("[data-testid=launch] button[type=submit]")
    page.wait_for_load_state()
    assert personas["mei"].deployment_pipeline(SHARED, road["project"]).model_group == road["central"]
    page.goto(f"/accounts/{SHARED}/registry/{road['central']}/1")
    form = page.locator(f"[data-testid=decide-package-{SHARED}-{road['central']}-1]")
    form.locator("textarea[name=comment]").fill("ok for test")
    form.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert "Approved" in page.inner_text("main")
    shot(page, "golden-5-central-package-approved")


def test_6_the_test_stage_runs_and_mei_submits_the_model_card(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    mei = personas["mei"]
    execution = _eventually(lambda: (e := mei.deployment_execution(SHARED, road["project"])).status not in (
        "Pending", "InProgress") and e, "the execution to reach the approval")
    assert execution.status == "AwaitingApproval", execution.reason
    road["execution"] = execution.id
    page = signed_in("mei")
    page.goto(f"/accounts/{SHARED}/deployments/{road['project']}/executions/{execution.id}")
    timeline = page.locator("[data-testid=timeline] svg")
    assert [timeline.locator(f"[data-stage={s}]").get_attribute("class") for s in ("deploy-test", "approve-prod")] == [
        "node state-succeeded", "node state-awaitingapproval current"]
    assert page.locator("[data-testid=checks] td.passed").count() == 5
    shot(page, "golden-6-deployment-at-the-approval")
    document = yaml.safe_load((REPO / "examples" / "acme" / "card.yaml").read_text())
    page.goto(f"/accounts/{SHARED}/cards/{road['central']}")
    page.fill("#document", json.dumps(document, indent=2))
    page.fill("#summary", "completed for review")
    page.click("text=Save a new version")
    page.wait_for_load_state()
    page.fill("#submit-comment", "ready for review")
    page.click("text=Submit for review")
    page.wait_for_load_state()
    assert mei.model_card(SHARED, road["central"]).status == "PendingReview"


def test_7_grace_approves_the_card_then_production_from_her_inbox_and_a_stale_page_gets_a_conflict(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    page = signed_in("grace")
    deployment = page.locator(_item("deployment", road["execution"]))
    assert "production-needs-an-approved-card" in deployment.locator("[data-testid=approve-refused]").inner_text()
    assert deployment.locator("button[value=approve]").count() == 0
    card = page.locator(_item("card", f"{SHARED}-{road['central']}"))
    card.locator("textarea[name=comment]").fill("risk reviewed")
    card.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert f"Approved the model card of {road['central']}" in page.inner_text("main")
    stale = page.context.new_page()
    stale.goto(f"/accounts/{SHARED}/deployments/{road['project']}/executions/{road['execution']}")
    deployment = page.locator(_item("deployment", road["execution"]))
    assert deployment.locator("button[value=approve]").count() == 1
    shot(page, "golden-7-inbox-deployment-approval")
    deployment.locator("textarea[name=comment]").fill("validated in test")
    deployment.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert "Approved the production deployment" in page.inner_text("main")
    form = stale.locator(f"[data-testid=decide-deployment-{road['execution']}]")
    form.locator("textarea[name=comment]").fill("me too")
    form.locator("button[value=approve]").click()
    stale.wait_for_load_state()
    assert "changed since you loaded the page" in stale.inner_text("main")
    shot(stale, "golden-7-stale-approval-conflict")
    approvals = personas["grace"].deployment_execution(SHARED, road["project"], road["execution"]).approvals
    assert [(a.principal, a.comment) for a in approvals] == [("grace", "validated in test")]


def test_8_production_serves_and_grace_asks_it_for_a_prediction(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    grace = personas["grace"]
    done = _eventually(lambda: (e := grace.deployment_execution(SHARED, road["project"])).status not in (
        "Pending", "InProgress") and e, "the execution to finish")
    assert done.status == "Succeeded", done.reason
    page = signed_in("grace")
    page.goto(f"/accounts/{SHARED}/deployments/{road['project']}/executions/{road['execution']}")
    assert page.locator("[data-testid=timeline] svg g.state-succeeded").count() == 5
    assert "validated in test" in page.inner_text("[data-testid=approvals]")
    shot(page, "golden-8-deployment-timeline")
    endpoint = grace.deployment_pipeline(SHARED, road["project"]).endpoint
    page.goto(f"/accounts/{PROD}/endpoints/{endpoint}")
    assert "mean_radius: " in page.inner_text("[data-testid=signature]")
    sample = json.loads(page.input_value("#payload"))
    assert sample == road["source"].sample_payload
    page.click("[data-testid=try-it] button[type=submit]")
    page.wait_for_load_state()
    predictions = json.loads(page.inner_text("[data-testid=prediction] pre"))
    assert predictions == grace.invoke_endpoint(PROD, endpoint, sample).predictions  # what the API answers
    assert len(predictions) == len(sample["instances"])
    assert page.locator("[data-testid=traffic-chart] rect.series-0").count() >= 1
    page.fill("#payload", '{"instances": [[1.0]]}')
    page.click("[data-testid=try-it] button[type=submit]")
    page.wait_for_load_state()
    assert "signature" in page.inner_text("#err-payload")
    page.fill("#payload", json.dumps(sample))
    page.click("[data-testid=try-it] button[type=submit]")
    page.wait_for_load_state()
    shot(page, "golden-8-endpoint")


def test_9_the_lineage_runs_from_the_dataset_to_the_production_endpoint(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    page = signed_in("admin")
    page.goto(f"/accounts/{DEV}/registry/{road['group']}/{road['sam_version']}/lineage")
    picture = page.locator("[data-testid=lineage] svg")
    endpoint = personas["grace"].deployment_pipeline(SHARED, road["project"]).endpoint
    for node in (road["source"].crn, *road["source"].lineage.datasets, f"crn:charter:{SHARED}:registry:model-package/{road['central']}/1",
                 f"endpoint:{PROD}/{endpoint}", "run"):
        assert picture.locator(f"[data-node='{node}']").count() == 1, node
    shot(page, "golden-9-lineage")

"""The golden path clicked through in headless Chromium by the personas, each signed in with their
own token: lena is refused the approval of her own package (the page hides the button, the server
refuses it when it is posted anyway) and approves sam's; the approval promotes it; mei launches the
deployment project from the catalog's form and approves the central package; the test stage and
its integration tests run; mei completes and submits the model card; grace, refused production
while the card is under review, approves the card and then production from her inbox with a
comment (a stale page gets a conflict); the execution reaches production; grace asks the
production endpoint for a prediction in its try-it form; the lineage reaches the endpoint.

Registering the packages (a training run's work) and publishing the deployment template are set
up through the API and the CLI: the console does not do them. Every approval is clicked."""

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
from tests.e2e.support import REPO, ServerProcess, charter_env, run_cli
from tests.e2e.test_promotion import wait_for_central
from tests.models import skops_model, training_data

SHARED, DEV, PROD = "ml-shared-services", "ml-dev", "ml-prod"
PRODUCT = "deploy-console"
SignIn = Callable[[str], Any]
Shot = Callable[[Any, str], Path]
SAMPLE = {"instances": [[0.1, 0.8], [0.8, 0.3]]}
SIGNATURE = m.SignatureIn(inputs=[m.ColumnIn(name="f0", dtype="double"), m.ColumnIn(name="f1", dtype="double")])


def _register(client: Client, group: str, who: str) -> m.PackageOut:
    x, y = training_data()
    model = client.upload_artifact(DEV, skops_model(), model_format="skops")
    holdout = client.upload_artifact(DEV, json.dumps({"instances": x, "labels": y}).encode())
    return client.register_package(DEV, group, m.PackageCreate(
        format="skops", artifacts=[m.ArtifactIn(path="model.skops", sha256=model.sha256),
                                   m.ArtifactIn(path="holdout.json", sha256=holdout.sha256)],
        metrics={"auc": 0.93 if who == "sam" else 0.88}, signature=SIGNATURE, sample_payload=SAMPLE,
        lineage=m.LineageIn(run=f"crn:charter:{DEV}:pipelines:run/{uuid.uuid4().hex}", run_started_by=who,
                            datasets=["crn:charter:data-governance:datasets:dataset-version/bank-marketing/1"])))


@pytest.fixture(scope="module")
def road(tmp_path_factory: pytest.TempPathFactory, server: ServerProcess, persona_tokens: dict[str, str],
         personas: dict[str, Client]) -> dict[str, Any]:
    """A new group in ml-dev with lena's package (v1) and sam's (v2), and the deployment template
    published in shared services (what the console does not do)."""
    group = f"golden-{uuid.uuid4().hex[:6]}"
    personas["lena"].create_group(DEV, group, description="churn, clicked through", readers=[SHARED, "ou:deployments"])
    lena_pkg, sam_pkg = _register(personas["lena"], group, "lena"), _register(personas["sam"], group, "sam")
    template = tmp_path_factory.mktemp("template") / PRODUCT
    shutil.copytree(REPO / "examples" / "acme" / "templates" / "deploy-realtime-cross-account", template)
    spec = template / "product.yaml"
    spec.write_text(spec.read_text().replace("name: deploy-realtime-cross-account", f"name: {PRODUCT}", 1))
    env = charter_env(tmp_path_factory.mktemp("golden-cli"), CHARTER_SERVER=server.url,
                      CHARTER_TOKEN=persona_tokens["priya"])
    published = run_cli(["catalog", "publish", str(template), "--portfolio", "ml-projects", "--account", SHARED], env)
    assert published.returncode == 0 or "Conflict" in str(published), str(published)
    return {"group": group, "central": f"{group}-ml-dev", "project": f"{group}-deploy", "lena": lena_pkg,
            "sam": sam_pkg}


def _item(kind: str, key: str) -> str:
    return f"[data-testid=item-{kind}-{key}]"


def _eventually(probe: Callable[[], Any], what: str, timeout: float = 180.0) -> Any:
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


def test_1_lena_is_refused_her_own_package_in_the_page_and_by_the_server(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    own = road["lena"]
    page = signed_in("lena")
    item = page.locator(_item("package", f"{DEV}-{road['group']}-{own.version}"))
    assert "no-self-approval" in item.locator("[data-testid=approve-refused]").inner_text()
    assert item.locator("button[value=approve]").count() == 0
    shot(page, "golden-1-self-approval-refused")
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
    shot(page, "golden-1-self-approval-refused-by-the-server")


def test_2_lena_approves_sams_package_in_her_inbox_and_it_is_promoted(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client]) -> None:
    pkg = road["sam"]
    page = signed_in("lena")
    item = page.locator(_item("package", f"{DEV}-{road['group']}-{pkg.version}"))
    item.locator("textarea[name=comment]").fill("beats v1 on AUC")
    item.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert f"Approved {road['group']}/{pkg.version} in {DEV}" in page.inner_text("main")
    central = wait_for_central(personas["mei"], road["central"], 1, timeout=60)
    assert central.origin == pkg.crn


def test_3_mei_launches_the_deployment_project_and_approves_the_central_package(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    page = signed_in("mei")
    page.goto(f"/accounts/{SHARED}/projects/new/{PRODUCT}")
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
    shot(page, "golden-3-central-package-approved")


def test_4_the_test_stage_runs_and_mei_submits_the_model_card(
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
    shot(page, "golden-4-deployment-at-the-approval")
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


def test_5_grace_approves_the_card_then_production_from_her_inbox_and_a_stale_page_gets_a_conflict(
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
    shot(page, "golden-5-inbox-deployment-approval")
    deployment.locator("textarea[name=comment]").fill("validated in test")
    deployment.locator("button[value=approve]").click()
    page.wait_for_load_state()
    assert "Approved the production deployment" in page.inner_text("main")
    form = stale.locator(f"[data-testid=decide-deployment-{road['execution']}]")
    form.locator("textarea[name=comment]").fill("me too")
    form.locator("button[value=approve]").click()
    stale.wait_for_load_state()
    assert "changed since you loaded the page" in stale.inner_text("main")
    shot(stale, "golden-5-stale-approval-conflict")
    approvals = personas["grace"].deployment_execution(SHARED, road["project"], road["execution"]).approvals
    assert [(a.principal, a.comment) for a in approvals] == [("grace", "validated in test")]


def test_6_production_serves_and_grace_asks_it_for_a_prediction(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    grace = personas["grace"]
    done = _eventually(lambda: (e := grace.deployment_execution(SHARED, road["project"])).status not in (
        "Pending", "InProgress") and e, "the execution to finish")
    assert done.status == "Succeeded", done.reason
    page = signed_in("grace")
    page.goto(f"/accounts/{SHARED}/deployments/{road['project']}/executions/{road['execution']}")
    assert page.locator("[data-testid=timeline] svg g.state-succeeded").count() == 5
    assert "validated in test" in page.inner_text("[data-testid=approvals]")
    shot(page, "golden-6-deployment-timeline")
    endpoint = grace.deployment_pipeline(SHARED, road["project"]).endpoint
    page.goto(f"/accounts/{PROD}/endpoints/{endpoint}")
    assert "f0: double" in page.inner_text("[data-testid=signature]")
    assert json.loads(page.input_value("#payload")) == SAMPLE
    page.click("[data-testid=try-it] button[type=submit]")
    page.wait_for_load_state()
    assert json.loads(page.inner_text("[data-testid=prediction] pre")) == [0, 1]
    assert page.locator("[data-testid=traffic-chart] rect.series-0").count() >= 1
    page.fill("#payload", '{"instances": [[1.0]]}')
    page.click("[data-testid=try-it] button[type=submit]")
    page.wait_for_load_state()
    assert "signature" in page.inner_text("#err-payload")
    page.fill("#payload", json.dumps(SAMPLE))
    page.click("[data-testid=try-it] button[type=submit]")
    page.wait_for_load_state()
    shot(page, "golden-6-endpoint")


def test_7_the_lineage_runs_from_the_dataset_to_the_production_endpoint(
        road: dict[str, Any], signed_in: SignIn, personas: dict[str, Client], shot: Shot) -> None:
    page = signed_in("admin")
    page.goto(f"/accounts/{DEV}/registry/{road['group']}/{road['sam'].version}/lineage")
    picture = page.locator("[data-testid=lineage] svg")
    endpoint = personas["grace"].deployment_pipeline(SHARED, road["project"]).endpoint
    for node in (road["sam"].crn, f"crn:charter:{SHARED}:registry:model-package/{road['central']}/1",
                 f"endpoint:{PROD}/{endpoint}", "run"):
        assert picture.locator(f"[data-node='{node}']").count() == 1, node
    shot(page, "golden-7-lineage")

"""The web console on a real store through FastAPI's TestClient: sign-in, CSRF, every page decided
by policy, the inbox's decisions, refusals shown in the page, stale pages, and errors by field."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from charter.bootstrap import Platform
from charter.domain import commands as c
from charter.domain.authz import Decision
from charter.domain.deployments import ExecutionStatus
from charter.domain.identity import Identity
from charter.entrypoints.api.app import create_app
from charter.entrypoints.console.app import ROUTERS, mount_console
from charter.entrypoints.console.session import COOKIE
from charter.services import authorization
from charter.services.deployment_runner import DeploymentRunner
from tests.conftest import EXAMPLE
from tests.deployments_support import CENTRAL as DEPLOY_ACCOUNT
from tests.deployments_support import PIPELINE, Road
from tests.endpoints_support import SAMPLE as PAYLOAD
from tests.endpoints_support import publish
from tests.integration.conftest import Org
from tests.integration.test_endpoints import deploy, rollout_done, serving, wait_for  # noqa: F401 - serving: a fixture
from tests.models import skops_model
from tests.unit.fakes import FakeEndpoints

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PUBLIC = {("GET", "/signin"), ("POST", "/signin"), ("POST", "/signout")}
SAMPLE = {"account": "ml-dev", "group": "churn", "version": "1", "name": "churn", "product": "train-from-dataset",
          "run_id": "0" * 32, "step": "train", "sub_id": "0" * 32, "request_id": "0" * 32,
          "pipeline": "churn-deploy", "execution": "0" * 32}


def console_app(platform: Platform) -> FastAPI:
    app = create_app(platform)
    mount_console(app, platform.console_key)
    return app


@pytest.fixture
def web(platform: Platform) -> Iterator[TestClient]:
    with TestClient(console_app(platform), raise_server_exceptions=False) as client:
        yield client


def csrf_of(web: TestClient, path: str = "/signin") -> str:
    found = CSRF.search(web.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(web: TestClient, bearer: str) -> str:
    response = web.post("/signin", data={"csrf": csrf_of(web), "token": bearer, "next": "/"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(web, "/")


def register(org: Org, who: Identity, *, group: str = "churn", auc: float = 0.91) -> int:
    if org.bus.handle(c.ListModelPackageGroups("ml-dev"), who).items == [] or group not in [
            g.name for g in org.bus.handle(c.ListModelPackageGroups("ml-dev"), who).items]:
        org.bus.handle(c.CreateModelPackageGroup("ml-dev", group, "churn model"), who)
    blob = org.bus.handle(c.UploadArtifact("ml-dev", [skops_model()], 1 << 22), who)
    package = org.bus.handle(c.RegisterModelPackage(
        "ml-dev", group, "skops", (c.ArtifactRef("model.skops", blob.sha256),), metrics=(("auc", auc),)), who)
    return int(package.version)


def status_of(org: Org, version: int, group: str = "churn") -> str:
    return str(org.bus.handle(c.GetModelPackage("ml-dev", group, version), org.admin).status)


def test_a_signed_out_visitor_is_sent_to_the_sign_in_page(web: TestClient, org: Org) -> None:
    response = web.get("/accounts/ml-dev/registry", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/accounts/ml-dev/registry"


def test_a_wrong_token_is_refused_next_to_the_token_field(web: TestClient, org: Org) -> None:
    response = web.post("/signin", data={"csrf": csrf_of(web), "token": "cht_0123456789abcdef_nope", "next": "/"})
    assert response.status_code == 401
    assert re.search(r'id="token-error">invalid token<', response.text)
    assert COOKIE not in response.cookies or "token" not in response.cookies[COOKIE]


def test_the_session_cookie_is_httponly_strict_and_does_not_show_the_token(web: TestClient, org: Org) -> None:
    bearer = org.bearer("lena")
    response = web.post("/signin", data={"csrf": csrf_of(web), "token": bearer, "next": "/"}, follow_redirects=False)
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=strict" in header
    assert bearer not in header and bearer.split("_", 2)[2] not in header  # the secret may hold "_" itself


def test_the_current_identity_and_the_role_switcher_are_on_every_page(web: TestClient, org: Org) -> None:
    csrf = sign_in(web, org.bearer("lena"))
    switched = web.post("/switch", data={"csrf": csrf, "target": "ml-dev/lead-data-scientist", "next": "/org"})
    identity = re.search(r'data-testid="identity">(.*?)</span>', switched.text, re.S)
    assert identity and re.sub(r"<[^>]+>|\s+", " ", identity.group(1)).split()[:6] == [
        "lena", "as", "lead-data-scientist", "in", "ml-dev", "(session"]
    assert 'value="ml-dev/lead-data-scientist" selected' in switched.text


def test_a_form_post_without_the_session_csrf_token_is_refused_and_changes_nothing(web: TestClient, org: Org) -> None:
    version = register(org, org.identity("sam"))
    sign_in(web, org.bearer("lena"))
    response = web.post(f"/accounts/ml-dev/registry/churn/{version}/decide",
                        data={"csrf": "forged", "decision": "approve", "comment": "ok"})
    assert response.status_code == 403 and "CSRF" in response.text
    assert status_of(org, version) == "PendingManualApproval"


def test_a_csrf_token_of_another_session_is_refused(web: TestClient, platform: Platform, org: Org) -> None:
    version = register(org, org.identity("sam"))
    with TestClient(console_app(platform)) as other:
        stolen = sign_in(other, org.bearer("mei"))
    sign_in(web, org.bearer("lena"))
    response = web.post(f"/accounts/ml-dev/registry/churn/{version}/decide",
                        data={"csrf": stolen, "decision": "approve", "comment": "ok"})
    assert response.status_code == 403
    assert status_of(org, version) == "PendingManualApproval"


def test_the_inbox_offers_a_lead_data_scientist_the_approval_of_another_persons_package(
        web: TestClient, org: Org) -> None:
    version = register(org, org.identity("sam"))
    sign_in(web, org.bearer("lena"))
    page = web.get("/").text
    assert f'data-testid="item-package-ml-dev-churn-{version}"' in page
    assert 'name="decision" value="approve"' in page and 'name="decision" value="reject"' in page


def test_the_inbox_shows_a_self_approval_as_refused_and_offers_no_approve_button(web: TestClient, org: Org) -> None:
    register(org, org.identity("lena"))
    sign_in(web, org.bearer("lena"))
    page = web.get("/").text
    assert 'data-testid="approve-refused"' in page and "no-self-approval" in page
    assert 'value="approve"' not in page
    assert 'value="reject"' in page


def test_the_server_refuses_a_self_approval_posted_anyway_and_shows_why(web: TestClient, org: Org) -> None:
    version = register(org, org.identity("lena"))
    csrf = sign_in(web, org.bearer("lena"))
    response = web.post(f"/accounts/ml-dev/registry/churn/{version}/decide",
                        data={"csrf": csrf, "decision": "approve", "comment": "mine", "back": "inbox",
                              "seen": "PendingManualApproval"})
    assert response.status_code == 403
    assert "no-self-approval" in response.text
    assert status_of(org, version) == "PendingManualApproval"


def test_an_approval_from_the_inbox_records_the_comment(web: TestClient, org: Org) -> None:
    version = register(org, org.identity("sam"))
    csrf = sign_in(web, org.bearer("lena"))
    response = web.post(f"/accounts/ml-dev/registry/churn/{version}/decide",
                        data={"csrf": csrf, "decision": "approve", "comment": "beats v0", "back": "inbox",
                              "seen": "PendingManualApproval", "next": "/"})
    assert response.status_code == 200 and f"Approved churn/{version} in ml-dev" in response.text
    package = org.bus.handle(c.GetModelPackage("ml-dev", "churn", version), org.admin)
    assert str(package.status) == "Approved" and package.history[-1].comment == "beats v0"


def test_a_stale_page_gets_a_conflict_instead_of_a_second_decision(web: TestClient, org: Org) -> None:
    version = register(org, org.identity("sam"))
    csrf = sign_in(web, org.bearer("lena"))
    org.bus.handle(c.DecideModelPackage("ml-dev", "churn", version, "Rejected", "not good enough"), org.identity("lena"))
    response = web.post(f"/accounts/ml-dev/registry/churn/{version}/decide",
                        data={"csrf": csrf, "decision": "approve", "comment": "", "back": "package",
                              "seen": "PendingManualApproval"})
    assert response.status_code == 409
    assert "changed since you loaded the page" in response.text and "Rejected by lena" in response.text
    assert status_of(org, version) == "Rejected"


def test_a_decision_without_a_choice_shows_the_error_in_the_form(web: TestClient, org: Org) -> None:
    version = register(org, org.identity("sam"))
    csrf = sign_in(web, org.bearer("lena"))
    response = web.post(f"/accounts/ml-dev/registry/churn/{version}/decide",
                        data={"csrf": csrf, "comment": "", "back": "package"})
    assert response.status_code == 400
    assert re.search(r'data-testid="form-error">choose approve or reject<', response.text)


def test_the_package_page_compares_metrics_side_by_side(web: TestClient, org: Org) -> None:
    register(org, org.identity("sam"), auc=0.81)
    register(org, org.identity("sam"), auc=0.93)
    sign_in(web, org.bearer("lena"))
    page = web.get("/accounts/ml-dev/registry/churn?compare=1&compare=2").text
    table = page[page.index('data-testid="metrics"'):]
    assert "<th scope=\"col\">v1</th><th scope=\"col\">v2</th>" in table
    assert 'class="best">0.9300' in table and "0.8100" in table


def test_a_data_scientist_sees_no_decision_buttons(web: TestClient, org: Org) -> None:
    version = register(org, org.identity("lena"))
    sign_in(web, org.bearer("sam"))
    page = web.get(f"/accounts/ml-dev/registry/churn/{version}").text
    assert 'name="decision"' not in page
    assert f'data-testid="item-package-ml-dev-churn-{version}"' not in web.get("/").text


def test_the_audit_link_is_shown_only_to_those_who_may_read_the_trail(web: TestClient, org: Org) -> None:
    sign_in(web, org.bearer("sam"))
    assert 'href="/audit"' not in web.get("/").text
    assert web.get("/audit").status_code == 403


def test_an_auditor_verifies_the_trail_from_the_page(web: TestClient, org: Org) -> None:
    csrf = sign_in(web, org.bearer("arthur"))
    response = web.post("/audit/verify", data={"csrf": csrf})
    assert response.status_code == 200
    assert re.search(r'data-testid="verified" role="status">\s*Verified: \d+ records', response.text)


def test_a_bad_audit_filter_is_shown_next_to_its_field(web: TestClient, org: Org) -> None:
    sign_in(web, org.bearer("arthur"))
    response = web.get("/audit?since=yesterday")
    assert response.status_code == 400
    assert 'id="err-since">since: write a date and time' in response.text


def test_a_revoked_token_signs_the_console_out(web: TestClient, org: Org) -> None:
    bearer = org.bearer("lena")
    sign_in(web, bearer)
    org.bus.handle(c.RevokeToken(bearer.split("_")[1]), org.admin)
    response = web.get("/org", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin"


def test_signing_out_forgets_the_session(web: TestClient, org: Org) -> None:
    csrf = sign_in(web, org.bearer("lena"))
    web.post("/signout", data={"csrf": csrf})
    assert web.get("/", follow_redirects=False).headers["location"].startswith("/signin")


def _console_routes() -> list[tuple[str, str]]:
    return sorted({(method, route.path) for router in ROUTERS for route in router.routes
                   if isinstance(route, APIRoute) for method in route.methods})


@pytest.mark.parametrize("who", ["admin", "nobody"])
def test_every_console_route_reaches_a_policy_decision(web: TestClient, org: Org, who: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Enumerate the console's routes and call each signed in: none may answer without a decision."""
    if who == "nobody":
        org.bus.handle(c.ApplyOrg(EXAMPLE.read_text().replace("  - name: sam\n", "  - name: nobody\n  - name: sam\n")),
                       org.admin)
    csrf = sign_in(web, org.bearer(who))
    decided: list[Decision] = []
    original = authorization.Authorizer.decide

    def spy(self: authorization.Authorizer, *args: Any, **kwargs: Any) -> Decision:
        decision = original(self, *args, **kwargs)
        decided.append(decision)
        return decision

    monkeypatch.setattr(authorization.Authorizer, "decide", spy)
    checked = 0
    for method, path in _console_routes():
        if (method, path) in PUBLIC:
            continue
        decided.clear()
        concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], path)
        data = {"csrf": csrf, "decision": "approve", "target": "ml-dev", "document": "{}", "parameters": ""}
        response = web.request(method, concrete, data=data if method == "POST" else None, follow_redirects=False)
        assert response.status_code != 500, (method, path, response.text[:500])
        assert decided, f"{method} {path} answered {response.status_code} without a policy decision"
        checked += 1
    assert checked >= 25


def test_a_console_page_that_skips_the_policy_engine_is_refused(web: TestClient, org: Org) -> None:
    app = web.app

    @app.get("/forgotten-page")  # type: ignore[attr-defined]
    def forgotten() -> dict[str, str]:
        return {"secret": "leaked"}

    sign_in(web, org.bearer("admin"))
    response = web.get("/forgotten-page")
    assert response.status_code == 500 and "leaked" not in response.text


def test_every_form_on_the_inbox_carries_the_sessions_csrf_token(web: TestClient, org: Org) -> None:
    register(org, org.identity("sam"))
    csrf = sign_in(web, org.bearer("lena"))
    tokens = CSRF.findall(web.get("/").text)
    assert len(tokens) >= 3 and set(tokens) == {csrf}


def _subscription(org: Org) -> str:
    diego, lena = org.identity("diego"), org.identity("lena")
    uploaded = org.bus.handle(c.UploadDataset("data-governance", "bank", "csv", iter([b"age,y\n30,0\n41,1\n"]), 10**6),
                              diego)
    org.bus.handle(c.RegisterDatasetVersion("data-governance", "bank", "csv", uploaded.blob.sha256), diego)
    return str(org.bus.handle(c.Subscribe("data-governance", "bank", "ml-dev", "churn model"), lena).id)


def test_a_rejection_without_a_comment_is_refused_next_to_the_comment_field(web: TestClient, org: Org) -> None:
    sub_id = _subscription(org)
    csrf = sign_in(web, org.bearer("diego"))
    assert f'data-testid="item-subscription-{sub_id}"' in web.get("/").text
    response = web.post(f"/accounts/data-governance/data/subscriptions/{sub_id}/decide",
                        data={"csrf": csrf, "decision": "reject", "comment": " ", "back": "inbox", "seen": "Pending"})
    assert response.status_code == 400
    item = response.text[response.text.index(f'data-testid="item-subscription-{sub_id}"'):]
    assert re.search(r'name="comment"[^>]*aria-invalid="true"', item)
    assert 'role="alert">a rejection needs a comment: say why<' in item
    assert str(org.bus.handle(c.GetSubscription("data-governance", sub_id), org.admin).status) == "Pending"


def test_a_data_engineer_approves_a_subscription_from_the_inbox(web: TestClient, org: Org) -> None:
    sub_id = _subscription(org)
    csrf = sign_in(web, org.bearer("diego"))
    response = web.post(f"/accounts/data-governance/data/subscriptions/{sub_id}/decide",
                        data={"csrf": csrf, "decision": "approve", "comment": "ok for churn", "seen": "Pending"})
    assert response.status_code == 200 and "Approved the subscription of ml-dev to bank" in response.text
    assert str(org.bus.handle(c.GetSubscription("data-governance", sub_id), org.admin).status) == "Approved"


def test_a_stale_card_editor_gets_a_conflict_and_the_newer_version_is_kept(web: TestClient, org: Org) -> None:
    mei = org.identity("mei")
    org.bus.handle(c.CreateModelPackageGroup("ml-shared-services", "churn-ml-dev", "central churn"), mei)
    org.bus.handle(c.EditModelCard("ml-shared-services", "churn-ml-dev", {"overview": {"description": "v1"}},
                                   "first"), mei)
    csrf = sign_in(web, org.bearer("mei"))
    page = web.get("/accounts/ml-shared-services/cards/churn-ml-dev").text
    assert 'name="expected_version" value="1"' in page
    org.bus.handle(c.EditModelCard("ml-shared-services", "churn-ml-dev", {"overview": {"description": "v2"}},
                                   "second"), mei)
    response = web.post("/accounts/ml-shared-services/cards/churn-ml-dev/edit",
                        data={"csrf": csrf, "expected_version": "1", "summary": "stale",
                              "document": '{"overview": {"description": "stale"}}'})
    assert response.status_code == 409 and "someone edited it since you read it" in response.text
    card = org.bus.handle(c.GetModelCard("ml-shared-services", "churn-ml-dev"), org.admin)
    assert len(card.card.versions) == 2


def test_a_card_that_is_not_json_is_refused_next_to_the_document_field(web: TestClient, org: Org) -> None:
    mei = org.identity("mei")
    org.bus.handle(c.CreateModelPackageGroup("ml-shared-services", "churn-ml-dev", "central churn"), mei)
    org.bus.handle(c.EditModelCard("ml-shared-services", "churn-ml-dev", {}, "first"), mei)
    csrf = sign_in(web, org.bearer("mei"))
    response = web.post("/accounts/ml-shared-services/cards/churn-ml-dev/edit",
                        data={"csrf": csrf, "expected_version": "1", "document": "{not json"})
    assert response.status_code == 400
    assert re.search(r'<textarea id="document" name="document" rows="14" aria-invalid="true">\{not json</textarea>',
                     response.text)
    assert "the card is not valid JSON" in response.text


# --- deployments, endpoints ---------------------------------------------------------------------

@pytest.fixture
def awaiting(org: Org) -> tuple[Road, str]:
    """A deployment execution at approve-prod (the fake endpoints pass its integration tests)."""
    road = Road(org.bus, org.identity)
    road.launch()
    road.start(road.central_package())
    DeploymentRunner(org.bus, FakeEndpoints(), rollout_poll_seconds=0.01, owner="t").run_until_idle()
    execution = road.execution()
    assert execution.status is ExecutionStatus.AWAITING_APPROVAL, execution.reason
    return road, execution.id


def _execution_url(execution_id: str) -> str:
    return f"/accounts/{DEPLOY_ACCOUNT}/deployments/{PIPELINE}/executions/{execution_id}"


def test_the_execution_page_draws_the_stage_timeline_with_the_test_results(
        web: TestClient, org: Org, awaiting: tuple[Road, str]) -> None:
    _, execution_id = awaiting
    sign_in(web, org.bearer("mei"))
    page = web.get(_execution_url(execution_id)).text
    timeline = page[page.index('data-testid="timeline"'):page.index("</svg>")]
    stages = re.findall(r'<g class="node state-(\w+)[^"]*" data-stage="([\w-]+)"', timeline)
    assert stages == [("succeeded", "deploy-test"), ("succeeded", "integration-tests"),
                      ("awaitingapproval", "approve-prod"), ("pending", "deploy-prod"), ("pending", "smoke-prod")]
    checks = dict(re.findall(r'data-check="([\w-]+)"><td>[\w-]+</td><td class="(passed|failed)"', page))
    assert checks == {"success-rate": "passed", "latency-p95": "passed", "output-schema": "passed",
                      "labels": "passed", "holdout-accuracy": "passed"}
    assert "0.75 on 4 held-out rows" in page
    assert 'name="decision"' not in page  # an ML engineer does not approve production


def test_a_governance_officer_sees_the_approval_in_the_inbox_refused_until_the_card_is_approved(
        web: TestClient, org: Org, awaiting: tuple[Road, str]) -> None:
    road, execution_id = awaiting
    sign_in(web, org.bearer("grace"))
    item = _inbox_item(web.get("/").text, f"deployment-{execution_id}")
    assert "production-needs-an-approved-card" in item and 'value="approve"' not in item
    assert 'value="reject"' in item
    road.approve_card()
    item = _inbox_item(web.get("/").text, f"deployment-{execution_id}")
    assert 'value="approve">Approve production<' in item and "✓ holdout-accuracy" in item


def _inbox_item(page: str, key: str) -> str:
    start = page.index(f'data-testid="item-{key}"')
    return page[start:page.index("</li>", start)]


def test_a_production_approval_from_the_inbox_needs_a_comment_and_records_it(
        web: TestClient, org: Org, awaiting: tuple[Road, str]) -> None:
    road, execution_id = awaiting
    road.approve_card()
    csrf = sign_in(web, org.bearer("grace"))
    form = {"csrf": csrf, "decision": "approve", "back": "inbox", "seen": "AwaitingApproval", "next": "/"}
    refused = web.post(_execution_url(execution_id) + "/decide", data={**form, "comment": " "})
    assert refused.status_code == 400
    item = _inbox_item(refused.text, f"deployment-{execution_id}")
    assert re.search(r'name="comment"[^>]*aria-invalid="true"', item) and "a comment is required" in item
    assert road.execution().status is ExecutionStatus.AWAITING_APPROVAL
    done = web.post(_execution_url(execution_id) + "/decide", data={**form, "comment": "validated in test"})
    assert done.status_code == 200 and "Approved the production deployment" in done.text
    assert f"item-deployment-{execution_id}" not in done.text
    approval = road.execution().approvals[-1]
    assert (approval.principal, approval.comment) == ("grace", "validated in test")
    page = web.get(_execution_url(execution_id)).text
    assert "validated in test" in page[page.index('data-testid="approvals"'):]


def test_a_stale_execution_page_gets_a_conflict_and_decides_nothing(
        web: TestClient, org: Org, awaiting: tuple[Road, str]) -> None:
    road, execution_id = awaiting
    road.approve_card()
    csrf = sign_in(web, org.bearer("grace"))
    road.as_("grace", c.DecideDeployment(DEPLOY_ACCOUNT, PIPELINE, "Rejected", "not now", execution_id))
    response = web.post(_execution_url(execution_id) + "/decide", data={
        "csrf": csrf, "decision": "approve", "comment": "ok", "back": "deployment", "seen": "AwaitingApproval"})
    assert response.status_code == 409
    assert "changed since you loaded the page: it was AwaitingApproval, it is now Failed by grace" in response.text
    assert [a.decision for a in road.execution().approvals] == ["Rejected"]


def test_the_deployments_pages_list_the_pipeline_and_its_executions(
        web: TestClient, org: Org, awaiting: tuple[Road, str]) -> None:
    _, execution_id = awaiting
    sign_in(web, org.bearer("mei"))
    listing = web.get(f"/accounts/{DEPLOY_ACCOUNT}/deployments").text
    assert f'href="{_execution_url(execution_id)}"' in listing and "AwaitingApproval" in listing
    pipeline = web.get(f"/accounts/{DEPLOY_ACCOUNT}/deployments/{PIPELINE}").text
    assert execution_id[:12] in pipeline[pipeline.index('data-testid="executions"'):]


@pytest.mark.usefixtures("serving")
def test_the_endpoint_page_tries_a_prediction_and_charts_the_traffic(web: TestClient, org: Org) -> None:
    package = publish(org.bus, org.identity("promotion-bot"), org.identity("mei"))
    deploy(org, "console", package, reason="for the console")
    wait_for(rollout_done(org, "console", 1))
    csrf = sign_in(web, org.bearer("mei"))
    page = web.get("/accounts/ml-test/endpoints/console").text
    assert "<code>f0: double</code>, <code>f1: double</code>" in page
    assert "for the console" in page[page.index('data-testid="revisions"'):]
    assert json.loads(html.unescape(re.search(r'<textarea id="payload"[^>]*>([^<]*)<', page).group(1))) == PAYLOAD  # type: ignore[union-attr]
    bad = web.post("/accounts/ml-test/endpoints/console/invoke", data={"csrf": csrf, "payload": "{nope"})
    assert bad.status_code == 400
    assert re.search(r'<textarea id="payload"[^>]*aria-invalid="true"', bad.text)
    assert 'id="err-payload">the payload is not JSON' in bad.text
    short = web.post("/accounts/ml-test/endpoints/console/invoke",
                     data={"csrf": csrf, "payload": '{"instances": [[1.0]]}'})
    assert short.status_code == 400 and 'id="err-payload">' in short.text
    answered = web.post("/accounts/ml-test/endpoints/console/invoke", data={"csrf": csrf, "payload": json.dumps(PAYLOAD)})
    assert answered.status_code == 200
    prediction = answered.text[answered.text.index('data-testid="prediction"'):]
    assert "From revision 1" in prediction and "[\n  " in prediction
    summary = re.search(r'data-testid="traffic-summary">([^<]*)<', answered.text).group(1)  # type: ignore[union-attr]
    assert summary.startswith("2 requests, 1 failed"), summary  # the JSON that was not JSON reached no model
    chart = answered.text[answered.text.index('data-testid="traffic-chart"'):]
    assert chart.index('class="series-0"') < chart.index("</svg>") and 'class="series-1"' in chart


@pytest.mark.usefixtures("serving")
def test_the_lineage_reaches_the_endpoint_serving_the_central_package(web: TestClient, org: Org) -> None:
    package = publish(org.bus, org.identity("promotion-bot"), org.identity("mei"))
    deploy(org, "lineage", package, reason="lineage")
    wait_for(rollout_done(org, "lineage", 1))
    sign_in(web, org.bearer("mei"))
    group, version = package.rsplit("/", 2)[-2:]
    page = web.get(f"/accounts/{DEPLOY_ACCOUNT}/registry/{group}/{version}/lineage").text
    assert 'data-node="endpoint:ml-test/lineage"' in page and 'href="/accounts/ml-test/endpoints/lineage"' in page


def test_a_lead_data_scientist_subscribes_her_account_from_the_dataset_page(web: TestClient, org: Org) -> None:
    diego = org.identity("diego")
    uploaded = org.bus.handle(c.UploadDataset("data-governance", "bank", "csv", iter([b"age,y\n30,0\n41,1\n"]), 10**6),
                              diego)
    org.bus.handle(c.RegisterDatasetVersion("data-governance", "bank", "csv", uploaded.blob.sha256), diego)
    csrf = sign_in(web, org.bearer("lena"))
    page = web.get("/accounts/data-governance/data/datasets/bank").text
    assert '<select id="subscriber" name="subscriber"><option>ml-dev</option></select>' in page
    response = web.post("/accounts/data-governance/data/datasets/bank/subscribe",
                        data={"csrf": csrf, "subscriber": "ml-dev", "reason": "the churn model"})
    assert response.status_code == 200, response.text
    subs = org.bus.handle(c.ListSubscriptions("data-governance", "Pending"), org.admin).items
    assert [(s.subscriber, s.reason, s.requested_by) for s in subs] == [("ml-dev", "the churn model", "lena")]


def test_the_central_approver_is_offered_no_production_approval_and_is_refused_when_posting_one(
        web: TestClient, org: Org, awaiting: tuple[Road, str]) -> None:
    road, execution_id = awaiting
    road.approve_card()
    csrf = sign_in(web, org.bearer("mei"))
    assert f"item-deployment-{execution_id}" not in web.get("/").text
    response = web.post(_execution_url(execution_id) + "/decide", data={
        "csrf": csrf, "decision": "approve", "comment": "I approved it centrally", "back": "deployment",
        "seen": "AwaitingApproval"})
    assert response.status_code == 403 and "deployments:ApproveProduction" in response.text
    assert road.execution().status is ExecutionStatus.AWAITING_APPROVAL and road.execution().approvals == ()


def test_an_ml_engineer_retries_a_failed_execution_from_its_page_and_a_governance_officer_may_not(
        web: TestClient, org: Org) -> None:
    road = Road(org.bus, org.identity)
    road.launch()
    road.start(road.central_package())
    DeploymentRunner(org.bus, FakeEndpoints(allowed={"someone-else"}), rollout_poll_seconds=0.01,
                     owner="t").run_until_idle()
    failed = road.execution()
    assert failed.status is ExecutionStatus.FAILED
    sign_in(web, org.bearer("grace"))
    assert 'data-testid="retry"' not in web.get(_execution_url(failed.id)).text
    web.cookies.clear()
    csrf = sign_in(web, org.bearer("mei"))
    page = web.get(_execution_url(failed.id)).text
    assert "Retry from deploy-test" in page and "refused the deploy" in page
    response = web.post(_execution_url(failed.id) + "/retry", data={"csrf": csrf, "seen": "Failed"})
    assert response.status_code == 200 and "Retrying execution" in response.text
    assert road.execution().status is ExecutionStatus.PENDING
    again = web.post(_execution_url(failed.id) + "/retry", data={"csrf": csrf, "seen": "Failed"})
    assert again.status_code == 409 and "it was Failed, it is now Pending" in again.text

"""The REST API on a real store: every route decided by policy, one error shape, paging, limits."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from charter.domain.authz import Decision
from charter.entrypoints.api.app import ROUTERS
from charter.entrypoints.api.middleware import API_PREFIX
from charter.services import authorization
from tests.conftest import EXAMPLE
from tests.integration.conftest import Org, auth

PUBLIC = {("GET", "/healthz")}
# Outside /api/v1 by convention (Prometheus scrapes /metrics), yet decided by policy like the rest.
TOP_LEVEL_DECIDED = {("GET", "/metrics")}
SAMPLE_PATH_VALUES = {"account": "ml-dev", "name": "lena", "token_id": "0000000000000000",
                      "group": "churn", "version": "1", "sha256": "0" * 64,
                      "delivery_id": "0" * 32,
                      "dataset": "bank-marketing", "subscription_id": "0" * 32,
                      "portfolio": "ml-projects", "product": "train-from-dataset", "target": "ou:workloads",
                      "pattern": "lead-data-scientist", "path": "product.yaml", "request_id": "0" * 32,
                      "run_id": "0" * 32, "step": "train", "execution": "0" * 32}
SAMPLE_BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/org/apply": {"document": EXAMPLE.read_text(), "plan": True},
    "/api/v1/tokens": {"principal": "lena"},
    "/api/v1/sessions": {"account": "ml-dev", "role": "lead-data-scientist"},
    "/api/v1/accounts/{account}/registry/groups": {"name": "churn"},
    "/api/v1/accounts/{account}/registry/groups/{group}/packages": {
        "format": "skops", "artifacts": [{"path": "model.skops", "sha256": "0" * 64}]},
    "/api/v1/accounts/{account}/registry/groups/{group}/packages/{version}/approve": {"comment": "ok"},
    "/api/v1/accounts/{account}/registry/groups/{group}/packages/{version}/reject": {"comment": "no"},
    "/api/v1/accounts/{account}/cards/{group}/versions": {"document": {}, "summary": "first"},
    "/api/v1/accounts/{account}/cards/{group}/submit": {},
    "/api/v1/accounts/{account}/cards/{group}/approve": {"comment": "ok"},
    "/api/v1/accounts/{account}/cards/{group}/reject": {"comment": "no"},
    "/api/v1/accounts/{account}/cards/{group}/archive": {},
}
SAMPLE_BODIES.update({
    "/api/v1/accounts/{account}/data/datasets/{dataset}/subscriptions": {"subscriber": "ml-dev", "reason": "r"},
    "/api/v1/accounts/{account}/data/subscriptions/{subscription_id}/approve": {},
    "/api/v1/accounts/{account}/data/subscriptions/{subscription_id}/reject": {"comment": "no"},
    "/api/v1/accounts/{account}/data/subscriptions/{subscription_id}/revoke": {},
})
SAMPLE_BODIES.update({
    "/api/v1/accounts/{account}/catalog/portfolios": {"name": "ml-projects"},
    "/api/v1/accounts/{account}/catalog/portfolios/{portfolio}/shares": {"target": "ou:workloads"},
    "/api/v1/accounts/{account}/catalog/portfolios/{portfolio}/grants": {"pattern": "lead-data-scientist"},
})
SAMPLE_BODIES.update({
    "/api/v1/account-requests": {"account": "ml-dev-2", "ou": "workloads", "stage": "dev",
                                 "blueprint": "dev-account", "reason": "a second team"},
    "/api/v1/account-requests/{request_id}/approve": {},
    "/api/v1/account-requests/{request_id}/reject": {"comment": "no"},
    "/api/v1/accounts/{account}/projects": {"name": "churn", "product": "train-from-dataset",
                                            "parameters": {"dataset": "bank-marketing", "target": "y"}},
    "/api/v1/accounts/{account}/projects/{name}/update": {"parameters": {}},
    "/api/v1/accounts/{account}/workspaces": {"name": "fraud", "product": "team-workspace", "parameters": {}},
    "/api/v1/accounts/{account}/pipelines/{name}/runs": {"parameters": {}},
    "/api/v1/accounts/{account}/endpoints/{name}": {
        "variants": [{"package": "crn:charter:ml-shared-services:registry:model-package/churn/1"}]},
    "/api/v1/accounts/{account}/endpoints/{name}/rollback": {"reason": "r"},
    "/api/v1/accounts/{account}/endpoints/{name}/invocations": {"instances": [[1.0, 2.0]]},
    "/api/v1/accounts/{account}/deployment-pipelines/{name}/approve": {"comment": "ok"},
    "/api/v1/accounts/{account}/deployment-pipelines/{name}/reject": {"comment": "no"},
    "/api/v1/accounts/{account}/deployment-pipelines/{name}/retry": {},
    "/api/v1/accounts/{account}/deployment-pipelines/{name}/rollback": {"reason": "bad"},
})
SAMPLE_RAW_BODIES = {"/api/v1/accounts/{account}/pipelines/{name}": b"not a tar.gz",
                     "/api/v1/accounts/{account}/artifacts": b"model bytes",
                     "/api/v1/accounts/{account}/data/datasets": b"a,b\n1,2\n",
                     "/api/v1/accounts/{account}/catalog/portfolios/{portfolio}/publish": b"not a tar.gz"}


def _routes(api: TestClient) -> list[tuple[str, str]]:
    """Every route the app serves: its own and those of the routers mounted under /api/v1."""
    mounted = [(route, API_PREFIX) for router in ROUTERS for route in router.routes]
    top = [(route, "") for route in api.app.routes]  # type: ignore[attr-defined]
    out = {(method, re.sub(r"\{(\w+):\w+\}", r"{\1}", prefix + route.path))  # {path:path} as OpenAPI writes it
           for route, prefix in mounted + top if isinstance(route, APIRoute)
           for method in route.methods}
    return sorted(out)


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)


def test_every_api_route_is_either_public_or_under_api_v1(api: TestClient) -> None:
    for method, path in _routes(api):
        assert (method, path) in PUBLIC | TOP_LEVEL_DECIDED or path.startswith("/api/v1/"), path


@pytest.mark.parametrize("who", ["admin", "nobody"])
def test_every_api_route_reaches_a_policy_decision(api: TestClient, org: Org, who: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Enumerate the routes and call each: none may answer without asking the policy engine."""
    if who == "nobody":
        org.bus.handle(__import__("charter.domain.commands", fromlist=["ApplyOrg"]).ApplyOrg(
            EXAMPLE.read_text().replace("  - name: sam\n", "  - name: nobody\n  - name: sam\n")), org.admin)
    decided: list[Decision] = []
    original = authorization.Authorizer.decide

    def spy(self: authorization.Authorizer, *args: Any, **kwargs: Any) -> Decision:
        decision = original(self, *args, **kwargs)
        decided.append(decision)
        return decision

    monkeypatch.setattr(authorization.Authorizer, "decide", spy)
    headers = auth(org.bearer(who))
    checked = 0
    for method, path in _routes(api):
        if (method, path) in PUBLIC:
            continue
        decided.clear()
        if path in SAMPLE_RAW_BODIES:
            response = api.request(method, _concrete(path), headers=headers, content=SAMPLE_RAW_BODIES[path])
        else:
            response = api.request(method, _concrete(path), headers=headers, json=SAMPLE_BODIES.get(path))
        assert response.status_code != 500, (method, path, response.text)
        assert decided, f"{method} {path} answered {response.status_code} without a policy decision"
        if who == "nobody" and path not in ("/api/v1/whoami",):
            assert response.status_code in (403, 404), (method, path, response.status_code)
        checked += 1
    assert checked >= 12


def test_a_route_that_skips_the_policy_engine_is_refused(api: TestClient, org: Org) -> None:
    app = api.app

    @app.get("/api/v1/forgotten")  # type: ignore[attr-defined]
    def forgotten() -> dict[str, str]:
        return {"secret": "leaked"}

    response = api.get("/api/v1/forgotten", headers=auth(org.bearer("admin")))
    assert response.status_code == 500
    assert "leaked" not in response.text
    assert response.json()["error"]["message"] == "no policy decision was made for this request"


def test_requests_without_a_token_are_unauthenticated(api: TestClient, org: Org) -> None:
    response = api.get("/api/v1/accounts")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "Unauthenticated"


def test_a_denial_names_its_policy_in_the_error(api: TestClient, org: Org) -> None:
    response = api.post("/api/v1/tokens", json={"principal": "sam"}, headers=auth(org.bearer("sam")))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["type"] == "PermissionDenied" and error["details"]["policy"] == "default-deny"


def test_unknown_routes_and_bad_bodies_use_the_error_shape(api: TestClient, org: Org) -> None:
    missing = api.get("/api/v1/nope", headers=auth(org.bearer("admin")))
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFound"
    bad = api.post("/api/v1/tokens", json={"principal": "lena", "surprise": 1}, headers=auth(org.bearer("admin")))
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "ValidationError"
    assert bad.json()["error"]["details"]["problems"][0]["field"] == "surprise"


def test_an_oversized_body_is_refused_with_413(api: TestClient, org: Org) -> None:
    response = api.post("/api/v1/org/apply", json={"document": "x" * 70_000},
                        headers=auth(org.bearer("admin")))
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "TooLarge"


def test_deeply_nested_json_is_a_validation_error(api: TestClient, org: Org) -> None:
    body = "[" * 50_000 + "]" * 50_000
    response = api.post("/api/v1/tokens", content=body, headers={
        **auth(org.bearer("admin")), "content-type": "application/json"})
    assert response.status_code in (400, 413)


def test_pages_follow_the_cursor_to_the_end(api: TestClient, org: Org) -> None:
    headers = auth(org.bearer("admin"))
    names: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/principals", params=params, headers=headers).json()
        assert len(page["items"]) <= 2
        names += [p["name"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == sorted(names) and len(names) == len(set(names)) == 10


def test_a_page_larger_than_the_limit_is_refused(api: TestClient, org: Org) -> None:
    response = api.get("/api/v1/principals", params={"limit": 100_000}, headers=auth(org.bearer("admin")))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "limit"


def test_a_forged_cursor_is_a_validation_error(api: TestClient, org: Org) -> None:
    response = api.get("/api/v1/principals", params={"cursor": "not-a-cursor"}, headers=auth(org.bearer("admin")))
    assert response.status_code == 400


def test_the_openapi_document_lists_exactly_the_enumerated_routes(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert set(_routes(api)) == documented


def test_audit_export_streams_json_lines(api: TestClient, org: Org) -> None:
    response = api.get("/api/v1/audit/export", headers=auth(org.bearer("arthur")))
    assert response.status_code == 200
    lines = [line for line in response.text.splitlines() if line]
    import json

    seqs = [json.loads(line)["seq"] for line in lines]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 2


def test_audit_list_filters_by_actor_and_action(api: TestClient, org: Org) -> None:
    api.post("/api/v1/tokens", json={"principal": "sam"}, headers=auth(org.bearer("sam")))
    response = api.get("/api/v1/audit/records", params={"actor": "sam", "action": "iam:CreateToken"},
                       headers=auth(org.bearer("arthur")))
    items = response.json()["items"]
    assert items and all(r["actor"] == "sam" and r["outcome"] == "denied" for r in items)

"""The registry's hot routes are answered by lanes in front of the router (entrypoints/api/
fastlane.py): a lane answers exactly what the route would, and whatever it does not take goes on
to the router with its body, which refuses it as it refuses any bad request."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from charter.domain import commands as c
from tests.integration.conftest import Org, auth
from tests.models import skops_model

PACKAGES = "/api/v1/accounts/ml-dev/registry/groups/churn/packages"
ROUTER = {"via": "router"}  # a query key no lane knows: the request goes to the router


@pytest.fixture
def body(org: Org) -> dict[str, Any]:
    lena, sam = org.identity("lena"), org.identity("sam")
    org.bus.handle(c.CreateModelPackageGroup("ml-dev", "churn", "churn model"), lena)
    blob = org.bus.handle(c.UploadArtifact("ml-dev", [skops_model()], 1 << 22), sam)
    return {"format": "skops", "artifacts": [{"path": "model.skops", "sha256": blob.sha256}],
            "metrics": {"auc": 0.91}, "tags": {"team": "retention"}, "lineage": {"run": "run-7"}}


def test_the_lanes_answer_what_the_router_answers(api: TestClient, org: Org, body: dict[str, Any]) -> None:
    sam, lena = auth(org.bearer("sam")), auth(org.bearer("lena"))
    registered = api.post(PACKAGES, json=body, headers=sam)
    assert registered.status_code == 201, registered.text
    version = registered.json()["version"]
    approved = api.post(f"{PACKAGES}/{version}/approve", json={"comment": "fine"}, headers=lena)
    assert approved.status_code == 200 and approved.json()["status"] == "Approved"
    api.post(PACKAGES, json=body, headers=sam)

    for path, params in ((f"{PACKAGES}/{version}", {}), (f"{PACKAGES}/latest", {"status": "Approved"}),
                         (PACKAGES, {"limit": "1"}), (PACKAGES, {"status": "PendingManualApproval"})):
        by_lane = api.get(path, params=params, headers=lena)
        by_router = api.get(path, params={**params, **ROUTER}, headers=lena)
        assert by_lane.status_code == by_router.status_code == 200, (path, by_lane.text, by_router.text)
        assert by_lane.json() == by_router.json(), path
    page = api.get(PACKAGES, params={"limit": "1"}, headers=lena).json()
    second = api.get(PACKAGES, params={"limit": "1", "cursor": page["next_cursor"]}, headers=lena).json()
    assert [p["version"] for p in page["items"] + second["items"]] == [version, version + 1]


@pytest.mark.parametrize("params, field", [
    ({"limit": "0"}, "limit"),
    ({"limit": "\u0663"}, "limit"),  # an Arabic-Indic three: a digit to str.isdigit, not to the route
    ({"cursor": "x" * 513}, "cursor"),
])
def test_a_query_the_route_refuses_is_refused_as_the_route_refuses_it(
        api: TestClient, org: Org, body: dict[str, Any], params: dict[str, str], field: str) -> None:
    response = api.get(PACKAGES, params=params, headers=auth(org.bearer("lena")))
    assert response.status_code == 400, response.text
    assert field in response.json()["error"]["message"]


def test_a_body_the_route_refuses_reaches_the_router_whole(api: TestClient, org: Org,
                                                          body: dict[str, Any]) -> None:
    response = api.post(PACKAGES, json={**body, "artifacts": "model.skops"}, headers=auth(org.bearer("sam")))
    assert response.status_code == 400
    problems = response.json()["error"]["details"]["problems"]
    assert [p["field"] for p in problems] == ["artifacts"]  # the router read the body, not an empty one


def test_a_version_out_of_range_is_refused_by_the_router(api: TestClient, org: Org, body: dict[str, Any]) -> None:
    response = api.post(f"{PACKAGES}/{2**31}/approve", json={"comment": ""}, headers=auth(org.bearer("lena")))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["problems"][0]["field"] == "version"


def test_an_error_in_a_lane_has_the_error_shape_and_the_request_id(api: TestClient, org: Org,
                                                                   body: dict[str, Any]) -> None:
    response = api.post(f"{PACKAGES}/99/approve", json={"comment": ""}, headers=auth(org.bearer("lena")))
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "NotFound"
    assert len(response.headers["x-request-id"]) == 32

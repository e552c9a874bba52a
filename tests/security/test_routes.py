"""The HTTP surface itself: no way around the policy check through the router's own behaviour."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from .conftest import Org, auth, refused
from .support import DEV, SHARED


@pytest.mark.parametrize("url", [
    f"/api/v1/accounts/{SHARED}/catalog/products/team-workspace/versions/1/",
    f"/api/v1/accounts/{DEV}/artifacts/{'0' * 64}/",
    f"/api/v1/accounts/{DEV}/registry/groups/",
    "/api/v1/whoami/",
    "/api/v1/accounts//artifacts",
])
def test_a_stray_slash_is_no_route_rather_than_a_redirect_around_the_policy_check(
        api: TestClient, org: Org, url: str) -> None:
    response = api.get(url, headers=auth(org.bearer("lena")), follow_redirects=False)
    assert refused(response, 404)["type"] == "NotFound"
